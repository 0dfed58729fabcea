// Users and vhosts through the admin façade, seen by real clients: who may log in and open which
// vhost (530 texts as RabbitMQ 3.10), what survives a restart (the default user is created on
// the first start only), deleting a user or a vhost closes its connections (320 texts as RabbitMQ
// 3.10), vhost limits max-connections and max-queues (RabbitMQ's texts). Expectations were taken
// from RabbitMQ 3.10.8 (reference-broker.sh).

import { AMQPClient } from '@cloudamqp/amqp-client';
import { rmSync } from 'node:fs';
import amqp from 'amqplib';
import { afterEach, describe, expect, it } from 'vitest';
import { startTestBroker, tempDir, type TestBroker } from '../support/broker.js';
import { failure, waitFor } from '../support/harness.js';

const live = new Set<TestBroker>();
const clients = new Set<AMQPClient | amqp.ChannelModel>();
const dirs = new Set<string>();

afterEach(async () => {
  for (const c of clients) await c.close().catch(() => {});
  clients.clear();
  for (const b of live) await b.stop();
  live.clear();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  dirs.clear();
});

async function start(dataDir?: string, options: Parameters<typeof startTestBroker>[0] = {}): Promise<TestBroker> {
  if (dataDir !== undefined) dirs.add(dataDir);
  const b = await startTestBroker(dataDir === undefined ? options : { ...options, dataDir });
  live.add(b);
  return b;
}

async function restart(b: TestBroker): Promise<TestBroker> {
  await b.close();
  live.delete(b);
  return start(b.dataDir);
}

const url = (b: TestBroker, user: string, pass: string, vhost: string): string =>
  `amqp://${encodeURIComponent(user)}:${encodeURIComponent(pass)}@127.0.0.1:${b.port}/${encodeURIComponent(vhost)}`;

/** Opens a connection with @cloudamqp/amqp-client (it reports the close text of a refused open). */
async function open(b: TestBroker, user: string, pass: string, vhost: string): Promise<AMQPClient> {
  const c = new AMQPClient(url(b, user, pass, vhost));
  await c.connect();
  clients.add(c);
  return c;
}

/** The error text of a connection attempt that must fail. */
async function refused(b: TestBroker, user: string, pass: string, vhost: string): Promise<string> {
  const c = new AMQPClient(url(b, user, pass, vhost));
  return c.connect().then(
    () => {
      clients.add(c);
      throw new Error(`connection as ${user} to ${vhost} was accepted`);
    },
    (e: Error) => e.message,
  );
}

describe('users', () => {
  it('the default user exists on first start and logs in; a wrong password is refused', async () => {
    const b = await start();
    await open(b, 'guest', 'guest', '/');
    expect(b.broker.admin.getUser('guest')).toMatchObject({ tags: ['administrator'], hashing_algorithm: 'rabbit_password_hashing_sha256' });
    const c = new AMQPClient(url(b, 'guest', 'wrong', '/'));
    await expect(c.connect()).rejects.toThrow();
  });

  it('users, passwords, tags and permissions survive a restart; a deleted default user stays deleted', async () => {
    let b = await start(tempDir());
    const admin = b.broker.admin;
    await admin.putUser('alice', { password: 's3cret é', tags: 'monitoring, policymaker' });
    await admin.setPermission('alice', '/', { configure: '^alice\\.', write: '.*', read: '.*' });
    await admin.changePassword('guest', 'new-guest-pass');
    b = await restart(b);
    expect(b.broker.admin.getUser('alice')).toMatchObject({ name: 'alice', tags: ['monitoring', 'policymaker'] });
    expect(b.broker.admin.getPermission('alice', '/')).toEqual({ user: 'alice', vhost: '/', configure: '^alice\\.', write: '.*', read: '.*' });
    await open(b, 'alice', 's3cret é', '/');
    expect(await refused(b, 'guest', 'guest', '/')).toMatch(/ACCESS_REFUSED|closed|refused/i);
    await open(b, 'guest', 'new-guest-pass', '/');

    expect(await b.broker.admin.deleteUser('guest')).toBe(true);
    b = await restart(b);
    expect(b.broker.admin.getUser('guest')).toBeUndefined();
    expect(b.broker.admin.listUsers().map((u) => u.name)).toEqual(['alice']);
  });

  it('a password hash in RabbitMQ format is taken as is and logs in', async () => {
    const b = await start();
    // alice-secret, hashed by RabbitMQ 3.10.8 (exported from the reference broker).
    await b.broker.admin.putUser('alice', { passwordHash: 'Ta4dB1fA929TQm73c6ky70FaokX1XDjL4zu1ZSkNtpgQjFfi', tags: [] });
    await b.broker.admin.setPermission('alice', '/', { configure: '.*', write: '.*', read: '.*' });
    await open(b, 'alice', 'alice-secret', '/');
    await expect(b.broker.admin.putUser('x', { passwordHash: 'abc' })).rejects.toMatchObject({ kind: 'bad_request' });
    await expect(b.broker.admin.putUser('x', { passwordHash: 'Ta4dB1fA929TQm73c6ky70FaokX1XDjL4zu1ZSkNtpgQjFfi', hashingAlgorithm: 'rabbit_password_hashing_md5' })).rejects.toMatchObject({
      kind: 'bad_request',
    });
  });

  it('a user without a password cannot log in with any password', async () => {
    const b = await start();
    await b.broker.admin.putUser('nopass', { tags: 'management' });
    await b.broker.admin.setPermission('nopass', '/', { configure: '.*', write: '.*', read: '.*' });
    expect(b.broker.admin.getUser('nopass')!.password_hash).toBe('');
    await expect(new AMQPClient(url(b, 'nopass', '', '/')).connect()).rejects.toThrow();
  });

  it('changing the password or clearing permissions leaves open connections open (as RabbitMQ 3.10); new operations are refused', async () => {
    const b = await start();
    const admin = b.broker.admin;
    await admin.putUser('pc', { password: 'a' });
    await admin.setPermission('pc', '/', { configure: '.*', write: '.*', read: '.*' });
    const conn = await amqp.connect(url(b, 'pc', 'a', '/'));
    clients.add(conn);
    let closed = false;
    conn.on('close', () => (closed = true));
    await admin.putUser('pc', { password: 'b', tags: 'management' });
    await admin.clearPermission('pc', '/');
    const ch = await conn.createChannel();
    ch.on('error', () => {});
    await expect(ch.assertQueue('pc.q')).rejects.toThrow("ACCESS_REFUSED - access to queue 'pc.q' in vhost '/' refused for user 'pc'");
    expect(closed).toBe(false);
  });

  it("deleting a user closes that user's connections with 320 CONNECTION_FORCED, others stay", async () => {
    const b = await start();
    const admin = b.broker.admin;
    await admin.putUser('u1', { password: 'p1' });
    await admin.setPermission('u1', '/', { configure: '.*', write: '.*', read: '.*' });
    const doomed = await amqp.connect(url(b, 'u1', 'p1', '/'));
    const errors: string[] = [];
    // amqplib reports 320 through 'close' (it does not count it as an error).
    doomed.on('close', (e?: Error) => errors.push(e?.message ?? 'closed without error'));
    const survivor = await amqp.connect(url(b, 'guest', 'guest', '/'));
    clients.add(survivor);
    expect(await admin.deleteUser('u1')).toBe(true);
    await waitFor(() => errors.length > 0, 'the connection.close');
    expect(failure(new Error(errors[0]))).toMatchObject({ text: "CONNECTION_FORCED - user 'u1' is deleted" });
    expect(errors[0]).toContain('320');
    const ch = await survivor.createChannel();
    await ch.checkExchange('amq.direct');
    expect(admin.listPermissions({ user: 'u1' })).toEqual([]);
    expect(await admin.deleteUser('u1')).toBe(false);
  });
});

describe('vhosts', () => {
  it('connection.open: unknown vhost and vhost without permission are 530 NOT_ALLOWED with RabbitMQ texts', async () => {
    const b = await start();
    const admin = b.broker.admin;
    await admin.putUser('u2', { password: 'p2' });
    await admin.putVhost('v2');
    expect(await refused(b, 'u2', 'p2', '/')).toBe("connection closed: NOT_ALLOWED - access to vhost '/' refused for user 'u2' (530)");
    expect(await refused(b, 'u2', 'p2', 'nope')).toBe('connection closed: NOT_ALLOWED - vhost nope not found (530)');
    expect(await refused(b, 'guest', 'guest', 'nope')).toBe('connection closed: NOT_ALLOWED - vhost nope not found (530)');
    expect(await refused(b, 'guest', 'guest', 'v2')).toBe("connection closed: NOT_ALLOWED - access to vhost 'v2' refused for user 'guest' (530)");
    await admin.setPermission('u2', 'v2', { configure: '.*', write: '.*', read: '.*' });
    await open(b, 'u2', 'p2', 'v2');
  });

  it('a vhost created through the API grants the acting user full access; vhosts and metadata survive a restart', async () => {
    let b = await start(tempDir());
    await b.broker.admin.putVhost('prod', { description: 'production', tags: 'a,b' }, 'guest');
    expect(b.broker.admin.getPermission('guest', 'prod')).toEqual({ user: 'guest', vhost: 'prod', configure: '.*', write: '.*', read: '.*' });
    b = await restart(b);
    expect(b.broker.admin.getVhost('prod')).toEqual({ name: 'prod', description: 'production', tags: ['a', 'b'], default_queue_type: null, limits: {} });
    const c = await open(b, 'guest', 'guest', 'prod');
    const ch = await c.channel();
    await ch.queueDeclare('in-prod', { durable: true });
  });

  it('deleting a vhost closes its connections (320), removes its queues and exchanges, and a restart does not bring them back', async () => {
    let b = await start(tempDir());
    const admin = b.broker.admin;
    await admin.putVhost('doomed', {}, 'guest');
    const conn = await amqp.connect(url(b, 'guest', 'guest', 'doomed'));
    const errors: string[] = [];
    conn.on('close', (e?: Error) => errors.push(e?.message ?? 'closed without error'));
    const ch = await conn.createConfirmChannel();
    await ch.assertExchange('doomed.x', 'fanout', { durable: true });
    await ch.assertQueue('doomed.q', { durable: true });
    await ch.bindQueue('doomed.q', 'doomed.x', '');
    for (let i = 0; i < 10; i++) ch.publish('doomed.x', '', Buffer.from(`m${i}`), { persistent: true });
    await ch.waitForConfirms();
    const other = await amqp.connect(url(b, 'guest', 'guest', '/'));
    clients.add(other);

    expect(await admin.deleteVhost('doomed')).toBe(true);
    await waitFor(() => errors.length > 0, 'the connection.close');
    expect(failure(new Error(errors[0]))).toMatchObject({ text: "CONNECTION_FORCED - vhost 'doomed' is down" });
    expect(admin.getVhost('doomed')).toBeUndefined();
    expect(admin.listPermissions({ vhost: 'doomed' })).toEqual([]);
    expect(await refused(b, 'guest', 'guest', 'doomed')).toBe('connection closed: NOT_ALLOWED - vhost doomed not found (530)');
    await (await other.createChannel()).checkExchange('amq.direct'); // the other vhost is untouched

    // Re-created empty, after a restart too.
    b = await restart(b);
    expect(b.broker.admin.getVhost('doomed')).toBeUndefined();
    expect(b.broker.vhosts.has('doomed')).toBe(false);
    await b.broker.admin.putVhost('doomed', {}, 'guest');
    const again = await amqp.connect(url(b, 'guest', 'guest', 'doomed'));
    clients.add(again);
    const ch2 = await again.createChannel();
    ch2.on('error', () => {});
    await expect(ch2.checkQueue('doomed.q')).rejects.toThrow(/NOT_FOUND - no queue 'doomed.q' in vhost 'doomed'/);
  });

  it('max-connections: the connection over the limit is 530 with RabbitMQ text; 0 refuses all; a negative value lifts it', async () => {
    const b = await start();
    const admin = b.broker.admin;
    await admin.setVhostLimits('/', { 'max-connections': 1 });
    await open(b, 'guest', 'guest', '/');
    expect(await refused(b, 'guest', 'guest', '/')).toBe(
      "connection closed: NOT_ALLOWED - access to vhost '/' refused for user 'guest': connection limit (1) is reached (530)",
    );
    await admin.setVhostLimits('/', { 'max-connections': 0 });
    expect(await refused(b, 'guest', 'guest', '/')).toContain('connection limit (0) is reached');
    await admin.setVhostLimits('/', { 'max-connections': -1 });
    await open(b, 'guest', 'guest', '/');
    expect(admin.getVhostLimits('/')).toEqual({ 'max-connections': -1 });
    await admin.clearVhostLimit('/', 'max-connections');
    expect(admin.getVhostLimits('/')).toEqual({});
  });

  it('max-queues: a new queue over the limit is 406 with RabbitMQ text; existing ones can still be declared; limits survive a restart', async () => {
    let b = await start(tempDir());
    await b.broker.admin.setVhostLimits('/', { 'max-queues': 1 });
    b = await restart(b);
    expect(b.broker.admin.getVhostLimits('/')).toEqual({ 'max-queues': 1 });
    const c = await open(b, 'guest', 'guest', '/');
    const ch = await c.channel();
    await ch.queueDeclare('q1', { durable: false });
    await expect(ch.queueDeclare('q2', { durable: false })).rejects.toThrow(
      "PRECONDITION_FAILED - cannot declare queue 'q2': queue limit in vhost '/' (1) is reached (406)",
    );
    const ch2 = await c.channel();
    await ch2.queueDeclare('q1', { passive: true });
    await ch2.queueDeclare('q1', { durable: false });
  });

  it('limit validation answers as RabbitMQ', async () => {
    const b = await start();
    await expect(b.broker.admin.setVhostLimits('/', { 'max-foo': 3 })).rejects.toMatchObject({
      reason: 'Validation failed\n\nUnrecognised terms [{<<"max-foo">>,3}] in limits\n',
    });
    await expect(b.broker.admin.setVhostLimits('/', { 'max-queues': 'x' })).rejects.toMatchObject({
      reason: 'Validation failed\n\nmax-queues should be a number, actually was <<"x">>\n',
    });
    await expect(b.broker.admin.setVhostLimits('nope', { 'max-queues': 1 })).rejects.toMatchObject({ kind: 'not_found' });
  });
});
