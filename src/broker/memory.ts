// How many bytes of message bodies sit in queues in memory, against the configured budget. Queues
// add and subtract as messages come and go (plain numbers on the hot path); above the budget,
// queues page new transient messages to disk as well as persistent ones.
//
// Unpinning: a message that arrived in one frame has its body (and properties) as a view into the
// socket read chunk it came in — no copy on the hot path. A message delivered at once lets that
// chunk go with it; one that stays in a queue would keep the whole chunk (up to 64 KiB, shared
// with messages long gone) alive for as long as it stays. So once a second, messages that have
// waited in a queue for more than UNPIN_AGE_MS are given their own copy of their bytes: a copy
// only for messages that are not delivered promptly, never on the delivery path itself.

import type { Queue } from './queue/queue.js';

/** Messages older than this in a queue get their own copy of their bytes. */
export const UNPIN_AGE_MS = 1000;
const UNPIN_INTERVAL_MS = 1000;

export class MemoryGauge {
  bytes = 0;
  /** queues holding messages that may still pin socket chunks */
  private pinned: Queue[] = [];
  private timer: NodeJS.Timeout | null = null;
  /** messages copied out of their socket chunks so far (tests, metrics) */
  unpinnedTotal = 0;

  constructor(readonly budgetBytes: number) {}

  get overBudget(): boolean {
    return this.bytes > this.budgetBytes;
  }

  /** A queue took in a message whose bytes are a view into a socket chunk. */
  notePinned(queue: Queue): void {
    if (queue.unpinQueued) return;
    queue.unpinQueued = true;
    this.pinned.push(queue);
    if (this.timer === null) {
      this.timer = setTimeout(this.onTimer, UNPIN_INTERVAL_MS);
      this.timer.unref();
    }
  }

  /** Queues still holding young messages re-register themselves (and re-arm the timer). */
  private readonly onTimer = (): void => {
    this.timer = null;
    this.unpinOlderThan(Date.now() - UNPIN_AGE_MS);
  };

  /** Copies out every queued message that arrived before `cutoff`; returns how many. */
  unpinOlderThan(cutoff: number): number {
    const queues = this.pinned;
    this.pinned = [];
    let copied = 0;
    for (const queue of queues) {
      queue.unpinQueued = false;
      if (queue.deleted) continue;
      try {
        let more = false;
        for (let level = 0; level < queue.unpinFrom.length; level++) {
          queue.unpinFrom[level] = queue.ready.walkFrom(level, queue.unpinFrom[level]!, (entry) => {
            const message = entry.message;
            if (message.compacted) return true;
            if (message.publishedAt > cutoff) {
              more = true;
              return false;
            }
            if (message.unpin()) copied++;
            return true;
          });
        }
        if (more) this.notePinned(queue);
      } catch (err) {
        queue.host.log.error({ err, queue: queue.name, vhost: queue.host.name }, 'copying queued messages out of socket buffers failed');
      }
    }
    this.unpinnedTotal += copied;
    return copied;
  }
}
