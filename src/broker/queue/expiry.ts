// Message TTL of one queue: its ready entries that have an expiry, in a heap ordered by deadline
// (queue order among equals), and one timer for the soonest. Expired entries leave promptly,
// wherever they sit in the queue. An entry is in the heap only while it is ready: taking it for
// delivery (or dropping it) removes it at once, so a consumed message — body included — is never
// held until its TTL passes, however long that TTL is.

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
  /** a ready entry in the heap reached its deadline: take it out of the queue and discard it */
  expireEntry(entry: QueueEntry): void;
  /** expire entries at the head whose deadline passed (requeued ones, not in the heap) */
  expireHead(now: number): void;
  /** something may now be deliverable */
  expiryDone(): void;
}

export class QueueExpiry {
  private readonly heap = new IndexedMinHeap<QueueEntry>(
    (a, b) => a.expiresAt < b.expiresAt || (a.expiresAt === b.expiresAt && a.seq < b.seq),
  );
  private timer: NodeJS.Timeout | null = null;
  private timerAt = 0;

  constructor(
    private readonly queue: ExpiringQueue,
    private readonly log: Logger,
    private readonly vhost: string,
  ) {}

  /** Ready entries waiting for their deadline. */
  get size(): number {
    return this.heap.size;
  }

  /** Watches a ready entry with an expiry. */
  track(entry: QueueEntry): void {
    this.heap.push(entry);
    if (this.timer === null || entry.expiresAt < this.timerAt) this.arm(entry.expiresAt);
  }

  /** The entry left the ready list (delivered, dropped): forget it now. */
  untrack(entry: QueueEntry): void {
    if (entry.heapIndex >= 0) this.heap.remove(entry);
  }

  /** Runs expiry as soon as possible (an entry already past its deadline came back). */
  runSoon(now: number): void {
    if (this.timer === null || this.timerAt > now) this.arm(now);
  }

  /** Forgets every tracked entry (purge, delete). */
  clear(): void {
    this.heap.clear();
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.heap.clear();
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
      if (this.heap.size > 0 && this.timer === null) this.arm(Date.now() + 1000);
    }
  };

  /** Expires every ready entry whose time has come, wherever it sits in the queue. */
  private expireDue(now: number): void {
    let budget = EXPIRY_BATCH;
    for (;;) {
      const next = this.heap.peek();
      if (next === undefined) break;
      if (next.state !== EntryState.Ready) {
        this.heap.pop(); // defensive: entries are removed when they leave, so this is not expected
        continue;
      }
      if (next.expiresAt >= now) {
        this.arm(next.expiresAt);
        break;
      }
      if (--budget === 0) {
        // Many expiring at once: let other work in between batches (and keep expiry order).
        this.arm(now);
        this.queue.expiryDone();
        return;
      }
      this.heap.pop();
      this.queue.expireEntry(next);
    }
    // Requeued entries whose expiry passed while they were unacked are not in the heap.
    this.queue.expireHead(now);
    this.queue.expiryDone();
  }
}
