// A second opinion: a handful of the core scenarios again with @cloudamqp/amqp-client, whose
// codec and state machine are independent of amqplib's. Every expectation here is RabbitMQ's.

import { AMQPClient, type AMQPBaseClient, type AMQPMessage } from '@cloudamqp/amqp-client';
import { describe, expect, it } from 'vitest';
import { QUIET_MS, sleep, waitFor, useBroker } from '../support/harness.js';

const h = useBroker();

interface Client {
  conn: AMQPBaseClient;
  errors: string[];
}

async function client(): Promise<Client> {
  const amqp = new AMQPClient(h.url, undefined, null);
  const conn = await amqp.connect();
  const c: Client = { conn, errors: [] };
  conn.onerror = (e) => c.errors.push(e.message);
  h.cleanup(async () => {
    if (!conn.closed) await conn.close().catch(() => {});
  });
  return c;
}

/** Rejection of an operation, as the client reports it: 'channel N closed: TEXT (CODE)'. */
async function failure(p: Promise<unknown>): Promise<{ code: number; text: string }> {
  try {
    await p;
  } catch (e) {
    const m = /closed: (.*) \((\d+)\)$/s.exec((e as Error).message);
    if (!m) throw e;
    return { code: Number(m[2]), text: m[1]! };
  }
  throw new Error('expected the operation to fail');
}

const text = (m: AMQPMessage): string => m.bodyToString() ?? '';

describe('@cloudamqp/amqp-client', () => {
  it('publish and consume with every property and header type', async () => {
    const { conn } = await client();
    const ch = await conn.channel();
    const q = h.queue();
    await ch.queueDeclare(q, { durable: false });
    const got: AMQPMessage[] = [];
    await ch.basicConsume(q, { noAck: true }, (m) => {
      got.push(m);
    });
    const headers = {
      s: 'string ✓',
      i: -123456,
      l: 2 ** 40,
      big: 2n ** 60n,
      f: 1.5,
      t: true,
      nil: null,
      arr: ['a', 1, false, ['nested']],
      table: { inner: { deep: 'x' } },
      bytes: new Uint8Array([1, 2, 3]),
      ts: new Date(1700000000000),
    };
    const timestamp = new Date(1600000000000);
    await ch.basicPublish('', q, 'body with props', {
      contentType: 'text/plain',
      contentEncoding: 'utf-8',
      headers,
      deliveryMode: 2,
      priority: 4,
      correlationId: 'corr',
      replyTo: 'reply',
      expiration: '60000',
      messageId: 'mid',
      timestamp,
      type: 'kind',
      userId: 'guest',
      appId: 'app',
    });
    await waitFor(() => got.length === 1, 'the delivery');
    const m = got[0]!;
    expect(text(m)).toBe('body with props');
    expect(m.exchange).toBe('');
    expect(m.routingKey).toBe(q);
    expect(m.deliveryTag).toBe(1);
    expect(m.redelivered).toBe(false);
    expect(m.properties).toEqual({
      contentType: 'text/plain',
      contentEncoding: 'utf-8',
      headers: { ...headers, big: 2 ** 60, bytes: new Uint8Array([1, 2, 3]) },
      deliveryMode: 2,
      priority: 4,
      correlationId: 'corr',
      replyTo: 'reply',
      expiration: '60000',
      messageId: 'mid',
      timestamp,
      type: 'kind',
      userId: 'guest',
      appId: 'app',
    });
  });

  it('mandatory + unroutable comes back as basic.return 312 NO_ROUTE with body and properties', async () => {
    const { conn } = await client();
    const ch = await conn.channel();
    const x = h.exchange();
    await ch.exchangeDeclare(x, 'topic', { durable: false });
    const returned: AMQPMessage[] = [];
    ch.onReturn = (m) => returned.push(m);
    await ch.basicPublish(x, 'no.route', 'bounce', { messageId: 'r1', headers: { k: 'v' } }, true);
    await waitFor(() => returned.length === 1, 'the return');
    const r = returned[0]!;
    expect([r.replyCode, r.replyText, r.exchange, r.routingKey, text(r)]).toEqual([312, 'NO_ROUTE', x, 'no.route', 'bounce']);
    expect(r.properties).toMatchObject({ messageId: 'r1', headers: { k: 'v' } });
  });

  it('nack with requeue: requeued messages return to their original positions, redelivered', async () => {
    const { conn } = await client();
    const ch = await conn.channel();
    const q = h.queue();
    await ch.queueDeclare(q, { durable: false });
    for (let i = 0; i < 4; i++) await ch.basicPublish('', q, `m${i}`);
    await waitFor(async () => (await ch.queueDeclare(q, { passive: true })).messageCount === 4, '4 messages');
    // (this client's basicGet and basicConsume default to no-ack)
    const m0 = await ch.basicGet(q, { noAck: false });
    const m1 = await ch.basicGet(q, { noAck: false });
    const m2 = await ch.basicGet(q, { noAck: false });
    expect([m0, m1, m2].map((m) => m && [text(m), m.deliveryTag, m.messageCount])).toEqual([
      ['m0', 1, 3],
      ['m1', 2, 2],
      ['m2', 3, 1],
    ]);
    await m2!.nack(true);
    await m0!.nack(true);
    await m1!.ack();
    await waitFor(async () => (await ch.queueDeclare(q, { passive: true })).messageCount === 3, 'the requeue');
    const order = [];
    for (;;) {
      const m = await ch.basicGet(q, { noAck: true });
      if (!m) break;
      order.push([text(m), m.redelivered]);
    }
    expect(order).toEqual([
      ['m0', true],
      ['m2', true],
      ['m3', false],
    ]);
  });

  it('nack multiple with requeue from a consumer: all come back first, in order', async () => {
    const { conn } = await client();
    const ch = await conn.channel();
    const q = h.queue();
    await ch.queueDeclare(q, { durable: false });
    for (let i = 0; i < 3; i++) await ch.basicPublish('', q, `m${i}`);
    const got: AMQPMessage[] = [];
    await ch.basicQos(3);
    await ch.basicConsume(q, { noAck: false }, (m) => {
      got.push(m);
    });
    await waitFor(() => got.length === 3, '3 deliveries');
    await ch.basicNack(3, true, true);
    await waitFor(() => got.length === 6, '3 redeliveries');
    expect(got.map((m) => [text(m), m.deliveryTag, m.redelivered])).toEqual([
      ['m0', 1, false],
      ['m1', 2, false],
      ['m2', 3, false],
      ['m0', 4, true],
      ['m1', 5, true],
      ['m2', 6, true],
    ]);
  });

  it('exclusive queue: another connection gets 405 RESOURCE_LOCKED', async () => {
    const owner = await client();
    const och = await owner.conn.channel();
    const q = h.queue();
    await och.queueDeclare(q, { exclusive: true, durable: false });
    const other = await client();
    const locked = `RESOURCE_LOCKED - cannot obtain exclusive access to locked queue '${q}' in vhost '/'. It could be originally declared on another connection or the exclusive property value does not match that of the original declaration.`;
    expect(await failure((await other.conn.channel()).queueDeclare(q, { passive: true }))).toEqual({ code: 405, text: locked });
    expect(await failure((await other.conn.channel()).basicConsume(q, {}, () => {}))).toEqual({ code: 405, text: locked });
    expect(await failure((await other.conn.channel()).queuePurge(q))).toEqual({ code: 405, text: locked });
    expect(other.conn.closed).toBe(false);
    await owner.conn.close();
    await waitFor(async () => {
      const ch = await other.conn.channel();
      return ch.queueDeclare(q, { passive: true }).then(
        () => false,
        () => true,
      );
    }, 'the exclusive queue to go with its owner');
  });

  it('404 texts: passive declares and bind', async () => {
    const { conn } = await client();
    const q = h.queue('missing');
    const x = h.exchange('missing');
    expect(await failure((await conn.channel()).queueDeclare(q, { passive: true }))).toEqual({
      code: 404,
      text: `NOT_FOUND - no queue '${q}' in vhost '/'`,
    });
    expect(await failure((await conn.channel()).exchangeDeclare(x, 'direct', { passive: true }))).toEqual({
      code: 404,
      text: `NOT_FOUND - no exchange '${x}' in vhost '/'`,
    });
    expect(await failure((await conn.channel()).queueBind(q, 'amq.direct', 'k'))).toEqual({
      code: 404,
      text: `NOT_FOUND - no queue '${q}' in vhost '/'`,
    });
    expect(conn.closed).toBe(false);
  });

  it('publish to a missing exchange: the channel close carries 404 and the text', async () => {
    const c = await client();
    const ch = await c.conn.channel();
    const x = h.exchange('missing');
    const reasons: string[] = [];
    ch.onerror = (reason) => reasons.push(reason);
    await ch.basicPublish(x, 'k', 'lost');
    await waitFor(() => reasons.length === 1, 'the channel error');
    expect(reasons).toEqual([`channel ${ch.id} closed: NOT_FOUND - no exchange '${x}' in vhost '/' (404)`]);
  });

  it('unknown delivery tag is 406; consumer tag reuse is 530 and closes the connection', async () => {
    const c = await client();
    const ch = await c.conn.channel();
    const q = h.queue();
    await ch.queueDeclare(q, { durable: false });
    const reasons: string[] = [];
    ch.onerror = (reason) => reasons.push(reason);
    await ch.basicAck(5);
    await waitFor(() => reasons.length === 1, 'the channel error');
    expect(reasons).toEqual([`channel ${ch.id} closed: PRECONDITION_FAILED - unknown delivery tag 5 (406)`]);

    const ch2 = await c.conn.channel();
    await ch2.basicConsume(q, { tag: 'twice' }, () => {});
    const err = await ch2.basicConsume(q, { tag: 'twice' }, () => {}).then(
      () => null,
      (e: Error) => e.message,
    );
    expect(err).toBe("connection closed: NOT_ALLOWED - attempt to reuse consumer tag 'twice' (530)");
    await waitFor(() => c.conn.closed, 'the connection to close');
  });

  it('global prefetch is shared by two consumers on one channel', async () => {
    const { conn } = await client();
    const ch = await conn.channel();
    const q1 = h.queue();
    const q2 = h.queue();
    await ch.queueDeclare(q1, { durable: false });
    await ch.queueDeclare(q2, { durable: false });
    for (let i = 0; i < 4; i++) {
      await ch.basicPublish('', q1, `a${i}`);
      await ch.basicPublish('', q2, `b${i}`);
    }
    const cch = await conn.channel();
    await cch.basicQos(3, 0, true);
    let n = 0;
    await cch.basicConsume(q1, { noAck: false }, () => {
      n++;
    });
    await cch.basicConsume(q2, { noAck: false }, () => {
      n++;
    });
    await waitFor(() => n >= 3, '3 deliveries');
    await sleep(QUIET_MS);
    expect(n).toBe(3);
  });

  it('queue.delete cancels consumers: the consumer is closed by the server', async () => {
    const { conn } = await client();
    const ch = await conn.channel();
    const q = h.queue();
    await ch.queueDeclare(q, { durable: false });
    const other = await conn.channel();
    const consumer = await other.basicConsume(q, {}, () => {});
    expect((await ch.queueDelete(q)).messageCount).toBe(0);
    const closed = await consumer.wait(5000).then(
      () => 'resolved',
      (e: Error) => e.message,
    );
    expect(closed).toBe('Consumer cancelled by the server');
  });
});
