// The broker's persistence layer on a real LMDB store in a temporary folder: commit waiters are
// each told once, whatever another waiter does; a batch due while another commits waits for it (group
// commit); removals of acknowledged messages, which nobody waits for, join the next batch someone
// waits for (lazy batches), bounded in time and number; a stored count gone wrong never fails storage.

import { rmSync } from 'node:fs';
import { join } from 'node:path';
import amqp from 'amqplib';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { DurablePersistence, TransientPersistence, type CommitWaiter } from '../../src/broker/persistence.js';
import { createLogger } from '../../src/log.js';
import { encodeTable } from '../../src/protocol/field-table.js';
import { LmdbStore } from '../../src/store/lmdb-store.js';
import { sleep, startTestBroker, tempDir, waitFor } from '../support/broker.js';

const log = createLogger('silent');
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

function durable(): DurablePersistence {
  const dir = tempDir('warren-persist-');
  const persistence = new DurablePersistence(new LmdbStore(join(dir, 'lmdb'), log, 'test'), log);
  cleanups.push(async () => {
    await persistence.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return persistence;
}

class Recorder implements CommitWaiter {
  committed = 0;
  failed = 0;
  constructor(private readonly throws = false) {}
  onCommitted(): void {
    this.committed++;
    if (this.throws) throw new Error('a waiter bug');
  }
  onCommitFailed(): void {
    this.failed++;
    if (this.throws) throw new Error('a waiter bug');
  }
}

/** Counts sync() calls: one per write batch handed to LMDB. */
class BatchCounter {
  batches = 0;
  sync(): null {
    this.batches++;
    return null;
  }
  async close(): Promise<void> {}
}

describe('commit waiters', () => {
  for (const [name, make] of [
    ['durable (LMDB)', durable],
    ['transient', () => new TransientPersistence(log)],
  ] as const) {
    it(`${name}: a waiter that throws does not stop the ones after it, in this batch or the next`, async () => {
      const p = make();
      const first = new Recorder();
      const thrower = new Recorder(true);
      const after = new Recorder();
      p.afterCommit(first);
      p.afterCommit(thrower);
      p.afterCommit(after);
      await waitFor(() => after.committed === 1, 'the waiter after the throwing one to be told');
      const next = new Recorder();
      p.afterCommit(next);
      await waitFor(() => next.committed === 1, 'a waiter of the next batch to be told');
      expect([first.committed, thrower.committed, after.committed, next.committed]).toEqual([1, 1, 1, 1]);
      expect([first.failed, thrower.failed, after.failed, next.failed]).toEqual([0, 0, 0, 0]);
    });
  }
});

describe('group commit', () => {
  /** A sync source whose every sync() waits until the test releases it: a commit the test holds open. */
  class HeldSync {
    readonly releases: (() => void)[] = [];
    sync(): PromiseLike<unknown> {
      return new Promise<void>((resolve) => this.releases.push(resolve));
    }
    async close(): Promise<void> {
      for (const r of this.releases) r();
    }
  }

  it('durable (LMDB): batches falling due while one is being committed wait for it and go together, in one transaction', async () => {
    const p = durable();
    const counter = new BatchCounter();
    p.addSyncSource(counter);
    // LMDB commits as usual; only the news that a commit is done waits until the test releases it,
    // so "a commit in progress" lasts exactly as long as the test needs.
    const store = p.store;
    const committedLocally = store.whenCommittedLocally.bind(store);
    const releases: (() => void)[] = [];
    store.whenCommittedLocally = () => {
      const done = committedLocally();
      return new Promise((resolve) => releases.push(() => resolve(done)));
    };
    const first = new Recorder();
    p.afterCommit(first);
    await waitFor(() => counter.batches === 1, 'the first batch to be handed to LMDB');
    // Five more batches fall due, each in its own event turn, while the first is still committing.
    const later = Array.from({ length: 5 }, () => new Recorder());
    for (const w of later) {
      p.afterCommit(w);
      await sleep(5);
    }
    expect(counter.batches).toBe(1); // no second batch started behind the first
    releases[0]!();
    await waitFor(() => counter.batches === 2, 'the waiting batch to go once the first is committed');
    await waitFor(() => later.every((w) => w.committed === 1), 'the waiting batch to commit');
    expect(counter.batches).toBe(2); // all five went in that one batch
    expect([first.committed, first.failed, ...later.map((w) => w.failed)]).toEqual([1, 0, 0, 0, 0, 0, 0]);
    for (const release of releases) release();
    p.removeSyncSource(counter);
  });

  it('durable (LMDB): a batch whose durability waits (a cluster\'s followers) does not hold back the next batches', async () => {
    const p = durable();
    const held = new HeldSync();
    p.addSyncSource(held);
    const first = new Recorder();
    p.afterCommit(first);
    await waitFor(() => held.releases.length === 1, 'the first batch to be committing');
    const later = Array.from({ length: 3 }, () => new Recorder());
    for (let i = 0; i < later.length; i++) {
      p.afterCommit(later[i]!);
      // Committed locally, the next batch goes although the first is not durable yet.
      await waitFor(() => held.releases.length === i + 2, `batch ${i + 2} to be handed to LMDB`);
    }
    expect([first, ...later].map((w) => w.committed)).toEqual([0, 0, 0, 0]); // told only when durable
    for (const release of held.releases) release();
    await waitFor(() => [first, ...later].every((w) => w.committed === 1), 'every batch to be durable');
    p.removeSyncSource(held);
  });
});

describe('lazy batches: acknowledgements nobody waits for', () => {
  /** A broker with a durable queue holding `n` confirmed persistent messages, and a batch counter. */
  async function brokerWithStored(n: number) {
    const dir = tempDir('warren-lazy-');
    const broker = await startTestBroker({ dataDir: dir });
    cleanups.push(async () => {
      await broker.stop();
      rmSync(dir, { recursive: true, force: true });
    });
    const conn = await amqp.connect(broker.url);
    cleanups.push(() => conn.close().catch(() => {}));
    const ch = await conn.createConfirmChannel();
    await ch.assertQueue('lazy', { durable: true });
    for (let i = 0; i < n; i++) ch.sendToQueue('lazy', Buffer.from(`m${i}`), { persistent: true });
    await ch.waitForConfirms();
    const persistence = broker.broker.persistence as DurablePersistence;
    const queue = broker.broker.vhosts.get('/')!.queues.get('lazy')!;
    const stored = (): string[] =>
      persistence.store.readEntries(queue.storeId, 0, 0, 1000, 1 << 30).map((e) => e.seq.toString());
    const counter = new BatchCounter();
    persistence.addSyncSource(counter);
    /**
     * Takes `count` messages with basic.get and acknowledges them with one basic.ack (multiple), so
     * the removals reach the store in one event turn; resolves once the broker has the ack.
     */
    const getAndAck = async (count: number): Promise<void> => {
      let last: amqp.GetMessage | false = false;
      for (let i = 0; i < count; i++) {
        last = await ch.get('lazy');
        expect(last).not.toBe(false);
      }
      ch.ack(last as amqp.GetMessage, true);
      await waitFor(() => queue.unackedCount === 0, 'the broker to have the acknowledgement');
    };
    return { ch, persistence, stored, counter, getAndAck };
  }

  it('removals wait for the next batch a publisher waits for, and go in that one commit', async () => {
    const { ch, persistence, stored, counter, getAndAck } = await brokerWithStored(3);
    persistence.lazyBatchDelayMs = 60_000; // only the publish below can take them
    expect(stored()).toHaveLength(3);
    await getAndAck(3);
    expect(counter.batches).toBe(0);
    expect(stored()).toHaveLength(3); // acknowledged, still stored: nobody waits for the removals
    ch.sendToQueue('lazy', Buffer.from('next'), { persistent: true });
    await ch.waitForConfirms();
    expect(counter.batches).toBe(1);
    expect(stored()).toHaveLength(1); // the three removals and the new message, one commit
  });

  it('removals nobody joins go by themselves after the lazy delay', async () => {
    const { persistence, stored, counter, getAndAck } = await brokerWithStored(2);
    persistence.lazyBatchDelayMs = 20;
    await getAndAck(2);
    await waitFor(() => stored().length === 0, 'the removals to be committed on their own');
    expect(counter.batches).toBe(1);
  });

  it('a lazy batch goes at once when its removals reach the bound', async () => {
    const { persistence, stored, counter, getAndAck } = await brokerWithStored(6);
    persistence.lazyBatchDelayMs = 60_000;
    persistence.lazyBatchMaxRemovals = 4;
    await getAndAck(3);
    expect(counter.batches).toBe(0);
    await getAndAck(1); // the fourth removal buffered: the batch is due
    await waitFor(() => stored().length === 2, 'the four removals to be committed');
    expect(counter.batches).toBe(1);
  });
});

describe('a stored count that would go below zero', () => {
  it('is written as 0 and logged once; storage, confirms and other queues go on', async () => {
    // A store whose count is wrong (here: byte total 0 for three 100-byte messages, as a bug in an
    // earlier version could leave it). Consuming them takes the count below zero: that must not fail
    // the storage batch (it used to: ERR_OUT_OF_RANGE, every confirm held, publishers blocked).
    const dir = tempDir('warren-negative-count-');
    cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
    let broker = await startTestBroker({ dataDir: dir });
    let conn = await amqp.connect(broker.url);
    let ch = await conn.createConfirmChannel();
    await ch.assertQueue('counted', { durable: true });
    for (let i = 0; i < 3; i++) ch.sendToQueue('counted', Buffer.alloc(100, i), { persistent: true });
    await ch.waitForConfirms();
    const queueId = broker.broker.vhosts.get('/')!.queues.get('counted')!.storeId;
    await conn.close();
    await broker.stop();

    const store = new LmdbStore(join(dir, 'lmdb'), log, 'test');
    const levels = store.getCounts(queueId);
    expect(levels[0]).toMatchObject({ count: 3, bytes: 300 });
    levels[0]!.bytes = 0;
    store.putCounts(queueId, levels);
    await store.close();

    const logged: { level: number; msg: string; queue?: string }[] = [];
    const logger = pino({ level: 'warn' }, { write: (line: string) => void logged.push(JSON.parse(line)) });
    broker = await startTestBroker({ dataDir: dir, logger });
    cleanups.push(() => broker.stop());
    conn = await amqp.connect(broker.url);
    cleanups.push(() => conn.close().catch(() => {}));
    ch = await conn.createConfirmChannel();
    for (let i = 0; i < 3; i++) {
      const m = await ch.get('counted');
      expect(m && m.content.length).toBe(100);
      ch.ack(m as amqp.GetMessage);
    }
    // Each ack's removal reaches the store in a later batch than the get: confirm what follows.
    await ch.assertQueue('other', { durable: true });
    ch.sendToQueue('other', Buffer.from('still stored'), { persistent: true });
    const outcome = await Promise.race([ch.waitForConfirms().then(() => 'confirmed', () => 'nacked'), sleep(10_000).then(() => 'held')]);
    expect(outcome).toBe('confirmed');
    const persistence = broker.broker.persistence as DurablePersistence;
    await waitFor(() => persistence.countRepairs > 0, 'the negative count to be repaired');
    expect(persistence.lastError).toBe(null);
    const complaints = logged.filter((l) => l.msg.includes('went below zero'));
    expect(complaints).toHaveLength(1);
    expect(complaints[0]).toMatchObject({ level: 50, queue: 'counted' });
    expect(await ch.checkQueue('counted')).toMatchObject({ messageCount: 0 });
    expect(await ch.checkQueue('other')).toMatchObject({ messageCount: 1 });
  });
});

describe('a stored queue whose arguments this version refuses', () => {
  it('is restored without the refused argument (logged with what to do), and the broker starts', async () => {
    const dir = tempDir('warren-restore-args-');
    cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
    let broker = await startTestBroker({ dataDir: dir });
    let conn = await amqp.connect(broker.url);
    let ch = await conn.createConfirmChannel();
    await ch.assertQueue('old-ttl', { durable: true, arguments: { 'x-message-ttl': 60_000, 'x-max-length': 5 } });
    ch.sendToQueue('old-ttl', Buffer.from('kept'), { persistent: true });
    await ch.waitForConfirms();
    await conn.close();
    await broker.stop();

    // As an earlier version could store it: a TTL above today's limit (ten years, as RabbitMQ 3.10).
    const store = new LmdbStore(join(dir, 'lmdb'), log, 'test');
    const rec = store.loadQueues().find((q) => q.name === 'old-ttl')!;
    store.putQueue({ ...rec, args: encodeTable({ 'x-message-ttl': 400_000_000_000, 'x-max-length': 5 }) });
    await store.close();

    const logged: { level: number; msg: string; queue?: string; argument?: string }[] = [];
    const logger = pino({ level: 'warn' }, { write: (line: string) => void logged.push(JSON.parse(line)) });
    broker = await startTestBroker({ dataDir: dir, logger });
    cleanups.push(() => broker.stop());
    const queue = broker.broker.vhosts.get('/')!.queues.get('old-ttl')!;
    expect(queue.options).toMatchObject({ messageTtlMs: undefined, maxLength: 5 });
    expect(queue.args).toEqual({ 'x-max-length': 5 });
    expect(logged.filter((l) => l.level === 50).map((l) => [l.queue, l.argument])).toEqual([['old-ttl', 'x-message-ttl']]);
    conn = await amqp.connect(broker.url);
    cleanups.push(() => conn.close().catch(() => {}));
    ch = await conn.createConfirmChannel();
    const m = await ch.get('old-ttl', { noAck: true });
    expect(m && m.content.toString()).toBe('kept');
  });
});
