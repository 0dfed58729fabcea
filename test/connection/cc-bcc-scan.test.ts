// CC/BCC routing ("sender-selected distribution") with headers tables built byte by byte, as the
// publish path now scans them without decoding (src/protocol/table-scan.ts): CC/BCC first, last,
// after long strings, nested tables, arrays and every other field type, or only inside nested
// values (where they route nothing); other properties before and after the table. Exact queue
// contents, and the delivered content header byte-identical to the published one when there is no
// BCC. A malformed headers table is still refused with 501 FRAME_ERROR and RabbitMQ's text.

import { describe, expect, it } from 'vitest';
import * as M from '../../src/protocol/generated/amqp.js';
import { RawClient } from '../support/raw-client.js';
import { uniqueName, waitFor } from '../support/harness.js';
import { useTestBroker } from '../support/test-broker.js';

// ---- Byte builders (independent of the broker's encoder) -------------------------------------

const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
};
const shortStr = (s: string) => Buffer.concat([Buffer.from([Buffer.byteLength(s)]), Buffer.from(s)]);
const longStr = (s: string) => Buffer.concat([u32(Buffer.byteLength(s)), Buffer.from(s)]);
const field = (key: string, type: string, value: Buffer) => Buffer.concat([shortStr(key), Buffer.from(type), value]);
const table = (...fields: Buffer[]) => {
  const body = Buffer.concat(fields);
  return Buffer.concat([u32(body.length), body]);
};
const array = (...values: Buffer[]) => {
  const body = Buffer.concat(values);
  return Buffer.concat([u32(body.length), body]);
};
/** an array of long strings: the CC/BCC value */
const keys = (...ks: string[]) => array(...ks.map((k) => Buffer.concat([Buffer.from('S'), longStr(k)])));
const hex = (h: string) => Buffer.from(h.replace(/\s+/g, ''), 'hex');

/** Every other field type RabbitMQ accepts, for tables the scan must skip through. */
const everyType = [
  field('t', 't', hex('01')),
  field('b', 'b', hex('ff')),
  field('B', 'B', hex('fe')),
  field('s', 's', hex('8000')),
  field('u', 'u', hex('ffff')),
  field('I', 'I', hex('80000000')),
  field('i', 'i', hex('ffffffff')),
  field('l', 'l', hex('7fffffffffffffff')),
  field('f', 'f', hex('3fc00000')),
  field('d', 'd', hex('3ff8000000000000')),
  field('D', 'D', hex('0200003039')),
  field('T', 'T', hex('0000000065000000')),
  field('V', 'V', Buffer.alloc(0)),
  field('x', 'x', Buffer.concat([u32(3), hex('434300')])), // bytes that spell "CC"
];

/** Property bytes: content-type, headers, delivery-mode, message-id (headers sit in the middle). */
function properties(headers: Buffer): Buffer<ArrayBuffer> {
  const flags = (1 << 15) | (1 << 13) | (1 << 12) | (1 << 7);
  return Buffer.concat([Buffer.from([flags >> 8, flags & 0xff]), shortStr('text/plain'), headers, Buffer.from([1]), shortStr('id-1')]);
}

describe('CC and BCC found by the headers scan', () => {
  const broker = useTestBroker();
  const clients = broker.clients;

  /** Declares queues a, b, c bound to amq.direct by their letters; returns their names. */
  async function queues(): Promise<Record<'a' | 'b' | 'c', string>> {
    const ch = await clients.channel(await clients.connect());
    const names = { a: uniqueName('scan-a'), b: uniqueName('scan-b'), c: uniqueName('scan-c') };
    for (const k of ['a', 'b', 'c'] as const) {
      await ch.assertQueue(names[k], { durable: false, autoDelete: false });
      await ch.bindQueue(names[k], 'amq.direct', `${names.a}-${k}`);
    }
    return names;
  }

  it('routes by CC/BCC wherever the keys sit in the table and whatever comes before them', async () => {
    const names = await queues();
    const key = (l: string) => `${names.a}-${l}`;
    const tables = [
      /* m0 */ table(field('CC', 'A', keys(key('b')))),
      /* m1 */ table(...everyType, field('CC', 'A', keys(key('b'), key('c')))),
      /* m2 */ table(field('long', 'S', longStr('z'.repeat(70_000))), field('BCC', 'A', keys(key('c')))),
      /* m3 */ table(field('nested', 'F', table(field('CC', 'A', keys(key('b'))), field('deeper', 'F', table(...everyType)))), field('list', 'A', array(Buffer.concat([Buffer.from('F'), table(field('BCC', 'A', keys(key('c'))))])))),
      /* m4 */ table(field('nested', 'F', table(...everyType)), field('arr', 'A', array(Buffer.concat([Buffer.from('A'), array(Buffer.concat([Buffer.from('S'), longStr('CC')]))]))), field('BCC', 'A', keys(key('b'))), field('CC', 'A', keys(key('c')))),
      /* m5 */ table(field('CCC', 'A', keys(key('b'))), field('cc', 'A', keys(key('b'))), field('BC', 'A', keys(key('c')))),
      /* m6 */ table(),
      /* m7 */ table(field('CC', 'S', longStr(key('b')))), // not an array: no extra keys, as RabbitMQ
    ];
    const raw = await RawClient.handshake(broker.port);
    await raw.openChannel(1);
    raw.send(1, { id: M.CONFIRM_SELECT, nowait: false });
    await raw.waitForMethod(M.CONFIRM_SELECT_OK, 1);
    tables.forEach((t, i) => raw.publish(1, 'amq.direct', key('a'), Buffer.from(`m${i}`), properties(t)));
    await waitFor(() => lastAckTag(raw) >= tables.length, 'every publish confirmed');
    expect(raw.frames.filter((f) => f.method?.id === M.BASIC_NACK)).toEqual([]);
    raw.destroy();
    const ch = await clients.channel(await clients.connect());
    const got: Record<string, string[]> = {};
    for (const l of ['a', 'b', 'c'] as const) {
      got[l] = [];
      for (let m = await ch.get(names[l], { noAck: true }); m !== false; m = await ch.get(names[l], { noAck: true })) got[l]!.push(m.content.toString());
    }
    expect(got).toEqual({
      a: ['m0', 'm1', 'm2', 'm3', 'm4', 'm5', 'm6', 'm7'],
      b: ['m0', 'm1', 'm4'],
      c: ['m1', 'm2', 'm4'],
    });
  });

  it('the delivered content header is byte-identical to the published one (no BCC); BCC is removed', async () => {
    const names = await queues();
    const key = (l: string) => `${names.a}-${l}`;
    const plain = properties(table(...everyType, field('nested', 'F', table(field('CC', 'A', keys('x')))), field('s', 'S', longStr('v'))));
    const withCc = properties(table(field('first', 'S', longStr('1')), field('CC', 'A', keys(key('b')))));
    const withBcc = properties(table(field('BCC', 'A', keys(key('b'))), field('after', 'I', hex('00000007'))));
    const raw = await RawClient.handshake(broker.port);
    await raw.openChannel(1);
    raw.send(1, { id: M.CONFIRM_SELECT, nowait: false });
    await raw.waitForMethod(M.CONFIRM_SELECT_OK, 1);
    raw.publish(1, 'amq.direct', key('a'), Buffer.from('plain'), plain);
    raw.publish(1, 'amq.direct', key('a'), Buffer.from('cc'), withCc);
    raw.publish(1, 'amq.direct', key('a'), Buffer.from('bcc'), withBcc);
    await waitFor(() => lastAckTag(raw) >= 3, 'three publishes confirmed');
    // Queue a gets all three, then queue b the two with b as CC or BCC.
    for (const [queue, total] of [
      [names.a, 3],
      [names.b, 5],
    ] as const) {
      raw.send(1, { id: M.BASIC_CONSUME, reserved1: 0, queue, consumerTag: queue, noLocal: false, noAck: true, exclusive: false, noWait: false, arguments: {} });
      await waitFor(() => raw.frames.filter((f) => f.type === 3 && f.channel === 1).length >= total, `${total} deliveries`);
    }
    const headers = raw.frames.filter((f) => f.type === 2).map((f) => f.payload.subarray(12));
    expect(headers.map((h) => h.toString('hex'))).toEqual(
      [plain, withCc, properties(table(field('after', 'I', hex('00000007')))), withCc, properties(table(field('after', 'I', hex('00000007'))))].map((p) => p.toString('hex')),
    );
    raw.destroy();
  });

  it.each([
    ['an unknown field type', table(field('k', 'Z', hex('00'))), "FRAME_ERROR - cannot decode field table: unknown field type 'Z' (0x5a)"],
    ['a value past the end of its table', Buffer.concat([hex('00000007'), shortStr('k'), Buffer.from('S'), hex('0000000a')]), 'FRAME_ERROR - cannot decode field table: value past end of table'],
    ['a nested table running past its parent', table(field('n', 'F', hex('00000009 01 6b 56'))), 'FRAME_ERROR - cannot decode field table: table longer than its frame'],
    ['an unknown type inside an array after CC', table(field('CC', 'A', keys('x')), field('a', 'A', array(hex('3f00')))), "FRAME_ERROR - cannot decode field table: unknown field type '?' (0x3f)"],
  ])('a malformed headers table (%s) is refused with 501 and the decoder’s text', async (_name, headers, text) => {
    const raw = await RawClient.handshake(broker.port);
    await raw.openChannel(1);
    const q = uniqueName('scan-bad');
    raw.publish(1, '', q, Buffer.from('bad'), properties(headers));
    const close = await raw.expectConnectionClose();
    expect({ replyCode: close.replyCode, replyText: close.replyText, classId: close.classId, methodId: close.methodId }).toEqual({
      replyCode: 501,
      replyText: text,
      classId: 60,
      methodId: 40,
    });
    raw.destroy();
  });
});

/** Highest publisher-confirm tag acked so far (acks may be multiple). */
function lastAckTag(raw: RawClient): number {
  let tag = 0;
  for (const f of raw.frames) if (f.method?.id === M.BASIC_ACK) tag = Math.max(tag, Number((f.method as M.BasicAck).deliveryTag));
  return tag;
}
