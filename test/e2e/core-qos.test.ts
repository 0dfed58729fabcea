// basic.qos and basic.recover end to end: per-consumer (global=false) and per-channel
// (global=true) prefetch with RabbitMQ's semantics, 0 = unlimited, recover with requeue.
// Every expectation here is RabbitMQ's.

import { describe, expect, it } from 'vitest';
import * as M from '../../src/protocol/generated/amqp.js';
import { RawClient } from '../support/raw-client.js';
import { collector, QUIET_MS, sleep, waitFor, useBroker, type Channel } from '../support/harness.js';

const h = useBroker();

const filledQueue = h.filledQueue;

/** Waits for n deliveries in total, then a quiet moment to be sure there is no extra one. */
async function settle(count: () => number, n: number): Promise<void> {
  await waitFor(() => count() >= n, `${n} deliveries (have ${count()})`);
  await sleep(QUIET_MS);
}

describe('basic.qos prefetch-count, per consumer (global=false)', () => {
  it('with prefetch 2 a consumer has exactly 2 unacked at a time', async () => {
    const conn = await h.connect();
    const ch = await h.channel(conn);
    const q = await filledQueue(ch, 6);
    const cch = await h.channel(conn);
    expect(await cch.prefetch(2)).toEqual({});
    const c = collector();
    await cch.consume(q, c.onMessage);
    await settle(() => c.messages.length, 2);
    expect(c.bodies()).toEqual(['m0', 'm1']);
    expect(await ch.checkQueue(q)).toMatchObject({ messageCount: 4 });
    cch.ack(c.messages[0]!);
    await settle(() => c.messages.length, 3);
    expect(c.bodies()).toEqual(['m0', 'm1', 'm2']);
    cch.ack(c.messages[2]!); // acking out of order frees one slot too
    await settle(() => c.messages.length, 4);
    expect(c.bodies()).toEqual(['m0', 'm1', 'm2', 'm3']);
    cch.ack(c.messages[3]!, true); // m1 and m3: two slots
    await settle(() => c.messages.length, 6);
    expect(c.bodies()).toEqual(['m0', 'm1', 'm2', 'm3', 'm4', 'm5']);
  });

  it('applies to each consumer of the channel separately', async () => {
    const conn = await h.connect();
    const ch = await h.channel(conn);
    const q = await filledQueue(ch, 10);
    const cch = await h.channel(conn);
    await cch.prefetch(2, false);
    const a = collector();
    const b = collector();
    await cch.consume(q, a.onMessage);
    await cch.consume(q, b.onMessage);
    await settle(() => a.messages.length + b.messages.length, 4);
    expect(a.messages.length).toBe(2);
    expect(b.messages.length).toBe(2);
    expect(await ch.checkQueue(q)).toMatchObject({ messageCount: 6, consumerCount: 2 });
  });

  it('nack with requeue frees the slot; the requeued message comes back first', async () => {
    const conn = await h.connect();
    const ch = await h.channel(conn);
    const q = await filledQueue(ch, 3);
    const cch = await h.channel(conn);
    await cch.prefetch(1);
    const c = collector();
    await cch.consume(q, c.onMessage);
    await settle(() => c.messages.length, 1);
    cch.nack(c.messages[0]!, false, true);
    await settle(() => c.messages.length, 2);
    expect(c.messages.map((m) => [m.content.toString(), m.fields.redelivered])).toEqual([
      ['m0', false],
      ['m0', true],
    ]);
  });

  it('a new basic.qos applies to consumers created after it, not to existing ones', async () => {
    const conn = await h.connect();
    const ch = await h.channel(conn);
    const q1 = await filledQueue(ch, 5);
    const q2 = await filledQueue(ch, 5);
    const cch = await h.channel(conn);
    await cch.prefetch(1);
    const a = collector();
    await cch.consume(q1, a.onMessage);
    await cch.prefetch(3);
    const b = collector();
    await cch.consume(q2, b.onMessage);
    await settle(() => a.messages.length + b.messages.length, 4);
    expect([a.messages.length, b.messages.length]).toEqual([1, 3]);
  });

  it('0 means unlimited', async () => {
    const conn = await h.connect();
    const ch = await h.channel(conn);
    const q = await filledQueue(ch, 25);
    const cch = await h.channel(conn);
    await cch.prefetch(0);
    const c = collector();
    await cch.consume(q, c.onMessage);
    await settle(() => c.messages.length, 25);
    expect(c.messages.length).toBe(25);
  });

  it('does not limit no-ack consumers', async () => {
    const conn = await h.connect();
    const ch = await h.channel(conn);
    const q = await filledQueue(ch, 10);
    const cch = await h.channel(conn);
    await cch.prefetch(1);
    const c = collector();
    await cch.consume(q, c.onMessage, { noAck: true });
    await settle(() => c.messages.length, 10);
    expect(c.messages.length).toBe(10);
  });

  it('does not limit basic.get', async () => {
    const conn = await h.connect();
    const ch = await h.channel(conn);
    const q = await filledQueue(ch, 3);
    const cch = await h.channel(conn);
    await cch.prefetch(1);
    const got: Awaited<ReturnType<Channel['get']>>[] = [];
    for (let i = 0; i < 3; i++) got.push(await cch.get(q));
    expect(got.map((m) => (m === false ? null : m.content.toString()))).toEqual(['m0', 'm1', 'm2']);
  });
});

describe('basic.qos prefetch-count, per channel (global=true)', () => {
  it('the limit is shared by two consumers on one channel', async () => {
    const conn = await h.connect();
    const ch = await h.channel(conn);
    const q1 = await filledQueue(ch, 5);
    const q2 = await filledQueue(ch, 5);
    const cch = await h.channel(conn);
    await cch.prefetch(3, true);
    const a = collector();
    const b = collector();
    await cch.consume(q1, a.onMessage);
    await cch.consume(q2, b.onMessage);
    await settle(() => a.messages.length + b.messages.length, 3);
    expect(a.messages.length + b.messages.length).toBe(3);
    // Acking one frees one slot for the channel, whichever consumer gets it.
    cch.ack((a.messages[0] ?? b.messages[0])!);
    await settle(() => a.messages.length + b.messages.length, 4);
    expect(a.messages.length + b.messages.length).toBe(4);
  });

  it('a per-consumer limit set after a channel limit: both apply', async () => {
    const conn = await h.connect();
    const ch = await h.channel(conn);
    const qs = [await filledQueue(ch, 5), await filledQueue(ch, 5), await filledQueue(ch, 5)];
    const cch = await h.channel(conn);
    await cch.prefetch(2, false);
    await cch.prefetch(5, true);
    const cs = [collector(), collector(), collector()];
    for (let i = 0; i < 3; i++) await cch.consume(qs[i]!, cs[i]!.onMessage);
    await settle(() => cs.reduce((n, c) => n + c.messages.length, 0), 5);
    const counts = cs.map((c) => c.messages.length);
    expect(counts.reduce((a, b) => a + b, 0)).toBe(5);
    expect(Math.max(...counts)).toBe(2);
  });

  it('RabbitMQ quirk: basic.qos global=false lifts an earlier channel-wide limit', async () => {
    const conn = await h.connect();
    const ch = await h.channel(conn);
    const qs = [await filledQueue(ch, 5), await filledQueue(ch, 5), await filledQueue(ch, 5)];
    const cch = await h.channel(conn);
    await cch.prefetch(5, true);
    await cch.prefetch(2, false);
    const cs = [collector(), collector(), collector()];
    for (let i = 0; i < 3; i++) await cch.consume(qs[i]!, cs[i]!.onMessage);
    await settle(() => cs.reduce((n, c) => n + c.messages.length, 0), 6);
    expect(cs.map((c) => c.messages.length)).toEqual([2, 2, 2]);

    // With a per-consumer 0 after it, nothing limits at all.
    const qs2 = [await filledQueue(ch, 4), await filledQueue(ch, 4)];
    const cch2 = await h.channel(conn);
    await cch2.prefetch(1, true);
    await cch2.prefetch(0, false);
    const cs2 = [collector(), collector()];
    for (let i = 0; i < 2; i++) await cch2.consume(qs2[i]!, cs2[i]!.onMessage);
    await settle(() => cs2.reduce((n, c) => n + c.messages.length, 0), 8);
    expect(cs2.map((c) => c.messages.length)).toEqual([4, 4]);
  });

  it('raising the channel limit lets deliveries resume up to the new limit', async () => {
    const conn = await h.connect();
    const ch = await h.channel(conn);
    const q = await filledQueue(ch, 4);
    const cch = await h.channel(conn);
    await cch.prefetch(2, true);
    const c = collector();
    await cch.consume(q, c.onMessage);
    await settle(() => c.messages.length, 2);
    expect(c.messages.length).toBe(2);
    await cch.prefetch(3, true);
    await settle(() => c.messages.length, 3);
    expect(c.messages.length).toBe(3);
  });
});

describe('basic.recover', () => {
  it('requeue=true redelivers every unacked message with redelivered=true', async () => {
    const conn = await h.connect();
    const ch = await h.channel(conn);
    const q = await filledQueue(ch, 3);
    const cch = await h.channel(conn);
    const c = collector();
    await cch.consume(q, c.onMessage);
    await settle(() => c.messages.length, 3);
    cch.ack(c.messages[1]!);
    expect(await cch.recover()).toEqual({});
    await settle(() => c.messages.length, 5);
    expect(c.messages.map((m) => [m.content.toString(), m.fields.deliveryTag, m.fields.redelivered])).toEqual([
      ['m0', 1, false],
      ['m1', 2, false],
      ['m2', 3, false],
      ['m0', 4, true],
      ['m2', 5, true],
    ]);
    // The old tags are gone.
    cch.ack(c.messages[3]!);
    cch.ack(c.messages[4]!);
    await cch.checkQueue(q);
    expect(cch.errors).toEqual([]);
    expect(await ch.checkQueue(q)).toEqual({ queue: q, messageCount: 0, consumerCount: 1 });
  });

  it('requeue=true also puts back messages taken with basic.get', async () => {
    const conn = await h.connect();
    const ch = await h.channel(conn);
    const q = await filledQueue(ch, 2);
    const cch = await h.channel(conn);
    const m = await cch.get(q);
    expect(m && m.content.toString()).toBe('m0');
    await cch.recover();
    await waitFor(async () => (await ch.checkQueue(q)).messageCount === 2, 'the requeue');
    const again = await ch.get(q, { noAck: true });
    expect(again && [again.content.toString(), again.fields.redelivered]).toEqual(['m0', true]);
  });
});

describe('not implemented by RabbitMQ (raw socket)', () => {
  async function raw(): Promise<RawClient> {
    const c = await RawClient.handshake(h.port);
    h.cleanup(() => c.destroy());
    await c.openChannel(1);
    return c;
  }

  it('basic.recover with requeue=false is 540 NOT_IMPLEMENTED', async () => {
    const c = await raw();
    c.send(1, { id: M.BASIC_RECOVER, requeue: false });
    expect(await c.expectConnectionClose()).toEqual({
      id: M.CONNECTION_CLOSE,
      replyCode: 540,
      replyText: 'NOT_IMPLEMENTED - requeue=false',
      classId: 60,
      methodId: 110,
    });
    c.send(0, { id: M.CONNECTION_CLOSE_OK });
    await c.waitClosed();
  });

  it('basic.qos with a prefetch-size is 540 NOT_IMPLEMENTED', async () => {
    const c = await raw();
    c.send(1, { id: M.BASIC_QOS, prefetchSize: 1000, prefetchCount: 0, global: false });
    expect(await c.expectConnectionClose()).toEqual({
      id: M.CONNECTION_CLOSE,
      replyCode: 540,
      replyText: 'NOT_IMPLEMENTED - prefetch_size!=0 (1000)',
      classId: 60,
      methodId: 10,
    });
    c.send(0, { id: M.CONNECTION_CLOSE_OK });
    await c.waitClosed();
  });
});
