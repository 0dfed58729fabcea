// Streams end to end (amqplib): where a consumer starts (x-stream-offset: first, last, next, an
// offset, a timestamp, an interval), the x-stream-offset header on every delivery, independent
// consumers, acks that remove nothing, and what streams refuse (RabbitMQ's codes and texts).
// Tests that do not say "Warren" were checked against RabbitMQ 3.10 as well (WARREN_TEST_AMQP_URL).

import { describe, expect, it } from 'vitest';
import type { Options } from 'amqplib';
import { EXTERNAL, collector, rejection, sleep, useBroker, waitFor, QUIET_MS, type Channel, type Collector } from '../support/harness.js';

const h = useBroker();

const STREAM = { 'x-queue-type': 'stream' };

async function declareStream(ch: Channel, prefix = 'st'): Promise<string> {
  const q = h.queue(prefix);
  await ch.assertQueue(q, { durable: true, arguments: STREAM });
  return q;
}

/** Publishes bodies one confirm round trip at a time (so each is its own chunk on RabbitMQ too). */
async function publishEach(q: string, bodies: string[], options: Options.Publish = {}): Promise<void> {
  const ch = await (await h.connect()).createConfirmChannel();
  for (const b of bodies) {
    ch.sendToQueue(q, Buffer.from(b), options);
    await ch.waitForConfirms();
  }
}

/** A consumer with prefetch and manual acks (acking as it goes), started at offset. */
async function consumeFrom(q: string, offset: unknown, prefetch = 100): Promise<Collector> {
  const ch = await h.channel();
  await ch.prefetch(prefetch);
  const c = collector((m) => ch.ack(m));
  await ch.consume(q, c.onMessage, offset === undefined ? {} : { arguments: { 'x-stream-offset': offset } });
  return c;
}

const offsetOf = (m: { properties: { headers?: Record<string, unknown> | undefined } }): unknown => m.properties.headers?.['x-stream-offset'];

describe('x-stream-offset', () => {
  it('first, an offset, a negative offset, next (the default), last', async () => {
    const ch = await h.channel();
    const q = await declareStream(ch);
    await publishEach(q, ['a', 'b', 'c', 'd', 'e']);
    const expectBodies = async (offset: unknown, bodies: string[]): Promise<void> => {
      const c = await consumeFrom(q, offset);
      if (bodies.length > 0) await c.waitFor(bodies.length);
      await sleep(QUIET_MS);
      expect(c.bodies()).toEqual(bodies);
      expect(c.messages.map(offsetOf)).toEqual(bodies.map((b) => b.charCodeAt(0) - 'a'.charCodeAt(0)));
    };
    await expectBodies('first', ['a', 'b', 'c', 'd', 'e']);
    await expectBodies(2, ['c', 'd', 'e']);
    await expectBodies(-3, ['a', 'b', 'c', 'd', 'e']);
    await expectBodies(undefined, []);
    await expectBodies('next', []);
    await expectBodies('last', ['e']);
  });

  it('next (and no offset) get what is published after they start; an offset not written yet is waited for', async () => {
    const ch = await h.channel();
    const q = await declareStream(ch);
    await publishEach(q, ['old']);
    const next = await consumeFrom(q, 'next');
    const byDefault = await consumeFrom(q, undefined);
    const atTwo = await consumeFrom(q, 2);
    const farAhead = await consumeFrom(q, 50);
    await publishEach(q, ['new1', 'new2', 'new3']);
    for (const c of [next, byDefault]) {
      await c.waitFor(3);
      expect(c.bodies()).toEqual(['new1', 'new2', 'new3']);
      expect(c.messages.map(offsetOf)).toEqual([1, 2, 3]);
    }
    await atTwo.waitFor(2);
    await sleep(QUIET_MS);
    expect(atTwo.bodies()).toEqual(['new2', 'new3']);
    expect(farAhead.messages).toEqual([]);
  });

  it('a timestamp (seconds) and an interval start at the first message published at or after that time', async () => {
    const ch = await h.channel();
    const q = await declareStream(ch);
    await publishEach(q, ['before1', 'before2']);
    // Wait into the next whole second, so that a timestamp in seconds separates the two batches.
    const boundary = Math.floor(Date.now() / 1000) + 1;
    await waitFor(() => Date.now() >= boundary * 1000, 'the next second', 3000);
    await publishEach(q, ['after1', 'after2']);
    const byTimestamp = await consumeFrom(q, { '!': 'timestamp', value: boundary });
    await byTimestamp.waitFor(2);
    await sleep(QUIET_MS);
    expect(byTimestamp.bodies()).toEqual(['after1', 'after2']);
    const byInterval = await consumeFrom(q, '1m');
    await byInterval.waitFor(4);
    expect(byInterval.bodies()).toEqual(['before1', 'before2', 'after1', 'after2']);
    const recent = await consumeFrom(q, { '!': 'timestamp', value: boundary + 3600 });
    await sleep(QUIET_MS);
    expect(recent.messages).toEqual([]);
  });

  it('an offset that is neither a number, a timestamp, first/last/next nor an interval is 406', async () => {
    const ch = await h.channel();
    const q = await declareStream(ch);
    await ch.prefetch(10);
    const f = await rejection(ch.consume(q, () => {}, { arguments: { 'x-stream-offset': '30x' } }));
    expect(f).toEqual(
      expect.objectContaining({
        code: 406,
        text: `PRECONDITION_FAILED - invalid arg 'x-stream-offset' for queue '${q}' in vhost '/': {invalid_stream_offset_arg,{longstr,<<"30x">>}}`,
      }),
    );
  });

  it.skipIf(EXTERNAL)('Warren: a word or a boolean is refused the same way (RabbitMQ 3.10 fails with 541 there)', async () => {
    for (const [value, printed] of [
      ['foo', '{longstr,<<"foo">>}'],
      [true, '{bool,true}'],
    ] as const) {
      const ch = await h.channel();
      const q = await declareStream(ch);
      await ch.prefetch(10);
      const f = await rejection(ch.consume(q, () => {}, { arguments: { 'x-stream-offset': value } }));
      expect(f.text).toBe(`PRECONDITION_FAILED - invalid arg 'x-stream-offset' for queue '${q}' in vhost '/': {invalid_stream_offset_arg,${printed}}`);
    }
  });
});

describe('deliveries', () => {
  it('carry x-stream-offset with the publisher’s headers and properties; acks remove nothing', async () => {
    const ch = await h.channel();
    const q = await declareStream(ch);
    await publishEach(q, ['one'], { headers: { h: 'x' }, contentType: 'text/plain', persistent: true });
    await publishEach(q, ['two']);
    const c = await consumeFrom(q, 'first');
    const [m1, m2] = await c.waitFor(2);
    expect(m1!.properties.headers).toEqual({ h: 'x', 'x-stream-offset': 0 });
    expect(m1!.properties.contentType).toBe('text/plain');
    expect(m1!.properties.deliveryMode).toBe(2);
    expect(m2!.properties.headers).toEqual({ 'x-stream-offset': 1 });
    expect(m1!.fields).toEqual(expect.objectContaining({ deliveryTag: 1, redelivered: false, exchange: '', routingKey: q }));
    // Everything was acked: a new consumer from the start still sees both.
    const again = await consumeFrom(q, 'first');
    await again.waitFor(2);
    expect(again.bodies()).toEqual(['one', 'two']);
    await waitFor(async () => (await ch.checkQueue(q)).messageCount === 2, 'the stream length (RabbitMQ updates it every few seconds)', 10_000);
  });

  it('independent consumers read at their own pace; prefetch limits each', async () => {
    const ch = await h.channel();
    const q = await declareStream(ch);
    await publishEach(q, ['m0', 'm1', 'm2', 'm3']);
    const slowCh = await h.channel();
    await slowCh.prefetch(2);
    const slow = collector(); // never acks
    await slowCh.consume(q, slow.onMessage, { arguments: { 'x-stream-offset': 'first' } });
    const fast = await consumeFrom(q, 'first');
    await fast.waitFor(4);
    await slow.waitFor(2);
    await sleep(QUIET_MS);
    expect(slow.bodies()).toEqual(['m0', 'm1']);
    expect(fast.bodies()).toEqual(['m0', 'm1', 'm2', 'm3']);
    slowCh.ack(slow.messages[1]!, true);
    await slow.waitFor(4);
    expect(slow.bodies()).toEqual(['m0', 'm1', 'm2', 'm3']);
  });
});

describe('flow', () => {
  it('a stream’s length does not hold its publishers back while consumers read (unlike a queue’s backlog)', async () => {
    const ch = await h.channel();
    const q = await declareStream(ch);
    const reader = await consumeFrom(q, 'first', 50);
    const pub = await (await h.connect()).createConfirmChannel();
    for (let i = 0; i < 5000; i++) pub.sendToQueue(q, Buffer.from(`m${i}`));
    await pub.waitForConfirms();
    await reader.waitFor(5000, 15_000);
    expect(reader.messages.map(offsetOf).slice(-1)).toEqual([4999]);
  });
});

describe('what streams refuse', () => {
  it('a consumer without prefetch (406), with automatic acks (540), with global qos (540)', async () => {
    let ch = await h.channel();
    const q = await declareStream(ch);
    const prefetchText = `PRECONDITION_FAILED - consumer prefetch count is not set for 'queue '${q}' in vhost '/''`;
    expect(await rejection(ch.consume(q, () => {}))).toEqual(expect.objectContaining({ code: 406, text: prefetchText }));
    ch = await h.channel();
    expect(await rejection(ch.consume(q, () => {}, { noAck: true }))).toEqual(expect.objectContaining({ code: 406, text: prefetchText }));
    ch = await h.channel();
    await ch.prefetch(10, true);
    expect(await rejection(ch.consume(q, () => {}))).toEqual(expect.objectContaining({ code: 406, text: prefetchText }));
    for (const [setup, text] of [
      [
        async (c: Channel) => {
          await c.prefetch(5);
          return c.consume(q, () => {}, { noAck: true });
        },
        `NOT_IMPLEMENTED - automatic acknowledgement not supported by stream queues queue '${q}' in vhost '/'`,
      ],
      [
        async (c: Channel) => {
          await c.prefetch(5);
          await c.prefetch(5, true);
          return c.consume(q, () => {});
        },
        `NOT_IMPLEMENTED - queue '${q}' in vhost '/' does not support global qos`,
      ],
      [(c: Channel) => c.get(q), `NOT_IMPLEMENTED - basic.get not supported by stream queues queue '${q}' in vhost '/'`],
      [(c: Channel) => c.purgeQueue(q), `NOT_IMPLEMENTED - queue.purge not supported by stream queues queue '${q}' in vhost '/'`],
    ] as const) {
      const conn = await h.connect();
      const c = await h.channel(conn);
      await rejection((setup as (c: Channel) => Promise<unknown>)(c));
      expect(await h.firstError(conn)).toEqual(expect.objectContaining({ code: 540, text }));
    }
  });

  it('basic.nack and basic.reject close the connection (540)', async () => {
    for (const how of ['nack', 'reject'] as const) {
      const ch = await h.channel();
      const q = await declareStream(ch);
      await publishEach(q, ['x']);
      const conn = await h.connect();
      const c = await h.channel(conn);
      await c.prefetch(5);
      const got = collector();
      await c.consume(q, got.onMessage, { arguments: { 'x-stream-offset': 'first' } });
      const [m] = await got.waitFor(1);
      if (how === 'nack') c.nack(m!, false, true);
      else c.reject(m!, false);
      expect(await h.firstError(conn)).toEqual(
        expect.objectContaining({ code: 540, text: `NOT_IMPLEMENTED - basic.nack and basic.reject not supported by stream queues queue '${q}' in vhost '/'` }),
      );
    }
  });
});
