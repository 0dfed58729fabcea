// At-least-once dead-lettering for quorum queues (x-dead-letter-strategy at-least-once, which
// RabbitMQ applies only with x-overflow reject-publish). A message that leaves the queue dead
// (rejected, expired, over the length limit, over the delivery limit) stays stored in the source
// queue until every queue the dead-letter exchange routes it to has stored the copy: accepted, and
// for a durable target committed to disk. Targets that refuse it (their own reject-publish limit),
// a dead-letter exchange that does not exist, or no route at all keep it waiting; it is retried
// every RETRY_MS, and targets that already took it are not given a second copy.
//
// Deviation from RabbitMQ, on a restart: the waiting state itself is not stored, so a message still
// waiting when Warren stops comes back as a ready message of the source queue (redelivered) and
// goes through its consumers again. Nothing is lost either way.

import type { FieldValue } from '../../protocol/field-table.js';
import { deadLetterCopy, findDeadLetterCycles } from '../dead-letter.js';
import type { Message } from '../message.js';
import type { CommitWaiter } from '../persistence.js';
import type { QueueEntry } from './entry.js';
import { EnqueueResult, type DeadLetterReason, type Queue } from './queue.js';
import type { QuorumQueueHost } from './quorum-queue.js';

/** How often waiting dead-letters are offered to their targets again. */
export const RETRY_MS = 1000;
/** Waiting dead-letters offered per retry run, oldest first. */
const RETRY_BATCH = 1000;

interface PendingDeadLetter {
  readonly entry: QueueEntry;
  readonly reason: DeadLetterReason;
  /** the dead-lettered copy (x-death and all), built once so that every target gets the same */
  copy: Message | null;
  routingKeys: string[];
  deaths: FieldValue[];
  /** targets that accepted the copy */
  readonly storedIn: Set<Queue>;
  /** waiting for the store to commit the targets' copies */
  committing: boolean;
}

class CommitOfCopies implements CommitWaiter {
  constructor(
    private readonly owner: AtLeastOnceDeadLetterer,
    private readonly pending: PendingDeadLetter,
  ) {}
  onCommitted(): void {
    this.owner.copiesCommitted(this.pending);
  }
  onCommitFailed(): void {
    this.owner.copiesFailed(this.pending);
  }
}

export class AtLeastOnceDeadLetterer {
  /** insertion order = the order messages died in */
  private readonly waiting = new Set<PendingDeadLetter>();
  private committing = 0;
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;

  constructor(
    private readonly queue: Queue,
    private readonly host: QuorumQueueHost,
  ) {}

  /** Dead-lettered messages not yet stored by all their targets. */
  get pendingCount(): number {
    return this.waiting.size + this.committing;
  }

  /** An entry left the queue dead (its state is already Done); it stays stored until its copies are. */
  deadLetter(entry: QueueEntry, reason: DeadLetterReason): void {
    const pending: PendingDeadLetter = { entry, reason, copy: null, routingKeys: [], deaths: [], storedIn: new Set(), committing: false };
    this.offer(pending, Date.now());
  }

  /** Routes the copy to the targets that have not stored it yet. */
  private offer(p: PendingDeadLetter, now: number): void {
    const dlxName = this.queue.options.deadLetterExchange!;
    const dlx = this.host.exchanges.get(dlxName);
    if (dlx === undefined) return this.wait(p);
    if (p.copy === null) {
      const made = deadLetterCopy(this.queue, p.entry.message, p.reason, now);
      p.copy = made.copy;
      p.routingKeys = made.routingKeys;
      p.deaths = made.deaths;
    }
    const [first, ...rest] = p.routingKeys;
    // The router's result set is reused by nested routing (a target may dead-letter in turn): copy it.
    const targets = [...this.host.router.route(dlx, first ?? '', rest.length > 0 ? rest : null, p.copy)];
    const cycling = findDeadLetterCycles(p.reason, p.deaths, targets);
    let live = 0;
    let refused = false;
    let mustCommit = false;
    for (const target of targets) {
      if (cycling.has(target) || target.deleted) continue;
      live++;
      if (p.storedIn.has(target)) continue;
      const result = target.enqueue(p.copy, now);
      if (result === EnqueueResult.Rejected) refused = true;
      else {
        p.storedIn.add(target);
        if (result === EnqueueResult.AcceptedPendingCommit) mustCommit = true;
      }
    }
    // No route (and no cycle that RabbitMQ would drop it for): keep it until the topology has one.
    if ((live === 0 && cycling.size === 0) || refused) return this.wait(p);
    this.waiting.delete(p);
    if (!mustCommit) return this.release(p);
    p.committing = true;
    this.committing++;
    this.host.persistence.afterCommit(new CommitOfCopies(this, p));
  }

  copiesCommitted(p: PendingDeadLetter): void {
    p.committing = false;
    this.committing--;
    this.release(p);
  }

  copiesFailed(p: PendingDeadLetter): void {
    p.committing = false;
    this.committing--;
    // The targets' copies may not be on disk: offer them again (a target may get a second copy).
    p.storedIn.clear();
    this.wait(p);
  }

  /** Every target has the copy: the source's stored entry can go. */
  private release(p: PendingDeadLetter): void {
    this.waiting.delete(p);
    if (p.entry.stored) this.host.persistence.removeEntry(p.entry);
  }

  private wait(p: PendingDeadLetter): void {
    if (this.stopped) return;
    this.waiting.add(p);
    if (this.timer === null) {
      this.timer = setTimeout(this.retry, RETRY_MS);
      this.timer.unref();
    }
  }

  private readonly retry = (): void => {
    this.timer = null;
    if (this.stopped) return;
    try {
      const now = Date.now();
      let budget = RETRY_BATCH;
      for (const p of [...this.waiting]) {
        if (--budget < 0) break;
        this.offer(p, now);
      }
    } catch (err) {
      this.host.log.error({ err, queue: this.queue.name, vhost: this.host.name }, 'retrying dead-letters failed');
    }
    if (this.waiting.size > 0 && this.timer === null && !this.stopped) {
      this.timer = setTimeout(this.retry, RETRY_MS);
      this.timer.unref();
    }
  };

  /** The queue is deleted: waiting dead-letters go with it. */
  stop(): void {
    this.stopped = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    for (const p of this.waiting) if (p.entry.stored) this.host.persistence.removeEntry(p.entry);
    this.waiting.clear();
  }
}
