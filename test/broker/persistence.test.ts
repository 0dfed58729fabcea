// The broker's persistence layer on a real LMDB store in a temporary folder: commit waiters are
// each told once, whatever another waiter does.

import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DurablePersistence, TransientPersistence, type CommitWaiter } from '../../src/broker/persistence.js';
import { createLogger } from '../../src/log.js';
import { LmdbStore } from '../../src/store/lmdb-store.js';
import { tempDir, waitFor } from '../support/broker.js';

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
