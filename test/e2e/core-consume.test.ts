// basic.consume / basic.cancel end to end: consumer tags, exclusive consumers, no-ack,
// round-robin, per-channel delivery tags, the redelivered flag, and a slow consumer that must not
// hold up anyone else. Every expectation here is RabbitMQ's (except the slow-consumer test, which
// only means something for Warren and is skipped against an external broker).

import amqp from 'amqplib';
import { describe, expect, it } from 'vitest';
import * as M from '../../src/protocol/generated/amqp.js';
import { RawClient } from '../support/raw-client.js';
import { collector, EXTERNAL, rejection, waitFor, useBroker } from '../support/harness.js';

const h = useBroker();

describe('consumer tags', () => {
  it("a server-generated tag is 'amq.ctag-' and 22 characters, unique per consumer", async () => {
    const ch = await h.channel();
    const q = h.queue();
    await ch.assertQueue(q, { durable: false });
    const a = await ch.consume(q, () => {});
    const b = await ch.consume(q, () => {});
    expect(a.consumerTag).toMatch(/^amq\.ctag-[A-Za-z0-9_-]{22}$/);
    expect(b.consumerTag).toMatch(/^amq\.ctag-[A-Za-z0-9_-]{22}$/);
    expect(a.consumerTag).not.toBe(b.consumerTag);
  });

  it('a client-chosen tag is echoed in consume-ok, deliveries and cancel-ok', async () => {
    const conn = await h.connect();
    const ch = await h.channel(conn);
    const q = h.queue();
    await ch.assertQueue(q, { durable: false });
    const c = collector();
    expect(await ch.consume(q, c.onMessage, { consumerTag: 'my-tag', noAck: true })).toEqual({ consumerTag: 'my-tag' });
    ch.sendToQueue(q, Buffer.from('x'));
    const [m] = await c.waitFor(1);
    expect(m!.fields.consumerTag).toBe('my-tag');
    expect(await ch.cancel('my-tag')).toEqual({ consumerTag: 'my-tag' });
  });

  it('reusing a tag on the same channel is 530 NOT_ALLOWED and closes the connection', async () => {
    const conn = await h.connect();
    const ch = await h.channel(conn);
    const q = h.queue();
    await ch.assertQueue(q, { durable: false });
    await ch.consume(q, () => {}, { consumerTag: 'dup' });
    ch.consume(q, () => {}, { consumerTag: 'dup' }).catch(() => {});
    expect(await h.firstError(conn)).toMatchObject({
      code: 530,
      text: "NOT_ALLOWED - attempt to reuse consumer tag 'dup'",
    });
    await waitFor(() => conn.closed, 'the connection to close');
  });

  it('reusing a tag: the connection.close names basic.consume (raw socket)', async () => {
    const c = await RawClient.handshake(h.port);
    h.cleanup(() => c.destroy());
    await c.openChannel(1);
    const q = h.queue();
    c.send(1, { id: M.QUEUE_DECLARE, reserved1: 0, queue: q, passive: false, durable: false, exclusive: false, autoDelete: false, noWait: false, arguments: {} });
    await c.waitForMethod(M.QUEUE_DECLARE_OK, 1);
    const consume = { id: M.BASIC_CONSUME, reserved1: 0, queue: q, consumerTag: 'dup', noLocal: false, noAck: false, exclusive: false, noWait: false, arguments: {} } as const;
    c.send(1, consume);
    await c.waitForMethod(M.BASIC_CONSUME_OK, 1);
    c.send(1, consume);
    expect(await c.expectConnectionClose()).toEqual({
      id: M.CONNECTION_CLOSE,
      replyCode: 530,
      replyText: "NOT_ALLOWED - attempt to reuse consumer tag 'dup'",
      classId: 60,
      methodId: 20,
    });
    c.send(0, { id: M.CONNECTION_CLOSE_OK });
    await c.waitClosed();
  });

  it('the same tag on two channels is fine', async () => {
    const conn = await h.connect();
    const q = h.queue();
    const ch1 = await h.channel(conn);
    const ch2 = await h.channel(conn);
    await ch1.assertQueue(q, { durable: false });
    await ch1.consume(q, () => {}, { consumerTag: 'same' });
    await ch2.consume(q, () => {}, { consumerTag: 'same' });
    expect(await ch1.checkQueue(q)).toMatchObject({ consumerCount: 2 });
  });

  it('a tag can be reused after its consumer was cancelled', async () => {
    const ch = await h.channel();
    const q = h.queue();
    await ch.assertQueue(q, { durable: false });
    await ch.consume(q, () => {}, { consumerTag: 'again' });
    await ch.cancel('again');
    expect(await ch.consume(q, () => {}, { consumerTag: 'again' })).toEqual({ consumerTag: 'again' });
  });
});

describe('basic.consume', () => {
  it('on a missing queue is 404', async () => {
    const ch = await h.channel();
    const q = h.queue('missing');
    expect(await rejection(ch.consume(q, () => {}))).toMatchObject({
      code: 404,
      text: `NOT_FOUND - no queue '${q}' in vhost '/'`,
      classId: 60,
      methodId: 20,
    });
  });

  it('an exclusive consumer refuses a second consumer with 403', async () => {
    const conn = await h.connect();
    const ch = await h.channel(conn);
    const q = h.queue();
    await ch.assertQueue(q, { durable: false });
    await ch.consume(q, () => {}, { exclusive: true });
    const other = await h.channel(await h.connect());
    expect(await rejection(other.consume(q, () => {}))).toMatchObject({
      code: 403,
      text: `ACCESS_REFUSED - queue '${q}' in vhost '/' in exclusive use`,
      classId: 60,
      methodId: 20,
    });
    const same = await h.channel(conn);
    expect(await rejection(same.consume(q, () => {}, { exclusive: true }))).toMatchObject({
      code: 403,
      text: `ACCESS_REFUSED - queue '${q}' in vhost '/' in exclusive use`,
    });
  });

  it('an exclusive consume on a queue that already has a consumer is 403', async () => {
    const conn = await h.connect();
    const ch = await h.channel(conn);
    const q = h.queue();
    await ch.assertQueue(q, { durable: false });
    await ch.consume(q, () => {});
    const ch2 = await h.channel(conn);
    expect(await rejection(ch2.consume(q, () => {}, { exclusive: true }))).toMatchObject({
      code: 403,
      text: `ACCESS_REFUSED - queue '${q}' in vhost '/' in exclusive use`,
      classId: 60,
      methodId: 20,
    });
  });

  it('after the exclusive consumer is cancelled others may consume', async () => {
    const conn = await h.connect();
    const ch = await h.channel(conn);
    const q = h.queue();
    await ch.assertQueue(q, { durable: false });
    const { consumerTag } = await ch.consume(q, () => {}, { exclusive: true });
    await ch.cancel(consumerTag);
    await ch.consume(q, () => {});
    await ch.consume(q, () => {});
    expect(await ch.checkQueue(q)).toMatchObject({ consumerCount: 2 });
  });

  it('no-ack: messages are delivered once and leave the queue; acking one is an unknown tag', async () => {
    const conn = await h.connect();
    const ch = await h.channel(conn);
    const q = h.queue();
    await ch.assertQueue(q, { durable: false });
    const c = collector();
    await ch.consume(q, c.onMessage, { noAck: true });
    for (let i = 0; i < 5; i++) ch.sendToQueue(q, Buffer.from(`m${i}`));
    await c.waitFor(5);
    expect(c.messages.map((m) => [m.content.toString(), m.fields.deliveryTag, m.fields.redelivered])).toEqual([
      ['m0', 1, false],
      ['m1', 2, false],
      ['m2', 3, false],
      ['m3', 4, false],
      ['m4', 5, false],
    ]);
    expect(await ch.checkQueue(q)).toEqual({ queue: q, messageCount: 0, consumerCount: 1 });
    ch.ack(c.messages[0]!);
    expect(await h.firstError(ch)).toMatchObject({ code: 406, text: 'PRECONDITION_FAILED - unknown delivery tag 1', classId: 60, methodId: 80 });
  });

  it('messages already in the queue are delivered on consume, in order', async () => {
    const conn = await h.connect();
    const ch = await h.channel(conn);
    const q = h.queue();
    await ch.assertQueue(q, { durable: false });
    for (let i = 0; i < 20; i++) ch.sendToQueue(q, Buffer.from(`m${i}`));
    await waitFor(async () => (await ch.checkQueue(q)).messageCount === 20, '20 messages');
    const c = collector();
    await ch.consume(q, c.onMessage, { noAck: true });
    await c.waitFor(20);
    expect(c.bodies()).toEqual(Array.from({ length: 20 }, (_, i) => `m${i}`));
  });
});

describe('basic.cancel', () => {
  it('stops deliveries; later messages stay in the queue', async () => {
    const conn = await h.connect();
    const ch = await h.channel(conn);
    const q = h.queue();
    await ch.assertQueue(q, { durable: false });
    const c = collector();
    const { consumerTag } = await ch.consume(q, c.onMessage, { noAck: true });
    ch.sendToQueue(q, Buffer.from('before'));
    await c.waitFor(1);
    expect(await ch.cancel(consumerTag)).toEqual({ consumerTag });
    ch.sendToQueue(q, Buffer.from('after'));
    await waitFor(async () => (await ch.checkQueue(q)).messageCount === 1, 'the message to stay');
    expect(await ch.checkQueue(q)).toEqual({ queue: q, messageCount: 1, consumerCount: 0 });
    expect(c.bodies()).toEqual(['before']);
    expect(c.cancelled).toBe(false); // a client cancel does not call back with null
  });

  it('cancelling an unknown tag is answered with cancel-ok', async () => {
    const ch = await h.channel();
    expect(await ch.cancel('no-such-consumer')).toEqual({ consumerTag: 'no-such-consumer' });
    await ch.checkExchange('amq.direct');
  });
});

describe('distribution', () => {
  it('round-robin across 3 consumers of one queue: exact distribution', async () => {
    const conn = await h.connect();
    const ch = await h.channel(conn);
    const q = h.queue();
    await ch.assertQueue(q, { durable: false });
    const cs = [collector(), collector(), collector()];
    for (const c of cs) {
      const cch = await h.channel(conn);
      await cch.consume(q, c.onMessage, { noAck: true });
    }
    for (let i = 0; i < 12; i++) ch.sendToQueue(q, Buffer.from(`m${i}`));
    await waitFor(() => cs.reduce((n, c) => n + c.messages.length, 0) === 12, '12 deliveries');
    expect(cs.map((c) => c.bodies())).toEqual([
      ['m0', 'm3', 'm6', 'm9'],
      ['m1', 'm4', 'm7', 'm10'],
      ['m2', 'm5', 'm8', 'm11'],
    ]);
  });

  it('round-robin across 3 consumers on one channel', async () => {
    const conn = await h.connect();
    const ch = await h.channel(conn);
    const q = h.queue();
    await ch.assertQueue(q, { durable: false });
    const cs = [collector(), collector(), collector()];
    for (const c of cs) await ch.consume(q, c.onMessage, { noAck: true });
    const pub = await h.channel(conn);
    for (let i = 0; i < 9; i++) pub.sendToQueue(q, Buffer.from(`m${i}`));
    await waitFor(() => cs.reduce((n, c) => n + c.messages.length, 0) === 9, '9 deliveries');
    expect(cs.map((c) => c.bodies())).toEqual([
      ['m0', 'm3', 'm6'],
      ['m1', 'm4', 'm7'],
      ['m2', 'm5', 'm8'],
    ]);
    // One delivery-tag sequence for the channel, in delivery order.
    const all = cs.flatMap((c) => c.messages).sort((a, b) => a.fields.deliveryTag - b.fields.deliveryTag);
    expect(all.map((m) => m.content.toString())).toEqual(Array.from({ length: 9 }, (_, i) => `m${i}`));
    expect(all.map((m) => m.fields.deliveryTag)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it('delivery tags start at 1 on every channel, independently', async () => {
    const conn = await h.connect();
    const setup = await h.channel(conn);
    const q1 = h.queue();
    const q2 = h.queue();
    await setup.assertQueue(q1, { durable: false });
    await setup.assertQueue(q2, { durable: false });
    const ch1 = await h.channel(conn);
    const ch2 = await h.channel(await h.connect());
    const c1 = collector();
    const c2 = collector();
    await ch1.consume(q1, c1.onMessage);
    await ch2.consume(q2, c2.onMessage);
    for (let i = 0; i < 3; i++) {
      setup.sendToQueue(q1, Buffer.from(`a${i}`));
      setup.sendToQueue(q2, Buffer.from(`b${i}`));
    }
    await c1.waitFor(3);
    await c2.waitFor(3);
    expect(c1.messages.map((m) => m.fields.deliveryTag)).toEqual([1, 2, 3]);
    expect(c2.messages.map((m) => m.fields.deliveryTag)).toEqual([1, 2, 3]);
  });

  it('the redelivered flag is set on a message that was requeued, and only on it', async () => {
    const conn = await h.connect();
    const ch = await h.channel(conn);
    const q = h.queue();
    await ch.assertQueue(q, { durable: false });
    let rejected = false;
    const c = collector((m) => {
      if (!rejected && m.content.toString() === 'm1') {
        rejected = true;
        ch.nack(m, false, true);
      } else {
        ch.ack(m);
      }
    });
    await ch.prefetch(1);
    await ch.consume(q, c.onMessage);
    for (let i = 0; i < 3; i++) ch.sendToQueue(q, Buffer.from(`m${i}`));
    await c.waitFor(4);
    expect(c.messages.map((m) => [m.content.toString(), m.fields.deliveryTag, m.fields.redelivered])).toEqual([
      ['m0', 1, false],
      ['m1', 2, false],
      ['m1', 3, true],
      ['m2', 4, false],
    ]);
  });
});

describe('slow consumer', () => {
  it.skipIf(EXTERNAL)(
    'a consumer that stops reading its socket does not hold up another connection or the publisher',
    { timeout: 120_000 },
    async () => {
      const conn = await h.connect();
      const setup = await h.channel(conn);
      const slowQ = h.queue('slow');
      const fastQ = h.queue('fast');
      await setup.assertQueue(slowQ, { durable: false });
      await setup.assertQueue(fastQ, { durable: false });

      // The slow consumer: no-ack, then it stops reading its socket.
      const slow = await RawClient.handshake(h.port);
      h.cleanup(() => slow.destroy());
      await slow.openChannel(1);
      slow.send(1, { id: M.BASIC_CONSUME, reserved1: 0, queue: slowQ, consumerTag: 'slow', noLocal: false, noAck: true, exclusive: false, noWait: false, arguments: {} });
      await slow.waitForMethod(M.BASIC_CONSUME_OK, 1);
      slow.socket.pause();

      // The healthy consumer on its own connection records how late each message arrives.
      const fastConn = await amqp.connect(h.url);
      h.cleanup(() => fastConn.close().catch(() => {}));
      const fastCh = await fastConn.createChannel();
      const latencies: number[] = [];
      await fastCh.consume(
        fastQ,
        (m) => {
          if (m) latencies.push(Date.now() - Number(m.content.toString()));
        },
        { noAck: true },
      );

      const pubConn = await amqp.connect(h.url);
      h.cleanup(() => pubConn.close().catch(() => {}));
      let blocked = false;
      pubConn.on('blocked', () => (blocked = true));
      const pub = await pubConn.createChannel();
      const payload = Buffer.alloc(10 * 1024, 0x61);
      const total = 20_000;
      const started = Date.now();
      let fastSent = 0;
      for (let i = 0; i < total; i++) {
        if (!pub.sendToQueue(slowQ, payload)) await new Promise((r) => pub.once('drain', r));
        if (i % 1000 === 0) {
          pub.sendToQueue(fastQ, Buffer.from(String(Date.now())));
          fastSent++;
        }
      }
      // A round trip on the publishing channel: the broker has read everything we sent.
      await pub.checkQueue(slowQ);
      const publishMs = Date.now() - started;
      await waitFor(() => latencies.length === fastSent, `${fastSent} fast messages (have ${latencies.length})`, 10_000);

      expect(blocked).toBe(false);
      expect(publishMs).toBeLessThan(60_000);
      // "Promptly": every fast message arrived within 2 s of being published, while the broker
      // was busy taking 200 MB for a consumer that reads nothing.
      expect(Math.max(...latencies)).toBeLessThan(2000);
      // And the slow consumer really was held back: most of the messages are still queued.
      const { messageCount } = await setup.checkQueue(slowQ);
      expect(messageCount).toBeGreaterThan(total / 2);
      slow.destroy();
      await setup.deleteQueue(slowQ);
    },
  );
});
