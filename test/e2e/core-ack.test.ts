// basic.ack / basic.nack / basic.reject end to end: multiple, requeue and its position, unknown
// delivery tags, requeue of unacked messages when a channel or connection closes, cancel leaving
// messages unacked. Every expectation here is RabbitMQ's.

import { describe, expect, it } from 'vitest';
import * as M from '../../src/protocol/generated/amqp.js';
import { RawClient } from '../support/raw-client.js';
import { bodiesAndRedelivered, collector, getAll, getN, QUIET_MS, sleep, waitFor, useBroker, type Channel, type GetMessage } from '../support/harness.js';

const h = useBroker();

const filledQueue = h.filledQueue;

/** Drains a queue with basic.get no-ack: [body, redelivered] in order. */
const drain = async (ch: Channel, q: string): Promise<[string, boolean][]> => bodiesAndRedelivered(await getAll(ch, q));

describe('basic.ack', () => {
  it('single ack removes one message; multiple acks everything up to the tag', async () => {
    const conn = await h.connect();
    const ch = await h.channel(conn);
    const q = await filledQueue(ch, 6);
    const c = collector();
    const cch = await h.channel(conn);
    await cch.consume(q, c.onMessage);
    await c.waitFor(6);
    cch.ack(c.messages[1]!); // m1
    cch.ack(c.messages[3]!, true); // m0, m2, m3
    await sleep(QUIET_MS);
    await cch.close(); // m4, m5 go back
    expect(await drain(ch, q)).toEqual([
      ['m4', true],
      ['m5', true],
    ]);
  });

  it('ack multiple with tag 0 (ackAll) acks every outstanding delivery', async () => {
    const conn = await h.connect();
    const ch = await h.channel(conn);
    const q = await filledQueue(ch, 4);
    const cch = await h.channel(conn);
    await getN(cch, q, 4);
    cch.ackAll();
    await cch.close();
    await sleep(QUIET_MS);
    expect(await ch.checkQueue(q)).toEqual({ queue: q, messageCount: 0, consumerCount: 0 });
  });

  it('an unknown delivery tag is 406 PRECONDITION_FAILED', async () => {
    const conn = await h.connect();
    const ch = await h.channel(conn);
    const q = await filledQueue(ch, 1);
    const cch = await h.channel(conn);
    const [m] = await getN(cch, q, 1);
    cch.ack({ ...m!, fields: { ...m!.fields, deliveryTag: 42 } } as GetMessage);
    expect(await h.firstError(cch)).toEqual(
      expect.objectContaining({ code: 406, text: 'PRECONDITION_FAILED - unknown delivery tag 42', classId: 60, methodId: 80 }),
    );
    expect(conn.closed).toBe(false);
    // The message held by the closed channel is back.
    expect(await drain(ch, q)).toEqual([['m0', true]]);
  });

  it('acking twice is 406 unknown delivery tag', async () => {
    const conn = await h.connect();
    const ch = await h.channel(conn);
    const q = await filledQueue(ch, 2);
    const cch = await h.channel(conn);
    const [m0] = await getN(cch, q, 2);
    cch.ack(m0!);
    cch.ack(m0!);
    expect(await h.firstError(cch)).toMatchObject({ code: 406, text: 'PRECONDITION_FAILED - unknown delivery tag 1', classId: 60, methodId: 80 });
    expect(await drain(ch, q)).toEqual([['m1', true]]);
  });

  it('acking multiple up to a tag already acked is 406', async () => {
    const conn = await h.connect();
    const ch = await h.channel(conn);
    const q = await filledQueue(ch, 3);
    const cch = await h.channel(conn);
    const ms = await getN(cch, q, 3);
    cch.ack(ms[1]!);
    cch.ack(ms[1]!, true);
    expect(await h.firstError(cch)).toMatchObject({ code: 406, text: 'PRECONDITION_FAILED - unknown delivery tag 2' });
  });

  it('a delivery tag from another channel is unknown on this one', async () => {
    const conn = await h.connect();
    const ch = await h.channel(conn);
    const q = await filledQueue(ch, 2);
    const a = await h.channel(conn);
    const b = await h.channel(conn);
    await getN(a, q, 1);
    const [mb] = await getN(b, q, 1);
    expect(mb!.fields.deliveryTag).toBe(1);
    a.ack({ ...mb!, fields: { ...mb!.fields, deliveryTag: 2 } } as GetMessage);
    expect(await h.firstError(a)).toMatchObject({ code: 406, text: 'PRECONDITION_FAILED - unknown delivery tag 2' });
  });
});

describe('delivery tag 0', () => {
  it('ack/nack multiple with tag 0 and nothing outstanding are fine; ack and reject of tag 0 alone are 406', async () => {
    const c = await RawClient.handshake(h.port);
    h.cleanup(() => c.destroy());
    for (const n of [1, 2, 3]) await c.openChannel(n);
    c.send(1, { id: M.BASIC_ACK, deliveryTag: 0, multiple: true });
    c.send(1, { id: M.BASIC_NACK, deliveryTag: 0, multiple: true, requeue: true });
    c.send(2, { id: M.BASIC_ACK, deliveryTag: 0, multiple: false });
    c.send(3, { id: M.BASIC_REJECT, deliveryTag: 0, requeue: true });
    expect(await c.expectChannelClose(2)).toEqual({
      id: M.CHANNEL_CLOSE,
      replyCode: 406,
      replyText: 'PRECONDITION_FAILED - unknown delivery tag 0',
      classId: 60,
      methodId: 80,
    });
    expect(await c.expectChannelClose(3)).toEqual({
      id: M.CHANNEL_CLOSE,
      replyCode: 406,
      replyText: 'PRECONDITION_FAILED - unknown delivery tag 0',
      classId: 60,
      methodId: 90,
    });
    // Channel 1 is still open.
    c.send(1, { id: M.BASIC_QOS, prefetchSize: 0, prefetchCount: 1, global: false });
    await c.waitForMethod(M.BASIC_QOS_OK, 1);
    expect(c.frames.filter((f) => f.channel === 1 && f.method)).toEqual([]);
  });
});

describe('basic.nack / basic.reject', () => {
  it('reject with requeue puts the message back at its original position (the head), redelivered', async () => {
    const conn = await h.connect();
    const ch = await h.channel(conn);
    const q = await filledQueue(ch, 4);
    const cch = await h.channel(conn);
    const [m0] = await getN(cch, q, 1);
    cch.reject(m0!, true);
    await waitFor(async () => (await ch.checkQueue(q)).messageCount === 4, 'the requeue');
    expect(await drain(ch, q)).toEqual([
      ['m0', true],
      ['m1', false],
      ['m2', false],
      ['m3', false],
    ]);
  });

  it('requeued messages return to their original positions regardless of the order they are rejected in', async () => {
    const conn = await h.connect();
    const ch = await h.channel(conn);
    const q = await filledQueue(ch, 6);
    const cch = await h.channel(conn);
    const ms = await getN(cch, q, 4); // m0..m3 unacked, m4 m5 ready
    cch.reject(ms[2]!, true);
    cch.nack(ms[0]!, false, true);
    cch.ack(ms[1]!);
    cch.reject(ms[3]!, true);
    await waitFor(async () => (await ch.checkQueue(q)).messageCount === 5, 'the requeue');
    expect(await drain(ch, q)).toEqual([
      ['m0', true],
      ['m2', true],
      ['m3', true],
      ['m4', false],
      ['m5', false],
    ]);
  });

  it('nack multiple with requeue requeues everything up to the tag, in order, ahead of the rest', async () => {
    const conn = await h.connect();
    const ch = await h.channel(conn);
    const q = await filledQueue(ch, 5);
    const cch = await h.channel(conn);
    const ms = await getN(cch, q, 4);
    cch.nack(ms[2]!, true, true); // m0 m1 m2
    await waitFor(async () => (await ch.checkQueue(q)).messageCount === 4, 'the requeue');
    cch.ack(ms[3]!);
    await sleep(QUIET_MS);
    expect(await drain(ch, q)).toEqual([
      ['m0', true],
      ['m1', true],
      ['m2', true],
      ['m4', false],
    ]);
  });

  it('nack / reject without requeue drop the messages', async () => {
    const conn = await h.connect();
    const ch = await h.channel(conn);
    const q = await filledQueue(ch, 5);
    const cch = await h.channel(conn);
    const ms = await getN(cch, q, 4);
    cch.reject(ms[0]!, false);
    cch.nack(ms[2]!, true, false); // m1 m2
    await cch.close(); // m3 back
    expect(await drain(ch, q)).toEqual([
      ['m3', true],
      ['m4', false],
    ]);
  });

  it('nackAll(requeue) requeues every outstanding delivery', async () => {
    const conn = await h.connect();
    const ch = await h.channel(conn);
    const q = await filledQueue(ch, 3);
    const cch = await h.channel(conn);
    await getN(cch, q, 3);
    cch.nackAll(true);
    await waitFor(async () => (await ch.checkQueue(q)).messageCount === 3, 'the requeue');
    expect(await drain(ch, q)).toEqual([
      ['m0', true],
      ['m1', true],
      ['m2', true],
    ]);
  });

  it('nack and reject of an unknown tag are 406', async () => {
    const conn = await h.connect();
    const ch = await h.channel(conn);
    const q = await filledQueue(ch, 2);
    const a = await h.channel(conn);
    const [m] = await getN(a, q, 1);
    a.nack({ ...m!, fields: { ...m!.fields, deliveryTag: 7 } } as GetMessage, false, true);
    expect(await h.firstError(a)).toMatchObject({ code: 406, text: 'PRECONDITION_FAILED - unknown delivery tag 7', classId: 60, methodId: 120 });
    const b = await h.channel(conn);
    const [m2] = await getN(b, q, 1);
    b.reject({ ...m2!, fields: { ...m2!.fields, deliveryTag: 9 } } as GetMessage, true);
    expect(await h.firstError(b)).toMatchObject({ code: 406, text: 'PRECONDITION_FAILED - unknown delivery tag 9', classId: 60, methodId: 90 });
  });

  it('a consumer that nacks with requeue gets the message back first, redelivered, with a new tag', async () => {
    const conn = await h.connect();
    const ch = await h.channel(conn);
    const q = await filledQueue(ch, 3);
    const cch = await h.channel(conn);
    await cch.prefetch(3);
    let nacked = false;
    const c = collector((m) => {
      if (!nacked) {
        nacked = true;
        cch.nack(m, false, true);
      }
    });
    await cch.consume(q, c.onMessage);
    await c.waitFor(4);
    await sleep(QUIET_MS);
    expect(c.messages.map((m) => [m.content.toString(), m.fields.deliveryTag, m.fields.redelivered])).toEqual([
      ['m0', 1, false],
      ['m1', 2, false],
      ['m2', 3, false],
      ['m0', 4, true],
    ]);
  });
});

describe('requeue on close', () => {
  it('unacked messages are requeued in their original order when the channel closes', async () => {
    const conn = await h.connect();
    const ch = await h.channel(conn);
    const q = await filledQueue(ch, 6);
    const cch = await h.channel(conn);
    const c = collector();
    await cch.prefetch(4);
    await cch.consume(q, c.onMessage);
    await c.waitFor(4);
    cch.ack(c.messages[1]!);
    await c.waitFor(5); // the freed prefetch slot brings m4
    await sleep(QUIET_MS);
    expect(c.bodies()).toEqual(['m0', 'm1', 'm2', 'm3', 'm4']);
    await cch.close();
    await waitFor(async () => (await ch.checkQueue(q)).messageCount === 5, 'the requeue');
    expect(await drain(ch, q)).toEqual([
      ['m0', true],
      ['m2', true],
      ['m3', true],
      ['m4', true],
      ['m5', false],
    ]);
  });

  it('messages requeued from two channels interleave back into their original order', async () => {
    const conn = await h.connect();
    const ch = await h.channel(conn);
    const q = h.queue();
    await ch.assertQueue(q, { durable: false });
    const a = await h.channel(conn);
    const b = await h.channel(conn);
    await a.prefetch(3);
    await b.prefetch(3);
    const ca = collector();
    const cb = collector();
    await a.consume(q, ca.onMessage);
    await b.consume(q, cb.onMessage);
    for (let i = 0; i < 8; i++) ch.sendToQueue(q, Buffer.from(`m${i}`));
    await ca.waitFor(3);
    await cb.waitFor(3);
    expect([ca.bodies(), cb.bodies()]).toEqual([
      ['m0', 'm2', 'm4'],
      ['m1', 'm3', 'm5'],
    ]);
    await b.close();
    await a.close();
    await waitFor(async () => (await ch.checkQueue(q)).messageCount === 8, 'the requeue');
    expect(await drain(ch, q)).toEqual([
      ['m0', true],
      ['m1', true],
      ['m2', true],
      ['m3', true],
      ['m4', true],
      ['m5', true],
      ['m6', false],
      ['m7', false],
    ]);
  });

  it('unacked messages are requeued in their original order when the connection closes', async () => {
    const conn = await h.connect();
    const ch = await h.channel(conn);
    const q = await filledQueue(ch, 5);
    const consumerConn = await h.connect();
    const a = await h.channel(consumerConn);
    const b = await h.channel(consumerConn);
    await getN(a, q, 2); // m0 m1
    await getN(b, q, 2); // m2 m3
    await consumerConn.close();
    await waitFor(async () => (await ch.checkQueue(q)).messageCount === 5, 'the requeue');
    expect(await drain(ch, q)).toEqual([
      ['m0', true],
      ['m1', true],
      ['m2', true],
      ['m3', true],
      ['m4', false],
    ]);
  });

  it('messages of a deleted queue can still be acked or nacked (no error)', async () => {
    const conn = await h.connect();
    const ch = await h.channel(conn);
    const q = h.queue();
    await ch.assertQueue(q, { durable: false });
    const cch = await h.channel(conn);
    const c = collector();
    await cch.consume(q, c.onMessage);
    ch.sendToQueue(q, Buffer.from('a'));
    ch.sendToQueue(q, Buffer.from('b'));
    await c.waitFor(2);
    await ch.deleteQueue(q);
    await waitFor(() => c.cancelled, 'the server cancel');
    cch.ack(c.messages[0]!);
    cch.nack(c.messages[1]!, false, true);
    await cch.checkExchange('amq.direct');
    await sleep(QUIET_MS);
    expect(cch.errors).toEqual([]);
    expect(cch.closed).toBe(false);
  });

  it('basic.cancel leaves delivered messages unacked, and they can still be acked', async () => {
    const conn = await h.connect();
    const ch = await h.channel(conn);
    const q = await filledQueue(ch, 4);
    const cch = await h.channel(conn);
    const c = collector();
    await cch.prefetch(3);
    const { consumerTag } = await cch.consume(q, c.onMessage);
    await c.waitFor(3);
    await cch.cancel(consumerTag);
    expect(await ch.checkQueue(q)).toEqual({ queue: q, messageCount: 1, consumerCount: 0 });
    cch.ack(c.messages[0]!);
    cch.reject(c.messages[1]!, true);
    // A round trip on the channel shows it is still open (no unknown-tag error).
    await cch.checkQueue(q);
    expect(cch.errors).toEqual([]);
    await waitFor(async () => (await ch.checkQueue(q)).messageCount === 2, 'the reject');
    await cch.close(); // m2 back
    expect(await drain(ch, q)).toEqual([
      ['m1', true],
      ['m2', true],
      ['m3', false],
    ]);
  });
});
