// Paging of one queue: which new entries stay in memory and which only go to the store, and
// reading paged entries back, in order, as the queue drains. Bounded in bytes as well as in count,
// for the queue (PAGE_WINDOW / PAGE_WINDOW_BYTES) and for the broker (--memory-budget): a queue of
// 1 MiB messages holds a few of them in memory, not 20,000.
//
// Each priority level pages on its own (a level is a key range in the store): within a level
// every paged entry has a higher seq than every in-memory one, so order is kept; delivery serves
// the highest level, reading it back first when its in-memory part has run out.
//
// Persistent messages of durable queues are written anyway, so paging them costs nothing but a
// read later; transient ones (and everything in a non-durable queue) are written only when memory
// is over budget, to a spill range that a restart drops.

import type { CommitWaiter } from '../persistence.js';
import type { QueueEntry } from './entry.js';
import type { Queue } from './queue.js';

/** In-memory entries, and bytes, above which new entries of a queue are paged to disk. */
export const PAGE_WINDOW = 20_000;
export const PAGE_WINDOW_BYTES = 8 * 1024 * 1024;
/** A refill reads at most this many entries, or this many bytes of bodies (at least one entry). */
export const PAGE_BATCH = 1024;
export const PAGE_BATCH_BYTES = 2 * 1024 * 1024;
/** Entries kept in memory per queue even when the broker is over its memory budget. */
const IN_MEMORY_FLOOR = 64;

/** The paged-out part of one priority level. */
export class PagedLevel {
  /** entries in the store only (live and spilled) */
  count = 0;
  bytes = 0;
  /** of which spilled (transient, not counted in the store's counts) */
  spillCount = 0;
  spillBytes = 0;
  /** seq from which the paged entries are read back */
  fromSeq = 0;
}

/** Re-runs dispatch once paged entries written by this queue are committed and readable. */
class RefillWaiter implements CommitWaiter {
  constructor(private readonly paging: QueuePaging) {}
  onCommitted(): void {
    this.paging.committed();
  }
  onCommitFailed(): void {
    this.paging.committed();
  }
}

export class QueuePaging {
  readonly levels: PagedLevel[] = [];
  /** paged entries, all levels */
  count = 0;
  bytes = 0;
  /** levels with paged entries */
  private pagedLevels = 0;
  /** paged entries were written but not committed when last read: waiting for the commit */
  waitingForCommit = false;
  /** entries paged since the last commit wait (an empty read after a wait with none is final) */
  private pagedSinceWait = 0;
  private waitedOnce = false;

  constructor(
    private readonly queue: Queue,
    levels: number,
  ) {
    for (let i = 0; i < levels; i++) this.levels.push(new PagedLevel());
  }

  /** Whether a new entry must go to the store only (it is then written by the caller). */
  shouldPage(level: number, persistent: boolean, durableStore: boolean): boolean {
    if (!durableStore) return false;
    if (this.levels[level]!.count > 0) return true; // keep the level's order
    const ready = this.queue.ready;
    const overBudget = this.queue.memory.overBudget;
    if (overBudget && ready.count >= IN_MEMORY_FLOOR) return true;
    if (!persistent) return false;
    return ready.count >= PAGE_WINDOW || ready.bytes >= PAGE_WINDOW_BYTES;
  }

  /** Accounts for an entry written to the store and not kept in memory. */
  page(entry: QueueEntry, spilled: boolean): void {
    const l = this.levels[entry.level]!;
    const size = entry.message.bodySize;
    if (l.count === 0) {
      l.fromSeq = entry.seq;
      this.pagedLevels++;
    }
    l.count++;
    l.bytes += size;
    if (spilled) {
      l.spillCount++;
      l.spillBytes += size;
    }
    this.count++;
    this.bytes += size;
    this.pagedSinceWait++;
  }

  /**
   * Memory pressure: moves up to `bytes` of the newest in-memory arrivals to disk, lowest priority
   * first (written to the spill range unless the store has them already). Within a level the newest
   * go, so every paged entry still comes after every one in memory. Returns the bytes moved.
   */
  pageOut(bytes: number): number {
    const q = this.queue;
    if (!q.persistence.durable || q.deleted) return 0;
    let moved = 0;
    for (let level = 0; level < this.levels.length && moved < bytes; level++) {
      while (moved < bytes) {
        const entry = q.ready.popArrivalTail(level);
        if (entry === undefined) break;
        if (!entry.stored) {
          q.persistence.addEntry(entry, true);
          q.hasSpilled = true;
        }
        q.entryPagedOut(entry);
        this.pageBefore(entry);
        moved += entry.message.bodySize;
      }
    }
    if (moved > 0) this.readAfterCommit();
    return moved;
  }

  /**
   * Entries just went to disk in front of paged ones already committed; the store shows only
   * committed records, so a read-back now would step over them (and then find the count wrong).
   * The next read-back waits for the commit that has them.
   */
  private readAfterCommit(): void {
    if (this.waitingForCommit) return;
    this.waitingForCommit = true;
    this.queue.persistence.afterCommit(new RefillWaiter(this));
  }

  /** Accounts for an entry paged out from memory: it goes before the level's paged entries. */
  private pageBefore(entry: QueueEntry): void {
    const l = this.levels[entry.level]!;
    const size = entry.message.bodySize;
    if (l.count === 0) this.pagedLevels++;
    l.fromSeq = entry.seq;
    l.count++;
    l.bytes += size;
    if (entry.transient) {
      l.spillCount++;
      l.spillBytes += size;
    }
    this.count++;
    this.bytes += size;
    this.pagedSinceWait++;
  }

  /** Recovery: a level's stored entries, all on disk, from seq fromSeq on. */
  restore(level: number, count: number, bytes: number, fromSeq: number): void {
    if (count <= 0) return;
    const l = this.levels[level]!;
    l.count = count;
    l.bytes = bytes;
    l.fromSeq = fromSeq;
    this.count += count;
    this.bytes += bytes;
    this.pagedLevels++;
  }

  /**
   * Before taking from the ready list: levels running low read their next batch, the highest
   * levels first, so the ready list's head is the queue's true head.
   */
  topUp(): void {
    if (this.pagedLevels === 0 || this.waitingForCommit) return;
    const ready = this.queue.ready;
    for (let level = this.levels.length - 1; level >= 0; level--) {
      const l = this.levels[level]!;
      if (l.count === 0) continue;
      const inMemory = ready.levelCount(level);
      if (inMemory < PAGE_BATCH >> 1 && ready.levelBytes(level) < PAGE_BATCH_BYTES >> 1) this.refill(level);
      if (inMemory > 0 || ready.levelCount(level) > 0) return; // lower levels wait their turn
    }
  }

  /** Reads a level's next paged entries back into memory; returns how many. */
  refill(level: number): number {
    if (this.waitingForCommit) return 0;
    const l = this.levels[level]!;
    if (l.count === 0) return 0;
    const q = this.queue;
    const entries = q.persistence.loadEntries(q, level, l.fromSeq, PAGE_BATCH, PAGE_BATCH_BYTES);
    q.diskReadsTotal += entries.length;
    for (const entry of entries) {
      const size = entry.message.bodySize;
      l.count--;
      l.bytes -= size;
      if (entry.transient) {
        l.spillCount--;
        l.spillBytes -= size;
      }
      this.count--;
      this.bytes -= size;
      l.fromSeq = entry.seq + 1;
      q.ready.push(entry);
      q.entryLoaded(entry);
    }
    if (l.count <= 0) {
      this.clearLevel(l);
    } else if (entries.length === 0) {
      if (this.pagedSinceWait === 0 && this.waitedOnce) {
        // Nothing was written since the last wait and still nothing to read: the counts were wrong
        // (a store written by a broken build?). Trust the store.
        q.host.log.warn({ queue: q.name, level, expected: l.count }, 'paged entries missing from the store; the queue count is corrected');
        this.clearLevel(l);
        return 0;
      }
      // Written but not committed yet: try again after the commit.
      this.waitingForCommit = true;
      this.waitedOnce = true;
      this.pagedSinceWait = 0;
      q.persistence.afterCommit(new RefillWaiter(this));
    } else this.waitedOnce = false;
    return entries.length;
  }

  /** A level with paged entries has none left (read back, dropped, or found missing). */
  private clearLevel(l: PagedLevel): void {
    this.count -= l.count;
    this.bytes -= l.bytes;
    this.pagedLevels--;
    l.count = 0;
    l.bytes = 0;
    l.spillCount = 0;
    l.spillBytes = 0;
  }

  committed(): void {
    this.waitingForCommit = false;
    if (!this.queue.deleted) this.queue.pagedReadable();
  }

  /** Purge: every paged entry goes, without being read (the store sweeps the range). */
  dropAll(): number {
    let dropped = 0;
    const q = this.queue;
    const toSeq = q.lastSeq + 1;
    for (let level = 0; level < this.levels.length; level++) {
      const l = this.levels[level]!;
      if (l.count === 0) continue;
      dropped += l.count;
      q.persistence.dropPaged(q, level, l.fromSeq, toSeq, l.count - l.spillCount, l.bytes - l.spillBytes);
      this.clearLevel(l);
      l.fromSeq = toSeq;
    }
    return dropped;
  }

  /** Queue deleted: the store drops its entries as a whole; nothing is left to read. */
  forget(): void {
    for (const l of this.levels) {
      l.count = 0;
      l.bytes = 0;
      l.spillCount = 0;
      l.spillBytes = 0;
    }
    this.count = 0;
    this.bytes = 0;
    this.pagedLevels = 0;
  }
}
