// A classic queue: ready messages (per priority level), consumers, and the rules that decide what
// happens to a message here — length limits and overflow, dead-letter triggers, requeue in
// original position. TTL lives in expiry.ts, paging in paging.ts, the in-memory list in
// ready-list.ts. The queue does no socket I/O: the dispatcher pulls entries from it and hands them
// to channels; expired and dropped messages go to the host for dead-lettering.

import type { FieldTable } from '../../protocol/field-table.js';
import type { Logger } from '../../log.js';
import type { LevelCounts } from '../../store/records.js';
import type { Binding } from '../binding.js';
import type { MemoryGauge } from '../memory.js';
import type { Message } from '../message.js';
import type { Persistence } from '../persistence.js';
import { DeadLetterCounts, type BrokerStats } from '../stats.js';
import { parseQueueArguments, type QueueArguments } from './arguments.js';
import { NO_POLICY, type AppliedPolicy } from '../policies.js';
import type { QueueType } from './queue-types.js';
import { expirationMs } from '../expiration.js';
import { ConsumerList, type Consumer } from './consumers.js';
import { EntryState, QueueEntry } from './entry.js';
import { QueueExpiry, type ExpiringQueue } from './expiry.js';
import { QueuePaging } from './paging.js';
import { ReadyList } from './ready-list.js';

export type DeadLetterReason = 'rejected' | 'expired' | 'maxlen' | 'delivery_limit';

export { PAGE_WINDOW, PAGE_WINDOW_BYTES } from './paging.js';

/** What a queue needs from its virtual host. */
export interface QueueHost {
  readonly name: string;
  readonly log: Logger;
  readonly persistence: Persistence;
  readonly memory: MemoryGauge;
  /** broker-level totals (dead-lettered messages are counted there too) */
  readonly stats: BrokerStats;
  /** the queue has ready messages and maybe a consumer able to take them */
  queueReady(queue: Queue): void;
  /** hand ready messages to consumers right now, as of time now (TTL 0: deliverable now or never) */
  deliverNow(queue: Queue, now: number): void;
  /** republish a message that left the queue for this reason (only called when a DLX is set) */
  deadLetter(queue: Queue, message: Message, reason: DeadLetterReason): void;
  /** the queue's x-expires elapsed unused */
  queueExpired(queue: Queue): void;
}

/** The connection that owns an exclusive queue (identity only). */
export interface QueueOwner {
  readonly id: number;
}

export const enum EnqueueResult {
  /** accepted, nothing to wait for */
  Accepted = 0,
  /** accepted; a store commit is pending before it may be confirmed */
  AcceptedPendingCommit = 1,
  /** refused by x-overflow=reject-publish(-dlx): the publisher gets basic.nack */
  Rejected = 2,
}

export interface QueueOptions {
  durable: boolean;
  exclusiveOwner: QueueOwner | null;
  autoDelete: boolean;
  args: FieldTable;
  parsed: QueueArguments;
}

export class Queue implements ExpiringQueue {
  readonly kind = 'queue' as const;
  readonly durable: boolean;
  readonly exclusiveOwner: QueueOwner | null;
  readonly autoDelete: boolean;
  readonly args: FieldTable;
  /** effective settings: the declared arguments combined with policies (see applyOptions) */
  options: QueueArguments;
  /** the policy and operator policy in force (policies.ts), for the management API */
  appliedPolicy: AppliedPolicy = NO_POLICY;
  readonly bindings = new Set<Binding>();
  readonly ready: ReadyList;
  readonly consumers: ConsumerList;
  unackedCount = 0;
  /** set once a consumer has attached; auto-delete applies only after that */
  hadConsumers = false;
  deleted = false;
  /** id in the store (durable queues, or any queue once it pages); 0 = none */
  storeId = 0;
  /** per priority level, the persistent entries the store holds for this queue (persistence.ts) */
  readonly storedCounts: LevelCounts[];
  /** some entries were spilled (written only to save memory): reads merge the spill range */
  hasSpilled = false;
  /**
   * Per priority level, the highest seq that may have been delivered: on recovery, entries at or
   * below it come back redelivered. Within a level delivery follows seq order (requeued entries
   * return to their place), so this is exact for entries never delivered.
   */
  deliveredWatermarks: number[];
  private nextSeq = 1;
  /** the paged-out part, read back as the queue drains */
  readonly paging: QueuePaging;
  /** TTL: entries with a deadline, and the timer for the soonest */
  private readonly expiry: QueueExpiry;
  /** per level, the seq from which ready entries may still pin a socket chunk (see unpin) */
  readonly unpinFrom: number[];
  /** registered with the memory gauge for unpinning */
  unpinQueued = false;
  /** registered with the memory gauge as holding message bytes */
  memoryHolder = false;
  /** listed in the dispatcher's queues to serve (dispatch.ts keeps each queue there once) */
  dispatchPending = false;
  private idleTimer: NodeJS.Timeout | null = null;
  /** counters for metrics, read at scrape time */
  publishedTotal = 0;
  deliveredTotal = 0;
  ackedTotal = 0;
  redeliveredTotal = 0;
  /** bytes of message bodies delivered and not yet acknowledged */
  unackedBytes = 0;
  /** entries written to the store / read back from it (paging) */
  diskWritesTotal = 0;
  diskReadsTotal = 0;
  /** messages that left without an ack (expired, rejected, over the limit); created on the first */
  deadLettered: DeadLetterCounts | null = null;

  constructor(
    readonly host: QueueHost,
    readonly name: string,
    options: QueueOptions,
  ) {
    this.durable = options.durable;
    this.exclusiveOwner = options.exclusiveOwner;
    this.autoDelete = options.autoDelete;
    this.args = options.args;
    this.options = options.parsed;
    const levels = this.options.maxPriority + 1;
    this.ready = new ReadyList(this.options.maxPriority, host.memory);
    this.deliveredWatermarks = new Array<number>(levels).fill(0);
    this.storedCounts = Array.from({ length: levels }, () => ({ count: 0, bytes: 0, headSeq: 0 }));
    this.unpinFrom = new Array<number>(levels).fill(0);
    this.consumers = new ConsumerList(this.options.singleActiveConsumer);
    this.paging = new QueuePaging(this, levels);
    this.expiry = new QueueExpiry(this, host.log, host.name, levels);
    this.touch();
  }

  /** Ready messages, in memory and paged out. */
  get messageCount(): number {
    return this.ready.count + this.paging.count;
  }

  /** Bytes of ready message bodies, in memory and paged out. */
  get messageBytes(): number {
    return this.ready.bytes + this.paging.bytes;
  }

  /** Messages waiting for consumers, as flow control measures them (resources.ts); streams differ. */
  get flowBacklog(): number {
    return this.messageCount;
  }

  /** The highest seq handed out so far. */
  get lastSeq(): number {
    return this.nextSeq - 1;
  }

  get pagedOutCount(): number {
    return this.paging.count;
  }

  /** Ready entries in memory whose deadline is watched: in the heap, or in order at the heads. */
  get expiringCount(): number {
    return this.expiry.size + this.expiry.inOrderSize;
  }

  get consumerCount(): number {
    return this.consumers.size;
  }

  get exclusive(): boolean {
    return this.exclusiveOwner !== null;
  }

  /** classic here; quorum queues and streams are subclasses (queue-types.ts builds the right one). */
  get type(): QueueType {
    return 'classic';
  }

  get persistence(): Persistence {
    return this.host.persistence;
  }

  get memory(): MemoryGauge {
    return this.host.memory;
  }


  /** Whether a persistent message stored here must be written to disk. */
  get persistsMessages(): boolean {
    return this.durable && this.persistence.durable;
  }

  /** Accepts a routed message (or refuses it under reject-publish). */
  enqueue(message: Message, now: number): EnqueueResult {
    const opts = this.options;
    if (opts.overflow !== 'drop-head' && this.wouldOverflow(message.bodySize)) {
      if (opts.overflow === 'reject-publish-dlx') this.deadLetterOrDrop(message, 'maxlen');
      return EnqueueResult.Rejected;
    }
    const entry = new QueueEntry(this, message, this.nextSeq++, this.expiryFor(message), this.levelFor(message));
    this.publishedTotal++;
    const persistent = this.keepsOnDisk(message);
    let result = EnqueueResult.Accepted;
    if (this.paging.shouldPage(entry.level, persistent, this.persistence.durable)) {
      this.persistence.addEntry(entry, !persistent);
      this.diskWritesTotal++;
      if (persistent) result = EnqueueResult.AcceptedPendingCommit;
      else this.hasSpilled = true;
      this.paging.page(entry, !persistent);
    } else {
      if (persistent && this.persistence.addEntry(entry, false)) {
        result = EnqueueResult.AcceptedPendingCommit;
        this.diskWritesTotal++;
      }
      this.ready.push(entry);
      if (!this.memoryHolder) this.host.memory.noteHolder(this);
      if (!message.compacted) this.host.memory.notePinned(this);
      if (entry.expiresAt !== 0 && entry.expiresAt <= message.publishedAt) this.deliverOrExpire(entry);
      else this.expiry.arrived(entry);
    }
    if (opts.overflow === 'drop-head') this.dropHeadWhileOverLimit();
    this.host.queueReady(this);
    return result;
  }

  /** Whether this message is written to disk here (quorum queues keep every message). */
  protected keepsOnDisk(message: Message): boolean {
    return message.persistent && this.persistsMessages;
  }

  /** TTL 0, as RabbitMQ: delivered if a consumer can take it this instant, expired otherwise. */
  private deliverOrExpire(entry: QueueEntry): void {
    this.host.deliverNow(this, entry.message.publishedAt);
    if (entry.state !== EntryState.Ready) return;
    entry.state = EntryState.Done;
    this.ready.markRemoved(entry);
    this.discard(entry, 'expired');
  }

  /**
   * Recovery: the store holds these persistent entries of each level (nothing is read now; they
   * come into memory as the queue drains), and seqs up to lastSeq are taken.
   */
  restoreStored(levels: readonly LevelCounts[], lastSeq: number): void {
    let next = lastSeq + 1;
    for (let level = 0; level < this.storedCounts.length; level++) {
      const c = levels[level];
      if (c === undefined) continue;
      const mine = this.storedCounts[level]!;
      mine.count = c.count;
      mine.bytes = c.bytes;
      mine.headSeq = c.headSeq;
      this.paging.restore(level, c.count, c.bytes, c.headSeq);
      if (c.headSeq > next) next = c.headSeq;
    }
    if (next > this.nextSeq) this.nextSeq = next;
  }

  /** Reads the head of the queue into memory (start-up warm-up: arms TTL timers). */
  warmUp(): void {
    this.paging.topUp();
    this.expiry.runSoon(Date.now());
  }

  /** Takes the next deliverable entry (skipping and dead-lettering expired ones). */
  take(now: number): QueueEntry | undefined {
    for (;;) {
      this.paging.topUp();
      const entry = this.ready.shift();
      if (entry === undefined) return undefined;
      this.expiry.left(entry);
      if (entry.expiresAt !== 0 && entry.expiresAt < now) {
        entry.state = EntryState.Done;
        this.discard(entry, 'expired');
        continue;
      }
      entry.state = EntryState.Unacked;
      this.unackedCount++;
      this.unackedBytes += entry.message.bodySize;
      this.deliveredTotal++;
      if (entry.redelivered) this.redeliveredTotal++;
      if (entry.stored && entry.seq > this.deliveredWatermarks[entry.level]!) {
        this.deliveredWatermarks[entry.level] = entry.seq;
        this.persistence.markDelivered(this);
      }
      return entry;
    }
  }

  /**
   * Takes the head entry out of the queue to move it elsewhere (management: dead-letter replay).
   * The caller stores its copy and removes this entry in one commit (persistence.moveEntry), or
   * puts it back untouched with returnUnmoved. Expired entries met on the way leave as in take().
   * Not a delivery: no delivered count, no redelivered mark.
   */
  takeForMove(now: number): QueueEntry | undefined {
    for (;;) {
      this.paging.topUp();
      const entry = this.ready.shift();
      if (entry === undefined) return undefined;
      this.expiry.left(entry);
      entry.state = EntryState.Done;
      if (entry.expiresAt !== 0 && entry.expiresAt < now) {
        this.discard(entry, 'expired');
        continue;
      }
      return entry;
    }
  }

  /** An entry taken by takeForMove that stays after all: back in its original place, unchanged. */
  returnUnmoved(entry: QueueEntry): void {
    entry.state = EntryState.Ready;
    this.ready.putBack(entry);
    this.expiry.requeued(entry, Date.now());
    this.host.queueReady(this);
  }

  /** Whether a message of this size would be refused now (x-overflow reject-publish on a full queue). */
  refuses(bodySize: number): boolean {
    return this.options.overflow !== 'drop-head' && this.wouldOverflow(bodySize);
  }

  /** Whether paged entries are waiting for a commit before they can be read back. */
  get refillPending(): boolean {
    return this.paging.waitingForCommit;
  }

  /**
   * A policy changed this queue's effective settings (policies.ts), live. As RabbitMQ: a new TTL
   * applies to messages enqueued from now on (those already here keep their expiry), length limits
   * apply at once (drop-head drops or dead-letters the excess now), x-expires restarts, and the
   * dead-letter exchange is read at each dead-lettering. Priorities and single-active-consumer
   * cannot come from policies.
   */
  applyOptions(options: QueueArguments): void {
    const expiresChanged = options.expiresMs !== this.options.expiresMs;
    this.options = options;
    if (this.deleted) return;
    if (expiresChanged) {
      this.stopIdleTimer();
      this.touch();
    }
    if (options.overflow === 'drop-head') this.dropHeadWhileOverLimit();
    if (this.messageCount > 0) this.host.queueReady(this);
  }

  /** QueuePaging: entries it waited for are committed and readable. */
  pagedReadable(): void {
    this.host.queueReady(this);
  }

  /** QueuePaging: an entry came back into memory. */
  entryLoaded(entry: QueueEntry): void {
    if (!this.memoryHolder) this.host.memory.noteHolder(this);
    if (!entry.message.compacted) {
      // A view into the slab it was read with (store/slab-reader.ts): copied out if it stays.
      if (entry.seq < this.unpinFrom[entry.level]!) this.unpinFrom[entry.level] = entry.seq;
      this.host.memory.notePinned(this);
    }
    this.expiry.arrived(entry);
  }

  /** QueuePaging: an entry left memory for the store (memory pressure). */
  entryPagedOut(entry: QueueEntry): void {
    this.expiry.left(entry);
  }

  /** Memory pressure: pages out up to `bytes` of the newest messages held in memory; returns how many bytes. */
  pageOut(bytes: number): number {
    return this.paging.pageOut(bytes);
  }

  /**
   * An unacked entry was acknowledged (or delivered with no-ack: byAck false, which RabbitMQ's
   * per-queue `ack` statistic does not count): it leaves the queue.
   */
  settle(entry: QueueEntry, byAck = true): void {
    if (entry.state !== EntryState.Unacked) return;
    entry.state = EntryState.Done;
    this.unackedCount--;
    this.unackedBytes -= entry.message.bodySize;
    if (byAck) this.ackedTotal++;
    if (entry.stored) this.persistence.removeEntry(entry);
  }

  /** An unacked entry was rejected/nacked without requeue. */
  rejectWithoutRequeue(entry: QueueEntry): void {
    if (entry.state !== EntryState.Unacked) return;
    entry.state = EntryState.Done;
    this.unackedCount--;
    this.unackedBytes -= entry.message.bodySize;
    this.discard(entry, 'rejected');
  }

  /** An unacked entry goes back to its original position, marked redelivered. */
  requeue(entry: QueueEntry, now: number): void {
    if (entry.state !== EntryState.Unacked) return;
    this.unackedCount--;
    this.unackedBytes -= entry.message.bodySize;
    if (this.deleted) {
      entry.state = EntryState.Done;
      if (entry.stored) this.persistence.removeEntry(entry);
      return;
    }
    entry.state = EntryState.Ready;
    entry.redelivered = true;
    // Back in the queue for who knows how long: it must not keep a socket read chunk alive.
    entry.message.unpin();
    this.ready.putBack(entry);
    if (!this.memoryHolder) this.host.memory.noteHolder(this);
    this.expiry.requeued(entry, now);
    if (this.options.overflow === 'drop-head') this.dropHeadWhileOverLimit();
    this.host.queueReady(this);
  }

  /** The settings its own arguments give (before policies); quorum queues and streams parse their own. */
  declaredOptions(): QueueArguments {
    return parseQueueArguments(this.args, this.name, this.host.name);
  }

  /** Removes all ready messages; returns how many. Unacked ones stay. Paged ones are not read. */
  purge(): number {
    const count = this.messageCount;
    if (this.persistsMessages && count > 0) this.persistence.noteSyncWrite();
    this.dropAllReady();
    return count;
  }

  private dropAllReady(): void {
    this.expiry.clear();
    for (const entry of this.ready.drain()) {
      entry.state = EntryState.Done;
      if (entry.stored) this.persistence.removeEntry(entry);
    }
    this.paging.dropAll();
  }

  addConsumer(consumer: Consumer): void {
    this.consumers.add(consumer);
    this.hadConsumers = true;
    this.stopIdleTimer();
    this.host.queueReady(this);
  }

  /** Returns true when the queue should now be auto-deleted. */
  removeConsumer(consumer: Consumer): boolean {
    if (!this.consumers.remove(consumer)) return false;
    if (this.consumers.size > 0) {
      // Single-active-consumer: the next one may take over.
      if (this.messageCount > 0) this.host.queueReady(this);
      return false;
    }
    this.touch();
    return this.autoDelete && this.hadConsumers;
  }

  /** Any use that postpones x-expires: declare, basic.get, consumer changes. */
  touch(): void {
    if (this.options.expiresMs === undefined || this.deleted) return;
    this.stopIdleTimer();
    if (this.consumers.size > 0) return;
    this.idleTimer = setTimeout(this.onIdleTimer, this.options.expiresMs);
    this.idleTimer.unref();
  }

  /**
   * The queue is deleted: timers stop and its messages are dropped. In-memory ones are forgotten;
   * whatever the store holds for the queue is swept as a whole (persistence.forgetQueue).
   */
  destroy(): void {
    this.deleted = true;
    this.stopIdleTimer();
    this.expiry.stop();
    for (const entry of this.ready.drain()) entry.state = EntryState.Done;
    this.paging.forget();
    this.persistence.forgetQueue(this);
    this.host.memory.forget(this);
  }

  levelFor(message: Message): number {
    const max = this.options.maxPriority;
    if (max === 0) return 0;
    return message.priority > max ? max : message.priority;
  }

  // ---- TTL --------------------------------------------------------------------------------------

  private expiryFor(message: Message): number {
    let ttl = this.options.messageTtlMs;
    if (message.expiration !== undefined) {
      const perMessage = expirationMs(message.expiration);
      if (perMessage !== undefined && (ttl === undefined || perMessage < ttl)) ttl = perMessage;
    }
    // TTL runs from when the broker accepted the message (a dead-lettered copy starts afresh).
    return ttl === undefined ? 0 : message.publishedAt + ttl;
  }

  /** ExpiringQueue: live entries of a level in memory. */
  levelCount(level: number): number {
    return this.ready.levelCount(level);
  }

  /** ExpiringQueue: each live arrival of a level in memory. */
  forEachArrival(level: number, f: (entry: QueueEntry) => void): void {
    this.ready.forEachArrival(level, f);
  }

  /** ExpiringQueue: a ready entry's deadline passed (it is already out of the heap). */
  expireEntry(entry: QueueEntry): void {
    entry.state = EntryState.Done;
    this.ready.markRemoved(entry);
    this.discard(entry, 'expired');
  }

  /** ExpiringQueue: an expiry run ended; what is left may be deliverable. */
  expiryDone(): void {
    if (this.messageCount > 0) this.host.queueReady(this);
  }

  /**
   * ExpiringQueue: the level-head arrival with the soonest deadline. Arrivals with a deadline in
   * queue order (x-message-ttl) are only ever due at a head, so this is all expiry looks at for
   * them; an empty level with paged entries reads its next batch first.
   */
  soonestHead(): QueueEntry | undefined {
    let best: QueueEntry | undefined;
    for (let level = this.ready.levelCountTotal - 1; level >= 0; level--) {
      if (this.ready.levelCount(level) === 0) {
        if (this.paging.levels[level]!.count === 0) continue;
        this.paging.refill(level);
      }
      const head = this.ready.peekArrival(level);
      if (head === undefined || head.expiresAt === 0) continue;
      if (best === undefined || head.expiresAt < best.expiresAt || (head.expiresAt === best.expiresAt && head.seq < best.seq)) best = head;
    }
    return best;
  }

  /** ExpiringQueue: a level-head arrival's deadline passed. */
  expireArrival(entry: QueueEntry): void {
    this.ready.shiftArrival(entry.level);
    this.expiry.left(entry);
    entry.state = EntryState.Done;
    this.discard(entry, 'expired');
  }

  // ---- Length limits ------------------------------------------------------------------------------

  private wouldOverflow(extraBytes: number): boolean {
    const { maxLength, maxLengthBytes } = this.options;
    if (maxLength !== undefined && this.messageCount + 1 > maxLength) return true;
    if (maxLengthBytes !== undefined && this.messageBytes + extraBytes > maxLengthBytes) return true;
    return false;
  }

  private dropHeadWhileOverLimit(): void {
    const { maxLength, maxLengthBytes } = this.options;
    if (maxLength === undefined && maxLengthBytes === undefined) return;
    while (
      (maxLength !== undefined && this.messageCount > maxLength) ||
      (maxLengthBytes !== undefined && this.messageBytes > maxLengthBytes)
    ) {
      this.paging.topUp();
      const head = this.ready.shift();
      if (head === undefined) break;
      this.expiry.left(head);
      head.state = EntryState.Done;
      this.discard(head, 'maxlen');
    }
  }

  // ---- Leaving the queue --------------------------------------------------------------------------

  /**
   * An entry leaves without being acked: dead-letter it if a DLX is set, then forget it. The copy's
   * store write and the removal of this entry go to LMDB in the same commit (see persistence.ts,
   * atomic moves), so a crash in between loses nothing.
   */
  protected discard(entry: QueueEntry, reason: DeadLetterReason): void {
    this.deadLetterOrDrop(entry.message, reason);
    if (entry.stored) this.persistence.removeEntry(entry);
  }

  private deadLetterOrDrop(message: Message, reason: DeadLetterReason): void {
    const hasDeadLetterExchange = this.options.deadLetterExchange !== undefined;
    (this.deadLettered ??= new DeadLetterCounts()).count(reason, hasDeadLetterExchange);
    this.host.stats.forQueueType(this.type).deadLettered.count(reason, hasDeadLetterExchange);
    if (hasDeadLetterExchange) this.host.deadLetter(this, message, reason);
  }

  /** x-expires timer: never lets an error escape into the event loop. */
  private readonly onIdleTimer = (): void => {
    this.idleTimer = null;
    if (this.deleted || this.consumers.size !== 0) return;
    try {
      this.host.queueExpired(this);
    } catch (err) {
      this.host.log.error({ err, queue: this.name, vhost: this.host.name }, 'deleting an expired queue (x-expires) failed');
    }
  };

  private stopIdleTimer(): void {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = null;
  }
}
