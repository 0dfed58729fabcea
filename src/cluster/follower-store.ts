// A follower's copy of the data: the same LMDB store the broker uses (same databases, same
// encodings), opened without a broker, with a follower-mode replication log that applies shipped
// records and knows the position reached. A snapshot replaces the whole store: it is written beside
// it, then swapped in by renaming (the old copy is kept until the new one is in place, so a crash
// mid-swap leaves one complete store). Closed without the clean-shutdown mark: a broker that starts
// on this copy after a promotion treats every message as possibly delivered.

import { existsSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from '../log.js';
import { LmdbStore } from '../store/lmdb-store.js';
import { WARREN_VERSION } from '../version.js';
import type { LogPosition, LogRecord } from './log-records.js';
import { ReplicationLog } from './replication-log.js';

export class FollowerStore {
  private store: LmdbStore | null = null;
  private rlog: ReplicationLog | null = null;

  constructor(
    readonly dataDir: string,
    private readonly logger: Logger,
  ) {}

  /** The LMDB environment folder (what the broker opens). */
  get storePath(): string {
    return join(this.dataDir, 'lmdb');
  }

  /** Where an incoming snapshot is written. */
  get snapshotPath(): string {
    return join(this.dataDir, 'lmdb.snapshot');
  }

  private get oldPath(): string {
    return join(this.dataDir, 'lmdb.old');
  }

  open(): void {
    if (this.store !== null) return;
    // A crash between the two renames of a snapshot swap: the previous store is still whole.
    if (!existsSync(this.storePath) && existsSync(this.oldPath)) renameSync(this.oldPath, this.storePath);
    rmSync(this.oldPath, { recursive: true, force: true });
    const rlog = new ReplicationLog('follower', 0, null);
    this.store = new LmdbStore(this.storePath, this.logger, `warren ${WARREN_VERSION}`, rlog);
    this.rlog = rlog;
  }

  get isOpen(): boolean {
    return this.store !== null;
  }

  get position(): LogPosition {
    return this.rlog?.head ?? { seq: 0, epoch: 0 };
  }

  get logBytes(): number {
    return this.rlog?.logBytes ?? 0;
  }

  /** Applies records in one transaction and resolves with the last seq once it is on disk. */
  async apply(records: readonly LogRecord[]): Promise<number> {
    const store = this.store;
    const rlog = this.rlog;
    if (store === null || rlog === null) throw new Error('the follower store is closed');
    const seq = rlog.apply(records);
    await store.whenFlushed();
    return seq;
  }

  /** Drops old log records beyond the retention size (a follower may lead and serve others). */
  trim(retainBytes: number): void {
    this.rlog?.trim(Number.MAX_SAFE_INTEGER, retainBytes, 4 * retainBytes);
  }

  /** Swaps in the store copied to snapshotPath (its data.mdb written and synced). */
  async installSnapshot(): Promise<void> {
    await this.close();
    rmSync(this.oldPath, { recursive: true, force: true });
    if (existsSync(this.storePath)) renameSync(this.storePath, this.oldPath);
    renameSync(this.snapshotPath, this.storePath);
    rmSync(this.oldPath, { recursive: true, force: true });
    this.open();
  }

  async close(): Promise<void> {
    const store = this.store;
    this.store = null;
    this.rlog = null;
    if (store !== null) await store.close(false);
  }
}
