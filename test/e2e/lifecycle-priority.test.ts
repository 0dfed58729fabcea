// Priority queues end to end: x-max-priority (1..255) delivers higher priorities first and keeps
// FIFO within a priority, a priority above the maximum counts as the maximum (the property itself
// is delivered unchanged), a queue without x-max-priority ignores priorities, requeued messages go
// back to their place, and invalid x-max-priority values are refused with RabbitMQ's texts
// (REFERENCE.md B10). Every expectation is RabbitMQ 3.10's.

import { describe, expect, it } from 'vitest';
import { bodiesOf, getAll, collector, rejection, waitFor, useBroker, type Connection } from '../support/harness.js';

const h = useBroker();

/** Publishes [body, priority?] pairs on a confirm channel and waits for the confirms. */
async function publishAll(conn: Connection, q: string, list: [string, number | undefined][]): Promise<void> {
  const pub = await conn.createConfirmChannel();
  for (const [body, priority] of list) pub.sendToQueue(q, Buffer.from(body), priority === undefined ? {} : { priority });
  await pub.waitForConfirms();
  await pub.close();
}

const drain = getAll;
const bodies = bodiesOf;

describe('x-max-priority', () => {
  it('higher priorities are delivered first, FIFO within a priority; no priority counts as 0', async () => {
    const conn = await h.connect();
    const ch = await h.channel(conn);
    const q = h.queue('pri-q');
    await ch.assertQueue(q, { durable: false, arguments: { 'x-max-priority': 10 } });
    await publishAll(conn, q, [
      ['p1-a', 1],
      ['p5-a', 5],
      ['none-a', undefined],
      ['p10-a', 10],
      ['p5-b', 5],
      ['p0-a', 0],
      ['p1-b', 1],
      ['p10-b', 10],
      ['none-b', undefined],
    ]);
    expect(await ch.checkQueue(q)).toMatchObject({ messageCount: 9 });
    expect(bodies(await drain(ch, q))).toEqual(['p10-a', 'p10-b', 'p5-a', 'p5-b', 'p1-a', 'p1-b', 'none-a', 'p0-a', 'none-b']);
  });

  it('a consumer receives in priority order what was queued before it attached', async () => {
    const conn = await h.connect();
    const ch = await h.channel(conn);
    const q = h.queue('pri-q');
    await ch.assertQueue(q, { durable: false, arguments: { 'x-max-priority': 3 } });
    await publishAll(conn, q, [
      ['low', 0],
      ['mid', 2],
      ['high', 3],
      ['mid2', 2],
    ]);
    const c = collector();
    await ch.consume(q, c.onMessage, { noAck: true });
    await c.waitFor(4);
    expect(c.bodies()).toEqual(['high', 'mid', 'mid2', 'low']);
    expect(c.messages.map((m) => m.properties.priority)).toEqual([3, 2, 2, 0]);
  });

  it('a priority above the maximum is treated as the maximum; the property is delivered unchanged', async () => {
    const conn = await h.connect();
    const ch = await h.channel(conn);
    const q = h.queue('pri-q');
    await ch.assertQueue(q, { durable: false, arguments: { 'x-max-priority': 5 } });
    await publishAll(conn, q, [
      ['p4', 4],
      ['p9', 9],
      ['p5', 5],
      ['p7', 7],
      ['p255', 255],
    ]);
    const got = await drain(ch, q);
    expect(bodies(got)).toEqual(['p9', 'p5', 'p7', 'p255', 'p4']);
    expect(got.map((m) => m.properties.priority)).toEqual([9, 5, 7, 255, 4]);
  });

  it('x-max-priority 1: two levels', async () => {
    const conn = await h.connect();
    const ch = await h.channel(conn);
    const q = h.queue('pri-q');
    await ch.assertQueue(q, { durable: false, arguments: { 'x-max-priority': 1 } });
    await publishAll(conn, q, [
      ['a0', 0],
      ['b1', 1],
      ['c2', 2],
      ['d0', undefined],
    ]);
    expect(bodies(await drain(ch, q))).toEqual(['b1', 'c2', 'a0', 'd0']);
  });

  it('x-max-priority 255 is accepted and orders the full range', async () => {
    const conn = await h.connect();
    const ch = await h.channel(conn);
    const q = h.queue('pri-q');
    await ch.assertQueue(q, { durable: false, arguments: { 'x-max-priority': 255 } });
    await publishAll(conn, q, [
      ['p0', 0],
      ['p255', 255],
      ['p128', 128],
      ['p254', 254],
    ]);
    expect(bodies(await drain(ch, q))).toEqual(['p255', 'p254', 'p128', 'p0']);
  });

  it('a queue without x-max-priority (or with 0) ignores priorities: plain FIFO', async () => {
    const conn = await h.connect();
    const ch = await h.channel(conn);
    for (const args of [{}, { 'x-max-priority': 0 }]) {
      const q = h.queue('pri-fifo');
      await ch.assertQueue(q, { durable: false, arguments: args });
      await publishAll(conn, q, [
        ['a', 0],
        ['b', 9],
        ['c', 5],
      ]);
      expect(bodies(await drain(ch, q))).toEqual(['a', 'b', 'c']);
    }
  });

  it('a requeued message goes back ahead of later messages of its priority', async () => {
    const conn = await h.connect();
    const ch = await h.channel(conn);
    const q = h.queue('pri-q');
    await ch.assertQueue(q, { durable: false, arguments: { 'x-max-priority': 5 } });
    await publishAll(conn, q, [
      ['h1', 5],
      ['h2', 5],
      ['l1', 1],
    ]);
    const first = await waitFor(() => ch.get(q, { noAck: false }), 'h1');
    expect(first.content.toString()).toBe('h1');
    await publishAll(conn, q, [['h3', 5]]);
    ch.nack(first, false, true);
    const got = await drain(ch, q);
    expect(bodies(got)).toEqual(['h1', 'h2', 'h3', 'l1']);
    expect(got.map((m) => m.fields.redelivered)).toEqual([true, false, false, false]);
  });

  it('priorities also order messages that wait behind a consumer at its prefetch limit', async () => {
    const conn = await h.connect();
    const ch = await h.channel(conn);
    const q = h.queue('pri-q');
    await ch.assertQueue(q, { durable: false, arguments: { 'x-max-priority': 9 } });
    await ch.prefetch(1);
    const c = collector((m) => {
      if (c.messages.length > 1) ch.ack(m);
    });
    await ch.consume(q, c.onMessage, { noAck: false });
    await publishAll(conn, q, [['first', 0]]);
    await c.waitFor(1);
    // 'first' stays unacked: these queue up behind it and must come out by priority.
    await publishAll(conn, q, [
      ['l', 1],
      ['m', 5],
      ['h', 9],
      ['m2', 5],
    ]);
    expect(c.messages.length).toBe(1);
    ch.ack(c.messages[0]!);
    await c.waitFor(5);
    expect(c.bodies()).toEqual(['first', 'h', 'm', 'm2', 'l']);
  });
});

describe('x-max-priority validation (406, 50/10)', () => {
  it.each([
    [256, '{max_value_exceeded,256}'],
    [300, '{max_value_exceeded,300}'],
    [-1, '{value_negative,-1}'],
    ['5', '"expected integer, got longstr"'],
    [2.5, '"expected integer, got double"'],
  ])('x-max-priority %j: %s', async (value, reason) => {
    const ch = await h.channel();
    const q = h.queue('pri-bad');
    expect(await rejection(ch.assertQueue(q, { durable: false, arguments: { 'x-max-priority': value } }))).toMatchObject({
      code: 406,
      text: `PRECONDITION_FAILED - invalid arg 'x-max-priority' for queue '${q}' in vhost '/': ${reason}`,
      classId: 50,
      methodId: 10,
    });
  });

  it('redeclaring with another x-max-priority is 406 inequivalent arg', async () => {
    const ch = await h.channel();
    const q = h.queue('pri-re');
    await ch.assertQueue(q, { durable: false, arguments: { 'x-max-priority': 5 } });
    expect(await rejection(ch.assertQueue(q, { durable: false, arguments: { 'x-max-priority': 6 } }))).toMatchObject({
      code: 406,
      text: `PRECONDITION_FAILED - inequivalent arg 'x-max-priority' for queue '${q}' in vhost '/': received '6' but current is '5'`,
    });
  });
});
