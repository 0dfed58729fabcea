// Field tables nested absurdly deep (hostile input): 100,000 levels in queue.declare arguments or in
// basic.publish headers must neither overflow the stack nor hang. Nesting beyond MAX_FIELD_NESTING
// is refused like any undecodable table — 501 FRAME_ERROR closing that connection — while the
// process and a bystander connection carry on. Up to the bound, nesting works end to end.
//
// RabbitMQ 3.10 has no depth bound: it decodes whatever fits in a frame (measured: 18,000 levels of
// tables and 20,000 of arrays at frame_max 131072 are accepted). Warren's bound is a deliberate
// deviation; no client nests anywhere near it.

import type { Channel } from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_FIELD_NESTING } from '../../src/protocol/field-table.js';
import * as M from '../../src/protocol/generated/amqp.js';
import { startTestBroker, type TestBroker } from '../support/broker.js';
import { Bystander } from '../support/bystander.js';
import { waitFor } from '../support/wait.js';
import { RawClient, frame, headerPayload } from '../support/raw-client.js';

const HOSTILE_DEPTH = 100_000;
/** 100,000 levels take up to 700 kB: the broker allows frames that large for this test. */
const FRAME_MAX = 1 << 20;

let broker: TestBroker;
let bystander: Bystander;
let goodChannel: Channel;

beforeAll(async () => {
  broker = await startTestBroker({ frameMax: FRAME_MAX });
  bystander = await Bystander.start(broker.url);
  goodChannel = bystander.channel;
});

afterAll(async () => {
  await bystander.allReceived();
  expect(bystander.sent).toBeGreaterThan(0);
  await bystander.close();
  await broker.stop();
});

const bystanderPublishes = (): void => bystander.publish();

/** A table {a: {a: … {} …}} with `levels` tables inside the top one, built without recursion. */
function nestedTables(levels: number): Buffer {
  // Each level is: key "a" (2 bytes), 'F', u32 length, then the level inside.
  const buf = Buffer.alloc(4 + 7 * levels);
  buf.writeUInt32BE(7 * levels, 0);
  for (let i = 0; i < levels; i++) {
    const at = 4 + 7 * i;
    buf[at] = 1;
    buf[at + 1] = 0x61;
    buf[at + 2] = 0x46;
    buf.writeUInt32BE(7 * (levels - i - 1), at + 3);
  }
  return buf;
}

/** A table {a: [[[ … [] … ]]]} with `levels` arrays, built without recursion. */
function nestedArrays(levels: number): Buffer {
  const buf = Buffer.alloc(4 + 2 + 5 * levels);
  buf.writeUInt32BE(2 + 5 * levels, 0);
  buf[4] = 1;
  buf[5] = 0x61;
  for (let i = 0; i < levels; i++) {
    const at = 6 + 5 * i;
    buf[at] = 0x41;
    buf.writeUInt32BE(5 * (levels - i - 1), at + 1);
  }
  return buf;
}

/** queue.declare with hand-built argument bytes. */
function declareFrame(queue: string, args: Buffer): Buffer {
  const name = Buffer.from(queue);
  return frame(1, 1, Buffer.concat([Buffer.from([0, 50, 0, 10, 0, 0, name.length]), name, Buffer.from([0]), args]));
}

/** Content properties with only headers set (flag bit 13), from hand-built table bytes. */
function headersProperties(table: Buffer): Buffer {
  return Buffer.concat([Buffer.from([0x20, 0x00]), table]);
}

function depthOf(value: unknown): number {
  let depth = 0;
  for (let v = value; v !== null && typeof v === 'object' && 'a' in (v as object); v = (v as { a: unknown }).a) depth++;
  return depth;
}

describe(`field tables nested ${HOSTILE_DEPTH.toLocaleString('en')} levels deep`, () => {
  for (const [shape, build] of [
    ['tables', nestedTables],
    ['arrays', nestedArrays],
  ] as const) {
    it(`queue.declare arguments (${shape}): 501 FRAME_ERROR with the method ids, at once; nothing declared`, async () => {
      const raw = await RawClient.handshake(broker.port);
      await raw.openChannel(1);
      const t0 = Date.now();
      raw.write(declareFrame('deep-declare', build(HOSTILE_DEPTH)));
      const close = await raw.expectConnectionClose();
      expect(Date.now() - t0).toBeLessThan(5000);
      expect(close.replyCode).toBe(501);
      expect(close.replyText).toMatch(/^FRAME_ERROR - cannot decode <</);
      expect([close.classId, close.methodId]).toEqual([50, 10]);
      raw.send(0, { id: M.CONNECTION_CLOSE_OK });
      await raw.waitClosed();
      expect(broker.broker.vhosts.get('/')!.queues.has('deep-declare')).toBe(false);
      bystanderPublishes();
    });

    it(`basic.publish headers (${shape}): 501 FRAME_ERROR naming the nesting, nothing enqueued`, async () => {
      await goodChannel.assertQueue('deep-target', { durable: false });
      const raw = await RawClient.handshake(broker.port);
      await raw.openChannel(1);
      raw.send(1, { id: M.BASIC_PUBLISH, reserved1: 0, exchange: '', routingKey: 'deep-target', mandatory: false, immediate: false });
      raw.write(frame(2, 1, headerPayload(4, headersProperties(build(HOSTILE_DEPTH)))));
      raw.write(frame(3, 1, Buffer.from('deep')));
      const close = await raw.expectConnectionClose();
      expect(close).toEqual({
        id: M.CONNECTION_CLOSE,
        replyCode: 501,
        replyText: `FRAME_ERROR - cannot decode field table: nested deeper than ${MAX_FIELD_NESTING} levels`,
        classId: 60,
        methodId: 40,
      });
      raw.send(0, { id: M.CONNECTION_CLOSE_OK });
      await raw.waitClosed();
      expect(await goodChannel.checkQueue('deep-target')).toMatchObject({ messageCount: 0 });
      await goodChannel.deleteQueue('deep-target');
      bystanderPublishes();
    });
  }

  it(`one level past the bound (${MAX_FIELD_NESTING + 1} tables) is refused; the bound itself is not`, async () => {
    const over = await RawClient.handshake(broker.port);
    await over.openChannel(1);
    over.write(declareFrame('deep-over', nestedTables(MAX_FIELD_NESTING + 1)));
    expect((await over.expectConnectionClose()).replyCode).toBe(501);

    const at = await RawClient.handshake(broker.port);
    await at.openChannel(1);
    at.write(declareFrame('deep-at-bound', nestedTables(MAX_FIELD_NESTING)));
    await at.waitForMethod(M.QUEUE_DECLARE_OK, 1);
    const q = broker.broker.vhosts.get('/')!.queues.get('deep-at-bound')!;
    expect(depthOf(q.args)).toBe(MAX_FIELD_NESTING);
    at.destroy();
    bystanderPublishes();
  });

  it(`headers nested ${MAX_FIELD_NESTING} levels are delivered whole`, async () => {
    await goodChannel.assertQueue('deep-ok', { durable: false });
    const raw = await RawClient.handshake(broker.port);
    await raw.openChannel(1);
    raw.send(1, { id: M.BASIC_PUBLISH, reserved1: 0, exchange: '', routingKey: 'deep-ok', mandatory: false, immediate: false });
    raw.write(frame(2, 1, headerPayload(2, headersProperties(nestedTables(MAX_FIELD_NESTING)))));
    raw.write(frame(3, 1, Buffer.from('ok')));
    const m = await waitFor(() => goodChannel.get('deep-ok', { noAck: true }), 'the nested-headers message');
    expect(m.content.toString()).toBe('ok');
    expect(depthOf(m.properties.headers)).toBe(MAX_FIELD_NESTING);
    raw.destroy();
    await goodChannel.deleteQueue('deep-ok');
    bystanderPublishes();
  });
});
