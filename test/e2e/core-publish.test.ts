// basic.publish / basic.return / basic.get end to end: errors on publish, mandatory returns,
// immediate, every content property and every field-table value type arriving exactly as
// published (decoded by amqplib, and byte for byte on a raw socket), the user-id check, get-ok and
// get-empty. Every expectation here is RabbitMQ's.

import { describe, expect, it } from 'vitest';
import * as M from '../../src/protocol/generated/amqp.js';
import { frame, headerPayload, RawClient, type RawFrame } from '../support/raw-client.js';
import { collector, QUIET_MS, rejection, sleep, waitFor, useBroker, type Message } from '../support/harness.js';

const h = useBroker();

// ---- a tiny hand-written encoder, so the bytes under test do not come from Warren's codec ----

const u8 = (n: number): Buffer => Buffer.from([n]);
function shortstr(s: string): Buffer {
  const b = Buffer.from(s, 'utf8');
  return Buffer.concat([u8(b.length), b]);
}
function longstr(b: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(b.length);
  return Buffer.concat([len, b]);
}
function num(tag: string, size: number, write: (b: Buffer) => void): Buffer {
  const b = Buffer.alloc(1 + size);
  b.write(tag, 0, 'latin1');
  write(b);
  return b;
}
/** Field values with an explicit type tag. */
const F = {
  bool: (v: boolean) => Buffer.from(['t'.charCodeAt(0), v ? 1 : 0]),
  int8: (v: number) => num('b', 1, (b) => b.writeInt8(v, 1)),
  uint8: (v: number) => num('B', 1, (b) => b.writeUInt8(v, 1)),
  int16: (v: number) => num('s', 2, (b) => b.writeInt16BE(v, 1)),
  uint16: (v: number) => num('u', 2, (b) => b.writeUInt16BE(v, 1)),
  int32: (v: number) => num('I', 4, (b) => b.writeInt32BE(v, 1)),
  uint32: (v: number) => num('i', 4, (b) => b.writeUInt32BE(v, 1)),
  int64: (v: bigint) => num('l', 8, (b) => b.writeBigInt64BE(v, 1)),
  float: (v: number) => num('f', 4, (b) => b.writeFloatBE(v, 1)),
  double: (v: number) => num('d', 8, (b) => b.writeDoubleBE(v, 1)),
  decimal: (places: number, digits: number) =>
    num('D', 5, (b) => {
      b.writeUInt8(places, 1);
      b.writeUInt32BE(digits, 2);
    }),
  string: (v: string) => Buffer.concat([Buffer.from('S'), longstr(Buffer.from(v, 'utf8'))]),
  bytes: (v: Buffer) => Buffer.concat([Buffer.from('x'), longstr(v)]),
  timestamp: (v: bigint) => num('T', 8, (b) => b.writeBigUInt64BE(v, 1)),
  void: () => Buffer.from('V'),
  array: (values: Buffer[]) => Buffer.concat([Buffer.from('A'), longstr(Buffer.concat(values))]),
  table: (entries: [string, Buffer][]) => Buffer.concat([Buffer.from('F'), table(entries)]),
};
function table(entries: [string, Buffer][]): Buffer {
  return longstr(Buffer.concat(entries.map(([k, v]) => Buffer.concat([shortstr(k), v]))));
}

/** Every field-table type RabbitMQ knows, with its amqplib decoding. */
const HEADER_ENTRIES: [string, Buffer][] = [
  ['str', F.string('héllo wörld')],
  ['empty-str', F.string('')],
  ['true', F.bool(true)],
  ['false', F.bool(false)],
  ['i8', F.int8(-128)],
  ['u8', F.uint8(255)],
  ['i16', F.int16(-32768)],
  ['u16', F.uint16(65535)],
  ['i32', F.int32(-2147483648)],
  ['u32', F.uint32(4294967295)],
  ['i64', F.int64(-(2n ** 53n) + 1n)],
  ['f32', F.float(1.5)],
  ['f64', F.double(-1234.5678)],
  ['dec', F.decimal(2, 12345)],
  ['ts', F.timestamp(1700000000n)],
  ['void', F.void()],
  ['bytes', F.bytes(Buffer.from([0, 1, 2, 254, 255]))],
  ['array', F.array([F.string('a'), F.int32(1), F.bool(true), F.array([F.int8(2)]), F.table([['k', F.string('v')]])])],
  ['empty-array', F.array([])],
  ['nested', F.table([['inner', F.table([['deep', F.int64(42n)]])], ['list', F.array([F.double(0.25)])]])],
  ['empty-table', F.table([])],
];
const HEADERS_DECODED = {
  str: 'héllo wörld',
  'empty-str': '',
  true: true,
  false: false,
  i8: -128,
  u8: 255,
  i16: -32768,
  u16: 65535,
  i32: -2147483648,
  u32: 4294967295,
  i64: -(2 ** 53) + 1,
  f32: 1.5,
  f64: -1234.5678,
  dec: { '!': 'decimal', value: { places: 2, digits: 12345 } },
  ts: { '!': 'timestamp', value: 1700000000 },
  void: null,
  bytes: Buffer.from([0, 1, 2, 254, 255]),
  array: ['a', 1, true, [2], { k: 'v' }],
  'empty-array': [],
  nested: { inner: { deep: 42 }, list: [0.25] },
  'empty-table': {},
};

/** All 14 basic properties as raw property bytes (flags + list), user-id = guest. */
function allProperties(userId = 'guest'): Buffer {
  const ts = Buffer.alloc(8);
  ts.writeBigUInt64BE(1700000123n);
  return Buffer.concat([
    Buffer.from([0xff, 0xfc]), // all 14 flags
    shortstr('application/json'),
    shortstr('gzip'),
    table(HEADER_ENTRIES),
    u8(2), // delivery-mode
    u8(7), // priority
    shortstr('corr-1'),
    shortstr('reply.queue'),
    shortstr('60000'),
    shortstr('msg-1'),
    ts,
    shortstr('my.type'),
    shortstr(userId),
    shortstr('my-app'),
    shortstr('cluster-x'),
  ]);
}

// ---- raw socket helpers ----

interface RawContent {
  method: M.Method;
  properties: Buffer;
  bodySize: number;
  body: Buffer;
}

/** Waits for a content-carrying method (deliver, get-ok, return) and its header and body frames. */
async function nextContent(c: RawClient, id: number, channel: number, timeoutMs = 5000): Promise<RawContent> {
  return waitFor(
    () => {
      const i = c.frames.findIndex((f) => f.channel === channel && f.method?.id === id);
      if (i < 0) return undefined;
      const header = c.frames[i + 1];
      if (!header || header.type !== M.FRAME_HEADER) return undefined;
      const bodySize = Number(header.payload.readBigUInt64BE(4));
      let got = 0;
      let j = i + 2;
      const parts: Buffer[] = [];
      while (got < bodySize) {
        const f: RawFrame | undefined = c.frames[j++];
        if (!f) return undefined;
        parts.push(f.payload);
        got += f.payload.length;
      }
      const out = { method: c.frames[i]!.method!, properties: header.payload.subarray(12), bodySize, body: Buffer.concat(parts) };
      c.frames.splice(i, j - i);
      return out;
    },
    `content for ${M.METHOD_NAMES.get(id)}`,
    timeoutMs,
  );
}

async function rawClient(): Promise<RawClient> {
  const c = await RawClient.handshake(h.port);
  h.cleanup(() => c.destroy());
  await c.openChannel(1);
  return c;
}

function rawPublish(c: RawClient, channel: number, exchange: string, routingKey: string, body: Buffer, properties: Buffer, flags: { mandatory?: boolean; immediate?: boolean } = {}): void {
  c.send(channel, { id: M.BASIC_PUBLISH, reserved1: 0, exchange, routingKey, mandatory: flags.mandatory ?? false, immediate: flags.immediate ?? false });
  c.write(frame(M.FRAME_HEADER, channel, headerPayload(body.length, properties)));
  if (body.length > 0) c.write(frame(M.FRAME_BODY, channel, body));
}

describe('basic.publish errors', () => {
  it('to a missing exchange is a 404 channel close', async () => {
    const conn = await h.connect();
    const ch = await h.channel(conn);
    const x = h.exchange('missing');
    ch.publish(x, 'k', Buffer.from('x'));
    expect(await h.firstError(ch)).toEqual(
      expect.objectContaining({ code: 404, text: `NOT_FOUND - no exchange '${x}' in vhost '/'`, classId: 60, methodId: 40 }),
    );
    await waitFor(() => ch.closed, 'the channel to close');
    expect(conn.closed).toBe(false);
    await (await h.channel(conn)).checkExchange('amq.direct');
  });

  it('with immediate=true is 540 NOT_IMPLEMENTED and closes the connection', async () => {
    const c = await rawClient();
    const q = h.queue();
    rawPublish(c, 1, '', q, Buffer.from('now'), Buffer.from([0, 0]), { immediate: true });
    expect(await c.expectConnectionClose()).toEqual({
      id: M.CONNECTION_CLOSE,
      replyCode: 540,
      replyText: 'NOT_IMPLEMENTED - immediate=true',
      classId: 60,
      methodId: 40,
    });
    c.send(0, { id: M.CONNECTION_CLOSE_OK });
    await c.waitClosed();
  });

  it('with a user-id other than the connection user is 406', async () => {
    const conn = await h.connect();
    const ch = await h.channel(conn);
    const q = h.queue();
    await ch.assertQueue(q, { durable: false });
    ch.sendToQueue(q, Buffer.from('x'), { userId: 'bob' });
    expect(await h.firstError(ch)).toMatchObject({
      code: 406,
      text: "PRECONDITION_FAILED - user_id property set to 'bob' but authenticated user was 'guest'",
      classId: 60,
      methodId: 40,
    });
    const ch2 = await h.channel(conn);
    expect(await ch2.checkQueue(q)).toEqual({ queue: q, messageCount: 0, consumerCount: 0 });
  });

  it('with user-id equal to the connection user is accepted and delivered with it', async () => {
    const conn = await h.connect();
    const ch = await h.channel(conn);
    const q = h.queue();
    await ch.assertQueue(q, { durable: false });
    ch.sendToQueue(q, Buffer.from('x'), { userId: 'guest' });
    const m = await waitFor(() => ch.get(q, { noAck: true }), 'the message');
    expect(m && m.properties.userId).toBe('guest');
  });
});

describe('mandatory and basic.return', () => {
  it('returns an unroutable mandatory message with 312 NO_ROUTE, body and properties intact', async () => {
    const conn = await h.connect();
    const ch = await h.channel(conn);
    const x = h.exchange();
    await ch.assertExchange(x, 'direct', { durable: false });
    const returned: Message[] = [];
    ch.on('return', (m: Message) => returned.push(m));
    const body = Buffer.from('unroutable body ✓');
    ch.publish(x, 'no.such.key', body, {
      mandatory: true,
      contentType: 'text/plain',
      contentEncoding: 'utf-8',
      headers: { a: 'b', n: 42, nested: { t: true } },
      persistent: true,
      priority: 3,
      correlationId: 'c-1',
      replyTo: 'r',
      expiration: '5000',
      messageId: 'm-1',
      timestamp: 1700000000,
      type: 't',
      userId: 'guest',
      appId: 'app',
    });
    await waitFor(() => returned.length === 1, 'the return');
    const r = returned[0]!;
    expect(r.fields).toEqual({ replyCode: 312, replyText: 'NO_ROUTE', exchange: x, routingKey: 'no.such.key' });
    expect(r.content).toEqual(body);
    expect(r.properties).toEqual({
      contentType: 'text/plain',
      contentEncoding: 'utf-8',
      headers: { a: 'b', n: 42, nested: { t: true } },
      deliveryMode: 2,
      priority: 3,
      correlationId: 'c-1',
      replyTo: 'r',
      expiration: '5000',
      messageId: 'm-1',
      timestamp: 1700000000,
      type: 't',
      userId: 'guest',
      appId: 'app',
      clusterId: undefined,
    });
  });

  it('returns a mandatory message for a missing queue on the default exchange', async () => {
    const ch = await h.channel();
    const q = h.queue('missing');
    const returned: Message[] = [];
    ch.on('return', (m: Message) => returned.push(m));
    ch.sendToQueue(q, Buffer.from('lost'), { mandatory: true });
    await waitFor(() => returned.length === 1, 'the return');
    expect(returned[0]!.fields).toEqual({ replyCode: 312, replyText: 'NO_ROUTE', exchange: '', routingKey: q });
    expect(returned[0]!.content.toString()).toBe('lost');
  });

  it('does not return routable mandatory messages, nor unroutable non-mandatory ones', async () => {
    const conn = await h.connect();
    const ch = await h.channel(conn);
    const q = h.queue();
    await ch.assertQueue(q, { durable: false });
    const returned: Message[] = [];
    ch.on('return', (m: Message) => returned.push(m));
    ch.sendToQueue(q, Buffer.from('routed'), { mandatory: true });
    ch.sendToQueue(h.queue('missing'), Buffer.from('dropped'), { mandatory: false });
    ch.sendToQueue(h.queue('missing'), Buffer.from('returned'), { mandatory: true });
    await waitFor(() => returned.length === 1, 'the return');
    await sleep(QUIET_MS);
    expect(returned.map((m) => m.content.toString())).toEqual(['returned']);
    const m = await ch.get(q, { noAck: true });
    expect(m && m.content.toString()).toBe('routed');
  });

  it('returns the exact property bytes (raw socket)', async () => {
    const c = await rawClient();
    const props = allProperties();
    rawPublish(c, 1, 'amq.direct', 'nobody-bound-here', Buffer.from('raw-return'), props, { mandatory: true });
    const r = await nextContent(c, M.BASIC_RETURN, 1);
    expect(r.method).toEqual({ id: M.BASIC_RETURN, replyCode: 312, replyText: 'NO_ROUTE', exchange: 'amq.direct', routingKey: 'nobody-bound-here' });
    expect(r.properties.toString('hex')).toBe(props.toString('hex'));
    expect(r.body.toString()).toBe('raw-return');
  });
});

describe('content properties', () => {
  it('all 14 properties and every header value type arrive at an amqplib consumer as published', async () => {
    const c = await rawClient();
    const conn = await h.connect();
    const ch = await h.channel(conn);
    const q = h.queue();
    await ch.assertQueue(q, { durable: false });
    const got = collector();
    await ch.consume(q, got.onMessage, { noAck: true });
    rawPublish(c, 1, '', q, Buffer.from('props'), allProperties());
    const [m] = await got.waitFor(1);
    expect(m!.content.toString()).toBe('props');
    expect(m!.properties).toEqual({
      contentType: 'application/json',
      contentEncoding: 'gzip',
      headers: HEADERS_DECODED,
      deliveryMode: 2,
      priority: 7,
      correlationId: 'corr-1',
      replyTo: 'reply.queue',
      expiration: '60000',
      messageId: 'msg-1',
      timestamp: 1700000123,
      type: 'my.type',
      userId: 'guest',
      appId: 'my-app',
      clusterId: 'cluster-x',
    });
  });

  it('the property bytes are delivered unchanged (raw socket publisher and consumer, deliver and get-ok)', async () => {
    const c = await rawClient();
    const q = h.queue();
    c.send(1, { id: M.QUEUE_DECLARE, reserved1: 0, queue: q, passive: false, durable: false, exclusive: false, autoDelete: false, noWait: false, arguments: {} });
    await c.waitForMethod(M.QUEUE_DECLARE_OK, 1);
    const props = allProperties();
    rawPublish(c, 1, '', q, Buffer.from('one'), props);
    rawPublish(c, 1, '', q, Buffer.from('two'), props);
    // get-ok for the first, once it is there
    let got: RawContent | undefined;
    await waitFor(async () => {
      c.send(1, { id: M.BASIC_GET, reserved1: 0, queue: q, noAck: true });
      const reply = await waitFor(
        () => c.frames.find((f) => f.channel === 1 && (f.method?.id === M.BASIC_GET_OK || f.method?.id === M.BASIC_GET_EMPTY)),
        'get reply',
      );
      if (reply.method!.id === M.BASIC_GET_EMPTY) {
        c.frames.splice(c.frames.indexOf(reply), 1);
        return false;
      }
      got = await nextContent(c, M.BASIC_GET_OK, 1);
      return true;
    }, 'the first message');
    expect(got!.method).toEqual({ id: M.BASIC_GET_OK, deliveryTag: 1, redelivered: false, exchange: '', routingKey: q, messageCount: 1 });
    expect(got!.properties.toString('hex')).toBe(props.toString('hex'));
    expect(got!.body.toString()).toBe('one');
    c.send(1, { id: M.BASIC_CONSUME, reserved1: 0, queue: q, consumerTag: 'raw', noLocal: false, noAck: true, exclusive: false, noWait: false, arguments: {} });
    await c.waitForMethod(M.BASIC_CONSUME_OK, 1);
    const d = await nextContent(c, M.BASIC_DELIVER, 1);
    expect(d.method).toEqual({ id: M.BASIC_DELIVER, consumerTag: 'raw', deliveryTag: 2, redelivered: false, exchange: '', routingKey: q });
    expect(d.properties.toString('hex')).toBe(props.toString('hex'));
    expect(d.body.toString()).toBe('two');
  });

  it('amqplib publisher to amqplib consumer: properties and headers round-trip', async () => {
    const conn = await h.connect();
    const ch = await h.channel(conn);
    const q = h.queue();
    await ch.assertQueue(q, { durable: false });
    const got = collector();
    await ch.consume(q, got.onMessage, { noAck: true });
    const headers = {
      s: 'string',
      n: 123456,
      big: 2 ** 40,
      neg: -5,
      f: 3.25,
      yes: true,
      no: false,
      nil: null,
      arr: [1, 'two', [3], { four: 4 }],
      obj: { a: { b: { c: 'deep' } } },
      ts: { '!': 'timestamp', value: 1600000000 },
      bin: Buffer.from('bytes'),
    };
    ch.sendToQueue(q, Buffer.from('full'), {
      contentType: 'text/plain',
      contentEncoding: 'identity',
      headers,
      deliveryMode: 2,
      priority: 9,
      correlationId: 'cid',
      replyTo: 'amq.rabbitmq.reply-to-not-used',
      expiration: 60000,
      messageId: 'mid',
      timestamp: 1234567890,
      type: 'kind',
      userId: 'guest',
      appId: 'aid',
    });
    const [m] = await got.waitFor(1);
    expect(m!.fields).toMatchObject({ deliveryTag: 1, redelivered: false, exchange: '', routingKey: q });
    expect(m!.properties).toEqual({
      contentType: 'text/plain',
      contentEncoding: 'identity',
      headers,
      deliveryMode: 2,
      priority: 9,
      correlationId: 'cid',
      replyTo: 'amq.rabbitmq.reply-to-not-used',
      expiration: '60000',
      messageId: 'mid',
      timestamp: 1234567890,
      type: 'kind',
      userId: 'guest',
      appId: 'aid',
      clusterId: undefined,
    });
  });

  it('a message with no properties at all arrives with none', async () => {
    const c = await rawClient();
    const conn = await h.connect();
    const ch = await h.channel(conn);
    const q = h.queue();
    await ch.assertQueue(q, { durable: false });
    const got = collector();
    await ch.consume(q, got.onMessage, { noAck: true });
    rawPublish(c, 1, '', q, Buffer.from('bare'), Buffer.from([0, 0]));
    const [m] = await got.waitFor(1);
    expect(m!.properties).toEqual({
      contentType: undefined,
      contentEncoding: undefined,
      headers: undefined,
      deliveryMode: undefined,
      priority: undefined,
      correlationId: undefined,
      replyTo: undefined,
      expiration: undefined,
      messageId: undefined,
      timestamp: undefined,
      type: undefined,
      userId: undefined,
      appId: undefined,
      clusterId: undefined,
    });
  });

  it('empty and multi-frame bodies arrive intact (1 MiB over frames of at most frame_max)', async () => {
    const conn = await h.connect();
    const ch = await h.channel(conn);
    const q = h.queue();
    await ch.assertQueue(q, { durable: false });
    const big = Buffer.alloc(1024 * 1024 + 17);
    for (let i = 0; i < big.length; i++) big[i] = (i * 31 + 7) & 0xff;
    const got = collector();
    await ch.consume(q, got.onMessage, { noAck: true });
    ch.sendToQueue(q, Buffer.alloc(0));
    ch.sendToQueue(q, big);
    ch.sendToQueue(q, Buffer.from('after'));
    await got.waitFor(3);
    expect(got.messages[0]!.content.length).toBe(0);
    expect(got.messages[1]!.content.equals(big)).toBe(true);
    expect(got.messages[2]!.content.toString()).toBe('after');
  });
});

describe('basic.get', () => {
  it('get-ok carries the remaining message count, tags count from 1 per channel; get-empty when none', async () => {
    const conn = await h.connect();
    const ch = await h.channel(conn);
    const q = h.queue();
    await ch.assertQueue(q, { durable: false });
    for (const b of ['a', 'b', 'c']) ch.sendToQueue(q, Buffer.from(b));
    await waitFor(async () => (await ch.checkQueue(q)).messageCount === 3, '3 messages');
    const seen = [];
    for (;;) {
      const m = await ch.get(q, { noAck: false });
      if (m === false) break;
      seen.push({ body: m.content.toString(), ...m.fields });
    }
    expect(seen).toEqual([
      { body: 'a', deliveryTag: 1, redelivered: false, exchange: '', routingKey: q, messageCount: 2 },
      { body: 'b', deliveryTag: 2, redelivered: false, exchange: '', routingKey: q, messageCount: 1 },
      { body: 'c', deliveryTag: 3, redelivered: false, exchange: '', routingKey: q, messageCount: 0 },
    ]);
    expect(await ch.get(q)).toBe(false);
    // Unacked gets come back when the channel closes, in order, redelivered.
    await ch.close();
    const ch2 = await h.channel(conn);
    await waitFor(async () => (await ch2.checkQueue(q)).messageCount === 3, 'the requeue');
    const again = [];
    for (;;) {
      const m = await ch2.get(q, { noAck: true });
      if (m === false) break;
      again.push([m.content.toString(), m.fields.deliveryTag, m.fields.redelivered, m.fields.messageCount]);
    }
    expect(again).toEqual([
      ['a', 1, true, 2],
      ['b', 2, true, 1],
      ['c', 3, true, 0],
    ]);
  });

  it('raw get-empty on an empty queue', async () => {
    const c = await rawClient();
    const q = h.queue();
    c.send(1, { id: M.QUEUE_DECLARE, reserved1: 0, queue: q, passive: false, durable: false, exclusive: false, autoDelete: false, noWait: false, arguments: {} });
    await c.waitForMethod(M.QUEUE_DECLARE_OK, 1);
    c.send(1, { id: M.BASIC_GET, reserved1: 0, queue: q, noAck: false });
    expect(await c.waitForMethod(M.BASIC_GET_EMPTY, 1)).toEqual({ id: M.BASIC_GET_EMPTY, reserved1: '' });
  });

  it('on a missing queue is 404', async () => {
    const ch = await h.channel();
    const q = h.queue('missing');
    expect(await rejection(ch.get(q))).toMatchObject({
      code: 404,
      text: `NOT_FOUND - no queue '${q}' in vhost '/'`,
      classId: 60,
      methodId: 70,
    });
  });

  it('delivery tags are shared between get and consume on one channel', async () => {
    const conn = await h.connect();
    const ch = await h.channel(conn);
    const q = h.queue();
    await ch.assertQueue(q, { durable: false });
    ch.sendToQueue(q, Buffer.from('first'));
    ch.sendToQueue(q, Buffer.from('second'));
    const m1 = await waitFor(() => ch.get(q), 'first');
    expect(m1 && [m1.content.toString(), m1.fields.deliveryTag]).toEqual(['first', 1]);
    const got = collector();
    await ch.consume(q, got.onMessage);
    const [m2] = await got.waitFor(1);
    expect([m2!.content.toString(), m2!.fields.deliveryTag]).toEqual(['second', 2]);
  });
});
