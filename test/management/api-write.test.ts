// The management API's write side, through the admin façade: users and tags (and what each tag
// may do), vhosts, permissions, topic permissions, policies, operator policies, vhost limits,
// parameters, declaring/deleting queues, exchanges and bindings, purge, definitions. Runs against
// RabbitMQ too (WARREN_TEST_MGMT_URL + WARREN_TEST_AMQP_URL): that is where the expectations come from.

import { randomBytes } from 'node:crypto';
import amqp from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../support/wait.js';
import { enc, type ApiClient } from './api-client.js';
import { startMgmtTarget, type MgmtTarget } from './target.js';

let target: MgmtTarget;
let api: ApiClient;
const suffix = randomBytes(4).toString('hex');
const users: string[] = [];
const vhosts: string[] = [];
const queues: string[] = [];
const exchanges: string[] = [];

const user = (p: string): string => {
  const n = `${p}-${suffix}`;
  users.push(n);
  return n;
};
const vhost = (p: string): string => {
  const n = `${p}-${suffix}`;
  vhosts.push(n);
  return n;
};
const queue = (p: string): string => {
  const n = `${p}-${suffix}`;
  queues.push(n);
  return n;
};
const exchange = (p: string): string => {
  const n = `${p}-${suffix}`;
  exchanges.push(n);
  return n;
};

beforeAll(async () => {
  target = await startMgmtTarget();
  api = target.api;
});

afterAll(async () => {
  for (const q of queues) await api.delete(`/api/queues/%2F/${enc(q)}`);
  for (const x of exchanges) await api.delete(`/api/exchanges/%2F/${enc(x)}`);
  for (const v of vhosts) await api.delete(`/api/vhosts/${enc(v)}`);
  for (const u of users) await api.delete(`/api/users/${enc(u)}`);
  await target?.stop();
});

describe('users and tags', () => {
  it('creates (201), updates (204), shows and deletes users', async () => {
    const u = user('alice');
    expect((await api.put(`/api/users/${u}`, { password: 'p' })).body).toEqual({ error: 'bad_request', reason: 'tags_not_present' });
    expect((await api.put(`/api/users/${u}`, { password: 'p', tags: 'management' })).status).toBe(201);
    expect((await api.put(`/api/users/${u}`, { password: 'p2', tags: ['monitoring', 'custom'] })).status).toBe(204);
    const shown = await api.get(`/api/users/${u}`);
    expect(shown.body).toMatchObject({ name: u, hashing_algorithm: 'rabbit_password_hashing_sha256', tags: ['monitoring', 'custom'], limits: {} });
    expect(Buffer.from(shown.body.password_hash, 'base64')).toHaveLength(36);
    expect((await api.as(u, 'p2').get('/api/whoami')).body).toEqual({ name: u, tags: ['monitoring', 'custom'] });
    expect((await api.as(u, 'p').get('/api/whoami')).status).toBe(401);
    expect((await api.delete(`/api/users/${u}`)).status).toBe(204);
    expect((await api.delete(`/api/users/${u}`)).status).toBe(404);
    expect((await api.get(`/api/users/${u}`)).status).toBe(404);
  });

  it('takes a password hash in RabbitMQ\'s format', async () => {
    const u = user('hashed');
    const salt = Buffer.from([1, 2, 3, 4]);
    const { createHash } = await import('node:crypto');
    const hash = Buffer.concat([salt, createHash('sha256').update(salt).update('secret').digest()]).toString('base64');
    expect((await api.put(`/api/users/${u}`, { password_hash: hash, tags: '' })).status).toBe(201);
    expect((await api.get(`/api/users/${u}`)).body.password_hash).toBe(hash);
    await api.put(`/api/users/${u}`, { password_hash: hash, tags: 'management' });
    expect((await api.as(u, 'secret').get('/api/whoami')).status).toBe(200);
  });

  it('lets each tag do what RabbitMQ lets it do', async () => {
    const none = user('none');
    const mgmt = user('mgmt');
    const mon = user('mon');
    const pm = user('pm');
    await api.put(`/api/users/${none}`, { password: 'p', tags: '' });
    await api.put(`/api/users/${mgmt}`, { password: 'p', tags: 'management' });
    await api.put(`/api/users/${mon}`, { password: 'p', tags: 'monitoring' });
    await api.put(`/api/users/${pm}`, { password: 'p', tags: 'policymaker' });
    expect((await api.as(none, 'p').get('/api/overview')).body).toEqual({ error: 'not_authorised', reason: 'Not management user' });
    expect((await api.as(mgmt, 'p').get('/api/users')).body).toEqual({ error: 'not_authorised', reason: 'Not administrator user' });
    expect((await api.as(mgmt, 'p').get('/api/nodes')).body).toEqual({ error: 'not_authorised', reason: 'Not monitor user' });
    expect((await api.as(mon, 'p').get('/api/nodes')).status).toBe(200);
    // No permissions in '/': its objects are not theirs to see.
    expect((await api.as(mgmt, 'p').get('/api/queues')).body).toEqual([]);
    expect((await api.as(mgmt, 'p').get('/api/queues/%2F')).body).toEqual({
      error: 'not_authorised',
      reason: 'User not authorised to access virtual host',
    });
    expect((await api.as(mgmt, 'p').put(`/api/policies/%2F/p-${suffix}`, { pattern: '^x', definition: { 'message-ttl': 1 } })).body).toEqual({
      error: 'not_authorised',
      reason: 'User not authorised to access object',
    });
    // A policymaker without permissions in the vhost is refused the same way.
    expect((await api.as(pm, 'p').put(`/api/policies/%2F/p-${suffix}`, { pattern: '^x', definition: { 'message-ttl': 1 } })).body).toEqual({
      error: 'not_authorised',
      reason: 'User not authorised to access object',
    });
    // Given permissions, the management user sees the vhost's queues.
    await api.put(`/api/permissions/%2F/${mgmt}`, { configure: '.*', write: '.*', read: '.*' });
    expect((await api.as(mgmt, 'p').get('/api/queues/%2F')).status).toBe(200);
    expect((await api.as(mgmt, 'p').get('/api/vhosts')).body.map((v: { name: string }) => v.name)).toEqual(['/']);
  });
});

describe('vhosts and permissions', () => {
  it('creates a vhost (its creator may use it), lists and deletes it', async () => {
    const v = vhost('vh');
    expect((await api.put(`/api/vhosts/${v}`, { description: 'test vhost', tags: 'a,b' })).status).toBe(201);
    expect((await api.get(`/api/vhosts/${v}`)).body).toMatchObject({ name: v, description: 'test vhost', tags: ['a', 'b'] });
    // A PUT replaces description and tags.
    expect((await api.put(`/api/vhosts/${v}`, { tags: 'c' })).status).toBe(204);
    expect((await api.get(`/api/vhosts/${v}`)).body).toMatchObject({ name: v, description: '', tags: ['c'] });
    expect((await api.get(`/api/permissions/${v}/guest`)).body).toEqual({ user: 'guest', vhost: v, configure: '.*', write: '.*', read: '.*' });
    expect((await api.put(`/api/queues/${v}/q`, { durable: true })).status).toBe(201);
    expect((await api.get(`/api/queues/${v}`)).body.map((q: { name: string }) => q.name)).toEqual(['q']);
    expect((await api.delete(`/api/vhosts/${v}`)).status).toBe(204);
    expect((await api.get(`/api/vhosts/${v}`)).status).toBe(404);
    expect((await api.delete(`/api/vhosts/${v}`)).status).toBe(404);
  });

  it('sets, shows and clears permissions with RabbitMQ\'s answers', async () => {
    const u = user('perm');
    await api.put(`/api/users/${u}`, { password: 'p', tags: '' });
    expect((await api.put(`/api/permissions/%2F/${u}`, { configure: '.*', write: '.*' })).body).toEqual({
      error: 'bad_request',
      reason: '[{key_missing,read}]',
    });
    expect((await api.put(`/api/permissions/no-such-vhost-${suffix}/${u}`, { configure: '.*', write: '.*', read: '.*' })).body).toEqual({
      error: 'bad_request',
      reason: 'vhost_or_user_not_found',
    });
    expect((await api.put(`/api/permissions/%2F/${u}`, { configure: '^c', write: '^w', read: '^r' })).status).toBe(201);
    expect((await api.put(`/api/permissions/%2F/${u}`, { configure: '^c', write: '^w', read: '^r2' })).status).toBe(204);
    expect((await api.get(`/api/permissions/%2F/${u}`)).body).toEqual({ user: u, vhost: '/', configure: '^c', write: '^w', read: '^r2' });
    expect((await api.get(`/api/users/${u}/permissions`)).body).toEqual([{ user: u, vhost: '/', configure: '^c', write: '^w', read: '^r2' }]);
    expect((await api.get('/api/vhosts/%2F/permissions')).body).toContainEqual({ user: u, vhost: '/', configure: '^c', write: '^w', read: '^r2' });
    expect((await api.delete(`/api/permissions/%2F/${u}`)).status).toBe(204);
    expect((await api.delete(`/api/permissions/%2F/${u}`)).status).toBe(404);
    expect((await api.get(`/api/permissions/%2F/${u}`)).status).toBe(404);
  });

  it('sets and clears topic permissions', async () => {
    const u = user('topic');
    await api.put(`/api/users/${u}`, { password: 'p', tags: '' });
    expect((await api.put(`/api/topic-permissions/%2F/${u}`, { exchange: 'amq.topic', write: '^a', read: '^b' })).status).toBe(201);
    expect((await api.get(`/api/topic-permissions/%2F/${u}`)).body).toEqual([{ user: u, vhost: '/', exchange: 'amq.topic', write: '^a', read: '^b' }]);
    expect((await api.delete(`/api/topic-permissions/%2F/${u}`)).status).toBe(204);
    expect((await api.get(`/api/topic-permissions/%2F/${u}`)).status).toBe(404);
  });
});

describe('policies, limits, parameters', () => {
  it('applies a policy to a live queue and shows it', async () => {
    const q = queue('pol');
    await api.put(`/api/queues/%2F/${q}`, { durable: false });
    const name = `pol-${suffix}`;
    const r = await api.put(`/api/policies/%2F/${name}`, { pattern: `^${q}$`, definition: { 'message-ttl': 60000 }, priority: 1, 'apply-to': 'queues' });
    expect(r.status).toBe(201);
    expect((await api.get(`/api/policies/%2F/${name}`)).body).toEqual({
      vhost: '/',
      name,
      pattern: `^${q}$`,
      'apply-to': 'queues',
      definition: { 'message-ttl': 60000 },
      priority: 1,
    });
    await waitFor(async () => (await api.get(`/api/queues/%2F/${q}`)).body.policy === name, 'the policy to apply', 15_000);
    expect((await api.get(`/api/queues/%2F/${q}`)).body.effective_policy_definition).toEqual({ 'message-ttl': 60000 });
    const bad = await api.put(`/api/policies/%2F/${name}`, { pattern: '.*', definition: { 'message-ttl': -1 } });
    expect(bad.status).toBe(400);
    expect(bad.body.reason).toContain('-1 is not a valid message TTL');
    expect((await api.delete(`/api/policies/%2F/${name}`)).status).toBe(204);
    expect((await api.delete(`/api/policies/%2F/${name}`)).status).toBe(404);
  });

  it('sets operator policies and vhost limits', async () => {
    const name = `op-${suffix}`;
    expect((await api.put(`/api/operator-policies/%2F/${name}`, { pattern: '^nothing-matches$', definition: { 'max-length': 5 } })).status).toBe(201);
    expect((await api.get(`/api/operator-policies/%2F/${name}`)).body).toMatchObject({ name, definition: { 'max-length': 5 } });
    expect((await api.delete(`/api/operator-policies/%2F/${name}`)).status).toBe(204);
    const v = vhost('lim');
    await api.put(`/api/vhosts/${v}`, {});
    expect((await api.put(`/api/vhost-limits/${v}/max-queues`, { value: 10 })).status).toBe(204);
    expect((await api.get(`/api/vhost-limits/${v}`)).body).toEqual([{ vhost: v, value: { 'max-queues': 10 } }]);
    expect((await api.delete(`/api/vhost-limits/${v}/max-queues`)).status).toBe(204);
    expect((await api.get(`/api/vhost-limits/${v}`)).body).toEqual([]);
  });
});

describe('queues, exchanges, bindings', () => {
  it('declares queues: 201, then 204; refuses a different declaration with the AMQP text', async () => {
    const q = queue('decl');
    expect((await api.put(`/api/queues/%2F/${q}`, { durable: 'true', auto_delete: 'false', arguments: { 'x-max-length': 10 } })).status).toBe(201);
    expect((await api.put(`/api/queues/%2F/${q}`, { durable: true, arguments: { 'x-max-length': 10 } })).status).toBe(204);
    expect((await api.put(`/api/queues/%2F/${q}`, { durable: false })).body).toEqual({
      error: 'bad_request',
      reason: `inequivalent arg 'durable' for queue '${q}' in vhost '/': received 'false' but current is 'true'`,
    });
    expect((await api.put(`/api/queues/%2F/${q}2`, { durable: 'yes' })).body).toEqual({ error: 'bad_request', reason: ['not_boolean', 'yes'] });
    expect((await api.put('/api/queues/%2F/amq.reserved', {})).body).toEqual({ error: 'not_authorised', reason: 'Access refused.' });
    expect((await api.get(`/api/queues/%2F/${q}`)).body).toMatchObject({ durable: true, auto_delete: false, arguments: { 'x-max-length': 10 } });
  });

  it('purges and deletes queues (if-empty honoured)', async () => {
    const q = queue('purge');
    await api.put(`/api/queues/%2F/${q}`, { durable: false });
    for (let i = 0; i < 3; i++) await api.post('/api/exchanges/%2F/amq.default/publish', { routing_key: q, payload: 'x', payload_encoding: 'string', properties: {} });
    await waitFor(async () => (await api.get(`/api/queues/%2F/${q}`)).body.messages === 3, 'three messages', 15_000);
    expect((await api.delete(`/api/queues/%2F/${q}?if-empty=true`)).status).toBe(400);
    expect((await api.delete(`/api/queues/%2F/${q}/contents`)).status).toBe(204);
    await waitFor(async () => (await api.get(`/api/queues/%2F/${q}`)).body.messages === 0, 'an empty queue', 15_000);
    expect((await api.delete(`/api/queues/%2F/${q}?if-empty=true`)).status).toBe(204);
    expect((await api.delete(`/api/queues/%2F/${q}`)).status).toBe(404);
    expect((await api.delete(`/api/queues/%2F/${q}/contents`)).status).toBe(404);
  });

  it('declares and deletes exchanges', async () => {
    const x = exchange('ex');
    expect((await api.put(`/api/exchanges/%2F/${x}`, {})).status).toBe(201);
    expect((await api.get(`/api/exchanges/%2F/${x}`)).body).toMatchObject({ name: x, type: 'direct', durable: false });
    expect((await api.put(`/api/exchanges/%2F/${x}`, { type: 'fanout' })).body).toEqual({
      error: 'bad_request',
      reason: `inequivalent arg 'type' for exchange '${x}' in vhost '/': received 'fanout' but current is 'direct'`,
    });
    expect((await api.put(`/api/exchanges/%2F/${x}2`, { type: 'bogus' })).body).toEqual({ error: 'bad_request', reason: "invalid exchange type 'bogus'" });
    expect((await api.delete('/api/exchanges/%2F/amq.direct')).body).toEqual({ error: 'not_authorised', reason: 'Access refused.' });
    expect((await api.delete(`/api/exchanges/%2F/${x}`)).status).toBe(204);
    expect((await api.delete(`/api/exchanges/%2F/${x}`)).status).toBe(404);
  });

  it('binds (201 with a Location), and unbinds by properties key', async () => {
    const q = queue('bind');
    const x = exchange('bindx');
    await api.put(`/api/queues/%2F/${q}`, { durable: false });
    await api.put(`/api/exchanges/%2F/${x}`, { type: 'topic' });
    const made = await api.post(`/api/bindings/%2F/e/${x}/q/${q}`, { routing_key: 'a.#', arguments: { n: 1 } });
    expect(made.status).toBe(201);
    const location = made.headers.get('location')!;
    // The properties key (a.%23~HASH) quoted once more, as RabbitMQ sends it.
    expect(location).toMatch(new RegExp(`^${q}/a\\.%2523~[A-Za-z0-9_-]+$`));
    const plain = await api.post(`/api/bindings/%2F/e/${x}/q/${q}`, {});
    expect(plain.headers.get('location')).toBe(`${q}/~`);
    expect((await api.post(`/api/bindings/%2F/e/${x}/e/amq.fanout`, { routing_key: 'k' })).status).toBe(201);
    const listed = await api.get(`/api/bindings/%2F/e/${x}/q/${q}`);
    expect(listed.body.map((b: { routing_key: string }) => b.routing_key)).toEqual(['', 'a.#']);
    const props = location.slice(q.length + 1); // still quoted: usable in a path as it is
    expect((await api.delete(`/api/bindings/%2F/e/${x}/q/${q}/${props}`)).status).toBe(204);
    expect((await api.delete(`/api/bindings/%2F/e/${x}/q/${q}/${props}`)).status).toBe(404);
    expect((await api.delete(`/api/bindings/%2F/e/${x}/q/${q}/~`)).status).toBe(204);
    expect((await api.delete(`/api/bindings/%2F/e/${x}/e/amq.fanout/k`)).status).toBe(204);
    expect((await api.get(`/api/bindings/%2F/e/${x}/q/${q}`)).body).toEqual([]);
    expect((await api.post(`/api/bindings/%2F/e/nope-${suffix}/q/${q}`, {})).body).toEqual({
      error: 'not_found',
      reason: `no exchange 'nope-${suffix}' in vhost '/'`,
    });
    expect((await api.post(`/api/bindings/%2F/e/amq.default/q/${q}`, {})).body).toEqual({ error: 'not_authorised', reason: 'Access refused.' });
  });
});

describe('definitions', () => {
  it('exports and imports (whole broker and one vhost)', async () => {
    const q = queue('defq');
    const x = exchange('defx');
    const defs = {
      queues: [{ name: q, vhost: '/', durable: true, auto_delete: false, arguments: { 'x-max-length': 7 } }],
      exchanges: [{ name: x, vhost: '/', type: 'fanout', durable: true, auto_delete: false, internal: false, arguments: {} }],
      bindings: [{ source: x, vhost: '/', destination: q, destination_type: 'queue', routing_key: 'r', arguments: {} }],
    };
    expect((await api.post('/api/definitions', defs)).status).toBe(204);
    const exported = await api.get('/api/definitions');
    expect(exported.status).toBe(200);
    expect(exported.body.queues).toContainEqual(defs.queues[0]);
    expect(exported.body.exchanges).toContainEqual(defs.exchanges[0]);
    expect(exported.body.bindings).toContainEqual(defs.bindings[0]);
    expect(exported.body.users.map((u: { name: string }) => u.name)).toContain('guest');
    const perVhost = await api.get('/api/definitions/%2F');
    expect(perVhost.body.queues).toContainEqual({ name: q, durable: true, auto_delete: false, arguments: { 'x-max-length': 7 } });
    expect(perVhost.body).not.toHaveProperty('users');
    const q2 = queue('defq2');
    expect((await api.post('/api/definitions/%2F', { queues: [{ name: q2, durable: true, auto_delete: false, arguments: {} }] })).status).toBe(204);
    expect((await api.get(`/api/queues/%2F/${q2}`)).status).toBe(200);
    expect((await api.post('/api/definitions', '{not json')).body).toEqual({ error: 'bad_request', reason: 'failed_to_parse_json' });
    const download = await api.get('/api/definitions?download=defs.json');
    expect(download.headers.get('content-disposition')).toBe('attachment; filename=defs.json');
  });
});

describe('amqplib sees what the API made', () => {
  it('routes through a binding made over HTTP', async () => {
    const q = queue('seen');
    await api.put(`/api/queues/%2F/${q}`, { durable: false });
    await api.post(`/api/bindings/%2F/e/amq.direct/q/${q}`, { routing_key: q });
    const conn = await amqp.connect(target.amqpUrl);
    const ch = await conn.createConfirmChannel();
    ch.publish('amq.direct', q, Buffer.from('via http binding'));
    await ch.waitForConfirms();
    const m = await ch.get(q, { noAck: true });
    expect(m !== false && m.content.toString()).toBe('via http binding');
    await conn.close();
  });
});
