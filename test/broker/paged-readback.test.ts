// Reading paged messages back from a real LMDB store (broker model, no sockets). The store shows
// only committed records, so messages paged out and not yet committed must not be skipped by a
// read-back that runs before their commit — they would stay held until a restart (delayed
// exchange) or be dropped as a wrong count (a queue paging under memory pressure). Both cases
// are set up so the read-back comes before the commit, every time.

import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Broker } from '../../src/broker/broker.js';
import { DELAYED_WINDOW, DelayedMessageExchange } from '../../src/broker/exchange/delayed.js';
import { Message } from '../../src/broker/message.js';
import { DurablePersistence } from '../../src/broker/persistence.js';
import { DEFAULT_CONFIG } from '../../src/config.js';
import { createLogger } from '../../src/log.js';
import { LmdbStore } from '../../src/store/lmdb-store.js';
import { tempDir, waitFor } from '../support/broker.js';

const log = createLogger('silent');
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  vi.useRealTimers();
  for (const c of cleanups.splice(0)) await c();
});

const OWNER = { id: 1 };

function committed(p: DurablePersistence): Promise<void> {
  return new Promise((resolve, reject) => p.afterCommit({ onCommitted: resolve, onCommitFailed: reject }));
}

describe('delayed exchange paging', () => {
  it('a message paged out just before a read-back of the paged ones is released too, in due order', async () => {
    const dir = tempDir('warren-delayed-paging-');
    const persistence = new DurablePersistence(new LmdbStore(join(dir, 'lmdb'), log, 'test'), log);
    cleanups.push(async () => {
      await persistence.close();
      rmSync(dir, { recursive: true, force: true });
    });
    const broker = new Broker({ ...DEFAULT_CONFIG, dataDir: dir, logLevel: 'silent' }, persistence, log);
    const vhost = broker.addVHost('/');
    const dx = vhost.declareExchange({
      name: 'dx',
      type: 'x-delayed-message',
      passive: false,
      durable: true,
      autoDelete: false,
      internal: false,
      args: { 'x-delayed-type': 'direct' },
    }) as DelayedMessageExchange;
    const q = vhost.declareQueue({ name: 'q', passive: false, durable: true, exclusive: false, autoDelete: false, args: {} }, OWNER);
    vhost.bind('dx', q, 'k', {});

    // One more than the window: the earliest half stays in memory, the rest is paged to disk. The
    // paged ones fall due in two groups so that a message due between them sorts into their middle.
    const base = Date.now() + 2000;
    const message = (i: number): Message => new Message('dx', 'k', Buffer.from([0, 0]), Buffer.from(`m${i}`), 0);
    const total = DELAYED_WINDOW + 1;
    const half = DELAYED_WINDOW >> 1;
    for (let i = 0; i < total; i++) dx.hold(message(i), i < half ? base : i < half + 500 ? base + 1 : base + 3);
    expect(dx.pagedOutCount).toBe(total - half);
    await committed(persistence);

    // Paged out (behind the paged ones' start), not yet committed, and the release runs at once.
    dx.hold(message(total), base + 2);
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(base + 10);
    (dx as unknown as { release: () => void }).release();
    vi.useRealTimers();

    await waitFor(() => dx.heldCount === 0 && q.messageCount === total + 1, `all ${total + 1} held messages in q (have ${q.messageCount}, held ${dx.heldCount})`, 15_000);
    const order: number[] = [];
    for (const entry of q.ready.entries()) order.push(Number(entry.message.body.toString().slice(1)));
    // Due order: the in-memory half, the first paged group, the late one, the second paged group.
    const expected = [...Array.from({ length: half + 500 }, (_, i) => i), total, ...Array.from({ length: total - half - 500 }, (_, i) => half + 500 + i)];
    expect(order).toEqual(expected);
  });
});

describe('queue paging under memory pressure', () => {
  it('entries paged out in front of committed paged ones are not skipped by a read-back before their commit', async () => {
    const dir = tempDir('warren-queue-pageout-');
    const persistence = new DurablePersistence(new LmdbStore(join(dir, 'lmdb'), log, 'test'), log);
    cleanups.push(async () => {
      await persistence.close();
      rmSync(dir, { recursive: true, force: true });
    });
    const broker = new Broker({ ...DEFAULT_CONFIG, dataDir: dir, logLevel: 'silent' }, persistence, log);
    const vhost = broker.addVHost('/');
    const q = vhost.declareQueue({ name: 'q', passive: false, durable: true, exclusive: false, autoDelete: false, args: {} }, OWNER);
    const size = 100;
    const now = Date.now();
    // 200 transient messages of 100 bytes: all in memory.
    for (let i = 0; i < 200; i++) vhost.publish(vhost.defaultExchange, new Message('', 'q', Buffer.from([0, 0]), Buffer.alloc(size, i), now), null, now);
    // The newest 100 go to disk (spilled) and are committed; then the next-newest 50, in front of them.
    expect(q.pageOut(100 * size)).toBe(100 * size);
    await committed(persistence);
    expect(q.pageOut(50 * size)).toBe(50 * size);
    expect([q.ready.count, q.pagedOutCount]).toEqual([50, 150]);

    // Taking now (before the last 50 are committed) reads the paged ones back as soon as they can be.
    const taken: number[] = [];
    const takeAll = (): boolean => {
      for (let e = q.take(Date.now()); e !== undefined; e = q.take(Date.now())) {
        taken.push(e.message.body[0]!);
        q.settle(e);
      }
      return taken.length >= 200;
    };
    await waitFor(takeAll, "all 200 messages taken", 10_000).catch((err: Error) => {
      throw new Error(`${err.message}: took ${taken.length}, first ${taken.slice(0, 60).join(",")}; queue count ${q.messageCount}`);
    });
    expect(taken).toEqual(Array.from({ length: 200 }, (_, i) => i));
    expect(q.messageCount).toBe(0);
  });
});
