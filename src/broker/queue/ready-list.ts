// The ready messages of a queue held in memory: per priority level (a single level for queues
// without x-max-priority), highest level served first. Each level is a FIFO of arrivals in seq
// order plus a heap of requeued entries (also by seq): the next entry of a level is whichever of
// the two heads comes first. So a requeue costs O(log n) wherever the entry goes back and never
// shifts the FIFO, and the FIFO holds arrivals only (TTL expiry relies on that, see expiry.ts). Entries that expired in the middle of the FIFO are left in place as tombstones (state
// Done), skipped when they reach the head and compacted away when they outnumber the live ones,
// so expiry never has to search the list. Counts and bytes cover live entries only.

import { Deque } from '../../util/deque.js';
import { IndexedMinHeap } from '../../util/min-heap.js';
import type { MemoryGauge } from '../memory.js';
import { EntryState, type QueueEntry } from './entry.js';

const bySeq = (a: QueueEntry, b: QueueEntry): boolean => a.seq < b.seq;

class Level {
  /** entries in seq order (appended at the tail, taken at the head), tombstones included */
  readonly fifo = new Deque<QueueEntry>();
  /** requeued entries that belong before the FIFO's tail, smallest seq first */
  readonly returned = new IndexedMinHeap<QueueEntry, 'returnIndex'>(bySeq, 'returnIndex');
  count = 0;
  bytes = 0;
  /** tombstones in the FIFO */
  dead = 0;

  /** The live head of the FIFO (dropping tombstones on the way). */
  fifoHead(): QueueEntry | undefined {
    let head = this.fifo.peek();
    while (head !== undefined && head.state !== EntryState.Ready) {
      this.fifo.shift();
      this.dead--;
      head = this.fifo.peek();
    }
    return head;
  }

  peek(): QueueEntry | undefined {
    const head = this.fifoHead();
    const back = this.returned.peek();
    if (back === undefined) return head;
    if (head === undefined || back.seq < head.seq) return back;
    return head;
  }
}

export class ReadyList {
  private readonly levels: Level[] = [];
  count = 0;
  bytes = 0;

  constructor(
    maxPriority: number,
    private readonly memory: MemoryGauge,
  ) {
    for (let i = 0; i <= maxPriority; i++) this.levels.push(new Level());
  }

  get levelCountTotal(): number {
    return this.levels.length;
  }

  levelCount(level: number): number {
    return this.levels[level]!.count;
  }

  levelBytes(level: number): number {
    return this.levels[level]!.bytes;
  }

  /** Appends a new entry (its seq is the highest of its level in memory). */
  push(entry: QueueEntry): void {
    const l = this.levels[entry.level]!;
    l.fifo.push(entry);
    this.added(l, entry);
  }

  /** Puts a requeued entry back at its original position (the level's heap keeps the order). */
  putBack(entry: QueueEntry): void {
    const l = this.levels[entry.level]!;
    l.returned.push(entry);
    this.added(l, entry);
  }

  private added(l: Level, entry: QueueEntry): void {
    const size = entry.message.bodySize;
    l.count++;
    l.bytes += size;
    this.count++;
    this.bytes += size;
    const memory = this.memory;
    memory.bytes += size;
    if (memory.bytes > memory.peakSinceCollection) memory.peakSinceCollection = memory.bytes;
  }

  private removed(l: Level, entry: QueueEntry): void {
    const size = entry.message.bodySize;
    l.count--;
    l.bytes -= size;
    this.count--;
    this.bytes -= size;
    this.memory.bytes -= size;
  }

  /** The next live entry, without removing it. */
  peek(): QueueEntry | undefined {
    for (let i = this.levels.length - 1; i >= 0; i--) {
      const l = this.levels[i]!;
      if (l.count === 0) continue;
      const e = l.peek();
      if (e !== undefined) return e;
    }
    return undefined;
  }

  /** The next live entry of one level, without removing it. */
  peekLevel(level: number): QueueEntry | undefined {
    const l = this.levels[level]!;
    return l.count === 0 ? undefined : l.peek();
  }

  /** The live head of a level's arrivals (requeued entries aside), without removing it. */
  peekArrival(level: number): QueueEntry | undefined {
    const l = this.levels[level]!;
    return l.count === 0 ? undefined : l.fifoHead();
  }

  /** Removes a level's arrival head (after peekArrival returned it). */
  shiftArrival(level: number): void {
    const l = this.levels[level]!;
    const e = l.fifo.shift();
    if (e !== undefined) this.removed(l, e);
  }

  /** Removes and returns a level's newest live arrival (paging out under memory pressure). */
  popArrivalTail(level: number): QueueEntry | undefined {
    const l = this.levels[level]!;
    for (;;) {
      const e = l.fifo.peekLast();
      if (e === undefined) return undefined;
      l.fifo.pop();
      if (e.state !== EntryState.Ready) {
        l.dead--;
        continue;
      }
      this.removed(l, e);
      return e;
    }
  }

  /** Removes and returns the next live entry. */
  shift(): QueueEntry | undefined {
    for (let i = this.levels.length - 1; i >= 0; i--) {
      const l = this.levels[i]!;
      if (l.count === 0) continue;
      const e = this.takeFrom(l);
      if (e !== undefined) return e;
    }
    return undefined;
  }

  /** Removes and returns the next live entry of one level. */
  shiftLevel(level: number): QueueEntry | undefined {
    const l = this.levels[level]!;
    return l.count === 0 ? undefined : this.takeFrom(l);
  }

  private takeFrom(l: Level): QueueEntry | undefined {
    const e = l.peek();
    if (e === undefined) return undefined;
    if (e.returnIndex >= 0) l.returned.remove(e);
    else l.fifo.shift();
    this.removed(l, e);
    return e;
  }

  /** Accounts for an entry that left from the middle (expired); in the FIFO it stays as a tombstone. */
  markRemoved(entry: QueueEntry): void {
    const l = this.levels[entry.level]!;
    this.removed(l, entry);
    if (entry.returnIndex >= 0) {
      l.returned.remove(entry);
      return;
    }
    l.dead++;
    if (l.dead > 1024 && l.dead > l.count) {
      l.fifo.removeWhere((e) => e.state !== EntryState.Ready);
      l.dead = 0;
    }
  }

  /** Removes and returns every live entry, in order (purge, delete). */
  drain(): QueueEntry[] {
    const out: QueueEntry[] = [];
    for (let i = this.levels.length - 1; i >= 0; i--) {
      const l = this.levels[i]!;
      for (const e of this.levelEntries(l)) out.push(e);
      l.fifo.clear();
      l.returned.clear();
      l.count = 0;
      l.bytes = 0;
      l.dead = 0;
    }
    this.memory.bytes -= this.bytes;
    this.count = 0;
    this.bytes = 0;
    return out;
  }

  /** Live entries in delivery order (for inspection and tests). */
  *entries(): IterableIterator<QueueEntry> {
    for (let i = this.levels.length - 1; i >= 0; i--) yield* this.levelEntries(this.levels[i]!);
  }

  /** A level's live entries in seq order: the FIFO merged with the requeued ones. */
  private levelEntries(l: Level): QueueEntry[] {
    const live: QueueEntry[] = [];
    for (const e of l.fifo) if (e.state === EntryState.Ready) live.push(e);
    if (l.returned.size === 0) return live;
    return [...live, ...l.returned.items()].sort((a, b) => a.seq - b.seq);
  }

  /** Calls f on each live arrival (FIFO entry) of a level. */
  forEachArrival(level: number, f: (entry: QueueEntry) => void): void {
    for (const e of this.levels[level]!.fifo) if (e.state === EntryState.Ready) f(e);
  }

  /**
   * Calls f for each live FIFO entry of a level from seq fromSeq on, in order, while f returns
   * true; returns the seq after the last entry f accepted (or fromSeq). For unpinning bodies.
   */
  walkFrom(level: number, fromSeq: number, f: (entry: QueueEntry) => boolean): number {
    const fifo = this.levels[level]!.fifo;
    let lo = 0;
    let hi = fifo.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (fifo.at(mid)!.seq < fromSeq) lo = mid + 1;
      else hi = mid;
    }
    let next = fromSeq;
    for (let i = lo; i < fifo.length; i++) {
      const e = fifo.at(i)!;
      if (e.state === EntryState.Ready && !f(e)) break;
      next = e.seq + 1;
    }
    return next;
  }
}
