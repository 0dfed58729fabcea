// Publishing and getting messages over the HTTP API (the four ack modes), closing a connection
// with a reason, and the aliveness test. Runs against RabbitMQ too (WARREN_TEST_MGMT_URL +
// WARREN_TEST_AMQP_URL), which is where these expectations come from.

import { randomBytes } from 'node:crypto';
import amqp from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../support/wait.js';
import { enc, type ApiClient } from './api-client.js';
import { startMgmtTarget, type MgmtTarget } from './target.js';

let target: MgmtTarget;
let api: ApiClient;
let conn: amqp.ChannelModel;
let ch: amqp.Channel;
const suffix = randomBytes(4).toString('hex');
const names: string[] = [];

function queueName(prefix: string): string {
  const n = `${prefix}-${suffix}`;
  names.push(n);
  return n;
}

beforeAll(async () => {
  target = await startMgmtTarget();
  api = target.api;
  conn = await amqp.connect(target.amqpUrl);
  ch = await conn.createChannel();
});

afterAll(async () => {
  for (const n of names) await ch.deleteQueue(n).catch(() => {});
  await conn?.close().catch(() => {});
  await target?.stop();
});

const publish = (routingKey: string, payload: string, properties: object = {}, exchange = 'amq.default') =>
  api.post(`/api/exchanges/%2F/${enc(exchange)}/publish`, { routing_key: routingKey, payload, payload_encoding: 'string', properties });

const getMessages = (queue: string, count: number, ackmode: string, extra: object = {}) =>
  api.post(`/api/queues/%2F/${enc(queue)}/get`, { count, ackmode, encoding: 'auto', ...extra });

describe('publish', () => {
  it('publishes with properties and says whether the message was routed', async () => {
    const q = queueName('pub');
    await ch.assertQueue(q, { durable: false });
    const r = await publish(q, 'hello', {
      delivery_mode: 2,
      priority: 3,
      headers: { a: [1, 'x'], b: { c: true } },
      content_type: 'text/plain',
      message_id: 'm1',
      timestamp: 1700000000,
    });
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ routed: true });
    expect((await publish(`nowhere-${suffix}`, 'x')).body).toEqual({ routed: false });
    const m = await ch.get(q, { noAck: true });
    expect(m).not.toBe(false);
    if (m === false) return;
    expect(m.content.toString()).toBe('hello');
    expect(m.properties).toMatchObject({ deliveryMode: 2, priority: 3, contentType: 'text/plain', messageId: 'm1', timestamp: 1700000000 });
    expect(m.properties.headers).toEqual({ a: [1, 'x'], b: { c: true } });
  });

  it('decodes base64 payloads and refuses what RabbitMQ refuses', async () => {
    const q = queueName('pub64');
    await ch.assertQueue(q, { durable: false });
    const r = await api.post(`/api/exchanges/%2F/amq.default/publish`, { routing_key: q, payload: 'aGVsbG8=', payload_encoding: 'base64', properties: {} });
    expect(r.body).toEqual({ routed: true });
    const m = await ch.get(q, { noAck: true });
    expect(m !== false && m.content.toString()).toBe('hello');
    const missing = await api.post(`/api/exchanges/%2F/amq.default/publish`, { routing_key: q, payload: 'x' });
    expect(missing.body).toEqual({ error: 'bad_request', reason: '[{key_missing,properties},{key_missing,payload_encoding}]' });
    const badEncoding = await api.post(`/api/exchanges/%2F/amq.default/publish`, { routing_key: q, payload: 'x', payload_encoding: 'bogus', properties: {} });
    expect(badEncoding.body).toEqual({ error: 'bad_request', reason: ['unsupported_encoding', 'bogus'] });
    const noExchange = await publish(q, 'x', {}, `nope-${suffix}`);
    expect(noExchange.status).toBe(400);
    expect(noExchange.body).toEqual({ error: 'bad_request', reason: `404 NOT_FOUND - no exchange 'nope-${suffix}' in vhost '/'` });
    const wrongUser = await publish(q, 'x', { user_id: 'bob' });
    expect(wrongUser.body).toEqual({
      error: 'bad_request',
      reason: "406 PRECONDITION_FAILED - user_id property set to 'bob' but authenticated user was 'guest'",
    });
    const badTtl = await publish(q, 'x', { expiration: 'abc' });
    expect(badTtl.body).toEqual({ error: 'bad_request', reason: "406 PRECONDITION_FAILED - invalid expiration 'abc': no_integer" });
  });
});

describe('get messages', () => {
  async function filled(prefix: string, options: amqp.Options.AssertQueue = {}): Promise<string> {
    const q = queueName(prefix);
    await ch.assertQueue(q, { durable: false, ...options });
    for (const body of ['one', 'two', 'three']) await publish(q, body);
    await waitFor(async () => (await api.get(`/api/queues/%2F/${q}`)).body.messages === 3, `${q} to hold 3`, 15_000);
    return q;
  }

  it('ack_requeue_true leaves the messages (marked redelivered) in order', async () => {
    const q = await filled('get-peek');
    const r = await getMessages(q, 2, 'ack_requeue_true');
    expect(r.status).toBe(200);
    expect(r.body).toEqual([
      { payload_bytes: 3, redelivered: false, exchange: '', routing_key: q, message_count: 2, properties: [], payload: 'one', payload_encoding: 'string' },
      { payload_bytes: 3, redelivered: false, exchange: '', routing_key: q, message_count: 1, properties: [], payload: 'two', payload_encoding: 'string' },
    ]);
    const again = await getMessages(q, 5, 'ack_requeue_true', { truncate: 2 });
    expect(again.body.map((m: { payload: string; redelivered: boolean }) => [m.payload, m.redelivered])).toEqual([
      ['on', true],
      ['tw', true],
      ['th', false],
    ]);
    expect(again.body[0].payload_bytes).toBe(3);
  });

  it('ack_requeue_false removes them', async () => {
    const q = await filled('get-ack');
    const r = await getMessages(q, 2, 'ack_requeue_false');
    expect(r.body.map((m: { payload: string }) => m.payload)).toEqual(['one', 'two']);
    const rest = await getMessages(q, 5, 'ack_requeue_false');
    expect(rest.body.map((m: { payload: string }) => m.payload)).toEqual(['three']);
    expect((await getMessages(q, 1, 'ack_requeue_false')).body).toEqual([]);
  });

  it('reject_requeue_true requeues; reject_requeue_false dead-letters', async () => {
    const dlq = queueName('get-dlq');
    await ch.assertQueue(dlq, { durable: false });
    const q = await filled('get-reject', { arguments: { 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': dlq } });
    const requeued = await getMessages(q, 1, 'reject_requeue_true');
    expect(requeued.body[0].payload).toBe('one');
    const rejected = await getMessages(q, 2, 'reject_requeue_false');
    expect(rejected.body.map((m: { payload: string; redelivered: boolean }) => [m.payload, m.redelivered])).toEqual([
      ['one', true],
      ['two', false],
    ]);
    const dead = await waitFor(async () => {
      const r = await getMessages(dlq, 5, 'ack_requeue_false');
      return r.body.length === 2 ? r.body : undefined;
    }, 'two dead-lettered messages', 15_000);
    expect(dead.map((m: { payload: string }) => m.payload)).toEqual(['one', 'two']);
    expect(dead[0].properties.headers['x-death'][0]).toMatchObject({ queue: q, reason: 'rejected', count: 1 });
  });

  it('refuses bad requests with RabbitMQ\'s texts', async () => {
    const q = queueName('get-bad');
    await ch.assertQueue(q, { durable: false });
    expect((await api.post(`/api/queues/%2F/${q}/get`, { count: 1, encoding: 'auto' })).body).toEqual({
      error: 'bad_request',
      reason: '[{key_missing,ackmode}]',
    });
    expect((await api.post(`/api/queues/%2F/${q}/get`, { count: 'x', ackmode: 'ack_requeue_true', encoding: 'auto' })).body).toEqual({
      error: 'bad_request',
      reason: ['not_integer', 'x'],
    });
    expect((await api.post(`/api/queues/%2F/${q}/get`, { count: 1, ackmode: 'ack_requeue_true', encoding: 'x' })).body).toEqual({
      error: 'bad_request',
      reason: 'Unsupported encoding. Please use auto or base64.',
    });
    const missing = await api.post(`/api/queues/%2F/nope-${suffix}/get`, { count: 1, ackmode: 'ack_requeue_true', encoding: 'auto' });
    expect(missing.status).toBe(404);
    expect(missing.body).toEqual({ error: 'not_found', reason: `NOT_FOUND - no queue 'nope-${suffix}' in vhost '/'` });
  });
});

describe('closing a connection', () => {
  it('closes with 320 and the X-Reason text', async () => {
    const name = `closing-${suffix}`;
    const victim = await amqp.connect(target.amqpUrl, { clientProperties: { connection_name: name } });
    victim.on('error', () => {});
    const closed = new Promise<Error>((resolve) => victim.on('close', (err: Error) => resolve(err)));
    const listed = await waitFor(async () => {
      const r = await api.get('/api/connections');
      return (r.body as { name: string; user_provided_name?: string }[]).find((c) => c.user_provided_name === name);
    }, 'the connection to be listed', 15_000);
    const r = await api.delete(`/api/connections/${enc(listed.name)}`, { 'X-Reason': 'maintenance window' });
    expect(r.status).toBe(204);
    const err = await closed;
    expect(err.message).toContain('CONNECTION_FORCED - maintenance window');
    expect((await api.delete('/api/connections/no-such-connection')).status).toBe(404);
  });
});

describe('aliveness test', () => {
  it('passes for a vhost, 404 for a missing one', async () => {
    expect((await api.get('/api/aliveness-test/%2F')).body).toEqual({ status: 'ok' });
    expect((await api.get('/api/aliveness-test/no-such-vhost')).status).toBe(404);
    await ch.deleteQueue('aliveness-test');
  });
});
