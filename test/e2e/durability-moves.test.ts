// At-least-once moves, tested by crashing: bin/warren runs as a child process; thousands of stored
// messages are moved at the same moment — released by a durable delayed exchange to a durable
// queue, or dead-lettered from one durable queue to another — and the broker is killed with
// SIGKILL at a random moment within 200 ms of the first moved message reaching a consumer (that
// is, while the moves are being written). After a restart every message must be somewhere: in its new queue, or still
// where it was (and then moved after the restart). A move that deletes the old record in one
// commit and writes the new one in another loses the messages caught in between.

import { rmSync } from 'node:fs';
import amqp, { type ChannelModel, type ConfirmChannel } from 'amqplib';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { tempDir, waitFor } from '../support/broker.js';
import { ChildBroker } from '../support/child-broker.js';

const N = Number(process.env['MOVES_N'] ?? 20_000);
const ROUNDS = Number(process.env['MOVES_ROUNDS'] ?? 2);
/**
 * How long after the first publish everything falls due: publishing must be over by then, so the
 * moves all happen at once after it. Measured per run (a calibration batch of stored messages,
 * times N, with a margin), never below DUE_AFTER_MIN_MS and never above DUE_AFTER_MAX_MS: a busy
 * machine gets a longer delay instead of a failure.
 */
const DUE_AFTER_MIN_MS = 4000;
const DUE_AFTER_MAX_MS = 45_000;
const CALIBRATION = 1000;
const KILL_DELAY_MAX = Number(process.env['MOVES_DELAY'] ?? 200);

const live = new Set<ChildBroker>();
const connections = new Set<ChannelModel>();
const folders: string[] = [];

beforeEach(async () => {
  // A failed test may leave its clients behind; they must not count for the next one.
  for (const c of [...connections]) await c.close().catch(() => {});
  connections.clear();
});

afterAll(async () => {
  for (const c of [...connections]) await c.close().catch(() => {});
  for (const b of [...live]) await b.kill();
  for (const dir of folders) rmSync(dir, { recursive: true, force: true });
});

async function start(dataDir: string): Promise<ChildBroker> {
  const broker = await ChildBroker.start(dataDir);
  live.add(broker);
  return broker;
}

async function connect(broker: ChildBroker): Promise<ChannelModel> {
  const conn = await amqp.connect(broker.url);
  conn.on('error', () => {});
  connections.add(conn);
  conn.on('close', () => connections.delete(conn));
  return conn;
}

async function kill(broker: ChildBroker): Promise<void> {
  await broker.kill();
  live.delete(broker);
  // The client may be slow to notice on a loaded machine: bounded, generously.
  await waitFor(() => connections.size === 0, 'the clients to see the broker gone', 30_000);
}

/**
 * When (epoch ms) N messages published from now will all be confirmed, with a margin: the time a
 * calibration batch of persistent confirmed messages takes (to a queue of its own, deleted after),
 * scaled to N, times three.
 */
async function dueAfterPublishing(ch: ConfirmChannel): Promise<number> {
  await ch.assertQueue('calibration', { durable: true });
  const t0 = Date.now();
  for (let i = 0; i < CALIBRATION; i++) ch.sendToQueue('calibration', Buffer.from(`c${i}`), { persistent: true });
  await ch.waitForConfirms();
  const perMessageMs = (Date.now() - t0) / CALIBRATION;
  await ch.deleteQueue('calibration');
  const after = Math.min(DUE_AFTER_MAX_MS, Math.max(DUE_AFTER_MIN_MS, 3 * perMessageMs * N));
  return Date.now() + after;
}

/** Publishes N persistent numbered messages and waits for every confirm. */
async function publishConfirmed(ch: ConfirmChannel, exchange: string, routingKey: string, headers: (i: number) => Record<string, unknown>): Promise<void> {
  for (let i = 0; i < N; i++) {
    ch.publish(exchange, routingKey, Buffer.from(`m${i}`), { persistent: true, headers: headers(i) });
    if (i % 1000 === 999) await ch.waitForConfirms();
  }
  await ch.waitForConfirms();
}

/** Kills the broker when the first message reaches a consumer of `queue`. */
async function killOnFirstDelivery(broker: ChildBroker, conn: ChannelModel, queue: string): Promise<void> {
  const ch = await conn.createChannel();
  ch.on('error', () => {});
  await ch.prefetch(1);
  let fire: () => void = () => {};
  const first = new Promise<void>((r) => (fire = r));
  await ch.consume(queue, (msg) => {
    if (msg !== null) fire();
  });
  await first;
  if (KILL_DELAY_MAX > 0) await new Promise((r) => setTimeout(r, Math.random() * KILL_DELAY_MAX));
  await kill(broker);
}

/** Distinct message bodies in a queue, read without acking (the broker stays as it is). */
async function bodiesIn(conn: ChannelModel, queue: string, expected: number): Promise<Set<string>> {
  const ch = await conn.createChannel();
  await ch.prefetch(0);
  const seen = new Set<string>();
  await ch.consume(queue, (msg) => {
    if (msg !== null) seen.add(msg.content.toString());
  });
  await waitFor(() => seen.size >= expected, `${expected} messages from ${queue} (have ${seen.size})`, 60_000).catch(() => {});
  await ch.close();
  return seen;
}

describe('at-least-once moves survive kill -9', () => {
  it(`delayed release: ${N} messages due at once, killed while they move — none lost (${ROUNDS} rounds)`, { timeout: 240_000 }, async () => {
    for (let round = 1; round <= ROUNDS; round++) {
      const dataDir = tempDir('warren-moves-');
      folders.push(dataDir);
      let broker = await start(dataDir);
      let conn = await connect(broker);
      const setup = await conn.createConfirmChannel();
      await setup.assertExchange('dx', 'x-delayed-message', { durable: true, arguments: { 'x-delayed-type': 'direct' } });
      await setup.assertQueue('target', { durable: true });
      await setup.bindQueue('target', 'dx', 'k');
      // All due at the same moment, a little after the last publish.
      const dueAt = await dueAfterPublishing(setup);
      await publishConfirmed(setup, 'dx', 'k', () => ({ 'x-delay': Math.max(1, dueAt - Date.now()) }));
      expect(Date.now(), 'publishing took longer than the delay: the machine is too busy for this test').toBeLessThan(dueAt);
      await killOnFirstDelivery(broker, conn, 'target');

      broker = await start(dataDir);
      conn = await connect(broker);
      // Messages still held come out as soon as the exchange is back (they are due).
      const got = await bodiesIn(conn, 'target', N);
      expect(got.size, `round ${round}: messages in 'target' after the restart`).toBe(N);
      await conn.close();
      await broker.stop();
      live.delete(broker);
    }
  });

  it(`dead-lettering: ${N} messages expire at once into a DLQ, killed while they move — none lost (${ROUNDS} rounds)`, { timeout: 240_000 }, async () => {
    for (let round = 1; round <= ROUNDS; round++) {
      const dataDir = tempDir('warren-moves-');
      folders.push(dataDir);
      let broker = await start(dataDir);
      let conn = await connect(broker);
      const setup = await conn.createConfirmChannel();
      await setup.assertQueue('dlq', { durable: true });
      // A per-message expiration puts every deadline at the same moment, after the last publish.
      await setup.assertQueue('src', { durable: true, arguments: { 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': 'dlq' } });
      const dueAt = await dueAfterPublishing(setup);
      for (let i = 0; i < N; i++) {
        setup.publish('', 'src', Buffer.from(`m${i}`), { persistent: true, expiration: String(Math.max(1, dueAt - Date.now())) });
        if (i % 1000 === 999) await setup.waitForConfirms();
      }
      await setup.waitForConfirms();
      expect(Date.now(), 'publishing took longer than the TTL: the machine is too busy for this test').toBeLessThan(dueAt);
      await killOnFirstDelivery(broker, conn, 'dlq');

      broker = await start(dataDir);
      conn = await connect(broker);
      // What had not moved yet expires now (its deadline passed while the broker was down).
      const got = await bodiesIn(conn, 'dlq', N);
      const ch = await conn.createChannel();
      const src = await ch.checkQueue('src');
      expect(src.messageCount).toBe(0);
      expect(got.size, `round ${round}: messages in 'dlq' after the restart`).toBe(N);
      await conn.close();
      await broker.stop();
      live.delete(broker);
    }
  });
});
