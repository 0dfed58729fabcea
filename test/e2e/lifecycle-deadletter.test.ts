// Dead-lettering end to end: x-dead-letter-exchange and x-dead-letter-routing-key, the reasons
// (rejected by basic.reject / basic.nack without requeue, expired), the exact x-death layout with
// wire types read from the raw content header (count `l`, time `T`, …), x-first-death-*, the
// expiration property moved to original-expiration, CC removed, the headers table sorted by key,
// repeated deaths through the same queue, and dead-letter cycles. Also alternate exchanges and the
// CC/BCC headers. Every expectation is RabbitMQ 3.10's (see ../scratch/rabbit-ref/REFERENCE.md B12).
// The 'maxlen' reason is covered in lifecycle-limits.test.ts.

import { describe, expect, it } from 'vitest';
import * as M from '../../src/protocol/generated/amqp.js';
import { RawClient } from '../support/raw-client.js';
import { collector, sleep, waitFor, useBroker, type Channel, type Message } from '../support/harness.js';

const h = useBroker();

// ---- A typed view of field tables, decoded here from the raw bytes (independent of Warren) -----

interface Typed {
  t: string;
  v: unknown;
}
type TypedTable = [string, Typed][];

function decodeTypedTable(buf: Buffer, offset: number, end: number): TypedTable {
  const out: TypedTable = [];
  let o = offset;
  while (o < end) {
    const klen = buf[o]!;
    const key = buf.toString('utf8', o + 1, o + 1 + klen);
    o += 1 + klen;
    const [value, next] = decodeTypedValue(buf, o);
    out.push([key, value]);
    o = next;
  }
  return out;
}

function decodeTypedValue(buf: Buffer, o: number): [Typed, number] {
  const t = String.fromCharCode(buf[o]!);
  o++;
  switch (t) {
    case 't':
      return [{ t, v: buf[o] !== 0 }, o + 1];
    case 'b':
      return [{ t, v: buf.readInt8(o) }, o + 1];
    case 'B':
      return [{ t, v: buf.readUInt8(o) }, o + 1];
    case 's':
      return [{ t, v: buf.readInt16BE(o) }, o + 2];
    case 'u':
      return [{ t, v: buf.readUInt16BE(o) }, o + 2];
    case 'I':
      return [{ t, v: buf.readInt32BE(o) }, o + 4];
    case 'i':
      return [{ t, v: buf.readUInt32BE(o) }, o + 4];
    case 'l':
      return [{ t, v: Number(buf.readBigInt64BE(o)) }, o + 8];
    case 'T':
      return [{ t, v: Number(buf.readBigUInt64BE(o)) }, o + 8];
    case 'f':
      return [{ t, v: buf.readFloatBE(o) }, o + 4];
    case 'd':
      return [{ t, v: buf.readDoubleBE(o) }, o + 8];
    case 'S':
    case 'x': {
      const len = buf.readUInt32BE(o);
      return [{ t, v: buf.toString('utf8', o + 4, o + 4 + len) }, o + 4 + len];
    }
    case 'F': {
      const len = buf.readUInt32BE(o);
      return [{ t, v: decodeTypedTable(buf, o + 4, o + 4 + len) }, o + 4 + len];
    }
    case 'A': {
      const len = buf.readUInt32BE(o);
      const end = o + 4 + len;
      const items: Typed[] = [];
      let p = o + 4;
      while (p < end) {
        const [item, next] = decodeTypedValue(buf, p);
        items.push(item);
        p = next;
      }
      return [{ t, v: items }, end];
    }
    case 'V':
      return [{ t, v: null }, o];
    default:
      throw new Error(`field type ${t} not handled by the test decoder`);
  }
}

/** The message's property flags and its headers table with wire types, from the content header payload. */
function headersOf(headerPayload: Buffer): { flags: number; headers: TypedTable } {
  const flags = headerPayload.readUInt16BE(12);
  let o = 14;
  if (flags & (1 << 15)) o += 1 + headerPayload[o]!; // content-type
  if (flags & (1 << 14)) o += 1 + headerPayload[o]!; // content-encoding
  if (!(flags & (1 << 13))) return { flags, headers: [] };
  const len = headerPayload.readUInt32BE(o);
  return { flags, headers: decodeTypedTable(headerPayload, o + 4, o + 4 + len) };
}

const keysOf = (t: TypedTable): string[] => t.map(([k]) => k);
const field = (t: TypedTable, key: string): Typed => {
  const f = t.find(([k]) => k === key);
  if (!f) throw new Error(`no field ${key} in [${keysOf(t).join(', ')}]`);
  return f[1];
};

/** basic.get (no-ack) over a raw socket; returns the content header payload of the message. */
async function rawGet(queue: string): Promise<Buffer> {
  const c = await RawClient.handshake(h.port);
  try {
    await c.openChannel(1);
    c.send(1, { id: M.BASIC_GET, reserved1: 0, queue, noAck: true });
    await c.waitForMethod(M.BASIC_GET_OK, 1);
    const header = await waitFor(() => {
      const i = c.frames.findIndex((f) => f.type === 2 && f.channel === 1);
      return i < 0 ? undefined : c.frames.splice(i, 1)[0];
    }, 'the content header');
    return header.payload;
  } finally {
    c.destroy();
  }
}

// ---- amqplib helpers ---------------------------------------------------------------------------

type Deaths = Record<string, unknown>[];
const deathsOf = (m: { properties: { headers?: Record<string, unknown> | undefined } }): Deaths =>
  (m.properties.headers?.['x-death'] as Deaths | undefined) ?? [];

async function getOne(ch: Channel, q: string, noAck = false): Promise<Message> {
  const m = await waitFor(() => ch.get(q, { noAck }), `a message in ${q}`, 3000);
  return m as unknown as Message;
}

/** A source queue dead-lettering to a new queue through the default exchange. */
async function sourceAndDlq(ch: Channel, extraArgs: Record<string, unknown> = {}) {
  const q = h.queue('dl-src');
  const dlq = h.queue('dl-dlq');
  await ch.assertQueue(dlq, { durable: false });
  await ch.assertQueue(q, { durable: false, arguments: { 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': dlq, ...extraArgs } });
  return { q, dlq };
}

const nowSec = (): number => Math.floor(Date.now() / 1000);

/** The properties REFERENCE.md B12 publishes with (every property but expiration). */
const FULL_PROPS = {
  contentType: 'text/plain',
  contentEncoding: 'utf-8',
  headers: { 'x-custom': 'v', num: 42 },
  deliveryMode: 2,
  priority: 3,
  correlationId: 'corr-1',
  replyTo: 'reply-q',
  messageId: 'mid-1',
  timestamp: 1700000000,
  type: 'tp',
  userId: 'guest',
  appId: 'app-1',
};

describe('dead-lettering: reasons and the x-death header', () => {
  it("basic.reject requeue=false: reason 'rejected', every property kept, exact headers", async () => {
    const ch = await h.channel();
    const { q, dlq } = await sourceAndDlq(ch);
    ch.sendToQueue(q, Buffer.from('body-1'), FULL_PROPS);
    const m = await getOne(ch, q);
    const before = nowSec();
    ch.reject(m, false);
    const d = await getOne(ch, dlq, true);
    const after = nowSec();
    expect(d.content.toString()).toBe('body-1');
    expect(d.fields).toMatchObject({ exchange: '', routingKey: dlq, redelivered: false });
    const { headers, ...props } = d.properties;
    expect(props).toEqual({
      contentType: 'text/plain',
      contentEncoding: 'utf-8',
      deliveryMode: 2,
      priority: 3,
      correlationId: 'corr-1',
      replyTo: 'reply-q',
      expiration: undefined,
      messageId: 'mid-1',
      timestamp: 1700000000,
      type: 'tp',
      userId: 'guest',
      appId: 'app-1',
      clusterId: undefined,
    });
    const time = (deathsOf(d)[0]!['time'] as { value: number }).value;
    expect(time).toBeGreaterThanOrEqual(before - 1);
    expect(time).toBeLessThanOrEqual(after + 1);
    expect(headers).toEqual({
      num: 42,
      'x-custom': 'v',
      'x-death': [
        { count: 1, reason: 'rejected', queue: q, time: { '!': 'timestamp', value: time }, exchange: '', 'routing-keys': [q] },
      ],
      'x-first-death-exchange': '',
      'x-first-death-queue': q,
      'x-first-death-reason': 'rejected',
    });
    expect(Object.keys(headers!)).toEqual(['num', 'x-custom', 'x-death', 'x-first-death-exchange', 'x-first-death-queue', 'x-first-death-reason']);
    expect(await ch.checkQueue(q)).toMatchObject({ messageCount: 0 });
  });

  it("basic.nack requeue=false (single and multiple): reason 'rejected'", async () => {
    const conn = await h.connect();
    const ch = await h.channel(conn);
    const { q, dlq } = await sourceAndDlq(ch);
    for (const b of ['n1', 'n2', 'n3']) ch.sendToQueue(q, Buffer.from(b));
    const c = collector();
    await ch.consume(q, c.onMessage, { noAck: false });
    await c.waitFor(3);
    ch.nack(c.messages[0]!, false, false);
    ch.nack(c.messages[2]!, true, false); // n2 and n3
    const got: Message[] = [];
    for (let i = 0; i < 3; i++) got.push(await getOne(ch, dlq, true));
    expect(got.map((m) => m.content.toString())).toEqual(['n1', 'n2', 'n3']);
    for (const m of got) {
      expect(deathsOf(m)).toHaveLength(1);
      expect(deathsOf(m)[0]).toMatchObject({ count: 1, reason: 'rejected', queue: q, exchange: '', 'routing-keys': [q] });
      expect(m.properties.headers).toMatchObject({ 'x-first-death-reason': 'rejected', 'x-first-death-queue': q, 'x-first-death-exchange': '' });
    }
  });

  it('requeue=true (reject, nack) does not dead-letter', async () => {
    const ch = await h.channel();
    const { q, dlq } = await sourceAndDlq(ch);
    ch.sendToQueue(q, Buffer.from('again'));
    ch.reject(await getOne(ch, q), true);
    ch.nack(await getOne(ch, q), false, true);
    const m = await getOne(ch, q, true);
    expect(m.fields.redelivered).toBe(true);
    expect(m.properties.headers?.['x-death']).toBeUndefined();
    expect(await ch.checkQueue(dlq)).toMatchObject({ messageCount: 0 });
  });

  it.each(['rejected', 'expired'] as const)("wire types and key order of the x-death header, reason '%s' (raw socket)", async (reason) => {
    const ch = await h.channel();
    const { q, dlq } = await sourceAndDlq(ch);
    const before = nowSec();
    if (reason === 'rejected') {
      ch.sendToQueue(q, Buffer.from('w'), { headers: { 'x-custom': 'v', num: 42 } });
      ch.reject(await getOne(ch, q), false);
    } else {
      ch.sendToQueue(q, Buffer.from('w'), { headers: { 'x-custom': 'v', num: 42 }, expiration: '50' });
    }
    await waitFor(async () => (await ch.checkQueue(dlq)).messageCount === 1, 'the dead-lettered message', 3000);
    const { flags, headers } = headersOf(await rawGet(dlq));
    expect(flags & (1 << 8)).toBe(0); // no expiration property
    expect(keysOf(headers)).toEqual(['num', 'x-custom', 'x-death', 'x-first-death-exchange', 'x-first-death-queue', 'x-first-death-reason']);
    expect(field(headers, 'num')).toEqual({ t: 'b', v: 42 });
    expect(field(headers, 'x-custom')).toEqual({ t: 'S', v: 'v' });
    expect(field(headers, 'x-first-death-exchange')).toEqual({ t: 'S', v: '' });
    expect(field(headers, 'x-first-death-queue')).toEqual({ t: 'S', v: q });
    expect(field(headers, 'x-first-death-reason')).toEqual({ t: 'S', v: reason });
    const xDeath = field(headers, 'x-death');
    expect(xDeath.t).toBe('A');
    const entries = xDeath.v as Typed[];
    expect(entries).toHaveLength(1);
    expect(entries[0]!.t).toBe('F');
    const entry = entries[0]!.v as TypedTable;
    const expectedKeys = ['count', 'reason', 'queue', 'time', 'exchange', 'routing-keys'];
    if (reason === 'expired') expectedKeys.push('original-expiration');
    expect(keysOf(entry)).toEqual(expectedKeys);
    expect(field(entry, 'count')).toEqual({ t: 'l', v: 1 });
    expect(field(entry, 'reason')).toEqual({ t: 'S', v: reason });
    expect(field(entry, 'queue')).toEqual({ t: 'S', v: q });
    expect(field(entry, 'time').t).toBe('T');
    expect(field(entry, 'time').v).toBeGreaterThanOrEqual(before - 1);
    expect(field(entry, 'time').v).toBeLessThanOrEqual(nowSec() + 1);
    expect(field(entry, 'exchange')).toEqual({ t: 'S', v: '' });
    expect(field(entry, 'routing-keys')).toEqual({ t: 'A', v: [{ t: 'S', v: q }] });
    if (reason === 'expired') expect(field(entry, 'original-expiration')).toEqual({ t: 'S', v: '50' });
  });

  it('a rejected message that had an expiration loses the property; the value moves to original-expiration', async () => {
    const ch = await h.channel();
    const { q, dlq } = await sourceAndDlq(ch);
    ch.sendToQueue(q, Buffer.from('e'), { expiration: '60000', messageId: 'with-exp' });
    const m = await getOne(ch, q);
    expect(m.properties.expiration).toBe('60000');
    ch.reject(m, false);
    const d = await getOne(ch, dlq, true);
    expect(d.properties.expiration).toBeUndefined();
    expect(d.properties.messageId).toBe('with-exp');
    expect(deathsOf(d)[0]).toMatchObject({ reason: 'rejected', 'original-expiration': '60000' });
  });

  it('CC keys are listed in routing-keys, the exchange is the one published to, and with a dead-letter routing key the CC header is removed', async () => {
    const ch = await h.channel();
    const { q, dlq } = await sourceAndDlq(ch);
    await ch.bindQueue(q, 'amq.direct', 'rk-rej');
    ch.publish('amq.direct', 'rk-rej', Buffer.from('cc'), { headers: { CC: ['cc-key'], keep: 'me' } });
    const m = await getOne(ch, q);
    expect(m.properties.headers).toEqual({ CC: ['cc-key'], keep: 'me' });
    ch.reject(m, false);
    const d = await getOne(ch, dlq, true);
    expect(deathsOf(d)[0]).toMatchObject({ reason: 'rejected', queue: q, exchange: 'amq.direct', 'routing-keys': ['rk-rej', 'cc-key'] });
    expect(d.properties.headers?.['x-first-death-exchange']).toBe('amq.direct');
    expect(Object.keys(d.properties.headers!)).toEqual(['keep', 'x-death', 'x-first-death-exchange', 'x-first-death-queue', 'x-first-death-reason']);
  });

  it('without x-dead-letter-routing-key the message keeps its routing keys, CC keys included, and keeps its CC header', async () => {
    const ch = await h.channel();
    const dlx = h.exchange('dl-x');
    await ch.assertExchange(dlx, 'direct', { durable: false });
    const byKey = h.queue('dl-by-key');
    const byCc = h.queue('dl-by-cc');
    await ch.assertQueue(byKey, { durable: false });
    await ch.assertQueue(byCc, { durable: false });
    await ch.bindQueue(byKey, dlx, 'rk-a');
    await ch.bindQueue(byCc, dlx, 'cc-b');
    const q = h.queue('dl-src');
    await ch.assertQueue(q, { durable: false, arguments: { 'x-dead-letter-exchange': dlx } });
    await ch.bindQueue(q, 'amq.direct', 'rk-a');
    ch.publish('amq.direct', 'rk-a', Buffer.from('keys'), { headers: { CC: ['cc-b'] } });
    ch.reject(await getOne(ch, q), false);
    const a = await getOne(ch, byKey, true);
    const b = await getOne(ch, byCc, true);
    for (const d of [a, b]) {
      expect(d.content.toString()).toBe('keys');
      expect(d.fields).toMatchObject({ exchange: dlx, routingKey: 'rk-a' });
      // RabbitMQ removes CC only when it replaces the routing keys by x-dead-letter-routing-key.
      expect(d.properties.headers?.['CC']).toEqual(['cc-b']);
      expect(Object.keys(d.properties.headers!)).toEqual(['CC', 'x-death', 'x-first-death-exchange', 'x-first-death-queue', 'x-first-death-reason']);
      expect(deathsOf(d)[0]).toMatchObject({ reason: 'rejected', queue: q, exchange: 'amq.direct', 'routing-keys': ['rk-a', 'cc-b'] });
    }
  });

  it('the headers table comes out sorted by key after dead-lettering (a plain delivery keeps client order)', async () => {
    const ch = await h.channel();
    const { q, dlq } = await sourceAndDlq(ch);
    ch.sendToQueue(q, Buffer.from('order'), { headers: { zz: 1, aa: 2, mm: 3 } });
    const m = await getOne(ch, q);
    expect(Object.keys(m.properties.headers!)).toEqual(['zz', 'aa', 'mm']);
    ch.reject(m, false);
    const d = await getOne(ch, dlq, true);
    expect(Object.keys(d.properties.headers!)).toEqual([
      'aa',
      'mm',
      'x-death',
      'x-first-death-exchange',
      'x-first-death-queue',
      'x-first-death-reason',
      'zz',
    ]);
  });

  it('a missing dead-letter exchange: the message is dropped, no error', async () => {
    const ch = await h.channel();
    const q = h.queue('dl-src');
    await ch.assertQueue(q, { durable: false, arguments: { 'x-dead-letter-exchange': h.exchange('dl-missing') } });
    ch.sendToQueue(q, Buffer.from('gone'));
    ch.reject(await getOne(ch, q), false);
    await sleep(100);
    expect(await ch.checkQueue(q)).toMatchObject({ messageCount: 0 });
    expect(ch.errors).toEqual([]);
  });
});

describe('dead-lettering: repeated deaths and cycles', () => {
  it('dead-lettered twice through the same queue+reason: one entry, count 2, moved to the front, first time kept', async () => {
    const ch = await h.channel();
    const a = h.queue('dl-cyc-a');
    const b = h.queue('dl-cyc-b');
    await ch.assertQueue(a, { durable: false, arguments: { 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': b } });
    await ch.assertQueue(b, { durable: false, arguments: { 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': a } });
    ch.sendToQueue(a, Buffer.from('cyc'));
    ch.reject(await getOne(ch, a), false); // a → b
    const m1 = await getOne(ch, b);
    const t0 = (deathsOf(m1)[0]!['time'] as { value: number }).value;
    expect(deathsOf(m1)).toEqual([{ count: 1, reason: 'rejected', queue: a, time: { '!': 'timestamp', value: t0 }, exchange: '', 'routing-keys': [a] }]);
    // Let the clock pass the next second, so that an updated time would show.
    await waitFor(() => nowSec() > t0, 'the next second', 2000);
    ch.reject(m1, false); // b → a
    const m2 = await getOne(ch, a);
    const deaths2 = deathsOf(m2);
    expect(deaths2.map((d) => [d['queue'], d['count']])).toEqual([
      [b, 1],
      [a, 1],
    ]);
    expect(Object.keys(deaths2[0]!)).toEqual(['count', 'exchange', 'queue', 'reason', 'routing-keys', 'time']);
    expect(deaths2[0]).toMatchObject({ exchange: '', reason: 'rejected', 'routing-keys': [b] });
    ch.reject(m2, false); // a → b again
    await waitFor(async () => (await ch.checkQueue(b)).messageCount === 1, 'the third death', 3000);
    const { headers } = headersOf(await rawGet(b));
    const entries = (field(headers, 'x-death').v as Typed[]).map((e) => e.v as TypedTable);
    expect(entries).toHaveLength(2);
    expect(keysOf(entries[0]!)).toEqual(['count', 'exchange', 'queue', 'reason', 'routing-keys', 'time']);
    expect(entries[0]).toEqual([
      ['count', { t: 'l', v: 2 }],
      ['exchange', { t: 'S', v: '' }],
      ['queue', { t: 'S', v: a }],
      ['reason', { t: 'S', v: 'rejected' }],
      ['routing-keys', { t: 'A', v: [{ t: 'S', v: a }] }],
      ['time', { t: 'T', v: t0 }],
    ]);
    expect(field(entries[1]!, 'queue')).toEqual({ t: 'S', v: b });
    expect(field(entries[1]!, 'count')).toEqual({ t: 'l', v: 1 });
    expect(field(headers, 'x-first-death-queue')).toEqual({ t: 'S', v: a });
    expect(field(headers, 'x-first-death-reason')).toEqual({ t: 'S', v: 'rejected' });
    expect(field(headers, 'x-first-death-exchange')).toEqual({ t: 'S', v: '' });
  });

  it("a queue whose DLX routes back to itself with reason 'expired' drops the message instead of taking it back (other targets still get it)", async () => {
    // RabbitMQ checks the copy carrying the new death: the source queue is in its x-death with
    // reason expired and no rejection since, so it is a cycle at once and that queue is skipped.
    const ch = await h.channel();
    const dlx = h.exchange('dl-loop-x');
    await ch.assertExchange(dlx, 'fanout', { durable: false });
    const loop = h.queue('dl-loop');
    const monitor = h.queue('dl-loop-mon');
    await ch.assertQueue(loop, { durable: false, arguments: { 'x-message-ttl': 50, 'x-dead-letter-exchange': dlx } });
    await ch.assertQueue(monitor, { durable: false });
    await ch.bindQueue(loop, dlx, '');
    await ch.bindQueue(monitor, dlx, '');
    ch.sendToQueue(loop, Buffer.from('loop'));
    await waitFor(async () => (await ch.checkQueue(monitor)).messageCount === 1, 'the copy at the monitor', 3000);
    await sleep(300); // no further round
    expect(await ch.checkQueue(loop)).toMatchObject({ messageCount: 0 });
    expect(await ch.checkQueue(monitor)).toMatchObject({ messageCount: 1 });
    const copy = await getOne(ch, monitor, true);
    expect(deathsOf(copy)).toEqual([expect.objectContaining({ count: 1, reason: 'expired', queue: loop, exchange: '', 'routing-keys': [loop] })]);
  });

  it("a self-routing DLX with reason 'expired' and no other target: the message is gone, the queue stays empty", async () => {
    const ch = await h.channel();
    const loop = h.queue('dl-loop');
    await ch.assertQueue(loop, { durable: false, arguments: { 'x-message-ttl': 50, 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': loop } });
    ch.sendToQueue(loop, Buffer.from('loop'));
    await waitFor(async () => (await ch.checkQueue(loop)).messageCount === 0, 'the message to expire', 3000);
    for (let i = 0; i < 5; i++) {
      await sleep(60);
      expect(await ch.checkQueue(loop)).toMatchObject({ messageCount: 0 });
    }
  });

  it("a queue whose DLX routes back to itself with reason 'rejected' gets the message back each time, count incrementing", async () => {
    const conn = await h.connect();
    const ch = await h.channel(conn);
    const q = h.queue('dl-self');
    await ch.assertQueue(q, { durable: false, arguments: { 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': q } });
    const seen: (number | undefined)[] = [];
    const c = collector((m) => {
      const d = deathsOf(m)[0];
      seen.push(d === undefined ? undefined : (d['count'] as number));
      if (seen.length < 4) ch.reject(m, false);
      else ch.ack(m);
    });
    await ch.consume(q, c.onMessage, { noAck: false });
    ch.sendToQueue(q, Buffer.from('boomerang'));
    await c.waitFor(4);
    await sleep(100);
    expect(seen).toEqual([undefined, 1, 2, 3]);
    expect(c.messages.map((m) => m.fields.redelivered)).toEqual([false, false, false, false]);
    expect(deathsOf(c.messages[3]!)).toEqual([expect.objectContaining({ count: 3, reason: 'rejected', queue: q, exchange: '', 'routing-keys': [q] })]);
  });
});

describe('alternate exchanges, CC and BCC', () => {
  it('a message no binding matches goes to the alternate exchange; a matching one does not', async () => {
    const conn = await h.connect();
    const ch = await h.channel(conn);
    const x = h.exchange('ae-main');
    const ae = h.exchange('ae-alt');
    await ch.assertExchange(ae, 'fanout', { durable: false });
    await ch.assertExchange(x, 'direct', { durable: false, alternateExchange: ae });
    const bound = h.queue('ae-bound');
    const orphan = h.queue('ae-orphans');
    await ch.assertQueue(bound, { durable: false });
    await ch.assertQueue(orphan, { durable: false });
    await ch.bindQueue(bound, x, 'known');
    await ch.bindQueue(orphan, ae, '');
    const pub = await conn.createConfirmChannel();
    const returned: string[] = [];
    pub.on('return', (m: Message) => returned.push(m.content.toString()));
    pub.publish(x, 'known', Buffer.from('k'), { mandatory: true });
    pub.publish(x, 'unknown', Buffer.from('u'), { mandatory: true });
    await pub.waitForConfirms();
    const routed = await h.route(conn, [], [bound, orphan]);
    expect(routed).toEqual({ [bound]: ['k'], [orphan]: ['u'] });
    expect(returned).toEqual([]);
  });

  it('an alternate exchange that does not exist: the message is unroutable (returned when mandatory)', async () => {
    const conn = await h.connect();
    const ch = await h.channel(conn);
    const x = h.exchange('ae-main');
    await ch.assertExchange(x, 'direct', { durable: false, alternateExchange: h.exchange('ae-missing') });
    const pub = await conn.createConfirmChannel();
    const returned: string[] = [];
    pub.on('return', (m: Message) => returned.push(m.content.toString()));
    pub.publish(x, 'nobody', Buffer.from('r'), { mandatory: true });
    await pub.waitForConfirms();
    await waitFor(() => returned.length === 1, 'basic.return');
    expect(returned).toEqual(['r']);
  });

  it('CC adds routing keys and stays in the headers', async () => {
    const conn = await h.connect();
    const ch = await h.channel(conn);
    const [qa, qb, qc] = [h.queue('cc-a'), h.queue('cc-b'), h.queue('cc-c')];
    for (const [q, key] of [
      [qa, 'a'],
      [qb, 'b'],
      [qc, 'c'],
    ] as const) {
      await ch.assertQueue(q, { durable: false });
      await ch.bindQueue(q, 'amq.direct', key);
    }
    const pub = await conn.createConfirmChannel();
    pub.publish('amq.direct', 'a', Buffer.from('cc'), { headers: { CC: ['b'], other: 1 } });
    await pub.waitForConfirms();
    const ma = await getOne(ch, qa, true);
    const mb = await getOne(ch, qb, true);
    for (const m of [ma, mb]) {
      expect(m.content.toString()).toBe('cc');
      expect(m.fields).toMatchObject({ exchange: 'amq.direct', routingKey: 'a' });
      expect(m.properties.headers).toEqual({ CC: ['b'], other: 1 });
    }
    expect(await ch.checkQueue(qc)).toMatchObject({ messageCount: 0 });
  });

  it('BCC adds routing keys and is removed before delivery', async () => {
    const conn = await h.connect();
    const ch = await h.channel(conn);
    const [qa, qb] = [h.queue('bcc-a'), h.queue('bcc-b')];
    await ch.assertQueue(qa, { durable: false });
    await ch.assertQueue(qb, { durable: false });
    await ch.bindQueue(qa, 'amq.direct', 'a');
    await ch.bindQueue(qb, 'amq.direct', 'b');
    const pub = await conn.createConfirmChannel();
    pub.publish('amq.direct', 'a', Buffer.from('bcc'), { headers: { BCC: ['b'], other: 1 } });
    pub.publish('amq.direct', 'a', Buffer.from('both'), { headers: { CC: ['b'], BCC: ['b'] } });
    await pub.waitForConfirms();
    const a1 = await getOne(ch, qa, true);
    const b1 = await getOne(ch, qb, true);
    expect([a1.content.toString(), b1.content.toString()]).toEqual(['bcc', 'bcc']);
    expect(a1.properties.headers).toEqual({ other: 1 });
    expect(b1.properties.headers).toEqual({ other: 1 });
    const a2 = await getOne(ch, qa, true);
    const b2 = await getOne(ch, qb, true);
    expect([a2.content.toString(), b2.content.toString()]).toEqual(['both', 'both']);
    expect(a2.properties.headers).toEqual({ CC: ['b'] });
    expect(b2.properties.headers).toEqual({ CC: ['b'] });
    expect(await ch.checkQueue(qb)).toMatchObject({ messageCount: 0 });
  });

  it('CC on the default exchange names more queues', async () => {
    const conn = await h.connect();
    const ch = await h.channel(conn);
    const [q1, q2] = [h.queue('cc-d1'), h.queue('cc-d2')];
    await ch.assertQueue(q1, { durable: false });
    await ch.assertQueue(q2, { durable: false });
    const pub = await conn.createConfirmChannel();
    pub.sendToQueue(q1, Buffer.from('dflt'), { headers: { CC: [q2] } });
    await pub.waitForConfirms();
    expect((await getOne(ch, q1, true)).content.toString()).toBe('dflt');
    expect((await getOne(ch, q2, true)).fields).toMatchObject({ exchange: '', routingKey: q1 });
  });
});
