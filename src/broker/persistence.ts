// The broker's side of persistence: which exchange/queue/binding/message changes are written, how
// a message body is stored once however many durable queues hold it, and when publisher confirms
// may go out. Two implementations: TransientPersistence keeps nothing; DurablePersistence maps the
// model onto the LMDB store.
//
// Write buffer: entries are not handed to LMDB at once but collected and written together a moment
// later (STORE_BATCH_DELAY_MS). A message consumed and acknowledged within that moment is never
// written at all — its confirm still waits for the batch, as RabbitMQ's message store does.
//
// Atomic moves: removals (of entries, message records and delayed messages) are buffered the same
// way, and the whole buffer — new records and removals alike — is handed to LMDB in one synchronous
// step, which lmdb-js commits as one transaction. So a move of a stored message (dead-lettering,
// a delayed message released to its queues, a message moved from one queue to another) is at
// least once by construction: store the new copy (enqueue it) and remove the old record in the
// same synchronous piece of code, and both land in the same commit — a crash leaves either the old
// record or the new one, never neither. See moveEntry() for the one-call form.
//
// Reference counting: a message held by one durable queue (the common case) needs no bookkeeping —
// when its entry goes, the body goes. Only messages held by several queues get a counter, in a map
// keyed by message id, so that copies of a message loaded back from disk count against the same
// number.

import { encodeTable } from '../protocol/field-table.js';
import type { Logger } from '../log.js';
import { LmdbStore } from '../store/lmdb-store.js';
import {
  ENTRY_INLINE,
  ENTRY_REDELIVERED,
  ENTRY_TRANSIENT,
  decodeInlineMessage,
  encodeEntry,
  encodeInlineEntry,
  encodeMessage,
  type StoredEntry,
} from '../store/records.js';
import type { Binding } from './binding.js';
import type { Exchange } from './exchange/exchange.js';
import { Message } from './message.js';
import { QueueEntry } from './queue/entry.js';
import type { Queue } from './queue/queue.js';

/** Told when the writes made before it was registered are on disk, or could not be written. */
export interface CommitWaiter {
  onCommitted(): void;
  onCommitFailed(error: Error): void;
}

/**
 * Storage kept beside LMDB (a stream's segment files) whose writes confirms and durable replies
 * must also wait for: sync() makes everything written so far durable (null: nothing pending).
 */
export interface SyncSource {
  sync(): PromiseLike<unknown> | null;
  close(): Promise<void>;
}

export interface Persistence {
  /** True when anything survives a restart. */
  readonly durable: boolean;
  /**
   * Counts writes a client waits for before its reply (declare, bind, delete, purge of durable
   * things): a channel compares it around a method and holds the -ok until the commit.
   */
  readonly syncWrites: number;
  /** Message bytes handed to the store and not yet committed (flow control holds publishers on it). */
  readonly uncommittedBytes: number;
  /** A purge or similar removed stored entries: the reply should wait for the commit. */
  noteSyncWrite(): void;

  saveExchange(exchange: Exchange): void;
  deleteExchange(exchange: Exchange): void;
  saveQueue(queue: Queue): void;
  deleteQueue(queue: Queue): void;
  saveBinding(binding: Binding): void;
  deleteBinding(binding: Binding): void;

  /** Writes the entry (and the message body, once for all queues). Returns true: a commit is pending. */
  addEntry(entry: QueueEntry, transient: boolean): boolean;
  /** Forgets a stored entry; the body goes when no queue holds it. */
  removeEntry(entry: QueueEntry): void;
  /** The queue's delivered watermarks moved: on recovery entries below them come back redelivered. */
  markDelivered(queue: Queue): void;
  /** Reads up to limit stored entries of a queue from seq on, as entries of that queue. */
  loadEntries(queue: Queue, fromSeq: number, limit: number): QueueEntry[];
  /** An id under which a queue's entries can be written (ephemeral for non-durable queues). */
  ensureQueueId(queue: Queue): number;
  /**
   * Moves a stored entry's message on: `place()` enqueues it (or copies of it) wherever it goes,
   * and the entry is removed from the store in the same commit as whatever `place()` stored.
   * The entry must already be out of its queue's in-memory structures (state Done).
   */
  moveEntry(entry: QueueEntry, place: () => void): void;
  /** Stores a message held by a durable delayed exchange; returns its store id (0 = not stored). */
  saveDelayed(exchange: Exchange, message: Message, dueAt: number): number;
  deleteDelayed(exchange: Exchange, dueAt: number, storeId: number): void;

  /** Calls the waiter once everything written so far is on disk. */
  afterCommit(waiter: CommitWaiter): void;
  /** Storage beside the store that commits must also wait for (until removed). */
  addSyncSource(source: SyncSource): void;
  removeSyncSource(source: SyncSource): void;
  close(): Promise<void>;
}

/** Keeps nothing: every write is "committed" at once. Used when no data folder is wanted. */
export class TransientPersistence implements Persistence {
  readonly durable = false;
  constructor(private readonly log?: Logger) {}
  readonly syncWrites = 0;
  readonly uncommittedBytes = 0;
  noteSyncWrite(): void {}
  saveExchange(): void {}
  deleteExchange(): void {}
  saveQueue(): void {}
  deleteQueue(): void {}
  saveBinding(): void {}
  deleteBinding(): void {}
  addEntry(): boolean {
    return false;
  }
  removeEntry(): void {}
  moveEntry(_entry: QueueEntry, place: () => void): void {
    place();
  }
  markDelivered(): void {}
  loadEntries(): QueueEntry[] {
    return [];
  }
  ensureQueueId(): number {
    return 0;
  }
  saveDelayed(): number {
    return 0;
  }
  deleteDelayed(): void {}
  afterCommit(waiter: CommitWaiter): void {
    queueMicrotask(() => {
      try {
        waiter.onCommitted();
      } catch (err) {
        // A waiter's own error is logged; it never reaches the event loop.
        this.log?.error({ err }, 'a commit waiter failed');
      }
    });
  }
  private readonly sources = new Set<SyncSource>();
  addSyncSource(source: SyncSource): void {
    this.sources.add(source);
  }
  removeSyncSource(source: SyncSource): void {
    this.sources.delete(source);
  }
  async close(): Promise<void> {
    await Promise.all([...this.sources].map((s) => s.close()));
  }
}

/** How long writes are buffered before going to LMDB together. */
export const STORE_BATCH_DELAY_MS = 1;

export class DurablePersistence implements Persistence {
  readonly durable = true;
  /** reference counts of messages held by more than one queue */
  private readonly sharedRefs = new Map<number, number>();
  /** queues whose delivered watermarks changed this turn */
  private readonly watermarks = new Set<Queue>();
  private waiters: CommitWaiter[] = [];
  private readonly syncSources = new Set<SyncSource>();
  /** entries waiting to be written with the next batch */
  private pending: QueueEntry[] = [];
  /** removals waiting for the next batch: (queue store id, seq) pairs of written entries */
  private removedEntries: number[] = [];
  /** message records (shared by several queues) to remove with the next batch */
  private removedMessages: number[] = [];
  /** delayed messages to remove with the next batch: (exchange store id, due, message id) */
  private removedDelayed: number[] = [];
  private flushScheduled = false;
  /** set when a write batch failed; cleared by the next successful one */
  lastError: Error | null = null;
  syncWrites = 0;
  /** message bytes added since the last batch, and bytes of batches not yet committed (flow control) */
  private pendingBytes = 0;
  private inflightBytes = 0;

  get uncommittedBytes(): number {
    return this.pendingBytes + this.inflightBytes;
  }

  noteSyncWrite(): void {
    this.syncWrites++;
  }

  /** told once per failed write batch (the broker blocks publishers) */
  onFailure: (error: Error) => void = () => {};

  constructor(
    readonly store: LmdbStore,
    private readonly log: Logger,
  ) {
    store.onWriteError = (error) => {
      this.lastError = error;
      this.onFailure(error);
    };
  }

  // ---- Topology -----------------------------------------------------------------------------------

  saveExchange(ex: Exchange): void {
    this.syncWrites++;
    if (ex.storeId === 0) ex.storeId = this.store.allocateEntityId();
    this.store.putExchange({
      id: ex.storeId,
      vhost: ex.vhost,
      name: ex.name,
      type: ex.type,
      autoDelete: ex.autoDelete,
      internal: ex.internal,
      args: encodeTable(ex.args),
    });
  }

  deleteExchange(ex: Exchange): void {
    this.syncWrites++;
    if (ex.storeId !== 0) this.store.deleteExchange(ex.storeId);
  }

  saveQueue(q: Queue): void {
    this.syncWrites++;
    this.ensureQueueId(q);
    this.store.putQueue({ id: q.storeId, vhost: q.host.name, name: q.name, autoDelete: q.autoDelete, args: encodeTable(q.args) });
  }

  deleteQueue(q: Queue): void {
    this.syncWrites++;
    if (q.storeId !== 0) this.store.deleteQueue(q.storeId);
  }

  saveBinding(b: Binding): void {
    this.syncWrites++;
    if (b.storeId === 0) b.storeId = this.store.allocateEntityId();
    this.store.putBinding({
      id: b.storeId,
      vhost: b.source.vhost,
      source: b.source.name,
      destinationKind: b.destination.kind,
      destination: b.destination.name,
      routingKey: b.routingKey,
      args: encodeTable(b.args),
    });
  }

  deleteBinding(b: Binding): void {
    this.syncWrites++;
    if (b.storeId !== 0) this.store.deleteBinding(b.storeId);
  }

  ensureQueueId(q: Queue): number {
    if (q.storeId === 0) q.storeId = this.store.allocateEntityId();
    return q.storeId;
  }

  saveDelayed(ex: Exchange, message: Message, dueAt: number): number {
    const id = this.store.allocateMessageId();
    this.store.putDelayed(
      ex.storeId,
      dueAt,
      id,
      encodeMessage(message.publishedAt, message.exchange, message.routingKey, message.rawProperties, message.body),
    );
    return id;
  }

  deleteDelayed(ex: Exchange, dueAt: number, storeId: number): void {
    this.removedDelayed.push(ex.storeId, dueAt, storeId);
    this.scheduleFlush();
  }

  // ---- Messages -----------------------------------------------------------------------------------

  addEntry(entry: QueueEntry, transient: boolean): boolean {
    const message = entry.message;
    this.ensureQueueId(entry.queue);
    if (message.storeId === 0) {
      message.storeId = this.store.allocateMessageId();
    } else {
      // A second queue holds the same body: count references from now on.
      this.sharedRefs.set(message.storeId, (this.sharedRefs.get(message.storeId) ?? 1) + 1);
    }
    entry.stored = true;
    entry.transient = transient;
    this.pendingBytes += message.bodySize;
    this.pending.push(entry);
    this.scheduleFlush();
    return true;
  }

  removeEntry(entry: QueueEntry): void {
    if (!entry.stored) return;
    entry.stored = false;
    const message = entry.message;
    if (entry.written) {
      this.removedEntries.push(entry.queue.storeId, entry.seq);
      this.scheduleFlush();
    }
    const refs = this.sharedRefs.get(message.storeId);
    if (refs === undefined || refs <= 1) {
      if (refs !== undefined) this.sharedRefs.delete(message.storeId);
      if (message.storeWritten) {
        this.removedMessages.push(message.storeId);
        this.scheduleFlush();
      }
    } else this.sharedRefs.set(message.storeId, refs - 1);
  }

  moveEntry(entry: QueueEntry, place: () => void): void {
    // Both halves are buffered until the next flush, which hands them to LMDB together.
    place();
    this.removeEntry(entry);
  }

  /** Hands the buffered removals to LMDB (in the same synchronous step as the buffered puts). */
  private writeRemovals(): void {
    const entries = this.removedEntries;
    if (entries.length > 0) {
      this.removedEntries = [];
      for (let i = 0; i < entries.length; i += 2) this.store.deleteEntry(entries[i]!, entries[i + 1]!);
    }
    const messages = this.removedMessages;
    if (messages.length > 0) {
      this.removedMessages = [];
      for (let i = 0; i < messages.length; i++) this.store.deleteMessage(messages[i]!);
    }
    const delayed = this.removedDelayed;
    if (delayed.length > 0) {
      this.removedDelayed = [];
      for (let i = 0; i < delayed.length; i += 3) this.store.deleteDelayed(delayed[i]!, delayed[i + 1]!, delayed[i + 2]!);
    }
  }

  /** Hands the buffered entries (and their bodies, once) to LMDB; skips those already gone. */
  private writePending(): void {
    const pending = this.pending;
    if (pending.length === 0) return;
    this.pending = [];
    for (let i = 0; i < pending.length; i++) {
      const entry = pending[i]!;
      if (!entry.stored || entry.written) continue;
      const message = entry.message;
      entry.written = true;
      const flags = (entry.redelivered ? ENTRY_REDELIVERED : 0) | (entry.transient ? ENTRY_TRANSIENT : 0);
      if (!this.sharedRefs.has(message.storeId)) {
        // Held by this queue alone: one record holds entry and message.
        this.store.putEntry(
          entry.queue.storeId,
          entry.seq,
          encodeInlineEntry(
            message.storeId,
            entry.expiresAt,
            flags,
            message.publishedAt,
            message.exchange,
            message.routingKey,
            message.rawProperties,
            message.body,
          ),
        );
        continue;
      }
      if (!message.storeWritten) {
        message.storeWritten = true;
        this.store.putMessage(
          message.storeId,
          encodeMessage(message.publishedAt, message.exchange, message.routingKey, message.rawProperties, message.body),
        );
      }
      this.store.putEntry(entry.queue.storeId, entry.seq, encodeEntry(message.storeId, entry.expiresAt, flags, message.bodySize));
    }
  }

  markDelivered(queue: Queue): void {
    this.watermarks.add(queue);
    this.scheduleFlush();
  }

  loadEntries(queue: Queue, fromSeq: number, limit: number): QueueEntry[] {
    if (queue.storeId === 0) return [];
    const out: QueueEntry[] = [];
    for (const e of this.store.readEntries(queue.storeId, fromSeq, limit)) {
      const entry = this.entryFromStore(queue, e);
      if (entry !== null) out.push(entry);
      else this.store.deleteEntry(queue.storeId, e.seq);
    }
    return out;
  }

  /** Rebuilds an entry from its record, or null when its message is missing. */
  entryFromStore(queue: Queue, e: StoredEntry): QueueEntry | null {
    const stored = (e.flags & ENTRY_INLINE) !== 0 ? decodeInlineMessage(e.value) : this.store.getMessage(e.messageId);
    if (stored === undefined) {
      this.log.warn({ queue: queue.name, seq: e.seq, messageId: e.messageId }, 'stored entry without its message; dropped');
      return null;
    }
    const message = new Message(stored.exchange, stored.routingKey, stored.properties, stored.body, stored.publishedAt);
    message.storeId = e.messageId;
    // An inline message has no record of its own to delete.
    message.storeWritten = (e.flags & ENTRY_INLINE) === 0;
    const level = queue.levelFor(message);
    const entry = new QueueEntry(queue, message, e.seq, e.expiresAt, level);
    entry.stored = true;
    entry.written = true;
    entry.redelivered = (e.flags & ENTRY_REDELIVERED) !== 0 || e.seq <= queue.deliveredWatermarks[level]!;
    return entry;
  }

  /** Recovery: a message is held by this many entries. */
  setRefs(messageId: number, refs: number): void {
    if (refs > 1) this.sharedRefs.set(messageId, refs);
  }

  // ---- Commits ------------------------------------------------------------------------------------

  afterCommit(waiter: CommitWaiter): void {
    this.waiters.push(waiter);
    this.scheduleFlush();
  }

  addSyncSource(source: SyncSource): void {
    this.syncSources.add(source);
  }

  removeSyncSource(source: SyncSource): void {
    this.syncSources.delete(source);
  }

  /** LMDB's commit, and the sync of every other source with pending writes. */
  private whenAllFlushed(): PromiseLike<unknown> {
    const flushed = this.store.whenFlushed();
    if (this.syncSources.size === 0) return flushed;
    const all: PromiseLike<unknown>[] = [flushed];
    for (const source of this.syncSources) {
      const synced = source.sync();
      if (synced !== null) all.push(synced);
    }
    return all.length === 1 ? flushed : Promise.all(all);
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    if (STORE_BATCH_DELAY_MS > 0) setTimeout(this.flushTurn, STORE_BATCH_DELAY_MS);
    else setImmediate(this.flushTurn);
  }

  /**
   * Writes the buffered batch — new entries, removals, changed watermarks — in one synchronous step
   * (so LMDB commits it as one transaction), then waits for it to be on disk.
   */
  private readonly flushTurn = (): void => {
    this.flushScheduled = false;
    try {
      this.writePending();
      this.writeRemovals();
      for (const queue of this.watermarks) {
        if (!queue.deleted && queue.storeId !== 0) this.store.putDelivered(queue.storeId, queue.deliveredWatermarks);
      }
    } catch (err) {
      // Encoding or queueing a write failed: treat it like a failed batch (nack, block).
      const error = err instanceof Error ? err : new Error(String(err));
      this.log.error({ err: error }, 'preparing a storage batch failed');
      this.lastError = error;
      this.onFailure(error);
    }
    this.watermarks.clear();
    this.trackUncommitted();
    if (this.waiters.length === 0) return;
    const waiters = this.waiters;
    this.waiters = [];
    const errorBefore = this.lastError;
    this.whenAllFlushed().then(
      () => {
        // A failed batch rejects its own promise; `flushed` may still resolve for later ones.
        const failed = this.lastError !== null && this.lastError !== errorBefore ? this.lastError : null;
        this.notify(waiters, failed);
      },
      (err: unknown) => {
        const error = err instanceof Error ? err : new Error(String(err));
        this.lastError = error;
        try {
          this.onFailure(error);
        } catch (failureErr) {
          this.log.error({ err: failureErr }, 'reacting to a storage failure failed');
        }
        this.notify(waiters, error);
      },
    );
  };

  /** Counts this batch's bytes as in flight until LMDB has committed it (one promise per batch). */
  private trackUncommitted(): void {
    const bytes = this.pendingBytes;
    if (bytes === 0) return;
    this.pendingBytes = 0;
    this.inflightBytes += bytes;
    const done = (): void => {
      this.inflightBytes -= bytes;
    };
    this.store.whenFlushed().then(done, done);
  }

  /** Tells every waiter; one that throws is logged and cannot keep the others from hearing. */
  private notify(waiters: CommitWaiter[], failed: Error | null): void {
    for (let i = 0; i < waiters.length; i++) {
      const w = waiters[i]!;
      try {
        if (failed) w.onCommitFailed(failed);
        else w.onCommitted();
      } catch (err) {
        this.log.error({ err }, 'a commit waiter failed; the others are still told');
      }
    }
  }

  async close(): Promise<void> {
    this.flushTurn();
    await Promise.all([...this.syncSources].map((s) => s.close()));
    await this.store.close();
  }
}
