// The x-delayed-message exchange (built into Warren; a plugin on RabbitMQ, so this whole file is
// Warren-only and skipped when WARREN_TEST_AMQP_URL points at another broker): messages with an
// x-delay header are held for that many ms, then routed like the x-delayed-type exchange would
// route them, in due-time order; no, zero or negative delays route at once; a missing or unknown
// x-delayed-type is refused; a durable delayed exchange keeps held messages across a restart
// (bin/warren as a child process, SIGTERM, start again), a non-durable one loses them.

import { rmSync } from 'node:fs';
import amqp from 'amqplib';
import { afterEach, describe, expect, it } from 'vitest';
import { tempDir } from '../support/broker.js';
import { ChildBroker } from '../support/child-broker.js';
import { collector, EXTERNAL, QUIET_MS, rejection, sleep, waitFor, useBroker, type Channel, type Message } from '../support/harness.js';

const h = useBroker();

/** A collector that also records when each message arrived. */
function timedCollector() {
  const at = new Map<string, number>();
  const c = collector((m) => at.set(m.content.toString(), Date.now()));
  return Object.assign(c, { at });
}

async function delayedExchange(ch: Channel, delayedType: string, extra: Record<string, unknown> = {}): Promise<string> {
  const x = h.exchange('dx');
  await ch.assertExchange(x, 'x-delayed-message', { durable: false, arguments: { 'x-delayed-type': delayedType, ...extra } });
  return x;
}

async function boundQueue(ch: Channel, x: string, key: string): Promise<string> {
  const q = h.queue('dx-q');
  await ch.assertQueue(q, { durable: false });
  await ch.bindQueue(q, x, key);
  return q;
}

describe.skipIf(EXTERNAL)('x-delayed-message exchange (Warren-only)', () => {
  it('a message with x-delay N arrives no earlier than N ms after publishing (direct)', async () => {
    const conn = await h.connect();
    const ch = await h.channel(conn);
    const x = await delayedExchange(ch, 'direct');
    const q = await boundQueue(ch, x, 'k');
    const c = timedCollector();
    await ch.consume(q, c.onMessage, { noAck: true });
    const t0 = Date.now();
    ch.publish(x, 'k', Buffer.from('later'), { headers: { 'x-delay': 200 } });
    await sleep(100);
    expect(c.messages).toEqual([]);
    await c.waitFor(1, 5000);
    const waited = c.at.get('later')! - t0;
    expect(waited).toBeGreaterThanOrEqual(195);
    // Released on time, not when something else happens; generous for a loaded machine.
    expect(waited).toBeLessThan(3000);
    expect(c.messages[0]!.fields).toMatchObject({ exchange: x, routingKey: 'k' });
  });

  it('messages arrive in due-time order whatever order they were published in; undelayed ones at once', async () => {
    const conn = await h.connect();
    const ch = await h.channel(conn);
    const x = await delayedExchange(ch, 'direct');
    const q = await boundQueue(ch, x, 'k');
    const c = timedCollector();
    await ch.consume(q, c.onMessage, { noAck: true });
    const t0 = Date.now();
    const delays: [string, number | undefined][] = [
      ['d300', 300],
      ['d100', 100],
      ['d200', 200],
      ['now', undefined],
      ['d150', 150],
    ];
    for (const [body, delay] of delays) ch.publish(x, 'k', Buffer.from(body), delay === undefined ? {} : { headers: { 'x-delay': delay } });
    await c.waitFor(5, 3000);
    expect(c.bodies()).toEqual(['now', 'd100', 'd150', 'd200', 'd300']);
    expect(c.at.get('now')! - t0).toBeLessThan(1000);
    for (const [body, delay] of delays) if (delay !== undefined) expect(c.at.get(body)! - t0).toBeGreaterThanOrEqual(delay - 5);
  });

  it.each([
    ['no x-delay header', undefined],
    ['x-delay 0', 0],
    ['x-delay -500', -500],
  ])('%s: routed at once', async (_label, delay) => {
    const conn = await h.connect();
    const ch = await h.channel(conn);
    const x = await delayedExchange(ch, 'direct');
    const q = await boundQueue(ch, x, 'k');
    const c = timedCollector();
    await ch.consume(q, c.onMessage, { noAck: true });
    const t0 = Date.now();
    ch.publish(x, 'k', Buffer.from('now'), delay === undefined ? { headers: { other: 1 } } : { headers: { 'x-delay': delay } });
    await c.waitFor(1, 2000);
    expect(c.at.get('now')! - t0).toBeLessThan(1000);
  });

  it('x-delayed-type topic: routed by pattern once due; a key no binding matches is dropped', async () => {
    const conn = await h.connect();
    const ch = await h.channel(conn);
    const x = await delayedExchange(ch, 'topic');
    const q = await boundQueue(ch, x, 'orders.*');
    const c = timedCollector();
    await ch.consume(q, c.onMessage, { noAck: true });
    const t0 = Date.now();
    ch.publish(x, 'orders.created', Buffer.from('match'), { headers: { 'x-delay': 120 } });
    ch.publish(x, 'users.created', Buffer.from('nomatch'), { headers: { 'x-delay': 60 } });
    await c.waitFor(1, 2000);
    expect(c.at.get('match')! - t0).toBeGreaterThanOrEqual(115);
    await sleep(QUIET_MS);
    expect(c.bodies()).toEqual(['match']);
    expect(c.messages[0]!.fields.routingKey).toBe('orders.created');
  });

  it('x-delayed-type fanout: every bound queue gets the message once due', async () => {
    const conn = await h.connect();
    const ch = await h.channel(conn);
    const x = await delayedExchange(ch, 'fanout');
    const q1 = await boundQueue(ch, x, '');
    const q2 = await boundQueue(ch, x, 'ignored');
    const c1 = timedCollector();
    const c2 = timedCollector();
    await ch.consume(q1, c1.onMessage, { noAck: true });
    await ch.consume(q2, c2.onMessage, { noAck: true });
    const t0 = Date.now();
    ch.publish(x, 'any', Buffer.from('fan'), { headers: { 'x-delay': 100 } });
    await c1.waitFor(1, 2000);
    await c2.waitFor(1, 2000);
    expect(c1.at.get('fan')! - t0).toBeGreaterThanOrEqual(95);
    expect(c2.at.get('fan')! - t0).toBeGreaterThanOrEqual(95);
  });

  it('the publisher confirm comes at once, not when the delay ends; properties and headers are delivered, x-delay negated as the plugin does', async () => {
    const conn = await h.connect();
    const ch = await h.channel(conn);
    const x = await delayedExchange(ch, 'direct');
    const q = await boundQueue(ch, x, 'k');
    const pub = await conn.createConfirmChannel();
    const t0 = Date.now();
    pub.publish(x, 'k', Buffer.from('confirmed'), { headers: { 'x-delay': 2000, app: 'a' }, messageId: 'm-9', contentType: 'text/plain' });
    await pub.waitForConfirms();
    // Confirmed while still held: not released yet.
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(await ch.checkQueue(q)).toMatchObject({ messageCount: 0 });
    const m = await waitFor(() => ch.get(q, { noAck: true }), 'the delayed message', 10_000);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1995);
    expect(m.properties).toMatchObject({ messageId: 'm-9', contentType: 'text/plain' });
    // The delayed-message plugin negates x-delay on the way out ("was delayed by 2000 ms").
    expect(m.properties.headers).toMatchObject({ app: 'a', 'x-delay': -2000 });
  });

  it('deleting the exchange drops the messages it holds', async () => {
    const conn = await h.connect();
    const ch = await h.channel(conn);
    const x = await delayedExchange(ch, 'direct');
    const q = await boundQueue(ch, x, 'k');
    // A witness: the same delay on another delayed exchange, published after the delete. Once it
    // has arrived the doomed message would have too (a condition, not a sleep; the delay is long
    // enough that a loaded machine still deletes before the release).
    const y = await delayedExchange(ch, 'direct');
    const w = await boundQueue(ch, y, 'k');
    ch.publish(x, 'k', Buffer.from('doomed'), { headers: { 'x-delay': 1500 } });
    await ch.checkExchange(x);
    await ch.deleteExchange(x);
    ch.publish(y, 'k', Buffer.from('witness'), { headers: { 'x-delay': 1500 } });
    const witness = await waitFor(() => ch.get(w, { noAck: true }), 'the witness message', 15_000);
    expect(witness.content.toString()).toBe('witness');
    expect(await ch.checkQueue(q)).toMatchObject({ messageCount: 0 });
  });

  it.each([
    ['missing', {}],
    ["'nope'", { 'x-delayed-type': 'nope' }],
    ["'x-delayed-message' itself", { 'x-delayed-type': 'x-delayed-message' }],
    ['not a string', { 'x-delayed-type': 5 }],
  ])('x-delayed-type %s is 406 PRECONDITION_FAILED', async (_label, args) => {
    const conn = await h.connect();
    const ch = await h.channel(conn);
    const x = h.exchange('dx-bad');
    expect(await rejection(ch.assertExchange(x, 'x-delayed-message', { durable: false, arguments: args }))).toMatchObject({
      code: 406,
      text: "PRECONDITION_FAILED - Invalid argument, 'x-delayed-type' must be an existing exchange type",
      classId: 40,
      methodId: 10,
    });
    expect(conn.closed).toBe(false);
    expect(conn.errors).toEqual([]);
  });

  it('redeclaring with the same type and x-delayed-type is fine; passive declare works', async () => {
    const conn = await h.connect();
    const ch = await h.channel(conn);
    const x = await delayedExchange(ch, 'direct');
    await ch.assertExchange(x, 'x-delayed-message', { durable: false, arguments: { 'x-delayed-type': 'direct' } });
    await ch.checkExchange(x);
    expect(ch.errors).toEqual([]);
  });
});

// ---- Restarts: bin/warren as a child process ------------------------------------------------------

const live = new Set<ChildBroker>();
const folders: string[] = [];
const connections = new Set<amqp.ChannelModel>();

afterEach(async () => {
  for (const c of [...connections]) await Promise.race([c.close().catch(() => {}), sleep(1000)]);
  connections.clear();
  for (const b of [...live]) await b.kill();
  live.clear();
  for (const dir of folders.splice(0)) rmSync(dir, { recursive: true, force: true });
});

async function start(dir: string): Promise<ChildBroker> {
  const b = await ChildBroker.start(dir);
  live.add(b);
  return b;
}

async function stop(b: ChildBroker): Promise<void> {
  for (const c of [...connections]) await Promise.race([c.close().catch(() => {}), sleep(1000)]);
  connections.clear();
  expect(await b.stop()).toBe(0);
  live.delete(b);
}

async function open(b: ChildBroker): Promise<amqp.ChannelModel> {
  const conn = await amqp.connect(b.url);
  conn.on('error', () => {});
  connections.add(conn);
  return conn;
}

describe.skipIf(EXTERNAL)('x-delayed-message across a restart (Warren-only)', () => {
  it('a durable delayed exchange keeps its held messages through SIGTERM + start and delivers them at about the right time', async () => {
    const dir = tempDir('warren-delayed-');
    folders.push(dir);
    let broker = await start(dir);
    let conn = await open(broker);
    let ch = await conn.createConfirmChannel();
    await ch.assertExchange('dx-durable', 'x-delayed-message', { durable: true, arguments: { 'x-delayed-type': 'direct' } });
    await ch.assertQueue('dx-durable-q', { durable: true });
    await ch.bindQueue('dx-durable-q', 'dx-durable', 'k');
    const delayMs = 1500;
    const t0 = Date.now();
    ch.publish('dx-durable', 'k', Buffer.from('survivor'), { persistent: true, messageId: 'keep-me', headers: { 'x-delay': delayMs } });
    ch.publish('dx-durable', 'k', Buffer.from('survivor-2'), { persistent: true, headers: { 'x-delay': delayMs + 300 } });
    await ch.waitForConfirms();
    await stop(broker);
    broker = await start(dir);
    const restartedAt = Date.now();
    conn = await open(broker);
    const cch = await conn.createChannel();
    const got: { body: string; at: number; msg: Message }[] = [];
    await cch.consume('dx-durable-q', (m) => m && got.push({ body: m.content.toString(), at: Date.now(), msg: m }), { noAck: true });
    await waitFor(() => got.length === 2, 'both delayed messages after the restart', delayMs + 5000);
    expect(got.map((g) => g.body)).toEqual(['survivor', 'survivor-2']);
    const first = got[0]!;
    expect(first.at - t0).toBeGreaterThanOrEqual(delayMs - 10);
    expect(first.at).toBeLessThan(Math.max(t0 + delayMs, restartedAt) + 700);
    expect(got[1]!.at - t0).toBeGreaterThanOrEqual(delayMs + 290);
    expect(first.msg.properties).toMatchObject({ messageId: 'keep-me', deliveryMode: 2 });
    expect(first.msg.fields).toMatchObject({ exchange: 'dx-durable', routingKey: 'k' });
    await sleep(QUIET_MS);
    expect(got).toHaveLength(2);
  });

  it('messages released after a restart are counted off the recovered count: the store keeps working and the next start sees none held', async () => {
    // Recovery used to leave the exchange's in-memory count at 0, so each release after a restart
    // took it below zero; writing -1 as an unsigned count failed the whole storage batch (every
    // later confirm nacked, publishers blocked).
    const dir = tempDir('warren-delayed-');
    folders.push(dir);
    let broker = await start(dir);
    let conn = await open(broker);
    let ch = await conn.createConfirmChannel();
    await ch.assertExchange('dx-count', 'x-delayed-message', { durable: true, arguments: { 'x-delayed-type': 'direct' } });
    await ch.assertQueue('dx-count-q', { durable: true });
    await ch.bindQueue('dx-count-q', 'dx-count', 'k');
    for (let i = 0; i < 3; i++) ch.publish('dx-count', 'k', Buffer.from(`held-${i}`), { persistent: true, headers: { 'x-delay': 300 + 100 * i } });
    await ch.waitForConfirms();
    await stop(broker);

    broker = await start(dir);
    conn = await open(broker);
    ch = await conn.createConfirmChannel();
    await waitFor(async () => (await ch.checkQueue('dx-count-q')).messageCount === 3, 'the three held messages released after the restart', 10_000);
    // Storage still takes writes: a persistent publish after the releases is confirmed.
    ch.publish('', 'dx-count-q', Buffer.from('after'), { persistent: true });
    const confirmed = await Promise.race([ch.waitForConfirms().then(() => 'confirmed', () => 'nacked'), sleep(10_000).then(() => 'held (publisher blocked)')]);
    expect(confirmed).toBe('confirmed');
    expect(broker.output.join('')).not.toMatch(/storage|ERR_OUT_OF_RANGE/);
    await stop(broker);

    broker = await start(dir);
    conn = await open(broker);
    const check = await conn.createChannel();
    expect(await check.checkQueue('dx-count-q')).toMatchObject({ messageCount: 4 });
    const got: string[] = [];
    await check.consume('dx-count-q', (m) => m && got.push(m.content.toString()), { noAck: true });
    await waitFor(() => got.length === 4, 'the four stored messages', 5000);
    expect(got).toEqual(['held-0', 'held-1', 'held-2', 'after']);
    await sleep(QUIET_MS);
    expect(got).toHaveLength(4);
    await stop(broker);
  });

  it('a non-durable delayed exchange loses its held messages (and itself) on restart', async () => {
    const dir = tempDir('warren-delayed-');
    folders.push(dir);
    let broker = await start(dir);
    let conn = await open(broker);
    const ch = await conn.createConfirmChannel();
    await ch.assertExchange('dx-transient', 'x-delayed-message', { durable: false, arguments: { 'x-delayed-type': 'direct' } });
    await ch.assertQueue('dx-transient-q', { durable: true });
    await ch.bindQueue('dx-transient-q', 'dx-transient', 'k');
    ch.publish('dx-transient', 'k', Buffer.from('lost'), { persistent: true, headers: { 'x-delay': 400 } });
    await ch.waitForConfirms();
    await stop(broker);
    broker = await start(dir);
    conn = await open(broker);
    const check = await conn.createChannel();
    check.on('error', () => {});
    await sleep(700);
    expect(await check.checkQueue('dx-transient-q')).toMatchObject({ messageCount: 0 });
    expect(await rejection(check.checkExchange('dx-transient'))).toMatchObject({
      code: 404,
      text: "NOT_FOUND - no exchange 'dx-transient' in vhost '/'",
    });
  });
});
