// Paging bounded in bytes as well as in count, for every kind of holder: a queue of large messages
// keeps a few megabytes of them in memory (while publishing, and after a restart), a priority
// queue pages per level and still delivers by priority, and a delayed exchange keeps only its
// earliest messages in memory and releases the rest in due order. Driven over AMQP (amqplib) on an
// in-process broker with a real LMDB store; the in-memory figures are read from the model.

import { rmSync } from 'node:fs';
import amqp, { type ChannelModel } from 'amqplib';
import { afterAll, describe, expect, it } from 'vitest';
import { DELAYED_WINDOW, type DelayedMessageExchange } from '../../src/broker/exchange/delayed.js';
import { PAGE_BATCH_BYTES, PAGE_WINDOW, PAGE_WINDOW_BYTES } from '../../src/broker/queue/paging.js';
import { startTestBroker, tempDir, waitFor, type TestBroker } from '../support/broker.js';

const folders: string[] = [];
const open: { close(): Promise<void> }[] = [];
afterAll(async () => {
  for (const o of open.reverse()) await o.close().catch(() => {});
  for (const d of folders) rmSync(d, { recursive: true, force: true });
});

async function start(dataDir?: string): Promise<TestBroker> {
  const dir = dataDir ?? tempDir('warren-paging-');
  if (dataDir === undefined) folders.push(dir);
  const b = await startTestBroker({ dataDir: dir });
  open.push(b);
  return b;
}

async function connect(b: TestBroker): Promise<ChannelModel> {
  const c = await amqp.connect(b.url);
  open.push(c);
  return c;
}

const MIB = 1024 * 1024;

describe('paging is bounded in bytes', () => {
  it('64 persistent 1 MiB messages: a few MiB in memory while queued, none after a restart, one batch once consuming', { timeout: 60_000 }, async () => {
    let broker = await start();
    const dataDir = broker.dataDir;
    let conn = await connect(broker);
    const ch = await conn.createConfirmChannel();
    await ch.assertQueue('big', { durable: true });
    for (let i = 0; i < 64; i++) {
      const body = Buffer.alloc(MIB, i);
      ch.sendToQueue('big', body, { persistent: true });
      if (i % 8 === 7) await ch.waitForConfirms();
    }
    await ch.waitForConfirms();
    let q = broker.broker.vhosts.get('/')!.queues.get('big')!;
    expect(q.messageCount).toBe(64);
    expect(q.ready.bytes).toBeLessThanOrEqual(PAGE_WINDOW_BYTES + MIB);
    await conn.close();
    await broker.close();

    broker = await start(dataDir);
    q = broker.broker.vhosts.get('/')!.queues.get('big')!;
    expect(q.messageCount).toBe(64);
    // Warm-up reads one batch (bounded in bytes), never the whole queue.
    await waitFor(() => q.ready.count > 0, 'the head to be read in the background');
    expect(q.ready.bytes).toBeLessThanOrEqual(PAGE_BATCH_BYTES + MIB);
    conn = await connect(broker);
    const consumer = await conn.createChannel();
    await consumer.prefetch(1);
    let n = 0;
    let maxInMemory = 0;
    let wrong = 0;
    await consumer.consume('big', (m) => {
      if (m === null) return;
      if (m.content.length !== MIB || m.content[0] !== n % 256) wrong++;
      n++;
      maxInMemory = Math.max(maxInMemory, q.ready.bytes);
      consumer.ack(m);
    });
    await waitFor(() => n === 64, 'all 64 messages', 30_000);
    expect(wrong).toBe(0);
    expect(maxInMemory).toBeLessThanOrEqual(PAGE_BATCH_BYTES + MIB);
  });
});

describe('priority queues page', () => {
  it(`${(PAGE_WINDOW * 1.5).toLocaleString('en')} persistent messages of 10 priorities: at most the window in memory, delivered by priority then arrival`, { timeout: 120_000 }, async () => {
    const broker = await start();
    const conn = await connect(broker);
    const ch = await conn.createConfirmChannel();
    await ch.assertQueue('prio', { durable: true, arguments: { 'x-max-priority': 9 } });
    const N = PAGE_WINDOW * 1.5;
    const priorities: number[] = [];
    for (let i = 0; i < N; i++) {
      const p = (i * 7919) % 10;
      priorities.push(p);
      ch.sendToQueue('prio', Buffer.from(String(i)), { persistent: true, priority: p });
      if (i % 2000 === 1999) await ch.waitForConfirms();
    }
    await ch.waitForConfirms();
    const q = broker.broker.vhosts.get('/')!.queues.get('prio')!;
    expect(q.messageCount).toBe(N);
    expect(q.ready.count).toBeLessThanOrEqual(PAGE_WINDOW);
    expect(q.pagedOutCount).toBeGreaterThan(0);

    const got: number[] = [];
    const consumer = await conn.createChannel();
    await consumer.prefetch(500);
    await consumer.consume('prio', (m) => {
      if (m === null) return;
      got.push(Number(m.content.toString()));
      consumer.ack(m);
    });
    await waitFor(() => got.length === N, `${N} messages (have ${got.length})`, 90_000);
    const want = Array.from({ length: N }, (_, i) => i).sort((a, b) => priorities[b]! - priorities[a]! || a - b);
    let firstWrong = -1;
    for (let i = 0; i < N && firstWrong < 0; i++) if (got[i] !== want[i]) firstWrong = i;
    expect(firstWrong, `first out-of-order delivery at ${firstWrong}: got ${got[firstWrong]}, want ${want[firstWrong]}`).toBe(-1);
  });
});

describe('the delayed exchange pages', () => {
  it(`${(DELAYED_WINDOW * 2.5).toLocaleString('en')} held messages: at most the window in memory, all released in due order`, { timeout: 120_000 }, async () => {
    const broker = await start();
    const conn = await connect(broker);
    const ch = await conn.createConfirmChannel();
    await ch.assertExchange('later', 'x-delayed-message', { durable: true, arguments: { 'x-delayed-type': 'direct' } });
    await ch.assertQueue('released', { durable: true });
    await ch.bindQueue('released', 'later', 'k');
    const N = DELAYED_WINDOW * 2.5;
    // Five due times 400 ms apart, mixed in the publishing order; the broker adds its own lag of a
    // few ms to each (it counts x-delay from when it reads the message), far less than the gap.
    const start0 = Date.now() + 8000;
    const group: number[] = [];
    for (let i = 0; i < N; i++) {
      const g = (i * 7919) % 5;
      group.push(g);
      const at = start0 + 400 * g;
      ch.publish('later', 'k', Buffer.from(String(i)), { persistent: true, headers: { 'x-delay': Math.max(1, at - Date.now()) } });
      if (i % 500 === 499) await ch.waitForConfirms();
    }
    await ch.waitForConfirms();
    expect(Date.now(), 'publishing took longer than the delays: the machine is too busy').toBeLessThan(start0);
    const ex = broker.broker.vhosts.get('/')!.exchanges.get('later') as DelayedMessageExchange;
    expect(ex.heldCount).toBe(N);
    expect(ex.heldCount - ex.pagedOutCount).toBeLessThanOrEqual(DELAYED_WINDOW + 1);

    const q = broker.broker.vhosts.get('/')!.queues.get('released')!;
    await waitFor(() => q.messageCount === N, `${N} released (have ${q.messageCount})`, 60_000);
    expect(ex.heldCount).toBe(0);
    const got: number[] = [];
    const consumer = await conn.createChannel();
    await consumer.prefetch(1000);
    await consumer.consume('released', (m) => {
      if (m === null) return;
      got.push(Number(m.content.toString()));
      consumer.ack(m);
    });
    await waitFor(() => got.length === N, `${N} consumed`, 60_000);
    // Released in due order: every message of an earlier due time before any of a later one.
    let late = 0;
    for (let i = 1; i < N; i++) if (group[got[i]!]! < group[got[i - 1]!]!) late++;
    expect(late).toBe(0);
  });
});

describe('memory pressure pages messages out', () => {
  it('resident memory above half the high watermark: the fullest queue moves its newest messages to disk, and they all come back in order', { timeout: 60_000 }, async () => {
    const broker = await start();
    const conn = await connect(broker);
    const ch = await conn.createConfirmChannel();
    await ch.assertQueue('flooded', { durable: false });
    const N = 20_000;
    for (let i = 0; i < N; i++) {
      ch.sendToQueue('flooded', Buffer.from(`${i}:${'x'.repeat(1000)}`));
      if (i % 2000 === 1999) await ch.waitForConfirms();
    }
    await ch.waitForConfirms();
    const memory = broker.broker.memory;
    const q = broker.broker.vhosts.get('/')!.queues.get('flooded')!;
    // Transient messages under the budget: all in memory.
    expect(q.ready.count).toBe(N);
    const before = memory.bytes;
    // A watermark that makes this process's memory "short": half the bytes go to disk, newest first.
    memory.memoryLimitBytes = () => 1;
    const freed = memory.relievePressure(process.memoryUsage.rss());
    expect(freed).toBeGreaterThanOrEqual(before / 2);
    expect(memory.bytes).toBeLessThanOrEqual(before / 2);
    expect(q.messageCount).toBe(N);
    expect(q.pagedOutCount).toBeGreaterThan(0);
    // While memory is short, new messages go to disk too.
    expect(memory.overBudget).toBe(true);
    memory.memoryLimitBytes = () => Number.POSITIVE_INFINITY;
    memory.relievePressure(process.memoryUsage.rss());
    expect(memory.overBudget).toBe(false);

    const got: number[] = [];
    const consumer = await conn.createChannel();
    await consumer.prefetch(1000);
    await consumer.consume('flooded', (m) => {
      if (m === null) return;
      got.push(Number(m.content.toString().split(':')[0]));
      consumer.ack(m);
    });
    await waitFor(() => got.length === N, `${N} messages (have ${got.length})`, 30_000);
    expect(got).toEqual(Array.from({ length: N }, (_, i) => i));
  });
});
