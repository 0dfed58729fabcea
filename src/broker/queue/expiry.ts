// Message TTL of one queue, with one timer. Entries with a deadline are of two kinds:
//   - in order: arrivals whose deadline is no earlier than that of every arrival before them in
//     their level (the x-message-ttl case: arrival plus the same TTL). Only the level's first
//     arrival can be due first, so they cost nothing here: the timer is armed for the soonest
//     head and expired heads are dropped in order.
//   - out of order: anything else (a shorter per-message expiration, a requeued entry, a TTL
//     lowered by a policy). These sit in a heap ordered by deadline (queue order among equals) and
//     leave promptly, wherever they are in the queue.
// An arrival without a deadline ends the in-order run of its level (until the level empties in
// memory), since heads behind it would wait for it. An entry is in the heap only while it is ready:
// taking it for delivery (or dropping it) removes it at once, so a consumed message — body
// included — is never held until its deadline.

import type { Logger } from '../../log.js';
import { IndexedMinHeap } from '../../util/min-heap.js';
import { EntryState, type QueueEntry } from './entry.js';

/** Expired entries handled per timer callback before yielding to other work. */
const EXPIRY_BATCH = 5000;
/** setTimeout's largest delay. */
const MAX_TIMER_MS = 2_147_483_647;

/** What expiry needs from its queue. */
export interface ExpiringQueue {
  readonly name: string;
  readonly deleted: boolean;
  readonly messageCount: number;
  /** live entries of a level in memory */
  levelCount(level: number): number;
  /** calls f on each live arrival of a level held in memory */
  forEachArrival(level: number, f: (entry: QueueEntry) => void): void;
  /** a ready entry from the heap reached its deadline: take it out of the queue and discard it */
  expireEntry(entry: QueueEntry): void;
  /** the level-head arrival with the soonest deadline (0 deadlines aside), reading paged heads in */
  soonestHead(): QueueEntry | undefined;
  /** a level-head arrival reached its deadline: take it out of the queue and discard it */
  expireArrival(entry: QueueEntry): void;
  /** something may now be deliverable */
  expiryDone(): void;
}

export class QueueExpiry {
  private readonly heap = new IndexedMinHeap<QueueEntry, 'heapIndex'>(before, 'heapIndex');
  /** per level: arrivals so far are all in order (no deadline-less one among them) */
  private readonly inOrder: boolean[];
  /** per level: the deadline of the last in-order arrival */
  private readonly lastDeadline: number[];
  /** per level: in-order entries held in memory */
  private readonly inOrderCount: number[];
  private timer: NodeJS.Timeout | null = null;
  private timerAt = 0;
  /** an entry with a deadline has arrived (until then arrivals cost a single check) */
  private seenDeadline = false;

  constructor(
    private readonly queue: ExpiringQueue,
    private readonly log: Logger,
    private readonly vhost: string,
    levels: number,
  ) {
    this.inOrder = new Array<boolean>(levels).fill(true);
    this.lastDeadline = new Array<number>(levels).fill(0);
    this.inOrderCount = new Array<number>(levels).fill(0);
  }

  /** Out-of-order entries watched in the heap. */
  get size(): number {
    return this.heap.size;
  }

  /** Entries expired from the level heads, held in memory. */
  get inOrderSize(): number {
    let n = 0;
    for (const c of this.inOrderCount) n += c;
    return n;
  }

  /** An entry was appended to its level (enqueued, or read back from the store). */
  arrived(entry: QueueEntry): void {
    const level = entry.level;
    if (!this.seenDeadline) {
      // The fast path of queues whose messages have no deadline: nothing to watch.
      if (entry.expiresAt === 0) return;
      this.seenDeadline = true;
      // Arrivals held so far have none: an in-order run starts only in a level with no other entry.
      for (let l = 0; l < this.inOrder.length; l++) this.inOrder[l] = this.queue.levelCount(l) <= (l === level ? 1 : 0);
    }
    if (this.queue.levelCount(level) === 1) {
      // The only one in memory: a fresh run starts.
      this.inOrder[level] = true;
      this.lastDeadline[level] = 0;
    }
    const at = entry.expiresAt;
    if (at === 0) {
      this.inOrder[level] = false;
      return;
    }
    if (this.inOrder[level] && at >= this.lastDeadline[level]!) {
      entry.expiresInOrder = true;
      this.lastDeadline[level] = at;
      this.inOrderCount[level]!++;
    } else this.heap.push(entry);
    if (this.timer === null || at < this.timerAt) this.arm(at);
  }

  /** A requeued entry went back to its place. */
  requeued(entry: QueueEntry, now: number): void {
    const level = entry.level;
    if (entry.expiresAt === 0) {
      // It is back at the front of in-order entries that would now wait behind it: the heap
      // takes them over (rare: a deadline-less entry requeued into a level with deadlines).
      if (this.inOrderCount[level]! > 0) this.queue.forEachArrival(level, (e) => this.toHeap(e));
      this.inOrder[level] = false;
      return;
    }
    // Requeued entries are not arrivals: the heap watches them, due already or not.
    this.heap.push(entry);
    if (entry.expiresAt < now) this.runSoon(now);
    else if (this.timer === null || entry.expiresAt < this.timerAt) this.arm(entry.expiresAt);
  }

  private toHeap(entry: QueueEntry): void {
    if (!entry.expiresInOrder) return;
    entry.expiresInOrder = false;
    this.inOrderCount[entry.level]!--;
    this.heap.push(entry);
  }

  /** The entry left the ready list (delivered, dropped, expired): forget it now. */
  left(entry: QueueEntry): void {
    if (entry.heapIndex >= 0) this.heap.remove(entry);
    else if (entry.expiresInOrder) {
      entry.expiresInOrder = false;
      this.inOrderCount[entry.level]!--;
    }
  }

  /** Runs expiry as soon as possible (an entry already past its deadline came back). */
  runSoon(now: number): void {
    if (this.timer === null || this.timerAt > now) this.arm(now);
  }

  /** Forgets every tracked entry (purge, delete): the ready list is being emptied. */
  clear(): void {
    this.heap.clear();
    this.inOrderCount.fill(0);
    this.inOrder.fill(true);
    this.lastDeadline.fill(0);
  }

  /** Queue deleted. */
  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.clear();
  }

  private arm(at: number): void {
    if (this.timer) clearTimeout(this.timer);
    this.timerAt = at;
    const delay = Math.max(0, at - Date.now() + 1);
    this.timer = setTimeout(this.onTimer, Math.min(delay, MAX_TIMER_MS));
    this.timer.unref();
  }

  /** Timer callback: never lets an error escape into the event loop. */
  private readonly onTimer = (): void => {
    this.timer = null;
    if (this.queue.deleted) return;
    try {
      this.expireDue(Date.now());
    } catch (err) {
      this.log.error({ err, queue: this.queue.name, vhost: this.vhost }, 'expiring messages failed');
      // Try again later rather than never: the entries are still due.
      if (this.timer === null) this.arm(Date.now() + 1000);
    }
  };

  /**
   * Expires every ready entry whose time has come, wherever it sits in the queue, in deadline order
   * (queue order among equals) across the heap and the level heads.
   */
  private expireDue(now: number): void {
    let budget = EXPIRY_BATCH;
    let next = 0;
    for (;;) {
      const top = this.heap.peek();
      const head = this.queue.soonestHead();
      const topDue = top !== undefined && top.expiresAt < now;
      const headDue = head !== undefined && head.expiresAt < now;
      if (!topDue && !headDue) {
        next = soonest(top, head);
        break;
      }
      if (budget === 0) {
        // Many expiring at once: let other work in between batches (and keep expiry order).
        next = now;
        break;
      }
      budget--;
      if (headDue && (!topDue || before(head, top!))) this.queue.expireArrival(head);
      else {
        this.heap.pop();
        if (top!.state === EntryState.Ready) this.queue.expireEntry(top!);
      }
    }
    if (next !== 0) this.arm(next);
    this.queue.expiryDone();
  }
}

function before(a: QueueEntry, b: QueueEntry): boolean {
  return a.expiresAt < b.expiresAt || (a.expiresAt === b.expiresAt && a.seq < b.seq);
}

/** The sooner of two deadlines (0 when neither entry has one). */
function soonest(a: QueueEntry | undefined, b: QueueEntry | undefined): number {
  const x = a?.expiresAt ?? 0;
  const y = b?.expiresAt ?? 0;
  if (x === 0) return y;
  if (y === 0) return x;
  return Math.min(x, y);
}
