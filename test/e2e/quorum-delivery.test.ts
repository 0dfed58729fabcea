// Quorum queues end to end (amqplib): poison-message handling — every return to the queue counts,
// deliveries carry x-delivery-count, and past x-delivery-limit a message is dead-lettered with
// reason delivery_limit (or dropped) — and the consuming rules (global qos refused). Tests that
// do not say "Warren" were checked against RabbitMQ 3.10 as well (WARREN_TEST_AMQP_URL=…).

import { describe, expect, it } from 'vitest';
import { EXTERNAL, collector, rejection, useBroker, waitFor } from '../support/harness.js';

const h = useBroker();

const QUORUM = { 'x-queue-type': 'quorum' };

const deliveryCount = (m: { properties: { headers?: Record<string, unknown> | undefined } }): unknown => m.properties.headers?.['x-delivery-count'];

describe('x-delivery-count and x-delivery-limit', () => {
  it('each nack with requeue counts; past the limit the message is dead-lettered (delivery_limit) without the count header', async () => {
    const ch = await h.channel();
    const q = h.queue('qq-limit');
    const dl = h.queue('qq-limit-dl');
    await ch.assertQueue(dl, { durable: true });
    await ch.assertQueue(q, {
      durable: true,
      arguments: { ...QUORUM, 'x-delivery-limit': 2, 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': dl },
    });
    ch.sendToQueue(q, Buffer.from('m1'), { headers: { a: 1 }, expiration: '60000' });
    ch.sendToQueue(q, Buffer.from('m2'));
    await waitFor(async () => (await ch.checkQueue(q)).messageCount === 2, 'two messages');
    await ch.prefetch(1);
    const seen: { body: string; redelivered: boolean; count: unknown }[] = [];
    const c = collector((m) => {
      seen.push({ body: m.content.toString(), redelivered: m.fields.redelivered, count: deliveryCount(m) });
      ch.nack(m, false, true);
    });
    await ch.consume(q, c.onMessage);
    await waitFor(async () => (await ch.checkQueue(dl)).messageCount === 2, 'both dead-lettered');
    expect(seen).toEqual([
      { body: 'm1', redelivered: false, count: undefined },
      { body: 'm1', redelivered: true, count: 1 },
      { body: 'm1', redelivered: true, count: 2 },
      { body: 'm2', redelivered: false, count: undefined },
      { body: 'm2', redelivered: true, count: 1 },
      { body: 'm2', redelivered: true, count: 2 },
    ]);
    const first = await ch.get(dl, { noAck: true });
    if (first === false) throw new Error('expected a dead-lettered message');
    expect(first.content.toString()).toBe('m1');
    const headers = first.properties.headers!;
    expect(headers['a']).toBe(1);
    expect(headers['x-delivery-count']).toBeUndefined();
    expect(headers['x-first-death-reason']).toBe('delivery_limit');
    expect(headers['x-first-death-queue']).toBe(q);
    const death = (headers['x-death'] as unknown as Record<string, unknown>[])[0]!;
    expect(death).toEqual(expect.objectContaining({ count: 1, reason: 'delivery_limit', queue: q, exchange: '', 'routing-keys': [q], 'original-expiration': '60000' }));
    expect(first.properties.expiration).toBeUndefined();
    expect(await ch.checkQueue(q)).toEqual({ queue: q, messageCount: 0, consumerCount: 1 });
  });

  it('a consumer that goes away with the message unacked counts as a return', async () => {
    const conn = await h.connect();
    const setup = await h.channel(conn);
    const q = h.queue('qq-gone');
    await setup.assertQueue(q, { durable: true, arguments: QUORUM });
    setup.sendToQueue(q, Buffer.from('x'));
    for (const expected of [undefined, 1, 2]) {
      const ch = await h.channel(conn);
      const c = collector();
      await ch.consume(q, c.onMessage);
      const [m] = await c.waitFor(1);
      expect(deliveryCount(m!)).toBe(expected);
      await ch.close(); // unacked: back to the queue
    }
    const ch = await h.channel(conn);
    const got = await waitFor(async () => ch.get(q), 'the message back');
    expect(deliveryCount(got)).toBe(3);
    expect(got.fields.redelivered).toBe(true);
  });

  it('basic.get carries the count from the first get on; without a dead-letter exchange the message is dropped', async () => {
    const ch = await h.channel();
    const q = h.queue('qq-drop');
    await ch.assertQueue(q, { durable: true, arguments: { ...QUORUM, 'x-delivery-limit': 1 } });
    ch.sendToQueue(q, Buffer.from('poison'));
    const a = await waitFor(async () => ch.get(q), 'first get');
    expect(deliveryCount(a)).toBe(0);
    ch.reject(a, true);
    const b = await waitFor(async () => ch.get(q), 'second get');
    expect(deliveryCount(b)).toBe(1);
    ch.reject(b, true);
    await waitFor(async () => (await ch.checkQueue(q)).messageCount === 0, 'the message dropped');
    expect(await ch.get(q)).toBe(false);
  });

  it.skipIf(EXTERNAL)('Warren: the default limit is 20 returns, as RabbitMQ 4 (3.10 has none); -1 means no limit', async () => {
    const ch = await h.channel();
    const dl = h.queue('qq-default-dl');
    const limited = h.queue('qq-default');
    const unlimited = h.queue('qq-unlimited');
    await ch.assertQueue(dl, { durable: true });
    await ch.assertQueue(limited, { durable: true, arguments: { ...QUORUM, 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': dl } });
    await ch.assertQueue(unlimited, { durable: true, arguments: { ...QUORUM, 'x-delivery-limit': -1 } });
    for (const q of [limited, unlimited]) ch.sendToQueue(q, Buffer.from(q));
    const returns = async (q: string, n: number): Promise<number[]> => {
      const counts: number[] = [];
      for (let i = 0; i < n; i++) {
        const m = await waitFor(async () => ch.get(q), `delivery ${i}`);
        counts.push(Number(deliveryCount(m)));
        ch.nack(m, false, true);
      }
      return counts;
    };
    expect(await returns(limited, 21)).toEqual(Array.from({ length: 21 }, (_, i) => i));
    await waitFor(async () => (await ch.checkQueue(dl)).messageCount === 1, 'dead-lettered after the 21st return');
    expect(await ch.get(limited)).toBe(false);
    expect(await returns(unlimited, 30)).toEqual(Array.from({ length: 30 }, (_, i) => i));
    expect((await ch.checkQueue(unlimited)).messageCount).toBe(1);
  });
});

describe('consuming rules', () => {
  it('global qos with a quorum queue is refused at basic.consume (540), manual ack or not', async () => {
    for (const noAck of [false, true]) {
      const conn = await h.connect();
      const ch = await h.channel(conn);
      const q = h.queue('qq-global');
      await ch.assertQueue(q, { durable: true, arguments: QUORUM });
      await ch.prefetch(10, true);
      await rejection(ch.consume(q, () => {}, { noAck }));
      expect(await h.firstError(conn)).toEqual(
        expect.objectContaining({ code: 540, text: `NOT_IMPLEMENTED - queue '${q}' in vhost '/' does not support global qos` }),
      );
    }
  });

  it('a global qos set after consuming is accepted, and per-consumer prefetch works', async () => {
    const ch = await h.channel();
    const q = h.queue('qq-qos');
    await ch.assertQueue(q, { durable: true, arguments: QUORUM });
    for (let i = 0; i < 5; i++) ch.sendToQueue(q, Buffer.from(`m${i}`));
    await ch.prefetch(2);
    const c = collector();
    await ch.consume(q, c.onMessage);
    await c.waitFor(2);
    await ch.prefetch(10, true);
    expect(c.bodies().slice(0, 2)).toEqual(['m0', 'm1']);
    ch.ack(c.messages[1]!, true);
    await c.waitFor(4);
    expect(c.bodies().slice(0, 4)).toEqual(['m0', 'm1', 'm2', 'm3']);
  });
});
