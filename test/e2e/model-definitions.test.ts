// Definitions in RabbitMQ's JSON format. test/fixtures/rabbitmq-3.10-definitions.json was exported
// from a real RabbitMQ 3.10.8 (test/fixtures/make-rabbitmq-definitions.sh made it): it imports into
// Warren, its users log in with the passwords they had on RabbitMQ, its permissions, topic
// permissions, policies, operator policies and limits take effect, and Warren exports it back
// equal (section by section, order aside). Also --load-definitions at start.

import { AMQPClient } from '@cloudamqp/amqp-client';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import type { Definitions } from '../../src/broker/definitions.js';
import { startTestBroker, tempDir, type TestBroker } from '../support/broker.js';

const FIXTURE = fileURLToPath(new URL('../fixtures/rabbitmq-3.10-definitions.json', import.meta.url));
const rabbit = JSON.parse(readFileSync(FIXTURE, 'utf8')) as Definitions;

const SECTIONS = [
  'users',
  'vhosts',
  'permissions',
  'topic_permissions',
  'parameters',
  'global_parameters',
  'policies',
  'queues',
  'exchanges',
  'bindings',
] as const;

/** JSON with object keys sorted, so that key order does not matter. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const o = value as Record<string, unknown>;
    return `{${Object.keys(o)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical(o[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(value);
}

/** A section as a sorted list of canonical items. */
const items = (defs: Definitions, section: (typeof SECTIONS)[number]): string[] => ((defs[section] ?? []) as unknown[]).map(canonical).sort();

const live = new Set<TestBroker>();
const dirs = new Set<string>();
const clients = new Set<AMQPClient>();
afterEach(async () => {
  for (const c of clients) await c.close().catch(() => {});
  clients.clear();
  for (const b of live) await b.stop();
  live.clear();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  dirs.clear();
});

async function start(options: Parameters<typeof startTestBroker>[0] = {}): Promise<TestBroker> {
  const dataDir = options.dataDir ?? tempDir();
  dirs.add(dataDir);
  const b = await startTestBroker({ ...options, dataDir });
  live.add(b);
  return b;
}

async function login(b: TestBroker, user: string, pass: string, vhost: string): Promise<AMQPClient> {
  const c = new AMQPClient(`amqp://${encodeURIComponent(user)}:${encodeURIComponent(pass)}@127.0.0.1:${b.port}/${encodeURIComponent(vhost)}`);
  await c.connect();
  clients.add(c);
  return c;
}

describe('definitions from RabbitMQ 3.10', () => {
  it('import: users log in with their RabbitMQ passwords; permissions, topic permissions, policies and limits apply', async () => {
    const b = await start();
    await b.broker.admin.importDefinitions(rabbit);
    await login(b, 'alice', 'alice-secret', 'prod');
    const bob = await login(b, 'bob', 'bob pass é', 'prod');
    await login(b, 'guest', 'guest', 'prod');
    await expect(new AMQPClient(`amqp://alice:wrong@127.0.0.1:${b.port}/prod`).connect()).rejects.toThrow();

    // bob: write ^amq\.topic$ and topic write ^{username}\. on amq.topic.
    const ch = await bob.channel();
    await ch.confirmSelect();
    await ch.basicPublish('amq.topic', 'bob.ok', 'x');
    await expect(ch.basicPublish('amq.topic', 'alice.no', 'x')).rejects.toThrow(
      "ACCESS_REFUSED - access to topic 'alice.no' in exchange 'amq.topic' in vhost 'prod' refused for user 'bob'",
    );
    const prod = b.broker.vhosts.get('prod')!;
    expect(prod.queues.get('ttl.work')!.appliedPolicy).toEqual({
      policy: 'ttl',
      operatorPolicy: 'cap',
      definition: { 'message-ttl': 60000, 'dead-letter-exchange': 'dlx', 'max-length': 100000 },
    });
    expect(prod.queues.get('ttl.work')!.options).toMatchObject({ maxPriority: 5, messageTtlMs: 60000, deadLetterExchange: 'dlx', maxLength: 100000 });
    expect(prod.exchanges.get('events')!.alternateExchange).toBe('unrouted');
    expect(prod.limits).toEqual({ 'max-connections': 50, 'max-queues': 500 });
    expect(prod.exchanges.get('hdr')!.bindings.size).toBe(1);
  });

  it('export after import equals the RabbitMQ export, section by section; also after a restart', async () => {
    const dataDir = tempDir();
    let b = await start({ dataDir });
    await b.broker.admin.importDefinitions(rabbit);
    const check = (exported: Definitions): void => {
      for (const section of SECTIONS) expect(items(exported, section), section).toEqual(items(rabbit, section));
      expect(exported.rabbit_version).toBe('3.10.8');
      expect(exported.product_name).toBe('Warren');
    };
    check(b.broker.admin.exportDefinitions());
    await b.close();
    live.delete(b);
    b = await start({ dataDir });
    check(b.broker.admin.exportDefinitions());
  });

  it("a vhost's export holds its own items without vhost fields; it imports into another vhost", async () => {
    const b = await start();
    await b.broker.admin.importDefinitions(rabbit);
    const perVhost = b.broker.admin.exportDefinitions('prod');
    expect(Object.keys(perVhost).sort()).toEqual(['bindings', 'exchanges', 'parameters', 'policies', 'queues', 'rabbit_version']);
    const strip = (list: unknown[] | undefined): string[] =>
      (list ?? [])
        .filter((x) => (x as { vhost?: string }).vhost === 'prod')
        .map((x) => {
          const { vhost: _v, ...rest } = x as Record<string, unknown>;
          return canonical(rest);
        })
        .sort();
    for (const section of ['parameters', 'policies', 'queues', 'exchanges', 'bindings'] as const) {
      expect(items(perVhost, section), section).toEqual(strip(rabbit[section]));
    }
    await b.broker.admin.putVhost('copy', {}, 'guest');
    await b.broker.admin.importDefinitions(perVhost, 'copy');
    const copy = b.broker.admin.exportDefinitions('copy');
    for (const section of ['parameters', 'policies', 'queues', 'exchanges', 'bindings'] as const) {
      expect(items(copy, section), section).toEqual(items(perVhost, section));
    }
  });

  it('a bad document changes nothing and says what is wrong', async () => {
    const b = await start();
    const before = canonical(b.broker.admin.exportDefinitions());
    const bad = JSON.parse(JSON.stringify(rabbit)) as Definitions;
    bad.policies!.push({ vhost: 'prod', name: 'broken', pattern: '.*', 'apply-to': 'all', definition: { 'max-priority': 3 }, priority: 0 });
    await expect(b.broker.admin.importDefinitions(bad)).rejects.toMatchObject({
      kind: 'bad_request',
      reason: "policy 'broken' in vhost 'prod': Validation failed\n\n[{<<\"max-priority\">>,3}] are not recognised policy settings\n",
    });
    await expect(b.broker.admin.importDefinitions({ users: 'nope' })).rejects.toMatchObject({ reason: "'users' must be a list" });
    await expect(b.broker.admin.importDefinitions({ permissions: [{ user: 'ghost', vhost: '/', configure: '', write: '', read: '' }] })).rejects.toMatchObject({
      reason: "permissions for user 'ghost' in vhost '/': vhost_or_user_not_found",
    });
    expect(canonical(b.broker.admin.exportDefinitions())).toBe(before);
  });
});

describe('--load-definitions', () => {
  it('imports at every start; on a fresh folder no default user or vhost is created besides the file', async () => {
    const dataDir = tempDir();
    const file = join(dataDir, '..', `defs-${process.pid}-${Date.now()}.json`);
    const small = { users: [rabbit.users!.find((u) => u.name === 'alice')!], vhosts: [{ name: 'prod' }], permissions: rabbit.permissions!.filter((p) => p.user === 'alice') };
    writeFileSync(file, JSON.stringify(small));
    try {
      let b = await start({ dataDir, loadDefinitions: file });
      expect(b.broker.admin.listUsers().map((u) => u.name)).toEqual(['alice']);
      expect(b.broker.admin.listVhosts().map((v) => v.name)).toEqual(['prod']);
      await login(b, 'alice', 'alice-secret', 'prod');
      await b.broker.admin.deleteUser('alice');
      await b.broker.admin.putUser('carol', { password: 'c' });
      await b.close();
      live.delete(b);
      b = await start({ dataDir, loadDefinitions: file });
      expect(b.broker.admin.listUsers().map((u) => u.name).sort()).toEqual(['alice', 'carol']);
    } finally {
      rmSync(file, { force: true });
    }
  });

  it('a missing or invalid file stops the start with a readable error; the data folder is left usable', async () => {
    const dataDir = tempDir();
    dirs.add(dataDir);
    await expect(startTestBroker({ dataDir, loadDefinitions: join(dataDir, 'missing.json') })).rejects.toThrow(
      /^cannot read definitions file .*missing\.json: .* — check --load-definitions$/,
    );
    const bad = join(dataDir, 'bad.json');
    writeFileSync(bad, JSON.stringify({ vhosts: [{ name: '/' }], policies: [{ vhost: '/', name: 'p', pattern: '.*', definition: { 'message-ttl': -5 } }] }));
    await expect(startTestBroker({ dataDir, loadDefinitions: bad })).rejects.toThrow(
      `cannot import definitions from ${bad}: policy 'p' in vhost '/': Validation failed\n\n-5 is not a valid message TTL — fix the file or drop --load-definitions`,
    );
    // The failed first start did not count: this one creates the default user and vhost.
    const b = await start({ dataDir });
    expect(b.broker.admin.listVhosts().map((v) => v.name)).toEqual(['/']);
    await login(b, 'guest', 'guest', '/');
  });
});

// Differential check, run when a RabbitMQ management API is given (e.g. reference-broker.sh on
// port 5730: WARREN_TEST_RABBITMQ_API=http://guest:guest@127.0.0.1:15730/api): Warren's export
// imports into RabbitMQ 3.10, and a user created on Warren logs in there with its password.
const RABBIT_API = process.env['WARREN_TEST_RABBITMQ_API'];
describe.skipIf(RABBIT_API === undefined || RABBIT_API === '')('Warren export into RabbitMQ (WARREN_TEST_RABBITMQ_API)', () => {
  it('imports, and a Warren-made user logs in on RabbitMQ', async () => {
    const api = new URL(RABBIT_API!);
    const auth = `Basic ${Buffer.from(`${decodeURIComponent(api.username)}:${decodeURIComponent(api.password)}`).toString('base64')}`;
    const base = `${api.protocol}//${api.host}${api.pathname.replace(/\/$/, '')}`;
    const b = await start();
    await b.broker.admin.importDefinitions(rabbit);
    const user = `warren-made-${process.pid}`;
    await b.broker.admin.putUser(user, { password: 'from warren', tags: ['management'] });
    await b.broker.admin.putVhost(`wv-${process.pid}`, {}, user);
    const res = await fetch(`${base}/definitions`, {
      method: 'POST',
      headers: { authorization: auth, 'content-type': 'application/json' },
      body: JSON.stringify(b.broker.admin.exportDefinitions()),
    });
    expect(res.status).toBe(204);
    const amqpPort = Number(api.port) - 10000;
    const c = new AMQPClient(`amqp://${user}:${encodeURIComponent('from warren')}@${api.hostname}:${amqpPort}/wv-${process.pid}`);
    await c.connect();
    await c.close();
    await fetch(`${base}/users/${user}`, { method: 'DELETE', headers: { authorization: auth } });
    await fetch(`${base}/vhosts/wv-${process.pid}`, { method: 'DELETE', headers: { authorization: auth } });
  });
});
