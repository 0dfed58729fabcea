// A classic queue: ready messages (per priority level), consumers, and the rules that decide what
// happens to a message here — TTL, length limits and overflow, dead-lettering triggers, requeue in
// original position. The queue does no socket I/O: the dispatcher pulls entries from it and hands
// them to channels; expired and dropped messages are handed to the host for dead-lettering.

import type { FieldTable } from '../../protocol/field-table.js';
import type { Store } from '../../store/store.js';
import { MinHeap } from '../../util/min-heap.js';
import type { Binding } from '../binding.js';
import type { Message } from '../message.js';
import type { QueueArguments } from './arguments.js';
import { ConsumerList, type Consumer } from './consumers.js';
import { EntryState, QueueEntry } from './entry.js';
import { ReadyList } from './ready-list.js';

export type DeadLetterReason = 'rejected' | 'expired' | 'maxlen' | 'delivery_limit';

/** What a queue needs from its virtual host. */
export interface QueueHost {
  readonly name: string;
  readonly store: Store;
  /** the queue has ready messages and maybe a consumer able to take them */
  queueReady(queue: Queue): void;
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

export class Queue {
  readonly kind = 'queue' as const;
  readonly durable: boolean;
  readonly exclusiveOwner: QueueOwner | null;
  readonly autoDelete: boolean;
  readonly args: FieldTable;
  readonly options: QueueArguments;
  readonly bindings = new Set<Binding>();
  readonly ready: ReadyList;
  readonly consumers: ConsumerList;
  unackedCount = 0;
  /** set once a consumer has attached; auto-delete applies only after that */
  hadConsumers = false;
  deleted = false;
  /** id in the store while durable (0 = not stored) */
  storeId = 0;
  private nextSeq = 1;
  private readonly expiries = new MinHeap<QueueEntry>((e) => e.expiresAt);
  private expiryTimer: NodeJS.Timeout | null = null;
  private expiryTimerAt = 0;
  private idleTimer: NodeJS.Timeout | null = null;
  /** counters for metrics, read at scrape time */
  publishedTotal = 0;
  deliveredTotal = 0;
  ackedTotal = 0;
  redeliveredTotal = 0;

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
    this.ready = new ReadyList(this.options.maxPriority);
    this.consumers = new ConsumerList(this.options.singleActiveConsumer);
    this.touch();
  }

  get messageCount(): number {
    return this.ready.count;
  }

  get consumerCount(): number {
    return this.consumers.size;
  }

  get exclusive(): boolean {
    return this.exclusiveOwner !== null;
  }

  /** Whether a persistent message stored here must be written to disk. */
  get persistsMessages(): boolean {
    return this.durable && this.host.store.durable;
  }

  /** Accepts a routed message (or refuses it under reject-publish). */
  enqueue(message: Message, now: number): EnqueueResult {
    const opts = this.options;
    if (opts.overflow !== 'drop-head' && this.wouldOverflow(message.bodySize)) {
      if (opts.overflow === 'reject-publish-dlx') this.deadLetterOrDrop(message, 'maxlen');
      return EnqueueResult.Rejected;
    }
    const entry = new QueueEntry(this, message, this.nextSeq++, this.expiryFor(message, now), this.levelFor(message));
    this.publishedTotal++;
    let result = EnqueueResult.Accepted;
    if (message.persistent && this.persistsMessages && this.host.store.addEntry(entry)) {
      result = EnqueueResult.AcceptedPendingCommit;
    }
    this.ready.push(entry);
    if (entry.expiresAt !== 0) this.trackExpiry(entry);
    if (opts.overflow === 'drop-head') this.dropHeadWhileOverLimit();
    if (this.ready.count > 0) this.host.queueReady(this);
    return result;
  }

  /** Re-adds an entry recovered from the store (restart), keeping its seq and flags. */
  restoreEntry(entry: QueueEntry): void {
    if (entry.seq >= this.nextSeq) this.nextSeq = entry.seq + 1;
    this.ready.push(entry);
    if (entry.expiresAt !== 0) this.trackExpiry(entry);
  }

  /** Seq for an entry created outside enqueue (recovery). */
  allocateSeq(): number {
    return this.nextSeq++;
  }

  /** Takes the next deliverable entry (skipping and dead-lettering expired ones). */
  take(now: number): QueueEntry | undefined {
    for (;;) {
      const entry = this.ready.shift();
      if (entry === undefined) return undefined;
      if (entry.expiresAt !== 0 && entry.expiresAt < now) {
        entry.state = EntryState.Done;
        this.discard(entry, 'expired');
        continue;
      }
      entry.state = EntryState.Unacked;
      this.unackedCount++;
      this.deliveredTotal++;
      if (entry.redelivered) this.redeliveredTotal++;
      if (this.persistsMessages && entry.message.storeId !== 0) this.host.store.markDelivered(this, entry.seq);
      return entry;
    }
  }

  /** An unacked entry was acknowledged (or delivered with no-ack): it leaves the queue. */
  settle(entry: QueueEntry): void {
    if (entry.state !== EntryState.Unacked) return;
    entry.state = EntryState.Done;
    this.unackedCount--;
    this.ackedTotal++;
    if (entry.message.storeId !== 0) this.host.store.removeEntry(entry);
  }

  /** An unacked entry was rejected/nacked without requeue, or its channel asked to drop it. */
  rejectWithoutRequeue(entry: QueueEntry): void {
    if (entry.state !== EntryState.Unacked) return;
    entry.state = EntryState.Done;
    this.unackedCount--;
    this.discard(entry, 'rejected');
  }

  /** An unacked entry goes back to its original position, marked redelivered. */
  requeue(entry: QueueEntry, now: number): void {
    if (entry.state !== EntryState.Unacked) return;
    this.unackedCount--;
    if (this.deleted) {
      entry.state = EntryState.Done;
      if (entry.message.storeId !== 0) this.host.store.removeEntry(entry);
      return;
    }
    entry.state = EntryState.Ready;
    entry.redelivered = true;
    this.ready.putBack(entry);
    if (entry.expiresAt !== 0) {
      if (entry.expiresAt < now) this.scheduleExpiry(now);
      else this.trackExpiry(entry);
    }
    if (this.options.overflow === 'drop-head') this.dropHeadWhileOverLimit();
    this.host.queueReady(this);
  }

  /** Removes all ready messages; returns how many. Unacked ones stay. */
  purge(): number {
    const entries = this.ready.drain();
    for (const entry of entries) {
      entry.state = EntryState.Done;
      if (entry.message.storeId !== 0) this.host.store.removeEntry(entry);
    }
    this.expiries.clear();
    return entries.length;
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
      if (this.ready.count > 0) this.host.queueReady(this);
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
    this.idleTimer = setTimeout(() => {
      this.idleTimer = null;
      if (!this.deleted && this.consumers.size === 0) this.host.queueExpired(this);
    }, this.options.expiresMs);
    this.idleTimer.unref();
  }

  /** Called when the queue is deleted: stops timers, returns the ready entries it held. */
  destroy(): QueueEntry[] {
    this.deleted = true;
    this.stopIdleTimer();
    if (this.expiryTimer) clearTimeout(this.expiryTimer);
    this.expiryTimer = null;
    const entries = this.ready.drain();
    for (const entry of entries) entry.state = EntryState.Done;
    this.expiries.clear();
    return entries;
  }

  // ---- TTL --------------------------------------------------------------------------------------

  private expiryFor(message: Message, now: number): number {
    let ttl = this.options.messageTtlMs;
    if (message.expiration !== undefined) {
      const perMessage = parseExpiration(message.expiration);
      if (perMessage !== undefined && (ttl === undefined || perMessage < ttl)) ttl = perMessage;
    }
    if (ttl === undefined) return 0;
    // TTL runs from when the broker accepted the message (a dead-lettered copy starts afresh).
    void now;
    return message.publishedAt + ttl;
  }

  private trackExpiry(entry: QueueEntry): void {
    this.expiries.push(entry);
    if (this.expiryTimer === null || entry.expiresAt < this.expiryTimerAt) this.armExpiryTimer(entry.expiresAt);
  }

  private armExpiryTimer(at: number): void {
    if (this.expiryTimer) clearTimeout(this.expiryTimer);
    this.expiryTimerAt = at;
    const delay = Math.max(0, at - Date.now() + 1);
    this.expiryTimer = setTimeout(() => this.onExpiryTimer(), Math.min(delay, 2_147_483_647));
    this.expiryTimer.unref();
  }

  private scheduleExpiry(now: number): void {
    if (this.expiryTimer === null || this.expiryTimerAt > now) this.armExpiryTimer(now);
  }

  /** Expires every ready entry whose time has come, wherever it sits in the queue. */
  private onExpiryTimer(): void {
    this.expiryTimer = null;
    const now = Date.now();
    let expired = 0;
    for (;;) {
      const next = this.expiries.peek();
      if (next === undefined) break;
      if (next.state !== EntryState.Ready) {
        this.expiries.pop();
        continue;
      }
      if (next.expiresAt >= now) {
        this.armExpiryTimer(next.expiresAt);
        break;
      }
      this.expiries.pop();
      next.state = EntryState.Done;
      this.ready.markRemoved(next);
      this.discard(next, 'expired');
      expired++;
    }
    // Requeued entries whose expiry passed while unacked are not in the heap: they are caught
    // when they reach the head (take) — and here, if they sit at the head already.
    this.expireHead(now);
    if (expired > 0 || this.ready.count > 0) this.host.queueReady(this);
  }

  private expireHead(now: number): void {
    for (;;) {
      const head = this.ready.peek();
      if (head === undefined || head.expiresAt === 0 || head.expiresAt >= now) return;
      this.ready.shift();
      head.state = EntryState.Done;
      this.discard(head, 'expired');
    }
  }

  // ---- Length limits ------------------------------------------------------------------------------

  private wouldOverflow(extraBytes: number): boolean {
    const { maxLength, maxLengthBytes } = this.options;
    if (maxLength !== undefined && this.ready.count + 1 > maxLength) return true;
    if (maxLengthBytes !== undefined && this.ready.bytes + extraBytes > maxLengthBytes) return true;
    return false;
  }

  private dropHeadWhileOverLimit(): void {
    const { maxLength, maxLengthBytes } = this.options;
    if (maxLength === undefined && maxLengthBytes === undefined) return;
    while (
      (maxLength !== undefined && this.ready.count > maxLength) ||
      (maxLengthBytes !== undefined && this.ready.bytes > maxLengthBytes)
    ) {
      const head = this.ready.shift();
      if (head === undefined) break;
      head.state = EntryState.Done;
      this.discard(head, 'maxlen');
    }
  }

  // ---- Leaving the queue --------------------------------------------------------------------------

  /** An entry leaves without being acked: dead-letter it if a DLX is set, then forget it. */
  private discard(entry: QueueEntry, reason: DeadLetterReason): void {
    this.deadLetterOrDrop(entry.message, reason);
    if (entry.message.storeId !== 0) this.host.store.removeEntry(entry);
  }

  private deadLetterOrDrop(message: Message, reason: DeadLetterReason): void {
    if (this.options.deadLetterExchange !== undefined) this.host.deadLetter(this, message, reason);
  }

  private levelFor(message: Message): number {
    const max = this.options.maxPriority;
    if (max === 0) return 0;
    return message.priority > max ? max : message.priority;
  }

  private stopIdleTimer(): void {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = null;
  }
}

/** The expiration property: a non-negative integer of milliseconds, as a string. */
export function parseExpiration(value: string): number | undefined {
  if (!/^\d{1,15}$/.test(value)) return undefined;
  return Number(value);
}
