// The management API's read side, driven over HTTP with objects made by a real amqplib client:
// authentication answers, overview, connections (with the client's properties), channels,
// consumers, queues, exchanges, bindings in every path form, and RabbitMQ's listing parameters.
// Runs against RabbitMQ too (WARREN_TEST_MGMT_URL + WARREN_TEST_AMQP_URL): that is how the
// expectations were checked.

import { randomBytes } from 'node:crypto';
import amqp from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../support/wait.js';
import { enc, type ApiClient } from './api-client.js';
import { startMgmtTarget, type MgmtTarget } from './target.js';

let target: MgmtTarget;
let api: ApiClient;
let conn: amqp.ChannelModel;
const suffix = randomBytes(4).toString('hex');
const connectionName = `read-test-${suffix}`;
const q1 = `rq1-${suffix}`;
const q2 = `rq2-${suffix}`;
const ex = `rex-${suffix}`;

beforeAll(async () => {
  target = await startMgmtTarget();
  api = target.api;
  conn = await amqp.connect(target.amqpUrl, { clientProperties: { connection_name: connectionName } });
  const ch = await conn.createChannel();
  await ch.prefetch(7);
  await ch.assertExchange(ex, 'topic', { durable: false, autoDelete: false });
  await ch.assertQueue(q1, { durable: false, arguments: { 'x-message-ttl': 60000 } });
  await ch.assertQueue(q2, { durable: false });
  await ch.bindQueue(q1, ex, 'a.#', { foo: 'bar' });
  await ch.bindQueue(q1, ex, 'b');
  await ch.bindExchange('amq.fanout', ex, 'x');
  for (let i = 0; i < 3; i++) ch.publish(ex, 'a.b', Buffer.from(`hello ${i}`));
  await ch.consume(q2, () => {}, { consumerTag: `ctag-${suffix}`, arguments: { 'x-priority': 3 } });
  const confirm = await conn.createConfirmChannel();
  await confirm.waitForConfirms();
  // RabbitMQ's statistics arrive every few seconds: wait until the queue shows its messages.
  await waitFor(async () => (await api.get(`/api/queues/%2F/${q1}`)).body.messages === 3, 'q1 to show 3 messages', 15_000);
});

afterAll(async () => {
  if (conn !== undefined) {
    const ch = await conn.createChannel();
    await ch.deleteQueue(q1);
    await ch.deleteQueue(q2);
    await ch.deleteExchange(ex);
    await conn.close();
  }
  await target?.stop();
});

describe('authentication', () => {
  it('asks for credentials with an empty 401 when none are sent', async () => {
    const r = await api.as('', '').get('/api/overview');
    expect(r.status).toBe(401);
    expect(r.text).toBe('');
    expect(r.headers.get('www-authenticate')).toBe('Basic realm="RabbitMQ Management"');
  });

  it('refuses a wrong password with RabbitMQ\'s body', async () => {
    const r = await api.as('guest', 'wrong').get('/api/overview');
    expect(r.status).toBe(401);
    expect(r.body).toEqual({ error: 'not_authorized', reason: 'Login failed' });
  });

  it('answers 404 for an unknown path and 405 for a wrong method', async () => {
    const r = await api.get('/api/no-such-thing');
    expect(r.status).toBe(404);
    expect(r.body).toEqual({ error: 'Object Not Found', reason: 'Not Found' });
    expect((await api.post('/api/overview')).status).toBe(405);
  });

  it('hands paths outside /api/ to the web UI, and answers 404 for what it does not serve', async () => {
    if (target.warren === null) return; // RabbitMQ's own UI is not Warren's
    const page = await fetch(`${target.apiUrl}/`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
    const missing = await api.get('/no-such-page');
    expect(missing.status).toBe(404);
    expect(missing.body).toEqual({ error: 'Object Not Found', reason: 'Not Found' });
  });

  it('says who is signed in', async () => {
    const r = await api.get('/api/whoami');
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ name: 'guest', tags: ['administrator'] });
  });
});

describe('overview and nodes', () => {
  it('counts objects and messages, and lists the AMQP listener', async () => {
    const r = await api.get('/api/overview');
    expect(r.status).toBe(200);
    const o = r.body;
    expect(o.object_totals.connections).toBeGreaterThanOrEqual(1);
    expect(o.object_totals.channels).toBeGreaterThanOrEqual(2);
    expect(o.object_totals.consumers).toBeGreaterThanOrEqual(1);
    expect(o.object_totals.queues).toBeGreaterThanOrEqual(2);
    expect(o.queue_totals.messages).toBeGreaterThanOrEqual(3);
    expect(o.queue_totals).toHaveProperty('messages_details.rate');
    expect(o.message_stats.publish).toBeGreaterThanOrEqual(3);
    expect(typeof o.message_stats.publish_details.rate).toBe('number');
    const amqpPort = Number(new URL(target.amqpUrl).port);
    expect(o.listeners).toContainEqual(expect.objectContaining({ protocol: 'amqp', port: amqpPort, node: o.node }));
    expect(typeof o.cluster_name).toBe('string');
    const nodes = await api.get('/api/nodes');
    expect(nodes.body.map((n: { name: string }) => n.name)).toEqual([o.node]);
    expect(nodes.body[0].running).toBe(true);
    expect((await api.get(`/api/nodes/${enc(o.node)}`)).body.name).toBe(o.node);
  });
});

describe('connections, channels, consumers', () => {
  it("lists an amqplib connection with the client's properties", async () => {
    const list = await waitFor(async () => {
      const r = await api.get('/api/connections');
      return (r.body as { user_provided_name?: string; channels: number }[]).find((c) => c.user_provided_name === connectionName && c.channels === 2);
    }, 'the connection to be listed with its 2 channels', 15_000);
    const c = list as Record<string, any>;
    expect(c.client_properties.product).toBe('amqplib');
    expect(c.client_properties.connection_name).toBe(connectionName);
    expect(c.client_properties.capabilities.publisher_confirms).toBe(true);
    expect(c.user).toBe('guest');
    expect(c.vhost).toBe('/');
    expect(c.protocol).toBe('AMQP 0-9-1');
    expect(c.auth_mechanism).toBe('PLAIN');
    expect(c.name).toBe(`${c.peer_host}:${c.peer_port} -> ${c.host}:${c.port}`);
    expect(c.channels).toBe(2);
    expect(c.state).toBe('running');
    const one = await api.get(`/api/connections/${enc(c.name)}`);
    expect(one.body.client_properties.product).toBe('amqplib');
    const channels = await api.get(`/api/connections/${enc(c.name)}/channels`);
    expect(channels.body.map((ch: { number: number }) => ch.number).sort()).toEqual([1, 2]);
    const first = channels.body.find((ch: { number: number }) => ch.number === 1);
    expect(first.prefetch_count).toBe(7);
    expect(first.confirm).toBe(false);
    expect(first.consumer_count).toBe(1);
    expect(first.name).toBe(`${c.name} (1)`);
    const second = channels.body.find((ch: { number: number }) => ch.number === 2);
    expect(second.confirm).toBe(true);
    expect((await api.get(`/api/channels/${enc(first.name)}`)).body.number).toBe(1);
    expect((await api.get('/api/connections/nobody')).status).toBe(404);
  });

  it('lists consumers with their queue, tag, prefetch and arguments', async () => {
    const r = await api.get('/api/consumers/%2F');
    const mine = (r.body as { consumer_tag: string }[]).find((x) => x.consumer_tag === `ctag-${suffix}`) as Record<string, any>;
    expect(mine).toBeDefined();
    expect(mine.queue).toEqual({ name: q2, vhost: '/' });
    expect(mine.prefetch_count).toBe(7);
    expect(mine.ack_required).toBe(true);
    expect(mine.arguments).toEqual({ 'x-priority': 3 });
    expect(mine.channel_details.number).toBe(1);
  });
});

describe('queues and exchanges', () => {
  it('shows a queue with its counts and consumers', async () => {
    const r = await api.get(`/api/queues/%2F/${q1}`);
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({
      name: q1,
      vhost: '/',
      durable: false,
      auto_delete: false,
      exclusive: false,
      arguments: { 'x-message-ttl': 60000 },
      messages: 3,
      messages_ready: 3,
      messages_unacknowledged: 0,
      consumers: 0,
      type: 'classic',
      state: 'running',
    });
    const q = await api.get(`/api/queues/%2F/${q2}`);
    expect(q.body.consumer_details.map((c: { consumer_tag: string }) => c.consumer_tag)).toEqual([`ctag-${suffix}`]);
    expect((await api.get('/api/queues/%2F/no-such-queue')).status).toBe(404);
    expect((await api.get('/api/queues/no-such-vhost')).status).toBe(404);
  });

  it('shows exchanges; the default exchange is amq.default in paths', async () => {
    const r = await api.get(`/api/exchanges/%2F/${ex}`);
    expect(r.body).toMatchObject({ name: ex, type: 'topic', durable: false, auto_delete: false, internal: false, vhost: '/', arguments: {} });
    const d = await api.get('/api/exchanges/%2F/amq.default');
    expect(d.body).toMatchObject({ name: '', type: 'direct', durable: true });
    const names = (await api.get('/api/exchanges/%2F?columns=name')).body.map((e: { name: string }) => e.name);
    expect(names).toEqual(expect.arrayContaining(['', 'amq.direct', 'amq.fanout', 'amq.headers', 'amq.match', 'amq.topic', ex]));
  });
});

describe('bindings', () => {
  const row = (source: string, destination: string, type: string, key: string, args: object, props: string) => ({
    source,
    vhost: '/',
    destination,
    destination_type: type,
    routing_key: key,
    arguments: args,
    properties_key: props,
  });

  it('lists a queue\'s bindings, the default one first', async () => {
    const r = await api.get(`/api/queues/%2F/${q1}/bindings`);
    expect(r.body).toHaveLength(3);
    expect(r.body[0]).toEqual(row('', q1, 'queue', q1, {}, q1));
    expect(r.body[2]).toEqual(row(ex, q1, 'queue', 'b', {}, 'b'));
    expect(r.body[1]).toMatchObject({ source: ex, routing_key: 'a.#', arguments: { foo: 'bar' } });
    expect(r.body[1].properties_key).toMatch(/^a\.%23~[A-Za-z0-9_-]+$/);
  });

  it('answers every path form', async () => {
    const between = await api.get(`/api/bindings/%2F/e/${ex}/q/${q1}`);
    expect(between.body.map((b: { routing_key: string }) => b.routing_key)).toEqual(['a.#', 'b']);
    const props = between.body[0].properties_key as string;
    const one = await api.get(`/api/bindings/%2F/e/${ex}/q/${q1}/${enc(props)}`);
    expect(one.body.routing_key).toBe('a.#');
    expect((await api.get(`/api/bindings/%2F/e/${ex}/q/${q1}/b`)).body).toEqual(row(ex, q1, 'queue', 'b', {}, 'b'));
    expect((await api.get(`/api/bindings/%2F/e/${ex}/q/${q1}/zz`)).status).toBe(404);
    const e2e = await api.get(`/api/bindings/%2F/e/${ex}/e/amq.fanout`);
    expect(e2e.body).toEqual([row(ex, 'amq.fanout', 'exchange', 'x', {}, 'x')]);
    const source = await api.get(`/api/exchanges/%2F/${ex}/bindings/source`);
    expect(source.body).toHaveLength(3);
    const destination = await api.get('/api/exchanges/%2F/amq.fanout/bindings/destination');
    expect(destination.body).toContainEqual(row(ex, 'amq.fanout', 'exchange', 'x', {}, 'x'));
    const all = await api.get('/api/bindings/%2F');
    expect(all.body).toContainEqual(row('', q2, 'queue', q2, {}, q2));
  });
});

describe('listing parameters', () => {
  it('paginates with RabbitMQ\'s envelope', async () => {
    const r = await api.get(`/api/queues/%2F?page=1&page_size=1&name=${suffix}&columns=name`);
    expect(r.body).toEqual({
      filtered_count: 2,
      item_count: 1,
      items: [{ name: q1 }],
      page: 1,
      page_count: 2,
      page_size: 1,
      total_count: r.body.total_count,
    });
    const p2 = await api.get(`/api/queues/%2F?page=2&page_size=1&name=${suffix}&columns=name`);
    expect(p2.body.items).toEqual([{ name: q2 }]);
  });

  it('filters by name, as a case-insensitive substring or a regular expression', async () => {
    const sub = await api.get(`/api/queues/%2F?page=1&name=RQ2-${suffix.toUpperCase()}&columns=name`);
    expect(sub.body.items).toEqual([{ name: q2 }]);
    const re = await api.get(`/api/queues/%2F?page=1&name=${enc(`^RQ[12]-${suffix}$`)}&use_regex=true&columns=name`);
    expect(re.body.items).toEqual([{ name: q1 }, { name: q2 }]);
    const none = await api.get(`/api/queues/%2F?page=1&name=${enc('no.such.queue')}&columns=name`);
    expect(none.body).toMatchObject({ filtered_count: 0, item_count: 0, items: [], page: 1, page_count: 0 });
  });

  it('sorts, reverses and picks columns (dotted paths too)', async () => {
    const r = await api.get(`/api/queues/%2F?page=1&name=${suffix}&sort=name&sort_reverse=true&columns=name,messages`);
    expect(r.body.items).toEqual([
      { name: q2, messages: 0 },
      { name: q1, messages: 3 },
    ]);
    const bySize = await api.get(`/api/queues/%2F?page=1&name=${suffix}&sort=messages&columns=name`);
    expect(bySize.body.items).toEqual([{ name: q2 }, { name: q1 }]);
    const nested = await api.get(`/api/queues/%2F/${q1}?columns=name,message_stats.publish`);
    expect(nested.body).toEqual({ name: q1, message_stats: { publish: 3 } });
  });

  it('refuses bad pagination parameters with RabbitMQ\'s texts', async () => {
    expect((await api.get('/api/queues?page=0')).body).toEqual({
      error: 'invalid_pagination_parameters',
      reason: 'Invalid pagination parameters: page number 0, page size undefined',
    });
    expect((await api.get('/api/queues?page=1&page_size=501')).body).toEqual({
      error: 'invalid_pagination_parameters',
      reason: 'Invalid pagination parameters: page number 1, page size 501',
    });
    expect((await api.get('/api/queues?page=abc')).body).toEqual({ error: 'bad_request', reason: 'Pagination parameters are invalid' });
    expect((await api.get(`/api/queues?page=1&name=${enc('(')}&use_regex=true`)).status).toBe(400);
    const out = await api.get(`/api/queues/%2F?page=99&page_size=1&name=${suffix}`);
    expect(out.status).toBe(400);
    expect(out.body).toEqual({ error: 'page_out_of_range', reason: 'Page out of range, page: 99 page size: 1, len: 2' });
  });
});

describe('health checks', () => {
  it('reports ok while nothing is wrong, and checks listeners by port', async () => {
    expect((await api.get('/api/health/checks/alarms')).body).toEqual({ status: 'ok' });
    expect((await api.get('/api/health/checks/local-alarms')).body).toEqual({ status: 'ok' });
    expect((await api.get('/api/health/checks/virtual-hosts')).body).toEqual({ status: 'ok' });
    const amqpPort = Number(new URL(target.amqpUrl).port);
    expect((await api.get(`/api/health/checks/port-listener/${amqpPort}`)).body).toEqual({ status: 'ok', port: amqpPort });
    const missing = await api.get('/api/health/checks/port-listener/1');
    expect(missing.status).toBe(503);
    expect(missing.body).toMatchObject({ status: 'failed', reason: 'No active listener', missing: 1 });
    expect((await api.get('/api/health/checks/port-listener/abc')).body).toEqual({ error: 'bad_request', reason: 'Invalid port' });
  });

  it('fails with 503 while an alarm is in effect, and recovers', async () => {
    if (target.warren === null) return; // an alarm cannot be raised on demand on RabbitMQ
    const resources = target.warren.broker.resources;
    const node = (await api.get('/api/overview')).body.node;
    resources.setAlarm('storage', true);
    try {
      const alarms = await api.get('/api/health/checks/alarms');
      expect(alarms.status).toBe(503);
      expect(alarms.body).toEqual({ status: 'failed', reason: 'resource alarm(s) in effect in the cluster', alarms: [{ node, resource: 'disk' }] });
      expect((await api.get('/api/health/checks/local-alarms')).status).toBe(503);
      const ready = await api.get('/api/health/checks/ready-to-serve-clients');
      expect(ready.status).toBe(503);
      expect(ready.body.status).toBe('failed');
      expect((await api.get('/api/nodes')).body[0].disk_free_alarm).toBe(true);
    } finally {
      resources.setAlarm('storage', false);
    }
    expect((await api.get('/api/health/checks/alarms')).body).toEqual({ status: 'ok' });
    expect((await api.get('/api/health/checks/ready-to-serve-clients')).body).toEqual({ status: 'ok' });
  });
});
