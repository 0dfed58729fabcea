// Queue length limits end to end: x-max-length and x-max-length-bytes with each x-overflow mode —
// drop-head (the oldest messages leave and are dead-lettered with reason 'maxlen'), reject-publish
// (the refused publish is nacked, the queue keeps the first N) and reject-publish-dlx (nacked and
// dead-lettered) — plus the queue-mode and queue-type arguments. Every expectation is RabbitMQ
// 3.10's, except the refusal of quorum and stream queues, which is Warren's own (RabbitMQ has them).

import { describe, expect, it } from 'vitest';
import { bodiesOf, getAll, rejection, waitFor, useBroker, type Channel, type Connection, type GetMessage } from '../support/harness.js';

const h = useBroker();

type Deaths = Record<string, unknown>[];
const deathsOf = (m: GetMessage): Deaths => (m.properties.headers?.['x-death'] as Deaths | undefined) ?? [];

/** Every ready message of q, by basic.get with no-ack. */
const drain = getAll;
const bodies = bodiesOf;

/** Publishes each body on a confirm channel and reports, in order, 'ack' or 'nack' for each. */
async function publishConfirmed(conn: Connection, exchange: string, key: string, list: string[]): Promise<string[]> {
  const pub = await conn.createConfirmChannel();
  const outcomes = list.map(
    (b) => new Promise<string>((resolve) => pub.publish(exchange, key, Buffer.from(b), {}, (err: unknown) => resolve(err ? 'nack' : 'ack'))),
  );
  const result = await Promise.all(outcomes);
  await pub.close();
  return result;
}

async function withDlq(ch: Channel) {
  const dlq = h.queue('lim-dlq');
  await ch.assertQueue(dlq, { durable: false });
  return { dlq, args: { 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': dlq } };
}

describe('x-max-length with x-overflow drop-head (the default)', () => {
  it("the oldest messages are dropped and dead-lettered with reason 'maxlen'; publishes are all acked", async () => {
    const conn = await h.connect();
    const ch = await h.channel(conn);
    const { dlq, args } = await withDlq(ch);
    const q = h.queue('lim-q');
    await ch.assertQueue(q, { durable: false, arguments: { 'x-max-length': 2, ...args } });
    expect(await publishConfirmed(conn, '', q, ['m1', 'm2', 'm3', 'm4'])).toEqual(['ack', 'ack', 'ack', 'ack']);
    expect(await ch.checkQueue(q)).toMatchObject({ messageCount: 2 });
    expect(bodies(await drain(ch, q))).toEqual(['m3', 'm4']);
    const dead = await drain(ch, dlq);
    expect(bodies(dead)).toEqual(['m1', 'm2']);
    for (const m of dead) {
      expect(deathsOf(m)).toEqual([expect.objectContaining({ count: 1, reason: 'maxlen', queue: q, exchange: '', 'routing-keys': [q] })]);
      expect(m.properties.headers).toMatchObject({ 'x-first-death-reason': 'maxlen', 'x-first-death-queue': q, 'x-first-death-exchange': '' });
    }
  });

  it("an explicit x-overflow 'drop-head' behaves the same; without a DLX the oldest just go", async () => {
    const conn = await h.connect();
    const ch = await h.channel(conn);
    const q = h.queue('lim-q');
    await ch.assertQueue(q, { durable: false, arguments: { 'x-max-length': 3, 'x-overflow': 'drop-head' } });
    expect(await publishConfirmed(conn, '', q, ['a', 'b', 'c', 'd', 'e'])).toEqual(Array(5).fill('ack'));
    expect(bodies(await drain(ch, q))).toEqual(['c', 'd', 'e']);
  });

  it('x-max-length-bytes counts body bytes: the oldest go until the rest fit', async () => {
    const conn = await h.connect();
    const ch = await h.channel(conn);
    const { dlq, args } = await withDlq(ch);
    const q = h.queue('lim-q');
    await ch.assertQueue(q, { durable: false, arguments: { 'x-max-length-bytes': 10, ...args } });
    // 4 + 4 + 4 > 10: each new 4-byte message pushes the oldest out once there are two.
    expect(await publishConfirmed(conn, '', q, ['aaaa', 'bbbb', 'cccc', 'dddd'])).toEqual(Array(4).fill('ack'));
    expect(bodies(await drain(ch, q))).toEqual(['cccc', 'dddd']);
    const dead = await drain(ch, dlq);
    expect(bodies(dead)).toEqual(['aaaa', 'bbbb']);
    expect(dead.map((m) => deathsOf(m)[0]!['reason'])).toEqual(['maxlen', 'maxlen']);
  });

  it('x-max-length 0 drops (and dead-letters) every message at once', async () => {
    const conn = await h.connect();
    const ch = await h.channel(conn);
    const { dlq, args } = await withDlq(ch);
    const q = h.queue('lim-q');
    await ch.assertQueue(q, { durable: false, arguments: { 'x-max-length': 0, ...args } });
    expect(await publishConfirmed(conn, '', q, ['x', 'y'])).toEqual(['ack', 'ack']);
    expect(await ch.checkQueue(q)).toMatchObject({ messageCount: 0 });
    expect(bodies(await drain(ch, dlq))).toEqual(['x', 'y']);
  });

  it('unacked messages do not count against the limit', async () => {
    const conn = await h.connect();
    const ch = await h.channel(conn);
    const q = h.queue('lim-q');
    await ch.assertQueue(q, { durable: false, arguments: { 'x-max-length': 1 } });
    expect(await publishConfirmed(conn, '', q, ['held'])).toEqual(['ack']);
    const held = await ch.get(q, { noAck: false });
    if (held === false) throw new Error('queue empty');
    expect(held.content.toString()).toBe('held');
    expect(await publishConfirmed(conn, '', q, ['next'])).toEqual(['ack']);
    expect(await ch.checkQueue(q)).toMatchObject({ messageCount: 1 });
    ch.ack(held);
    expect(bodies(await drain(ch, q))).toEqual(['next']);
  });

  it('a message fanned out to two queues: the one over its limit drops its oldest, the other keeps everything', async () => {
    const conn = await h.connect();
    const ch = await h.channel(conn);
    const { dlq, args } = await withDlq(ch);
    const x = h.exchange('lim-fan');
    await ch.assertExchange(x, 'fanout', { durable: false });
    const limited = h.queue('lim-small');
    const roomy = h.queue('lim-big');
    await ch.assertQueue(limited, { durable: false, arguments: { 'x-max-length': 1, ...args } });
    await ch.assertQueue(roomy, { durable: false });
    await ch.bindQueue(limited, x, '');
    await ch.bindQueue(roomy, x, '');
    expect(await publishConfirmed(conn, x, '', ['f1', 'f2', 'f3'])).toEqual(['ack', 'ack', 'ack']);
    expect(bodies(await drain(ch, limited))).toEqual(['f3']);
    expect(bodies(await drain(ch, roomy))).toEqual(['f1', 'f2', 'f3']);
    const dead = await drain(ch, dlq);
    expect(bodies(dead)).toEqual(['f1', 'f2']);
    expect(dead.map((m) => deathsOf(m)[0]!['queue'])).toEqual([limited, limited]);
  });
});

describe('x-overflow reject-publish', () => {
  it('the publishes that would exceed the limit are nacked, the others acked; the queue keeps the first N', async () => {
    const conn = await h.connect();
    const ch = await h.channel(conn);
    const q = h.queue('lim-rp');
    await ch.assertQueue(q, { durable: false, arguments: { 'x-max-length': 2, 'x-overflow': 'reject-publish' } });
    expect(await publishConfirmed(conn, '', q, ['m1', 'm2', 'm3', 'm4'])).toEqual(['ack', 'ack', 'nack', 'nack']);
    expect(await ch.checkQueue(q)).toMatchObject({ messageCount: 2 });
    expect(bodies(await drain(ch, q))).toEqual(['m1', 'm2']);
    // Room again: accepted.
    expect(await publishConfirmed(conn, '', q, ['m5'])).toEqual(['ack']);
    expect(bodies(await drain(ch, q))).toEqual(['m5']);
  });

  it('refused messages are not dead-lettered, even with a DLX set', async () => {
    const conn = await h.connect();
    const ch = await h.channel(conn);
    const { dlq, args } = await withDlq(ch);
    const q = h.queue('lim-rp');
    await ch.assertQueue(q, { durable: false, arguments: { 'x-max-length': 1, 'x-overflow': 'reject-publish', ...args } });
    expect(await publishConfirmed(conn, '', q, ['keep', 'refuse'])).toEqual(['ack', 'nack']);
    expect(bodies(await drain(ch, q))).toEqual(['keep']);
    expect(await ch.checkQueue(dlq)).toMatchObject({ messageCount: 0 });
  });

  it('x-max-length-bytes with reject-publish refuses the message that would not fit', async () => {
    const conn = await h.connect();
    const ch = await h.channel(conn);
    const q = h.queue('lim-rp');
    await ch.assertQueue(q, { durable: false, arguments: { 'x-max-length-bytes': 10, 'x-overflow': 'reject-publish' } });
    expect(await publishConfirmed(conn, '', q, ['aaaa', 'bbbb', 'cccc', 'dd'])).toEqual(['ack', 'ack', 'nack', 'ack']);
    expect(bodies(await drain(ch, q))).toEqual(['aaaa', 'bbbb', 'dd']);
  });

  it('without confirms the refused messages simply vanish, and the channel stays open', async () => {
    const conn = await h.connect();
    const ch = await h.channel(conn);
    const q = h.queue('lim-rp');
    await ch.assertQueue(q, { durable: false, arguments: { 'x-max-length': 1, 'x-overflow': 'reject-publish' } });
    for (const b of ['one', 'two', 'three']) ch.sendToQueue(q, Buffer.from(b));
    await waitFor(async () => (await ch.checkQueue(q)).messageCount === 1, 'one message');
    expect(bodies(await drain(ch, q))).toEqual(['one']);
    expect(ch.errors).toEqual([]);
  });

  it('a message routed to two queues is nacked when one of them refuses it; the other still gets it', async () => {
    const conn = await h.connect();
    const ch = await h.channel(conn);
    const x = h.exchange('lim-fan');
    await ch.assertExchange(x, 'fanout', { durable: false });
    const full = h.queue('lim-full');
    const open = h.queue('lim-open');
    await ch.assertQueue(full, { durable: false, arguments: { 'x-max-length': 1, 'x-overflow': 'reject-publish' } });
    await ch.assertQueue(open, { durable: false });
    await ch.bindQueue(full, x, '');
    await ch.bindQueue(open, x, '');
    expect(await publishConfirmed(conn, x, '', ['p1', 'p2'])).toEqual(['ack', 'nack']);
    expect(bodies(await drain(ch, full))).toEqual(['p1']);
    expect(bodies(await drain(ch, open))).toEqual(['p1', 'p2']);
  });
});

describe('x-overflow reject-publish-dlx', () => {
  it("refused messages are nacked AND dead-lettered with reason 'maxlen'", async () => {
    const conn = await h.connect();
    const ch = await h.channel(conn);
    const { dlq, args } = await withDlq(ch);
    const q = h.queue('lim-rpd');
    await ch.assertQueue(q, { durable: false, arguments: { 'x-max-length': 2, 'x-overflow': 'reject-publish-dlx', ...args } });
    expect(await publishConfirmed(conn, '', q, ['m1', 'm2', 'm3', 'm4'])).toEqual(['ack', 'ack', 'nack', 'nack']);
    expect(bodies(await drain(ch, q))).toEqual(['m1', 'm2']);
    const dead = await drain(ch, dlq);
    expect(bodies(dead)).toEqual(['m3', 'm4']);
    for (const m of dead) {
      expect(deathsOf(m)).toEqual([expect.objectContaining({ count: 1, reason: 'maxlen', queue: q, exchange: '', 'routing-keys': [q] })]);
      expect(m.properties.headers).toMatchObject({ 'x-first-death-reason': 'maxlen', 'x-first-death-queue': q });
    }
  });

  it('reject-publish-dlx in a fan-out: the other queue still gets every message, the DLQ only the refused ones', async () => {
    const conn = await h.connect();
    const ch = await h.channel(conn);
    const { dlq, args } = await withDlq(ch);
    const x = h.exchange('lim-fan');
    await ch.assertExchange(x, 'fanout', { durable: false });
    const full = h.queue('lim-full');
    const open = h.queue('lim-open');
    await ch.assertQueue(full, { durable: false, arguments: { 'x-max-length': 1, 'x-overflow': 'reject-publish-dlx', ...args } });
    await ch.assertQueue(open, { durable: false });
    await ch.bindQueue(full, x, '');
    await ch.bindQueue(open, x, '');
    expect(await publishConfirmed(conn, x, '', ['p1', 'p2', 'p3'])).toEqual(['ack', 'nack', 'nack']);
    expect(bodies(await drain(ch, full))).toEqual(['p1']);
    expect(bodies(await drain(ch, open))).toEqual(['p1', 'p2', 'p3']);
    const dead = await drain(ch, dlq);
    expect(bodies(dead)).toEqual(['p2', 'p3']);
    expect(dead.map((m) => deathsOf(m)[0]!['reason'])).toEqual(['maxlen', 'maxlen']);
  });
});

describe('queue mode and queue type arguments', () => {
  it.each([
    ['x-queue-mode', 'lazy'],
    ['x-queue-mode', 'default'],
    ['x-queue-type', 'classic'],
  ])('%s %s is accepted and the queue works', async (key, value) => {
    const ch = await h.channel();
    const q = h.queue('lim-arg');
    expect(await ch.assertQueue(q, { durable: false, arguments: { [key]: value } })).toEqual({ queue: q, messageCount: 0, consumerCount: 0 });
    ch.sendToQueue(q, Buffer.from('works'));
    const m = await waitFor(() => ch.get(q, { noAck: true }), 'the message');
    expect(m.content.toString()).toBe('works');
  });

  it("x-queue-mode 'bogus' is 406", async () => {
    const ch = await h.channel();
    const q = h.queue('lim-arg');
    expect(await rejection(ch.assertQueue(q, { durable: false, arguments: { 'x-queue-mode': 'bogus' } }))).toMatchObject({
      code: 406,
      text: `PRECONDITION_FAILED - invalid arg 'x-queue-mode' for queue '${q}' in vhost '/': "unsupported queue mode 'bogus'"`,
      classId: 50,
      methodId: 10,
    });
  });

  it("x-queue-type 'bogus' is 406", async () => {
    const ch = await h.channel();
    const q = h.queue('lim-arg');
    expect(await rejection(ch.assertQueue(q, { durable: true, arguments: { 'x-queue-type': 'bogus' } }))).toMatchObject({
      code: 406,
      text: `PRECONDITION_FAILED - invalid arg 'x-queue-type' for queue '${q}' in vhost '/': "unsupported queue type 'bogus'"`,
      classId: 50,
      methodId: 10,
    });
  });

  // Quorum queues and streams are declared and tested in quorum-declare.test.ts.

  it.each([
    ['x-overflow', 'bogus', 'invalid_overflow'],
    ['x-max-length', -1, '{value_negative,-1}'],
    ['x-max-length', 'x', '"expected integer, got longstr"'],
    ['x-max-length-bytes', -1, '{value_negative,-1}'],
  ])('%s %j is 406 (%s)', async (key, value, reason) => {
    const ch = await h.channel();
    const q = h.queue('lim-arg');
    expect(await rejection(ch.assertQueue(q, { durable: false, arguments: { [key]: value } }))).toMatchObject({
      code: 406,
      text: `PRECONDITION_FAILED - invalid arg '${key}' for queue '${q}' in vhost '/': ${reason}`,
      classId: 50,
      methodId: 10,
    });
  });
});
