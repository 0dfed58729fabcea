// Durability across restarts. bin/warren runs as a child process on a data folder; each test acts
// on it, stops it (SIGTERM: graceful) or kills it (SIGKILL: a crash), starts it again on the same
// folder and checks exactly what came back: exchanges, queues, bindings and their arguments,
// persistent messages with their properties byte for byte, redelivered flags, acks, purges and
// deletes, a queue deeper than the in-memory window, and the refusal of a data folder written with
// another layout version. Every expectation is RabbitMQ's.
//
// After a kill, only what the broker had confirmed is owed: declarations (their -ok replies) and
// publisher confirms. Acks, purges and deletes are made durable by waiting for a publisher-confirm
// round trip on the same connection after them (settleOnDisk), as the broker writes in order.

import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { type Channel, type ChannelModel, type ConfirmChannel, type ConsumeMessage, type GetMessage, type Options } from 'amqplib';
import { open } from 'lmdb';
import { afterEach, describe, expect, it } from 'vitest';
import { tempDir } from '../support/broker.js';
import { ChildBroker } from '../support/child-broker.js';
import { RawClient } from '../support/raw-client.js';
import * as M from '../../src/protocol/generated/amqp.js';
import { Clients, rejection, sleep, waitFor, type AmqpFailure } from '../support/harness.js';
import { LAYOUT_VERSION } from '../../src/store/lmdb-store.js';

type Mode = 'stop' | 'kill';
const MODES: Mode[] = ['stop', 'kill'];

// ---- Harness: child brokers, connections and data folders, all cleaned up after each test --------

const live = new Set<ChildBroker>();
const clients = new Clients(() => {
  throw new Error('connect to a ChildBroker: clients.connect(broker.url)');
});
const folders: string[] = [];

afterEach(async () => {
  await clients.closeAll();
  for (const b of [...live]) await b.kill();
  live.clear();
  for (const dir of folders.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function dataFolder(): string {
  const dir = tempDir('warren-durability-');
  folders.push(dir);
  return dir;
}

async function start(dataDir: string): Promise<ChildBroker> {
  const broker = await ChildBroker.start(dataDir);
  live.add(broker);
  return broker;
}

/** Stops (SIGTERM, must exit 0) or kills (SIGKILL) the broker and waits for its clients to notice. */
async function down(broker: ChildBroker, mode: Mode): Promise<void> {
  const code = mode === 'stop' ? await broker.stop() : await broker.kill();
  live.delete(broker);
  if (mode === 'stop') expect(code, broker.output.join('')).toBe(0);
  await waitFor(() => clients.open.size === 0, 'client connections to close after the broker went down');
}

async function restart(broker: ChildBroker, mode: Mode): Promise<ChildBroker> {
  await down(broker, mode);
  return start(broker.dataDir);
}

function connect(broker: ChildBroker): Promise<ChannelModel> {
  return clients.connect(broker.url);
}

async function channel(conn: ChannelModel): Promise<Channel> {
  const ch = await conn.createChannel();
  ch.on('error', () => {});
  return ch;
}

async function confirmChannel(conn: ChannelModel): Promise<ConfirmChannel> {
  const ch = await conn.createConfirmChannel();
  ch.on('error', () => {});
  return ch;
}

/** Runs op on a fresh channel; returns the channel error it must cause. */
async function failureOf(conn: ChannelModel, op: (ch: Channel) => Promise<unknown>): Promise<AmqpFailure> {
  const ch = await channel(conn);
  return rejection(op(ch));
}

const noQueue = (name: string): AmqpFailure =>
  expect.objectContaining({ code: 404, text: `NOT_FOUND - no queue '${name}' in vhost '/'` }) as AmqpFailure;
const noExchange = (name: string): AmqpFailure =>
  expect.objectContaining({ code: 404, text: `NOT_FOUND - no exchange '${name}' in vhost '/'` }) as AmqpFailure;

/**
 * Makes everything the broker was told on this connection so far durable before a kill: a
 * persistent message to a durable queue is confirmed only after the store batch holding it, and
 * every earlier write, is on disk.
 */
async function settleOnDisk(conn: ChannelModel): Promise<void> {
  const ch = await confirmChannel(conn);
  await ch.assertQueue('durability-sync', { durable: true });
  ch.sendToQueue('durability-sync', Buffer.from('sync'), { persistent: true });
  await ch.waitForConfirms();
  await ch.close();
}

/** Publishes persistent bodies to a queue through the default exchange and waits for the confirms. */
async function publishPersistent(conn: ChannelModel, queue: string, bodies: string[], options: Options.Publish = {}): Promise<void> {
  const ch = await confirmChannel(conn);
  for (const b of bodies) ch.sendToQueue(queue, Buffer.from(b), { persistent: true, ...options });
  await ch.waitForConfirms();
  await ch.close();
}

/** Drains a queue with basic.get no-ack. */
async function getAll(ch: Channel, queue: string): Promise<GetMessage[]> {
  const out: GetMessage[] = [];
  for (;;) {
    const m = await ch.get(queue, { noAck: true });
    if (m === false) return out;
    out.push(m);
  }
}

/** [body, redelivered] of everything in a queue, in order (drains it). */
async function drain(conn: ChannelModel, queue: string): Promise<[string, boolean][]> {
  const ch = await channel(conn);
  const out = (await getAll(ch, queue)).map((m): [string, boolean] => [m.content.toString(), m.fields.redelivered]);
  await ch.close();
  return out;
}

async function messageCount(conn: ChannelModel, queue: string): Promise<number> {
  const ch = await channel(conn);
  const { messageCount: n } = await ch.checkQueue(queue);
  await ch.close();
  return n;
}

interface RoutePublish {
  exchange: string;
  key: string;
  label: string;
  headers?: Record<string, unknown>;
}

/** Publishes each label (confirmed), then drains the queues: labels per queue. */
async function route(conn: ChannelModel, publishes: RoutePublish[], queues: string[]): Promise<Record<string, string[]>> {
  const ch = await confirmChannel(conn);
  for (const p of publishes) ch.publish(p.exchange, p.key, Buffer.from(p.label), p.headers ? { headers: p.headers } : {});
  await ch.waitForConfirms();
  const out: Record<string, string[]> = {};
  for (const q of queues) out[q] = (await getAll(ch, q)).map((m) => m.content.toString());
  await ch.close();
  return out;
}

// ---- Raw reads: the exact header frame bytes a consumer receives ---------------------------------

interface RawMessage {
  redelivered: boolean;
  /** the whole content-header payload: class, weight, body size, property flags and properties */
  header: Buffer;
  body: Buffer;
}

/** Drains a queue with basic.get no-ack over a raw socket, keeping the header frames as bytes. */
async function rawGetAll(port: number, queue: string): Promise<RawMessage[]> {
  const c = await RawClient.handshake(port);
  try {
    await c.openChannel(1);
    const out: RawMessage[] = [];
    for (;;) {
      c.frames.length = 0;
      c.send(1, { id: M.BASIC_GET, reserved1: 0, queue, noAck: true });
      const reply = (await waitFor(
        () => c.frames.find((f) => f.method?.id === M.BASIC_GET_OK || f.method?.id === M.BASIC_GET_EMPTY),
        'basic.get-ok or get-empty',
      ))!;
      if (reply.method!.id === M.BASIC_GET_EMPTY) return out;
      const header = (await waitFor(() => c.frames.find((f) => f.type === 2), 'the content header'))!;
      const size = Number(header.payload.readBigUInt64BE(4));
      const bodyOf = (): Buffer => Buffer.concat(c.frames.filter((f) => f.type === 3).map((f) => f.payload));
      await waitFor(() => bodyOf().length >= size, 'the whole body');
      out.push({ redelivered: (reply.method as M.BasicGetOk).redelivered, header: header.payload, body: bodyOf() });
    }
  } finally {
    c.destroy();
  }
}

// ---- Direct look into the store, only while no broker runs on the folder -------------------------

function openEnv(dataDir: string) {
  return open({ path: join(dataDir, 'lmdb') });
}

/** Record counts of the store's message bodies and queue entries (the broker must be down). */
async function storeCounts(dataDir: string): Promise<{ messages: number; entries: number }> {
  const env = openEnv(dataDir);
  try {
    const messages = env.openDB({ name: 'messages', keyEncoding: 'binary', encoding: 'binary' }).getCount();
    const entries = env.openDB({ name: 'queue-entries', keyEncoding: 'binary', encoding: 'binary' }).getCount();
    return { messages, entries };
  } finally {
    await env.close();
  }
}

/**
 * How long the broker may take to write acks by itself. Its lazy batch goes 10 ms after the acks
 * arrive; the bound is for a starved machine (a commit waits for an fsync behind other tests).
 */
const ACKS_ON_DISK_MS = 15_000;

/**
 * Queue entries on disk, read while the broker runs: LMDB serves a reader in another process a
 * consistent snapshot of the last commit, which is what a crash would leave.
 */
async function entriesOnDisk(dataDir: string): Promise<number> {
  const env = open({ path: join(dataDir, 'lmdb'), readOnly: true });
  try {
    return env.openDB({ name: 'queue-entries', keyEncoding: 'binary', encoding: 'binary' }).getCount();
  } finally {
    await env.close();
  }
}

/** Every key and value of every named database, as hex, for an exact before/after comparison. */
async function storeSnapshot(dataDir: string): Promise<Record<string, [string, string][]>> {
  const env = openEnv(dataDir);
  try {
    const out: Record<string, [string, string][]> = {};
    for (const name of ['meta', 'exchanges', 'queues', 'bindings', 'messages', 'queue-entries', 'shared', 'refs', 'counts', 'garbage', 'delivered', 'delayed']) {
      const db = env.openDB({ name, keyEncoding: 'binary', encoding: 'binary' });
      out[name] = [...db.getRange({})].map(({ key, value }) => [Buffer.from(key as Buffer).toString('hex'), Buffer.from(value as Buffer).toString('hex')]);
    }
    return out;
  } finally {
    await env.close();
  }
}

// ---- Tests ---------------------------------------------------------------------------------------

describe.each(MODES)('restart after %s', (mode) => {
  it('durable exchanges of every type, durable queues and bindings (queue and exchange-to-exchange) come back and route as before; transient and exclusive ones are gone', async () => {
    const dataDir = dataFolder();
    let broker = await start(dataDir);
    let conn = await connect(broker);
    const ch = await channel(conn);

    await ch.assertExchange('d.direct', 'direct', { durable: true });
    await ch.assertExchange('d.fanout', 'fanout', { durable: true });
    await ch.assertExchange('d.topic', 'topic', { durable: true });
    await ch.assertExchange('d.headers', 'headers', { durable: true });
    await ch.assertExchange('d.ae', 'fanout', { durable: true });
    await ch.assertExchange('d.with-ae', 'direct', { durable: true, alternateExchange: 'd.ae' });
    await ch.assertExchange('d.internal', 'topic', { durable: true, internal: true });
    await ch.assertExchange('d.autodelete', 'fanout', { durable: true, autoDelete: true });
    await ch.assertExchange('t.direct', 'direct', { durable: false });
    for (const q of ['q.direct', 'q.fanout', 'q.topic', 'q.headers-all', 'q.headers-any', 'q.ae', 'q.internal']) {
      await ch.assertQueue(q, { durable: true });
    }
    await ch.assertQueue('q.autodelete', { durable: true, autoDelete: true });
    await ch.assertQueue('t.q', { durable: false });
    await ch.assertQueue('q.exclusive', { durable: true, exclusive: true });

    await ch.bindQueue('q.direct', 'd.direct', 'k1');
    await ch.bindQueue('q.direct', 'd.direct', 'k2');
    await ch.bindQueue('q.direct', 'd.with-ae', 'k');
    await ch.bindQueue('q.fanout', 'd.fanout', 'ignored');
    await ch.bindQueue('q.fanout', 'd.autodelete', '');
    await ch.bindQueue('q.topic', 'd.topic', 'a.*.c');
    await ch.bindQueue('q.topic', 'd.topic', '#.z');
    await ch.bindQueue('q.topic', 'amq.topic', 'std.#'); // to a predeclared exchange
    await ch.bindQueue('q.headers-all', 'd.headers', '', { 'x-match': 'all', h1: 'v1', h2: 2 });
    await ch.bindQueue('q.headers-any', 'd.headers', '', { 'x-match': 'any', h1: 'v1', h3: 'x' });
    await ch.bindQueue('q.ae', 'd.ae', '');
    await ch.bindQueue('q.internal', 'd.internal', '#');
    await ch.bindQueue('q.autodelete', 'd.direct', 'auto');
    await ch.bindExchange('d.fanout', 'd.topic', 'e2e.#');
    await ch.bindExchange('d.internal', 'd.direct', 'to-internal');
    await ch.bindQueue('t.q', 'd.direct', 'k1'); // durable exchange → transient queue: not stored
    await ch.bindQueue('q.exclusive', 'd.direct', 'k1');
    await ch.bindQueue('q.direct', 't.direct', 'k1'); // transient exchange → durable queue: not stored

    const publishes: RoutePublish[] = [
      { exchange: 'd.direct', key: 'k1', label: 'direct-k1' },
      { exchange: 'd.direct', key: 'k2', label: 'direct-k2' },
      { exchange: 'd.direct', key: 'nope', label: 'direct-nope' },
      { exchange: 'd.fanout', key: 'anything', label: 'fanout' },
      { exchange: 'd.topic', key: 'a.b.c', label: 'topic-abc' },
      { exchange: 'd.topic', key: 'x.y.z', label: 'topic-xyz' },
      { exchange: 'd.topic', key: 'a.b', label: 'topic-ab' },
      { exchange: 'amq.topic', key: 'std.x', label: 'amq-topic' },
      { exchange: 'd.topic', key: 'e2e.hello', label: 'e2e' },
      { exchange: 'd.headers', key: '', label: 'headers-both', headers: { h1: 'v1', h2: 2 } },
      { exchange: 'd.headers', key: '', label: 'headers-h1', headers: { h1: 'v1' } },
      { exchange: 'd.headers', key: '', label: 'headers-none', headers: { h2: 3 } },
      { exchange: 'd.with-ae', key: 'k', label: 'ae-k' },
      { exchange: 'd.with-ae', key: 'other', label: 'ae-other' },
      { exchange: 'd.direct', key: 'to-internal', label: 'internal' },
      { exchange: 'd.autodelete', key: 'x', label: 'autodelete-x' },
      { exchange: 'd.direct', key: 'auto', label: 'auto' },
    ];
    const durableQueues = ['q.direct', 'q.fanout', 'q.topic', 'q.headers-all', 'q.headers-any', 'q.ae', 'q.internal', 'q.autodelete'];
    const expected = {
      'q.direct': ['direct-k1', 'direct-k2', 'ae-k'],
      'q.fanout': ['fanout', 'e2e', 'autodelete-x'],
      'q.topic': ['topic-abc', 'topic-xyz', 'amq-topic'],
      'q.headers-all': ['headers-both'],
      'q.headers-any': ['headers-both', 'headers-h1'],
      'q.ae': ['ae-other'],
      'q.internal': ['internal'],
      'q.autodelete': ['auto'],
    };
    expect(
      await route(conn, [...publishes, { exchange: 't.direct', key: 'k1', label: 't-direct' }], [...durableQueues, 't.q', 'q.exclusive']),
    ).toEqual({
      ...expected,
      'q.direct': ['direct-k1', 'direct-k2', 'ae-k', 't-direct'],
      't.q': ['direct-k1'],
      'q.exclusive': ['direct-k1'],
    });

    await settleOnDisk(conn);
    broker = await restart(broker, mode);
    conn = await connect(broker);

    // Durable exchanges are back with their type and flags.
    const check = await channel(conn);
    for (const x of ['d.direct', 'd.fanout', 'd.topic', 'd.headers', 'd.ae', 'd.with-ae', 'd.internal', 'd.autodelete']) {
      await check.checkExchange(x);
    }
    await check.assertExchange('d.direct', 'direct', { durable: true });
    await check.assertExchange('d.with-ae', 'direct', { durable: true, alternateExchange: 'd.ae' });
    await check.assertExchange('d.internal', 'topic', { durable: true, internal: true });
    await check.assertExchange('d.autodelete', 'fanout', { durable: true, autoDelete: true });
    expect(await failureOf(conn, (c) => c.assertExchange('d.direct', 'fanout', { durable: true }))).toMatchObject({
      code: 406,
      text: `PRECONDITION_FAILED - inequivalent arg 'type' for exchange 'd.direct' in vhost '/': received 'fanout' but current is 'direct'`,
    });
    expect(await failureOf(conn, (c) => c.assertExchange('d.internal', 'topic', { durable: true, internal: false }))).toMatchObject({
      code: 406,
      text: `PRECONDITION_FAILED - inequivalent arg 'internal' for exchange 'd.internal' in vhost '/': received 'false' but current is 'true'`,
    });
    expect(await failureOf(conn, (c) => c.assertExchange('d.autodelete', 'fanout', { durable: true, autoDelete: false }))).toMatchObject({
      code: 406,
      text: `PRECONDITION_FAILED - inequivalent arg 'auto_delete' for exchange 'd.autodelete' in vhost '/': received 'false' but current is 'true'`,
    });

    // Durable queues are back, empty and idle; the auto-delete one that never had a consumer too.
    for (const q of durableQueues) {
      expect(await check.checkQueue(q)).toEqual({ queue: q, messageCount: 0, consumerCount: 0 });
    }
    expect(await failureOf(conn, (c) => c.assertQueue('q.autodelete', { durable: true, autoDelete: false }))).toMatchObject({
      code: 406,
      text: `PRECONDITION_FAILED - inequivalent arg 'auto_delete' for queue 'q.autodelete' in vhost '/': received 'false' but current is 'true'`,
    });

    // Transient exchange and queue, and the exclusive durable queue, are gone.
    expect(await failureOf(conn, (c) => c.checkExchange('t.direct'))).toEqual(noExchange('t.direct'));
    expect(await failureOf(conn, (c) => c.checkQueue('t.q'))).toEqual(noQueue('t.q'));
    expect(await failureOf(conn, (c) => c.checkQueue('q.exclusive'))).toEqual(noQueue('q.exclusive'));

    // Same routing as before; a fresh t.q gets nothing: its binding went with the old queue.
    await check.assertQueue('t.q', { durable: false });
    expect(await route(conn, publishes, [...durableQueues, 't.q'])).toEqual({ ...expected, 't.q': [] });
  });

  it('declarations, bindings and deletions are durable as soon as their -ok reply arrives', async () => {
    const dataDir = dataFolder();
    let broker = await start(dataDir);
    let conn = await connect(broker);
    let ch = await channel(conn);
    await ch.assertExchange('d.now', 'direct', { durable: true });
    await ch.assertExchange('d.now-e2e', 'topic', { durable: true });
    await ch.assertQueue('q.now', { durable: true });
    await ch.assertQueue('q.doomed', { durable: true });
    await ch.bindQueue('q.now', 'd.now', 'k');
    await ch.bindExchange('d.now', 'd.now-e2e', '#');
    // Going down right after the last -ok: nothing in between gives the broker time to catch up.
    broker = await restart(broker, mode);
    conn = await connect(broker);
    ch = await channel(conn);
    await ch.checkExchange('d.now');
    await ch.checkExchange('d.now-e2e');
    await ch.checkQueue('q.doomed');
    expect(await route(conn, [{ exchange: 'd.now-e2e', key: 'k', label: 'via-e2e' }], ['q.now'])).toEqual({ 'q.now': ['via-e2e'] });

    await ch.deleteQueue('q.doomed');
    await ch.deleteExchange('d.now-e2e');
    await ch.unbindQueue('q.now', 'd.now', 'k');
    broker = await restart(broker, mode);
    conn = await connect(broker);
    expect(await failureOf(conn, (c) => c.checkQueue('q.doomed'))).toEqual(noQueue('q.doomed'));
    expect(await failureOf(conn, (c) => c.checkExchange('d.now-e2e'))).toEqual(noExchange('d.now-e2e'));
    expect(await route(conn, [{ exchange: 'd.now', key: 'k', label: 'unbound' }], ['q.now'])).toEqual({ 'q.now': [] });
  });

  it('queue arguments survive: the same arguments redeclare fine, different ones fail as before, and they still act', async () => {
    const dataDir = dataFolder();
    let broker = await start(dataDir);
    let conn = await connect(broker);
    const ch = await channel(conn);
    const args = {
      'x-max-length': 2,
      'x-message-ttl': 600_000,
      'x-dead-letter-exchange': 'd.dlx',
      'x-dead-letter-routing-key': 'dead',
      'x-max-priority': 5,
    };
    await ch.assertExchange('d.dlx', 'direct', { durable: true });
    await ch.assertQueue('q.dead', { durable: true });
    await ch.bindQueue('q.dead', 'd.dlx', 'dead');
    await ch.assertQueue('q.args', { durable: true, arguments: args });
    const mismatches: Record<string, unknown>[] = [
      { ...args, 'x-max-length': 3 },
      { ...args, 'x-message-ttl': 1000 },
      { ...args, 'x-dead-letter-exchange': 'other' },
      { 'x-max-length': 2, 'x-message-ttl': 600_000, 'x-dead-letter-exchange': 'd.dlx', 'x-dead-letter-routing-key': 'dead' },
      { ...args, 'x-overflow': 'reject-publish' },
    ];
    const before: AmqpFailure[] = [];
    for (const m of mismatches) before.push(await failureOf(conn, (c) => c.assertQueue('q.args', { durable: true, arguments: m })));
    for (const f of before) expect(f.code).toBe(406);
    expect(before[0]!.text).toMatch(/^PRECONDITION_FAILED - inequivalent arg 'x-max-length' for queue 'q.args' in vhost '\/': /);
    await publishPersistent(conn, 'q.args', ['a1', 'a2']);

    broker = await restart(broker, mode);
    conn = await connect(broker);
    const after = await channel(conn);
    expect(await after.assertQueue('q.args', { durable: true, arguments: args })).toEqual({ queue: 'q.args', messageCount: 2, consumerCount: 0 });
    for (let i = 0; i < mismatches.length; i++) {
      expect(await failureOf(conn, (c) => c.assertQueue('q.args', { durable: true, arguments: mismatches[i]! }))).toEqual(before[i]);
    }
    // x-max-length 2 still drops the head into the dead-letter exchange with its routing key.
    await publishPersistent(conn, 'q.args', ['a3']);
    const left = await drain(conn, 'q.args');
    expect(left.map(([b]) => b)).toEqual(['a2', 'a3']);
    if (mode === 'stop') expect(left).toEqual([['a2', false], ['a3', false]]);
    const dead = await getAll(after, 'q.dead');
    expect(dead.length).toBeGreaterThan(0);
    expect([dead[0]!.content.toString(), dead[0]!.fields.routingKey]).toEqual(['a1', 'dead']);
    expect((dead[0]!.properties.headers as Record<string, unknown>)['x-first-death-reason']).toBe('maxlen');
    // Only the dropped head is dead-lettered: the message that pushed it out is not copied there too.
    expect(dead.map((m) => [m.content.toString(), m.fields.routingKey])).toEqual([['a1', 'dead']]);
  });

  it('persistent messages in a durable queue come back in order with the same bodies and properties; transient ones and non-durable queues do not', async () => {
    const dataDir = dataFolder();
    let broker = await start(dataDir);
    let conn = await connect(broker);
    const ch = await channel(conn);
    for (const q of ['q.d1', 'q.d2']) await ch.assertQueue(q, { durable: true });
    for (const q of ['t.n1', 't.n2', 't.n3']) await ch.assertQueue(q, { durable: false });

    const binary = Buffer.alloc(256);
    for (let i = 0; i < 256; i++) binary[i] = i;
    const large = Buffer.alloc(300_000);
    for (let i = 0; i < large.length; i++) large[i] = (i * 31 + 7) & 0xff;
    const full: Options.Publish = {
      contentType: 'application/json',
      contentEncoding: 'utf-8',
      headers: {
        s: 'text ü',
        i: 42,
        neg: -7,
        f: 1.5,
        big: 2 ** 40,
        yes: true,
        no: false,
        nothing: null,
        list: [1, 'two', false, { deep: 'x' }],
        table: { nested: { deeper: 3 } },
        bytes: Buffer.from([0, 1, 2, 255]),
      },
      priority: 7,
      correlationId: 'corr-1',
      replyTo: 'reply-queue',
      expiration: '600000',
      messageId: 'id-0',
      timestamp: 1_700_000_000,
      type: 'kind',
      userId: 'guest',
      appId: 'durability-test',
    };
    const messages: { body: Buffer; options: Options.Publish; persistent: boolean }[] = [
      { body: Buffer.from('p0 full properties'), options: { ...full, persistent: true }, persistent: true },
      { body: Buffer.from('t1 delivery mode 1'), options: { ...full, deliveryMode: 1 }, persistent: false },
      { body: Buffer.alloc(0), options: { persistent: true }, persistent: true },
      { body: Buffer.from('t3 no delivery mode'), options: { headers: { a: 1 } }, persistent: false },
      { body: large, options: { deliveryMode: 2, contentType: 'application/octet-stream', headers: { part: 'large' } }, persistent: true },
      { body: binary, options: { persistent: true, messageId: 'bin' }, persistent: true },
      { body: Buffer.from('t6 persistent false'), options: { persistent: false, priority: 1 }, persistent: false },
      { body: Buffer.from('p7 headers only'), options: { persistent: true, headers: { 'x-custom': 'v', n: 0 } }, persistent: true },
      { body: Buffer.from('p8 last'), options: { persistent: true, type: 'last' }, persistent: true },
    ];
    const pub = await confirmChannel(conn);
    for (const q of ['q.d1', 'q.d2', 't.n1', 't.n2', 't.n3']) {
      for (const m of messages) pub.sendToQueue(q, m.body, m.options);
    }
    await pub.waitForConfirms();

    // What a consumer sees before the restart: amqplib's view and the raw header bytes.
    const baseline = await getAll(ch, 't.n1');
    expect(baseline.map((m) => m.content)).toEqual(messages.map((m) => m.body));
    const rawBaseline = await rawGetAll(broker.port, 't.n2');
    expect(rawBaseline.map((m) => m.body)).toEqual(messages.map((m) => m.body));
    const keep = messages.map((m) => m.persistent);

    broker = await restart(broker, mode);
    conn = await connect(broker);
    const after = await channel(conn);
    const persistentCount = keep.filter(Boolean).length;
    expect(await after.checkQueue('q.d1')).toEqual({ queue: 'q.d1', messageCount: persistentCount, consumerCount: 0 });

    const got = await getAll(after, 'q.d1');
    const want = baseline.filter((_, i) => keep[i]);
    expect(got.map((m) => m.content)).toEqual(want.map((m) => m.content));
    expect(got.map((m) => m.properties)).toEqual(want.map((m) => m.properties));
    expect(got.map((m) => [m.fields.exchange, m.fields.routingKey])).toEqual(want.map(() => ['', 'q.d1']));
    if (mode === 'stop') expect(got.map((m) => m.fields.redelivered)).toEqual(want.map(() => false));

    const raw = await rawGetAll(broker.port, 'q.d2');
    const rawWant = rawBaseline.filter((_, i) => keep[i]);
    expect(raw.map((m) => m.header.toString('hex'))).toEqual(rawWant.map((m) => m.header.toString('hex')));
    expect(raw.map((m) => m.body)).toEqual(rawWant.map((m) => m.body));

    // Non-durable queues are gone, and a redeclared one is empty: their persistent messages are not kept.
    for (const q of ['t.n1', 't.n2', 't.n3']) expect(await failureOf(conn, (c) => c.checkQueue(q))).toEqual(noQueue(q));
    expect(await after.assertQueue('t.n3', { durable: false })).toEqual({ queue: 't.n3', messageCount: 0, consumerCount: 0 });
  });

  it('a message fanned out to 3 durable queues comes back in each; acking it in one leaves the others theirs', async () => {
    const dataDir = dataFolder();
    let broker = await start(dataDir);
    let conn = await connect(broker);
    const ch = await channel(conn);
    await ch.assertExchange('d.fan', 'fanout', { durable: true });
    const queues = ['q.f1', 'q.f2', 'q.f3'];
    for (const q of queues) {
      await ch.assertQueue(q, { durable: true });
      await ch.bindQueue(q, 'd.fan', '');
    }
    const pub = await confirmChannel(conn);
    // A small body is stored inline in each queue's entry; a large one (4 KiB or more) once,
    // referenced from an entry in each queue.
    const large = `shared-b:${'x'.repeat(8192)}`;
    pub.publish('d.fan', '', Buffer.from('shared-a'), { persistent: true, messageId: 'a' });
    pub.publish('d.fan', '', Buffer.from(large), { persistent: true, messageId: 'b' });
    await pub.waitForConfirms();
    await down(broker, mode);
    expect(await storeCounts(dataDir)).toEqual({ messages: 1, entries: 6 });

    const counts = async (): Promise<number[]> => Promise.all(queues.map((q) => messageCount(conn, q)));
    broker = await start(dataDir);
    conn = await connect(broker);
    expect(await counts()).toEqual([2, 2, 2]);
    expect((await drain(conn, 'q.f1')).map(([b]) => b)).toEqual(['shared-a', large]);
    await settleOnDisk(conn);

    broker = await restart(broker, mode);
    conn = await connect(broker);
    expect(await counts()).toEqual([0, 2, 2]);
    expect((await drain(conn, 'q.f2')).map(([b]) => b)).toEqual(['shared-a', large]);
    await settleOnDisk(conn);

    broker = await restart(broker, mode);
    conn = await connect(broker);
    expect(await counts()).toEqual([0, 0, 2]);
    const last = await getAll(await channel(conn), 'q.f3');
    expect(last.map((m) => [m.content.toString(), m.properties.messageId])).toEqual([
      ['shared-a', 'a'],
      [large, 'b'],
    ]);
    await settleOnDisk(conn);

    broker = await restart(broker, mode);
    conn = await connect(broker);
    expect(await counts()).toEqual([0, 0, 0]);
    await down(broker, 'stop');
    // The shared body went with its last reference; the entries left are the 3 messages settleOnDisk
    // put in its own queue.
    expect(await storeCounts(dataDir)).toEqual({ messages: 0, entries: 3 });
  });

  it('messages delivered but not acked come back at their original positions marked redelivered', async () => {
    const dataDir = dataFolder();
    let broker = await start(dataDir);
    let conn = await connect(broker);
    const ch = await channel(conn);
    await ch.assertQueue('q.unacked', { durable: true });
    const bodies = Array.from({ length: 10 }, (_, i) => `m${i}`);
    await publishPersistent(conn, 'q.unacked', bodies);
    const consumer = await channel(conn);
    await consumer.prefetch(4);
    const got: ConsumeMessage[] = [];
    await consumer.consume('q.unacked', (m) => m && got.push(m), { noAck: false });
    await waitFor(() => got.length === 4, '4 deliveries');
    consumer.ack(got[1]!); // m1 is gone for good; m0 m2 m3 stay unacked
    await waitFor(() => got.length === 5, 'a 5th delivery after the ack');
    await settleOnDisk(conn);
    expect(got.map((m) => m.content.toString())).toEqual(['m0', 'm1', 'm2', 'm3', 'm4']);

    broker = await restart(broker, mode);
    conn = await connect(broker);
    const back = await drain(conn, 'q.unacked');
    expect(back.map(([b]) => b)).toEqual(['m0', 'm2', 'm3', 'm4', 'm5', 'm6', 'm7', 'm8', 'm9']);
    expect(back.slice(0, 4)).toEqual([
      ['m0', true],
      ['m2', true],
      ['m3', true],
      ['m4', true],
    ]);
    // After a graceful stop, what was never delivered is not marked redelivered.
    if (mode === 'stop') expect(back.slice(4).every(([, r]) => !r)).toBe(true);
  });

  it('acked, nacked and rejected-without-requeue messages do not come back', async () => {
    const dataDir = dataFolder();
    let broker = await start(dataDir);
    let conn = await connect(broker);
    const ch = await channel(conn);
    await ch.assertQueue('q.acked', { durable: true });
    await publishPersistent(conn, 'q.acked', Array.from({ length: 10 }, (_, i) => `m${i}`));
    const got: GetMessage[] = [];
    for (let i = 0; i < 7; i++) got.push((await ch.get('q.acked', { noAck: false })) as GetMessage);
    ch.ack(got[0]!);
    ch.ack(got[2]!);
    ch.ack(got[3]!, true); // m1 m3
    ch.nack(got[4]!, false, false); // m4 dropped
    ch.reject(got[5]!, false); // m5 dropped
    ch.reject(got[6]!, true); // m6 back, redelivered
    await settleOnDisk(conn);
    expect(await ch.checkQueue('q.acked')).toEqual({ queue: 'q.acked', messageCount: 4, consumerCount: 0 });

    broker = await restart(broker, mode);
    conn = await connect(broker);
    const back = await drain(conn, 'q.acked');
    expect(back.map(([b]) => b)).toEqual(['m6', 'm7', 'm8', 'm9']);
    expect(back[0]).toEqual(['m6', true]);
    if (mode === 'stop') expect(back.slice(1)).toEqual([['m7', false], ['m8', false], ['m9', false]]);
  });

  it('acks with no round trip after them reach the disk by themselves and stay acked', async () => {
    const dataDir = dataFolder();
    let broker = await start(dataDir);
    let conn = await connect(broker);
    const ch = await channel(conn);
    await ch.assertQueue('q.acked-idle', { durable: true });
    await publishPersistent(conn, 'q.acked-idle', ['m0', 'm1', 'm2', 'm3']);
    // Confirmed, so committed: the reader below sees the broker's commits as they happen.
    expect(await entriesOnDisk(dataDir)).toBe(4);
    const got: GetMessage[] = [];
    for (let i = 0; i < 3; i++) got.push((await ch.get('q.acked-idle', { noAck: false })) as GetMessage);
    ch.ack(got[0]!);
    ch.ack(got[2]!, true);
    // No round trip after the acks: the broker must write them by itself (its lazy batch goes
    // within milliseconds). Waiting for them on disk, not a fixed second, keeps this true on a
    // starved machine where the broker may not even have read the acks a second later.
    await waitFor(async () => (await entriesOnDisk(dataDir)) === 1, 'the 3 acks on disk (1 queue entry left, m3)', ACKS_ON_DISK_MS);
    broker = await restart(broker, mode);
    conn = await connect(broker);
    expect((await drain(conn, 'q.acked-idle')).map(([b]) => b)).toEqual(['m3']);
  });

  it('message TTLs keep running across the restart: what expired meanwhile is gone (and dead-lettered)', async () => {
    const dataDir = dataFolder();
    let broker = await start(dataDir);
    let conn = await connect(broker);
    const ch = await channel(conn);
    await ch.assertExchange('d.ttl-dlx', 'fanout', { durable: true });
    await ch.assertQueue('q.ttl-dead', { durable: true });
    await ch.bindQueue('q.ttl-dead', 'd.ttl-dlx', '');
    await ch.assertQueue('q.per-message', { durable: true });
    await ch.assertQueue('q.queue-ttl', { durable: true, arguments: { 'x-message-ttl': 1500, 'x-dead-letter-exchange': 'd.ttl-dlx' } });
    await publishPersistent(conn, 'q.per-message', ['short'], { expiration: '1500' });
    await publishPersistent(conn, 'q.per-message', ['long'], { expiration: '600000' });
    await publishPersistent(conn, 'q.per-message', ['forever']);
    await publishPersistent(conn, 'q.queue-ttl', ['queue-ttl']);
    // Both 1.5 s TTLs count from when the broker enqueued the message, at the latest when its
    // confirm arrived here. (Counting from before the first publish assumed the four publishes
    // took under 0.5 s, which a loaded machine does not promise.)
    const expiredBy = Date.now() + 1500 + 50;
    await settleOnDisk(conn);
    broker = await restart(broker, mode);
    conn = await connect(broker);
    await sleep(Math.max(0, expiredBy - Date.now()));
    expect((await drain(conn, 'q.per-message')).map(([b]) => b)).toEqual(['long', 'forever']);
    expect(await drain(conn, 'q.queue-ttl')).toEqual([]);
    const dead = await getAll(await channel(conn), 'q.ttl-dead');
    expect(dead.map((m) => [m.content.toString(), (m.properties.headers as Record<string, unknown>)['x-first-death-reason']])).toEqual([
      ['queue-ttl', 'expired'],
    ]);
  });

  it('purge, queue.delete, exchange.delete and unbind are durable', async () => {
    const dataDir = dataFolder();
    let broker = await start(dataDir);
    let conn = await connect(broker);
    const ch = await channel(conn);
    await ch.assertExchange('d.x', 'direct', { durable: true });
    await ch.assertExchange('d.gone', 'fanout', { durable: true });
    for (const q of ['q.purged', 'q.deleted', 'q.kept', 'q.unbound']) {
      await ch.assertQueue(q, { durable: true });
      await ch.bindQueue(q, 'd.x', q);
    }
    await ch.bindQueue('q.kept', 'd.gone', '');
    for (const q of ['q.purged', 'q.deleted', 'q.kept']) await publishPersistent(conn, q, ['a', 'b', 'c', 'd', 'e']);
    expect(await ch.purgeQueue('q.purged')).toEqual({ messageCount: 5 });
    expect(await ch.deleteQueue('q.deleted')).toEqual({ messageCount: 5 });
    await ch.deleteExchange('d.gone');
    await ch.unbindQueue('q.unbound', 'd.x', 'q.unbound');
    // A durable auto-delete queue goes with its last consumer, for good.
    await ch.assertQueue('q.auto-gone', { durable: true, autoDelete: true });
    const { consumerTag } = await ch.consume('q.auto-gone', () => {}, { noAck: true });
    await ch.cancel(consumerTag);
    expect(await failureOf(conn, (c) => c.checkQueue('q.auto-gone'))).toEqual(noQueue('q.auto-gone'));
    await settleOnDisk(conn);

    broker = await restart(broker, mode);
    conn = await connect(broker);
    const after = await channel(conn);
    expect(await after.checkQueue('q.purged')).toEqual({ queue: 'q.purged', messageCount: 0, consumerCount: 0 });
    expect(await after.checkQueue('q.kept')).toEqual({ queue: 'q.kept', messageCount: 5, consumerCount: 0 });
    expect(await failureOf(conn, (c) => c.checkQueue('q.deleted'))).toEqual(noQueue('q.deleted'));
    expect(await failureOf(conn, (c) => c.checkExchange('d.gone'))).toEqual(noExchange('d.gone'));
    expect(await failureOf(conn, (c) => c.checkQueue('q.auto-gone'))).toEqual(noQueue('q.auto-gone'));
    // A queue declared again under the deleted name starts empty and unbound.
    expect(await after.assertQueue('q.deleted', { durable: true })).toEqual({ queue: 'q.deleted', messageCount: 0, consumerCount: 0 });
    expect(
      await route(
        conn,
        ['q.purged', 'q.deleted', 'q.kept', 'q.unbound'].map((q) => ({ exchange: 'd.x', key: q, label: `to-${q}` })),
        ['q.purged', 'q.deleted', 'q.unbound'],
      ),
    ).toEqual({ 'q.purged': ['to-q.purged'], 'q.deleted': [], 'q.unbound': [] });
    expect((await drain(conn, 'q.kept')).map(([b]) => b)).toEqual(['a', 'b', 'c', 'd', 'e', 'to-q.kept']);
  });
});

describe('restart: redelivered flags after a graceful stop', () => {
  it('in a priority queue, lower-priority messages never delivered are not marked redelivered', async () => {
    const dataDir = dataFolder();
    let broker = await start(dataDir);
    let conn = await connect(broker);
    const ch = await channel(conn);
    await ch.assertQueue('q.prio', { durable: true, arguments: { 'x-max-priority': 9 } });
    await publishPersistent(conn, 'q.prio', ['low0', 'low1', 'low2']);
    await publishPersistent(conn, 'q.prio', ['high'], { priority: 9 });
    const first = (await ch.get('q.prio', { noAck: false })) as GetMessage;
    expect(first.content.toString()).toBe('high');

    broker = await restart(broker, 'stop');
    conn = await connect(broker);
    expect(await drain(conn, 'q.prio')).toEqual([
      ['high', true],
      ['low0', false],
      ['low1', false],
      ['low2', false],
    ]);
  });
});

describe('restart: a queue deeper than the in-memory window', () => {
  const COUNT = 60_000;
  const body = (i: number, kind = 'p'): Buffer => {
    const b = Buffer.alloc(200, 97 + (i % 26));
    b.write(`${String(i).padStart(8, '0')}${kind}`, 0, 'latin1');
    return b;
  };

  /** Publishes bodies with confirms, 2000 at a time. */
  async function publishDeep(conn: ChannelModel, queue: string, items: { body: Buffer; persistent: boolean }[]): Promise<void> {
    const pub = await confirmChannel(conn);
    for (let i = 0; i < items.length; ) {
      const end = Math.min(items.length, i + 2000);
      for (; i < end; i++) pub.sendToQueue(queue, items[i]!.body, { persistent: items[i]!.persistent });
      await pub.waitForConfirms();
    }
    await pub.close();
  }

  /** Consumes everything with prefetch 500, acking each; returns the bodies in order and the redelivered count. */
  async function consumeAll(conn: ChannelModel, queue: string, expected: number): Promise<{ bodies: Buffer[]; redelivered: number }> {
    const ch = await channel(conn);
    await ch.prefetch(500);
    const bodies: Buffer[] = [];
    let redelivered = 0;
    await ch.consume(
      queue,
      (m) => {
        if (m === null) return;
        bodies.push(m.content);
        if (m.fields.redelivered) redelivered++;
        ch.ack(m);
      },
      { noAck: false },
    );
    await waitFor(() => bodies.length >= expected, `${expected} deliveries (have ${bodies.length})`, 120_000);
    await sleep(200);
    return { bodies, redelivered };
  }

  /** Index of the first difference, with both sides, or null when equal. */
  function firstDifference(got: Buffer[], want: Buffer[]): string | null {
    const n = Math.max(got.length, want.length);
    for (let i = 0; i < n; i++) {
      const g = got[i];
      const w = want[i];
      if (g === undefined || w === undefined || !g.equals(w)) {
        return `at #${i}: got ${g?.toString('latin1', 0, 9) ?? 'nothing'}, want ${w?.toString('latin1', 0, 9) ?? 'nothing'} (got ${got.length}, want ${want.length})`;
      }
    }
    return null;
  }

  it.each(MODES)(`${COUNT} persistent 200-byte messages come back complete and in order (%s)`, { timeout: 180_000 }, async (mode) => {
    const dataDir = dataFolder();
    let broker = await start(dataDir);
    let conn = await connect(broker);
    await (await channel(conn)).assertQueue('q.deep', { durable: true });
    const want = Array.from({ length: COUNT }, (_, i) => body(i));
    await publishDeep(conn, 'q.deep', want.map((b) => ({ body: b, persistent: true })));
    expect(await messageCount(conn, 'q.deep')).toBe(COUNT);

    broker = await restart(broker, mode);
    conn = await connect(broker);
    expect(await messageCount(conn, 'q.deep')).toBe(COUNT);
    const { bodies, redelivered } = await consumeAll(conn, 'q.deep', COUNT);
    expect(firstDifference(bodies, want)).toBeNull();
    if (mode === 'stop') expect(redelivered).toBe(0);
    expect(await messageCount(conn, 'q.deep')).toBe(0);
    await settleOnDisk(conn);

    // The acks were durable too: nothing comes back.
    broker = await restart(broker, mode);
    conn = await connect(broker);
    expect(await messageCount(conn, 'q.deep')).toBe(0);
  });

  it('transient messages paged to disk (over the memory budget) do not come back; persistent ones around them do', { timeout: 180_000 }, async () => {
    const dataDir = dataFolder();
    let broker = await ChildBroker.start(dataDir, undefined, ['--memory-budget', '1048576']);
    live.add(broker);
    let conn = await connect(broker);
    await (await channel(conn)).assertQueue('q.paged', { durable: true });
    // Fill the in-memory window with persistent messages, then mix: the rest is paged to disk.
    const items = Array.from({ length: 50_000 }, (_, i) => ({ body: body(i), persistent: true }));
    for (let i = 50_000; i < 52_000; i++) items.push({ body: body(i, i % 2 === 0 ? 't' : 'p'), persistent: i % 2 !== 0 });
    await publishDeep(conn, 'q.paged', items);
    expect(await messageCount(conn, 'q.paged')).toBe(52_000);
    await down(broker, 'stop');
    // The scenario's premise: the transient messages past the window were written to disk too.
    expect((await storeCounts(dataDir)).entries, 'entries on disk (51,000 persistent + 1,000 paged transient)').toBe(52_000);

    broker = await start(dataDir);
    conn = await connect(broker);
    const want = items.filter((m) => m.persistent).map((m) => m.body);
    expect(await messageCount(conn, 'q.paged')).toBe(want.length);
    const { bodies, redelivered } = await consumeAll(conn, 'q.paged', want.length);
    expect(firstDifference(bodies, want)).toBeNull();
    expect(redelivered).toBe(0);
  });
});

describe('restart: storage layout version', () => {
  it('a data folder with another layout version is refused, and left as it was', async () => {
    const dataDir = dataFolder();
    let broker = await start(dataDir);
    let conn = await connect(broker);
    const ch = await channel(conn);
    await ch.assertQueue('q.layout', { durable: true });
    await publishPersistent(conn, 'q.layout', ['kept-1', 'kept-2']);
    await down(broker, 'stop');

    const env = openEnv(dataDir);
    const meta = env.openDB<unknown, string>({ name: 'meta' });
    const original = meta.get('layout') as { version: number; writtenBy: string; createdAt: string };
    expect(original.version).toBe(LAYOUT_VERSION);
    meta.putSync('layout', { version: 999, writtenBy: 'test', createdAt: '' });
    await env.close();
    const snapshot = await storeSnapshot(dataDir);

    const err = await ChildBroker.start(dataDir).then(
      (b) => {
        live.add(b);
        return null;
      },
      (e: unknown) => e as Error,
    );
    expect(err, 'the broker started on a layout-999 folder').toBeInstanceOf(Error);
    expect(err!.message).toMatch(/exited with [1-9]\d* before listening/);
    expect(err!.message).toContain('layout 999');
    expect(await storeSnapshot(dataDir)).toEqual(snapshot);

    // Put the layout back: the data was untouched and the broker reads it again.
    const env2 = openEnv(dataDir);
    env2.openDB<unknown, string>({ name: 'meta' }).putSync('layout', original);
    await env2.close();
    broker = await start(dataDir);
    conn = await connect(broker);
    expect(await drain(conn, 'q.layout')).toEqual([
      ['kept-1', false],
      ['kept-2', false],
    ]);
  });
});
