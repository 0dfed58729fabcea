// The broker's side of persistence: which exchange/queue/binding/message changes are written, how
// queue entries are stored, counted and read back, and when publisher confirms may go out. Two
// implementations: TransientPersistence keeps nothing; DurablePersistence maps the model onto the
// LMDB store.
//
// Write buffer: entries are not handed to LMDB at once but collected and written together a moment
// later (STORE_BATCH_DELAY_MS). A message consumed and acknowledged within that moment is never
// written at all — its confirm still waits for the batch, as RabbitMQ's message store does.
//
// Atomic moves: removals (of entries, message records and delayed messages) are buffered the same
// way, and the whole buffer — new records, removals, counts, reference counts — is handed to LMDB
// in one synchronous step, which lmdb-js commits as one transaction. So a move of a stored message
// (dead-lettering, a delayed message released to its queues, a message moved from one queue to
// another) is at least once by construction: store the new copy (enqueue it) and remove the old
// record in the same synchronous piece of code, and both land in the same commit — a crash leaves
// either the old record or the new one, never neither. moveEntry() is the one-call form.
//
// Counts: for every durable queue the store keeps, per priority level, how many persistent entries
// it holds and their bytes, updated in the same commit as the entries. A restart reads those
// instead of the entries: queues come back with their counts at once and load messages lazily.
//
// Purge and delete never read bodies: a queue's paged-out entries are a key range, recorded as
// garbage (in the same commit as the counts that no longer include it) and deleted a chunk per
// batch, keys only.
//
// Shared bodies: a message body of SHARED_BODY_MIN bytes or more held by several durable queues
// is stored once with a reference count; everything else is stored inline in each entry.

import { encodeTable } from '../protocol/field-table.js';
import type { Logger } from '../log.js';
import { SPILL_BIT } from '../store/keys.js';
import { LmdbStore, type SharedRef } from '../store/lmdb-store.js';
import {
  ENTRY_INLINE,
  ENTRY_REDELIVERED,
  ENTRY_TRANSIENT,
  GARBAGE_SPILL_ONLY,
  GARBAGE_WHOLE_QUEUE,
  SHARED_BODY_MIN,
  decodeInlineMessage,
  encodeEntry,
  encodeInlineEntry,
  encodeMessage,
  type GarbageRange,
  type LevelCounts,
  type StoredEntry,
} from '../store/records.js';
import type { Binding } from './binding.js';
import type { Exchange } from './exchange/exchange.js';
import { Message } from './message.js';
import { EntryState, QueueEntry } from './queue/entry.js';
import type { PlainHistogram } from './stats.js';
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

/** A held delayed message read back from the store. */
export interface StoredDelayed {
  message: Message;
  dueAt: number;
  storeId: number;
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

  /**
   * Writes the entry (and its message). `spill`: written only to save memory (a transient message,
   * or any message of a non-durable queue) — gone after a restart. Returns true: a commit is pending.
   */
  addEntry(entry: QueueEntry, spill: boolean): boolean;
  /** Forgets a stored entry; a shared body goes when no entry holds it. */
  removeEntry(entry: QueueEntry): void;
  /**
   * Moves a stored entry's message on: `place()` enqueues it (or copies of it) wherever it goes,
   * and the entry is removed from the store in the same commit as whatever `place()` stored.
   * The entry must already be out of its queue's in-memory structures (state Done).
   */
  moveEntry(entry: QueueEntry, place: () => void): void;
  /** The queue's delivered watermarks moved: on recovery entries below them come back redelivered. */
  markDelivered(queue: Queue): void;
  /**
   * Reads paged-out entries of one queue level back, from seq fromSeq on, in order: at most limit
   * entries or maxBytes of bodies (at least one). Only committed entries are visible.
   */
  loadEntries(queue: Queue, level: number, fromSeq: number, limit: number, maxBytes: number): QueueEntry[];
  /**
   * Drops a level's paged-out entries [fromSeq, toSeq) without reading them (purge): `persistent`
   * of them (count and bytes) were persistent. Done in the background, atomically with the counts.
   */
  dropPaged(queue: Queue, level: number, fromSeq: number, toSeq: number, persistentCount: number, persistentBytes: number): void;
  /** An id under which a queue's entries can be written (ephemeral for non-durable queues). */
  ensureQueueId(queue: Queue): number;
  /** The queue is deleted: whatever the store holds of its entries goes, in the background. */
  forgetQueue(queue: Queue): void;

  /** Stores a message held by a delayed exchange; returns its store id (0 = not stored). */
  saveDelayed(exchange: Exchange, message: Message, dueAt: number): number;
  deleteDelayed(exchange: Exchange, dueAt: number, storeId: number): void;
  /** Held messages of an exchange from (dueAt, storeId) on, in due order (paging back in). */
  loadDelayed(exchange: Exchange, fromDueAt: number, fromStoreId: number, limit: number, maxBytes: number): StoredDelayed[];
  /** The delayed exchange is deleted: every message the store holds for it goes, in the background. */
  forgetDelayed(exchange: Exchange): void;
  /** A delayed exchange found `missing` fewer stored messages than counted: its stored count drops by that. */
  delayedMissing(exchange: Exchange, missing: number): void;

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
  readonly syncWrites = 0;
  readonly uncommittedBytes = 0;
  constructor(private readonly log?: Logger) {}
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
  dropPaged(): void {}
  ensureQueueId(): number {
    return 0;
  }
  forgetQueue(): void {}
  forgetDelayed(): void {}
  delayedMissing(): void {}
  saveDelayed(): number {
    return 0;
  }
  deleteDelayed(): void {}
  loadDelayed(): StoredDelayed[] {
    return [];
  }
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
/**
 * How long a batch that nobody waits for — only removals of acknowledged entries and delivery
 * watermarks — may be held back so that it joins the next batch someone waits for (lazy batches,
 * see flushTurn), and how many removals it may collect meanwhile.
 */
export const LAZY_BATCH_DELAY_MS = 10;
export const LAZY_BATCH_MAX_REMOVALS = 20_000;
/** Write batches being committed at once; a further one waits and grows (group commit, see flushTurn). */
const MAX_FLUSHES_IN_FLIGHT = 1;
/** Garbage keys deleted per batch (purge/delete of deep queues goes on in the background). */
const SWEEP_CHUNK = 5000;
/** Reference counts kept in memory before the committed ones are forgotten (they are on disk). */
const REF_CACHE_MAX = 100_000;

/** A delayed message waiting to be written. */
interface PendingDelayed {
  exchangeId: number;
  dueAt: number;
  id: number;
  message: Message;
  counted: boolean;
}

/** Where a garbage sweep has got to. */
interface Sweep {
  range: GarbageRange;
  /** a record in `garbage` to delete when done (false: found at start-up, nothing recorded) */
  recorded: boolean;
  spill: boolean;
  level: number;
  seq: number;
}

export class DurablePersistence implements Persistence {
  readonly durable = true;
  /** reference counts of shared message records; authoritative for the ids present */
  private readonly refCache = new Map<number, number>();
  private readonly refsDirty = new Set<number>();
  /** queues whose delivered watermarks changed this turn */
  private readonly watermarks = new Set<Queue>();
  /** the queue last added to watermarks (see markDelivered) */
  private lastWatermarked: Queue | null = null;
  /** queues and exchanges whose stored counts changed this turn */
  private readonly countsDirty = new Set<Queue | Exchange>();
  /** the queue last added to countsDirty (see markCountsDirty) */
  private lastCountsDirty: Queue | null = null;
  /** counts found below zero and written as 0 (a bug if ever non-zero; tests read it) */
  countRepairs = 0;
  /** queues and exchanges whose bad count was logged (once each) */
  private readonly countsReported = new WeakSet<Queue | Exchange>();
  private waiters: CommitWaiter[] = [];
  private readonly syncSources = new Set<SyncSource>();
  /** entries waiting to be written with the next batch */
  private pending: QueueEntry[] = [];
  /** written entries to remove with the next batch */
  private removed: QueueEntry[] = [];
  /** shared message records to remove with the next batch */
  private removedMessages: number[] = [];
  private pendingDelayed: PendingDelayed[] = [];
  /** delayed messages to remove with the next batch: (exchange store id, due, message id) */
  private removedDelayed: number[] = [];
  /** garbage ranges to record with the next batch */
  private newGarbage: GarbageRange[] = [];
  /** garbage being swept, a chunk per batch */
  private readonly sweeps: Sweep[] = [];
  /** delayed-exchange prefixes being swept */
  private readonly delayedSweeps: number[] = [];
  private flushScheduled = false;
  /** close() has begun: it writes the last batch itself */
  private closing = false;
  /** armed while a lazy batch waits to be joined by an urgent one */
  private lazyTimer: NodeJS.Timeout | null = null;
  /** LAZY_BATCH_DELAY_MS and LAZY_BATCH_MAX_REMOVALS (tests change them) */
  lazyBatchDelayMs = LAZY_BATCH_DELAY_MS;
  lazyBatchMaxRemovals = LAZY_BATCH_MAX_REMOVALS;
  private flushesInFlight = 0;
  /** batches not yet committed to the local disk (group commit, see flushTurn) */
  private localCommitsInFlight = 0;
  /** a batch fell due while MAX_FLUSHES_IN_FLIGHT were being committed: it goes when one is done */
  private flushWaiting = false;
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

  /** where commit time and batch size are counted (the broker's stats), once the broker exists */
  commitStats: { readonly storeCommitSeconds: PlainHistogram; readonly storeCommitEntries: PlainHistogram } | null = null;
  /** entries handed to LMDB since the last commit was observed */
  private entriesInBatch = 0;

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

  /** A queue was deleted: its entries (whatever is left of them) are swept in the background. */
  forgetQueue(q: Queue): void {
    if (q.storeId === 0) return;
    this.sweep({ queueId: q.storeId, level: 255, fromSeq: 0, toSeq: Number.MAX_SAFE_INTEGER, flags: GARBAGE_WHOLE_QUEUE }, false);
  }

  // ---- Entries ------------------------------------------------------------------------------------

  addEntry(entry: QueueEntry, spill: boolean): boolean {
    const message = entry.message;
    this.ensureQueueId(entry.queue);
    if (message.storeId === 0) message.storeId = this.store.allocateMessageId();
    if (!spill) message.storeRefs++;
    entry.stored = true;
    entry.transient = spill;
    this.pendingBytes += message.bodySize;
    this.pending.push(entry);
    this.scheduleFlush();
    return true;
  }

  removeEntry(entry: QueueEntry): void {
    if (!entry.stored) return;
    entry.stored = false;
    // An entry still in the write buffer is simply skipped there; a deleted queue's are swept whole.
    if (entry.written && !entry.queue.deleted) {
      this.removed.push(entry);
      if (this.removed.length < this.lazyBatchMaxRemovals) this.scheduleLazyFlush();
      else this.scheduleFlush();
    }
  }

  moveEntry(entry: QueueEntry, place: () => void): void {
    // Both halves are buffered until the next flush, which hands them to LMDB together.
    place();
    this.removeEntry(entry);
  }

  markDelivered(queue: Queue): void {
    // Called per delivery of a stored message: a Set lookup only when the queue changes.
    if (queue !== this.lastWatermarked) {
      this.lastWatermarked = queue;
      this.watermarks.add(queue);
    }
    this.scheduleLazyFlush();
  }

  loadEntries(queue: Queue, level: number, fromSeq: number, limit: number, maxBytes: number): QueueEntry[] {
    if (queue.storeId === 0) return [];
    const store = this.store;
    const main = store.readEntries(queue.storeId, level, fromSeq, limit, maxBytes);
    const spilled = queue.hasSpilled ? store.readEntries((queue.storeId | SPILL_BIT) >>> 0, level, fromSeq, limit, maxBytes) : [];
    const merged = spilled.length === 0 ? main : mergeBySeq(main, spilled, limit, maxBytes);
    const out: QueueEntry[] = [];
    for (const e of merged) {
      const entry = this.entryFromStore(queue, e, (e.queueId & SPILL_BIT) !== 0);
      if (entry !== null) out.push(entry);
    }
    return out;
  }

  /** Rebuilds an entry from its record, or null when its shared message is missing. */
  private entryFromStore(queue: Queue, e: StoredEntry, spilled: boolean): QueueEntry | null {
    const inline = (e.flags & ENTRY_INLINE) !== 0;
    const stored = inline ? decodeInlineMessage(e.value) : this.store.getMessage(e.messageId);
    if (stored === undefined) {
      this.log.warn({ queue: queue.name, seq: e.seq, messageId: e.messageId }, 'stored entry without its message; dropped');
      this.store.deleteEntry(e.queueId, e.level, e.seq);
      this.store.deleteShared(e.queueId, e.level, e.seq);
      const counts = queue.storedCounts[e.level];
      if (!spilled && counts !== undefined) {
        counts.count--;
        counts.bytes -= e.bodySize;
        this.countsDirty.add(queue);
        this.scheduleFlush();
      }
      return null;
    }
    const message = new Message(stored.exchange, stored.routingKey, stored.properties, stored.body, stored.publishedAt);
    message.storeId = e.messageId;
    message.storeWritten = !inline;
    // A shared body is a private copy; an inline one a view into the read's slab, which the memory
    // gauge copies out if the message stays (Queue.entryLoaded), as it does for socket chunks.
    message.compacted = !inline;
    const entry = new QueueEntry(queue, message, e.seq, e.expiresAt, e.level);
    entry.stored = true;
    entry.written = true;
    entry.transient = spilled;
    entry.shared = !inline;
    entry.redelivered = (e.flags & ENTRY_REDELIVERED) !== 0 || e.seq <= queue.deliveredWatermarks[e.level]!;
    return entry;
  }

  dropPaged(queue: Queue, level: number, fromSeq: number, toSeq: number, persistentCount: number, persistentBytes: number): void {
    if (queue.storeId === 0 || fromSeq >= toSeq) return;
    const counts = queue.storedCounts[level];
    if (counts !== undefined) {
      counts.count -= persistentCount;
      counts.bytes -= persistentBytes;
      counts.headSeq = toSeq;
      this.countsDirty.add(queue);
    }
    this.dropBuffered(queue, level, fromSeq, toSeq);
    const range: GarbageRange = { queueId: queue.storeId, level, fromSeq, toSeq, flags: 0 };
    this.newGarbage.push(range);
    this.sweep(range, true);
  }

  /**
   * Paged entries of a dropped range that are still in the write buffer are never written. The
   * sweep sees only committed records: one written in the same batch as the sweep's chunk would
   * be missed and stay on disk for good (its queue lives on, so recovery never sweeps it). Only
   * paged entries qualify: the purge has already taken the ready ones (state Done, unstored), and
   * unacked ones stay. A walk of the buffer per purge, never per message.
   */
  private dropBuffered(queue: Queue, level: number, fromSeq: number, toSeq: number): void {
    const pending = this.pending;
    for (let i = 0; i < pending.length; i++) {
      const entry = pending[i]!;
      if (entry.queue !== queue || entry.level !== level || entry.state !== EntryState.Ready || !entry.stored) continue;
      if (entry.seq < fromSeq || entry.seq >= toSeq) continue;
      entry.stored = false;
      entry.state = EntryState.Done;
    }
  }

  /** Queues a garbage range for sweeping. */
  sweep(range: GarbageRange, recorded: boolean): void {
    const spillOnly = (range.flags & GARBAGE_SPILL_ONLY) !== 0;
    this.sweeps.push({ range, recorded, spill: spillOnly, level: range.flags & GARBAGE_WHOLE_QUEUE ? 0 : range.level, seq: range.fromSeq });
    this.scheduleFlush();
  }

  /** Garbage ranges queued and not yet swept (tests, metrics). */
  get pendingSweeps(): number {
    return this.sweeps.length + this.delayedSweeps.length;
  }

  // ---- Delayed messages ---------------------------------------------------------------------------

  /** Store id prefix of a delayed exchange: durable ones keep everything, others only what pages. */
  private delayedPrefix(ex: Exchange): number {
    if (ex.storeId === 0) ex.storeId = this.store.allocateEntityId();
    return ex.durable ? ex.storeId : (ex.storeId | SPILL_BIT) >>> 0;
  }

  saveDelayed(ex: Exchange, message: Message, dueAt: number): number {
    const id = this.store.allocateMessageId();
    const counted = ex.durable;
    this.pendingDelayed.push({ exchangeId: this.delayedPrefix(ex), dueAt, id, message, counted });
    if (counted) {
      ex.storedCounts.count++;
      this.countsDirty.add(ex);
    }
    this.scheduleFlush();
    return id;
  }

  deleteDelayed(ex: Exchange, dueAt: number, storeId: number): void {
    const prefix = this.delayedPrefix(ex);
    // Not written yet: drop it from the buffer instead.
    const pending = this.pendingDelayed;
    for (let i = pending.length - 1; i >= 0; i--) {
      if (pending[i]!.id === storeId && pending[i]!.exchangeId === prefix) {
        pending[i]!.message = EMPTY_MESSAGE;
        pending[i]!.id = 0;
        break;
      }
    }
    this.removedDelayed.push(prefix, dueAt, storeId);
    if (ex.durable) {
      const c = ex.storedCounts;
      c.count--;
      this.countsDirty.add(ex);
    }
    this.scheduleFlush();
  }

  loadDelayed(ex: Exchange, fromDueAt: number, fromStoreId: number, limit: number, maxBytes: number): StoredDelayed[] {
    if (ex.storeId === 0) return [];
    const out: StoredDelayed[] = [];
    for (const d of this.store.readDelayed(this.delayedPrefix(ex), fromDueAt, fromStoreId, limit, maxBytes)) {
      const m = d.message;
      const message = new Message(m.exchange, m.routingKey, m.properties, m.body, m.publishedAt);
      message.compacted = true;
      out.push({ message, dueAt: d.dueAt, storeId: d.messageId });
    }
    return out;
  }

  forgetDelayed(ex: Exchange): void {
    if (ex.storeId === 0) return;
    const spill = (ex.storeId | SPILL_BIT) >>> 0;
    // Held messages still in the write buffer are never written: the sweep sees committed records
    // only, and would miss one written in the same batch as its chunk (see dropBuffered).
    for (const d of this.pendingDelayed) {
      if (d.exchangeId !== ex.storeId && d.exchangeId !== spill) continue;
      d.message = EMPTY_MESSAGE;
      d.id = 0;
    }
    this.sweepDelayed(ex.storeId);
    this.sweepDelayed(spill);
  }

  delayedMissing(ex: Exchange, missing: number): void {
    // Only a durable exchange counts what it stores (saveDelayed).
    if (!ex.durable || missing <= 0) return;
    const c = ex.storedCounts;
    c.count = Math.max(0, c.count - missing);
    this.countsDirty.add(ex);
    this.scheduleFlush();
  }

  /** An exchange's stored delayed messages are garbage (exchange deleted, or found at start-up). */
  sweepDelayed(prefix: number): void {
    this.delayedSweeps.push(prefix);
    this.scheduleFlush();
  }

  // ---- Shared bodies ------------------------------------------------------------------------------

  private refOf(messageId: number): number {
    const cached = this.refCache.get(messageId);
    if (cached !== undefined) return cached;
    const n = this.store.getRefs(messageId);
    this.refCache.set(messageId, n);
    return n;
  }

  private addRef(messageId: number): void {
    this.refCache.set(messageId, this.refOf(messageId) + 1);
    this.refsDirty.add(messageId);
  }

  private dropRef(messageId: number): void {
    const n = this.refOf(messageId) - 1;
    this.refCache.set(messageId, n);
    this.refsDirty.add(messageId);
    if (n <= 0) this.removedMessages.push(messageId);
  }

  // ---- The batch ----------------------------------------------------------------------------------

  /** Hands the buffered entries (and their bodies) to LMDB; skips those already gone. */
  private writePending(): void {
    const pending = this.pending;
    if (pending.length === 0) return;
    this.pending = [];
    for (let i = 0; i < pending.length; i++) {
      const entry = pending[i]!;
      if (!entry.stored || entry.written) continue;
      const queue = entry.queue;
      if (queue.deleted) continue;
      const message = entry.message;
      entry.written = true;
      this.entriesInBatch++;
      const spill = entry.transient;
      const queueId = spill ? (queue.storeId | SPILL_BIT) >>> 0 : queue.storeId;
      const flags = (entry.redelivered ? ENTRY_REDELIVERED : 0) | (spill ? ENTRY_TRANSIENT : 0);
      if (!spill) {
        const c = queue.storedCounts[entry.level]!;
        c.count++;
        c.bytes += message.bodySize;
        this.markCountsDirty(queue);
      }
      if (!spill && (message.storeWritten || (message.storeRefs > 1 && message.bodySize >= SHARED_BODY_MIN))) {
        // A large body held by several durable queues: stored once, referenced from each entry.
        if (!message.storeWritten) {
          message.storeWritten = true;
          this.store.putMessage(
            message.storeId,
            encodeMessage(message.publishedAt, message.exchange, message.routingKey, message.rawProperties, message.body, 0, message.routingBytes),
          );
        }
        entry.shared = true;
        this.addRef(message.storeId);
        this.store.putEntry(queueId, entry.level, entry.seq, encodeEntry(message.storeId, entry.expiresAt, flags, message.bodySize));
        this.store.putShared(queueId, entry.level, entry.seq, message.storeId);
        continue;
      }
      this.store.putEntry(
        queueId,
        entry.level,
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
          message.routingBytes,
        ),
      );
    }
  }

  /** Hands the buffered removals to LMDB (in the same synchronous step as the buffered puts). */
  private writeRemovals(): void {
    const removed = this.removed;
    if (removed.length > 0) {
      this.removed = [];
      for (let i = 0; i < removed.length; i++) {
        const entry = removed[i]!;
        const queue = entry.queue;
        if (queue.deleted) continue;
        const spill = entry.transient;
        const queueId = spill ? (queue.storeId | SPILL_BIT) >>> 0 : queue.storeId;
        this.store.deleteEntry(queueId, entry.level, entry.seq);
        if (!spill) {
          const c = queue.storedCounts[entry.level]!;
          c.count--;
          c.bytes -= entry.message.bodySize;
          this.markCountsDirty(queue);
        }
        if (entry.shared) {
          this.store.deleteShared(queueId, entry.level, entry.seq);
          this.dropRef(entry.message.storeId);
        }
      }
    }
    const delayed = this.removedDelayed;
    if (delayed.length > 0) {
      this.removedDelayed = [];
      for (let i = 0; i < delayed.length; i += 3) this.store.deleteDelayed(delayed[i]!, delayed[i + 1]!, delayed[i + 2]!);
    }
  }

  private writeDelayed(): void {
    const pending = this.pendingDelayed;
    if (pending.length === 0) return;
    this.pendingDelayed = [];
    for (const d of pending) {
      if (d.id === 0) continue; // released or dropped before it was written
      const m = d.message;
      this.store.putDelayed(d.exchangeId, d.dueAt, d.id, encodeMessage(m.publishedAt, m.exchange, m.routingKey, m.rawProperties, m.body, 0, m.routingBytes));
    }
  }

  /** One chunk of garbage sweeping; shared bodies found lose a reference. */
  private sweepStep(): void {
    let budget = SWEEP_CHUNK;
    while (budget > 0 && this.sweeps.length > 0) {
      const s = this.sweeps[0]!;
      const r = s.range;
      const whole = (r.flags & GARBAGE_WHOLE_QUEUE) !== 0;
      const prefix = s.spill ? (r.queueId | SPILL_BIT) >>> 0 : r.queueId;
      const toLevel = whole ? 255 : r.level;
      const step = this.store.deleteRangeChunk(prefix, s.level, toLevel, s.seq, r.toSeq, budget);
      budget -= step.deleted;
      for (const ref of step.shared) this.dropSharedRef(ref);
      if (step.next !== null) {
        s.level = step.next.level;
        s.seq = step.next.seq;
        continue; // budget used up mid-range
      }
      if (!s.spill) {
        s.spill = true;
        s.level = whole ? 0 : r.level;
        s.seq = r.fromSeq;
        continue;
      }
      this.sweeps.shift();
      if (s.recorded) this.store.deleteGarbage(r);
    }
    while (budget > 0 && this.delayedSweeps.length > 0) {
      const deleted = this.store.deleteDelayedRange(this.delayedSweeps[0]!, budget);
      budget -= deleted;
      if (budget > 0) this.delayedSweeps.shift();
    }
  }

  private dropSharedRef(ref: SharedRef): void {
    if ((ref.queueId & SPILL_BIT) === 0) this.dropRef(ref.messageId);
  }

  private writeRefs(): void {
    if (this.refsDirty.size === 0) return;
    for (const id of this.refsDirty) {
      const n = this.refCache.get(id) ?? 0;
      if (n > 0) this.store.putRefs(id, n);
      else {
        this.store.deleteRefs(id);
        this.refCache.delete(id);
      }
    }
    this.refsDirty.clear();
    const messages = this.removedMessages;
    if (messages.length > 0) {
      this.removedMessages = [];
      for (let i = 0; i < messages.length; i++) this.store.deleteMessage(messages[i]!);
    }
  }

  /**
   * countsDirty.add() for the batch loops: consecutive entries are mostly of one queue, and a Set
   * lookup per stored and removed entry showed in profiles.
   */
  private markCountsDirty(queue: Queue): void {
    if (queue === this.lastCountsDirty) return;
    this.lastCountsDirty = queue;
    this.countsDirty.add(queue);
  }

  private writeCounts(): void {
    for (const owner of this.countsDirty) {
      if (owner.deleted || owner.storeId === 0 || !owner.durable) continue;
      const levels = owner.kind === 'queue' ? owner.storedCounts : [owner.storedCounts];
      if (!countsValid(levels)) this.repairCounts(owner, levels);
      this.store.putCounts(owner.storeId, levels);
    }
    this.countsDirty.clear();
    this.lastCountsDirty = null;
  }

  /**
   * A stored count went below zero (or is not a number): a bookkeeping bug, never a reason to fail
   * the batch — that would nack every other message in it and block publishers. Written as 0 and
   * said loudly, once per queue or exchange (it could otherwise repeat per message).
   */
  private repairCounts(owner: Queue | Exchange, levels: LevelCounts[]): void {
    const before = levels.map((l) => ({ count: l.count, bytes: l.bytes }));
    for (const l of levels) {
      if (!(l.count >= 0)) l.count = 0;
      if (!(l.bytes >= 0)) l.bytes = 0;
      if (!(l.headSeq >= 0)) l.headSeq = 0;
    }
    this.countRepairs++;
    if (this.countsReported.has(owner)) return;
    this.countsReported.add(owner);
    this.log.error(
      { vhost: owner.kind === 'queue' ? owner.host.name : owner.vhost, [owner.kind]: owner.name, levels: before },
      `stored message count of ${owner.kind} '${owner.name}' went below zero (a Warren bug: please report it with this line); ` +
        'written as 0 so storage and confirms go on. If its message count looks wrong after a restart, purge it or delete and declare it again',
    );
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

  /** Something was buffered that must go with the next batch: new entries, commit waiters, garbage. */
  private scheduleFlush(): void {
    if (this.lazyTimer !== null) {
      // A lazy batch was waiting to be joined: it goes with this one, on the usual schedule.
      clearTimeout(this.lazyTimer);
      this.lazyTimer = null;
      this.flushScheduled = false;
    }
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    if (STORE_BATCH_DELAY_MS > 0) setTimeout(this.flushTurn, STORE_BATCH_DELAY_MS);
    else setImmediate(this.flushTurn);
  }

  /**
   * Something was buffered that nobody waits for (a removal, a delivery watermark): it goes with
   * the next urgent batch, or LAZY_BATCH_DELAY_MS from now at the latest.
   */
  private scheduleLazyFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    this.lazyTimer = setTimeout(this.lazyFlushTurn, this.lazyBatchDelayMs);
  }

  /** A lazy batch has waited long enough: it goes now (or after the commit in flight). */
  private readonly lazyFlushTurn = (): void => {
    this.lazyTimer = null;
    this.flushTurn();
  };

  /**
   * The batch timer. Group commit: while MAX_FLUSHES_IN_FLIGHT batches are being committed, the
   * next one keeps collecting and goes when a commit is done, instead of becoming a transaction of
   * its own behind them. LMDB commits one transaction at a time (each with its sync), so a batch
   * written now would only wait in line; each transaction also costs lmdb-js a worker and a
   * thread-safe function on the main thread (a sixth of its CPU with confirms in ampbench S3). A
   * waiting batch keeps everything that batches promise: it is still written in one synchronous
   * step (atomic moves), its bytes still count as uncommitted for flow control, and its commit
   * waiters hear after its own commit, as before. Messages acknowledged meanwhile are never written.
   *
   * Lazy batches: a batch that nobody waits for — removals of acknowledged entries, delivery
   * watermarks — is not a commit of its own when it can join the next one that somebody waits
   * for. With confirms and a consumer (ampbench S3) every other commit used to be such a batch:
   * the acknowledgements that arrived while a batch of published messages was being committed.
   * It took the one commit slot and held the next published messages (and their confirms) back
   * for a whole commit, and each commit costs a transaction, its page writes and an fsync.
   * Held back, acknowledged messages may come back (redelivered) after a crash a few ms longer,
   * which at-least-once delivery allows and RabbitMQ also does.
   */
  private readonly flushTurn = (): void => {
    if (this.closing) return; // close() writes the last batch
    if (this.localCommitsInFlight >= MAX_FLUSHES_IN_FLIGHT) {
      this.flushWaiting = true; // flushScheduled stays set: no other timer is armed meanwhile
      return;
    }
    this.writeBatch();
  };

  /**
   * A batch is committed on the local disk: the batch that waited for it goes now. Local, not
   * durable: in a cluster durability also waits for in-sync followers, which may take long (a
   * follower lagging, etcd without quorum) — meanwhile the leader goes on committing locally.
   */
  private readonly localCommitDone = (): void => {
    this.localCommitsInFlight--;
    this.flushWaitingBatch();
  };

  /** The batch that waited for a commit goes now. */
  private flushWaitingBatch(): void {
    if (!this.flushWaiting || this.closing) return;
    this.flushWaiting = false;
    this.writeBatch();
  }

  /**
   * Writes the buffered batch — new entries, removals, counts, reference counts, watermarks,
   * garbage records and a chunk of sweeping — in one synchronous step (so LMDB commits it as one
   * transaction), then waits for it to be on disk.
   */
  private writeBatch(): void {
    this.flushScheduled = false;
    try {
      this.writePending();
      this.writeDelayed();
      this.writeRemovals();
      for (const range of this.newGarbage) this.store.putGarbage(range);
      this.newGarbage.length = 0;
      if (this.sweeps.length > 0 || this.delayedSweeps.length > 0) {
        this.sweepStep();
        if (this.sweeps.length > 0 || this.delayedSweeps.length > 0) this.scheduleFlush();
      }
      this.writeRefs();
      this.writeCounts();
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
    this.lastWatermarked = null;
    this.trackUncommitted();
    this.localCommitsInFlight++;
    this.store.whenCommittedLocally().then(this.localCommitDone, this.localCommitDone);
    this.flushesInFlight++;
    const waiters = this.waiters;
    this.waiters = [];
    const errorBefore = this.lastError;
    const startedAt = performance.now();
    const entries = this.entriesInBatch;
    this.entriesInBatch = 0;
    this.whenAllFlushed().then(
      () => {
        this.flushesInFlight--;
        if (this.commitStats !== null) {
          this.commitStats.storeCommitSeconds.observe((performance.now() - startedAt) / 1000);
          this.commitStats.storeCommitEntries.observe(entries);
        }
        this.trimRefCache();
        // A failed batch rejects its own promise; `flushed` may still resolve for later ones.
        const failed = this.lastError !== null && this.lastError !== errorBefore ? this.lastError : null;
        this.notify(waiters, failed);
      },
      (err: unknown) => {
        this.flushesInFlight--;
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
  }

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

  /** Forgets cached reference counts once all of them are committed (the store has them). */
  private trimRefCache(): void {
    // A lazy batch may be waiting (only removals: an urgent write would have ended the wait); its
    // reference drops read the committed counts from the store like any other.
    const quiet = !this.flushScheduled || this.lazyTimer !== null;
    if (this.refCache.size > REF_CACHE_MAX && this.flushesInFlight === 0 && this.refsDirty.size === 0 && quiet) {
      this.refCache.clear();
    }
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
    // No batch starts on its own from now on: the last one is written below, once the one being
    // committed is done. That last batch may finish a sweep, which reads committed records only:
    // written beside a batch still in flight, it would miss what that batch wrote in its range.
    this.closing = true;
    if (this.lazyTimer !== null) clearTimeout(this.lazyTimer);
    this.lazyTimer = null;
    while (this.localCommitsInFlight > 0) await this.store.whenCommittedLocally().then(undefined, () => undefined);
    this.flushWaiting = false;
    this.writeBatch();
    await Promise.all([...this.syncSources].map((s) => s.close()));
    await this.store.close();
  }
}

const EMPTY_MESSAGE = new Message('', '', Buffer.from([0, 0]), Buffer.alloc(0), 0);

/** Merges two seq-ordered reads of one level (live and spilled entries) within the same limits. */
function mergeBySeq(a: StoredEntry[], b: StoredEntry[], limit: number, maxBytes: number): StoredEntry[] {
  // An entry is only safe to take if nothing smaller can be missing: a list that hit its limit may
  // have more beyond its last seq.
  const aFull = a.length >= limit || sumBytes(a) >= maxBytes;
  const bFull = b.length >= limit || sumBytes(b) >= maxBytes;
  let bound = Number.MAX_SAFE_INTEGER;
  if (aFull && a.length > 0) bound = Math.min(bound, a[a.length - 1]!.seq);
  if (bFull && b.length > 0) bound = Math.min(bound, b[b.length - 1]!.seq);
  const out: StoredEntry[] = [];
  let i = 0;
  let j = 0;
  let bytes = 0;
  while (out.length < limit && bytes < maxBytes) {
    const x = a[i];
    const y = b[j];
    let next: StoredEntry | undefined;
    if (x !== undefined && (y === undefined || x.seq < y.seq)) {
      next = x;
      i++;
    } else if (y !== undefined) {
      next = y;
      j++;
    }
    if (next === undefined || next.seq > bound) break;
    out.push(next);
    bytes += next.bodySize;
  }
  return out;
}

/** True when every level's count, bytes and head are non-negative numbers (what the store can encode). */
function countsValid(levels: readonly LevelCounts[]): boolean {
  for (const l of levels) if (!(l.count >= 0 && l.bytes >= 0 && l.headSeq >= 0)) return false;
  return true;
}

function sumBytes(list: StoredEntry[]): number {
  let n = 0;
  for (const e of list) n += e.bodySize;
  return n;
}
