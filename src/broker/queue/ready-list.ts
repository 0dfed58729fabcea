// The ready messages of a queue: one FIFO per priority level (a single one for queues without
// x-max-priority), highest level served first. Entries that expired in the middle are left in
// place as tombstones (state Done) and skipped when they reach the head, so expiry never has to
// search the list. Counts and bytes cover live entries only.

import { Deque } from '../../util/deque.js';
import type { MemoryGauge } from '../memory.js';
import { EntryState, entrySeq, type QueueEntry } from './entry.js';

export class ReadyList {
  private readonly levels: Deque<QueueEntry>[];
  count = 0;
  bytes = 0;
  /** tombstones still held in the deques */
  private dead = 0;

  constructor(
    maxPriority: number,
    private readonly memory: MemoryGauge,
  ) {
    this.levels = [];
    for (let i = 0; i <= maxPriority; i++) this.levels.push(new Deque<QueueEntry>());
  }

  push(entry: QueueEntry): void {
    this.levels[entry.level]!.push(entry);
    this.count++;
    this.bytes += entry.message.bodySize;
    this.memory.bytes += entry.message.bodySize;
  }

  /** Puts a requeued entry back at its original position. */
  putBack(entry: QueueEntry): void {
    const level = this.levels[entry.level]!;
    const first = level.peek();
    if (first === undefined || first.seq > entry.seq) level.unshift(entry);
    else level.insertSorted(entry, entrySeq);
    this.count++;
    this.bytes += entry.message.bodySize;
    this.memory.bytes += entry.message.bodySize;
  }

  /** The next live entry, without removing it. */
  peek(): QueueEntry | undefined {
    for (let l = this.levels.length - 1; l >= 0; l--) {
      const level = this.levels[l]!;
      let head = level.peek();
      while (head !== undefined && head.state !== EntryState.Ready) {
        level.shift();
        this.dead--;
        head = level.peek();
      }
      if (head !== undefined) return head;
    }
    return undefined;
  }

  /** Removes and returns the next live entry. */
  shift(): QueueEntry | undefined {
    const head = this.peek();
    if (head === undefined) return undefined;
    this.levels[head.level]!.shift();
    this.count--;
    this.bytes -= head.message.bodySize;
    this.memory.bytes -= head.message.bodySize;
    return head;
  }

  /** Accounts for an entry that left from the middle (expired); it stays as a tombstone. */
  markRemoved(entry: QueueEntry): void {
    this.count--;
    this.bytes -= entry.message.bodySize;
    this.memory.bytes -= entry.message.bodySize;
    this.dead++;
    if (this.dead > 1024 && this.dead > this.count) this.compact();
  }

  /** Removes and returns every live entry, in order (purge, delete). */
  drain(): QueueEntry[] {
    const out: QueueEntry[] = [];
    for (let l = this.levels.length - 1; l >= 0; l--) {
      const level = this.levels[l]!;
      for (const entry of level) if (entry.state === EntryState.Ready) out.push(entry);
      level.clear();
    }
    this.memory.bytes -= this.bytes;
    this.count = 0;
    this.bytes = 0;
    this.dead = 0;
    return out;
  }

  /** Live entries in delivery order (for inspection and tests). */
  *entries(): IterableIterator<QueueEntry> {
    for (let l = this.levels.length - 1; l >= 0; l--) {
      for (const entry of this.levels[l]!) if (entry.state === EntryState.Ready) yield entry;
    }
  }

  private compact(): void {
    for (const level of this.levels) level.removeWhere((e) => e.state !== EntryState.Ready);
    this.dead = 0;
  }
}
