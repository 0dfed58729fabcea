// The LMDB environment in the data folder and its named databases. Writes are lmdb-js's
// asynchronous puts: every write made in one event-loop turn lands in one transaction committed on
// lmdb-js's worker thread (the broker relies on this for atomic moves); durability is observed per
// batch through whenFlushed(), never per message. Reads are synchronous (memory-mapped) and short.
// putSync/transactionSync are used only while opening (layout check, migrations).
//
// Databases:  meta           'layout' → { version, … }; 'state'; 'messageIds' (ids reserved so far)
//             exchanges      id → ExchangeRecord (msgpack)
//             queues         id → QueueRecord
//             bindings       id → BindingRecord
//             queue-entries  queue id ‖ level ‖ seq → entry record (binary, see records.ts)
//             shared         queue id ‖ level ‖ seq → message id, for entries whose body is in messages
//             messages       message id → message record (large bodies held by several queues)
//             refs           message id → u32 number of entries referring to it
//             counts         queue or exchange id → stored count/bytes (per level for queues)
//             garbage        queue id ‖ level ‖ from seq → to seq: entry ranges still to delete
//             delivered      queue id → per priority level, highest seq possibly delivered (u64 each)
//             delayed        exchange id ‖ due ‖ message id → message record (x-delayed-message)
//             model          kind ‖ id → users, vhosts, permissions, policies… (model-store.ts)
//
// Start-up reads only small things — topology, counts, one key per queue level — so it takes the
// same time whatever the number of stored messages; message ids are reserved in blocks (meta) so
// the next free id is known without scanning.

import { open, type Database, type RootDatabase, type RootDatabaseOptionsWithPath } from 'lmdb';
import type { Logger } from '../log.js';
import { ENTRY_KEY_SIZE, MAX_SEQ, SPILL_BIT, delayedKey, entryKey, garbageKey, idKey, messageKey, readU64, writeEntryKey, writeU64 } from './keys.js';
import {
  decodeCounts,
  decodeEntryValue,
  decodeGarbage,
  decodeMessage,
  encodeCounts,
  encodeGarbage,
  type BindingRecord,
  type ExchangeRecord,
  type GarbageRange,
  type LevelCounts,
  type QueueRecord,
  type StoredEntry,
  type StoredMessage,
} from './records.js';
import { BODY_COMPRESSION_OPTIONS, CompressionGate, FIRST_COMPRESSION_MARK } from './compression.js';
import { V2_ENTRIES_DB } from './migrate-entries.js';
import { openEntrySlabReader } from './slab-reader.js';
import { MIGRATIONS } from './migrations.js';

/** Bump when the on-disk layout changes; add a migration from the previous version (migrations.ts). */
export const LAYOUT_VERSION = 3;

export class StoreLayoutError extends Error {}

/**
 * lmdb-js starts its writer thread on a turn's writes once this many are queued (default 1000),
 * otherwise when the turn ends. The persistence layer hands a whole batch to LMDB in one
 * synchronous step (S3: ~450 stored and ~450 removed entries, more on a faster machine): started
 * part-way, the writer catches up with the main thread again and again, and each time one waits
 * for and wakes the other — main-thread time per write 0.42-0.49 µs instead of 0.68-0.71 in a
 * 1,800-write batch. The writer starts when the batch is complete; nothing else changes.
 */
const WRITER_START_THRESHOLD = 1_000_000_000;

/** The compression gate's slot for shared message records (entries use their queue's id's). */
const SHARED_MESSAGES_SLOT = 0xff;

/** Message ids reserved per meta write: ids handed out never exceed what is reserved on disk. */
const MESSAGE_ID_BLOCK = 1_000_000;

interface LayoutInfo {
  version: number;
  writtenBy: string;
  createdAt: string;
  /** set by a migration: the layout this folder was first written with */
  migratedFrom?: number;
}

/**
 * Replication of a cluster leader's commits (src/cluster): sees every database the store opens, so
 * that it can log their writes in the same transaction, and holds durability back until in-sync
 * followers have the commit too. Absent on a single node, which then pays nothing for it.
 */
export interface StoreReplication {
  attach(root: RootDatabase, name: string, db: Database<unknown, Buffer | string>, binaryValues: boolean): void;
  /** `flushed` resolves when the writes so far are on the local disk; the result when they are replicated */
  whenDurable(flushed: PromiseLike<unknown>): PromiseLike<unknown>;
}

/** A key range scan result: just the seq and the shared message id (sweeping, no bodies read). */
export interface SharedRef {
  queueId: number;
  level: number;
  seq: number;
  messageId: number;
}

export class LmdbStore {
  private readonly root: RootDatabase;
  private readonly meta: Database<LayoutInfo | string | number, string>;
  /** whether the previous run closed the store cleanly (its delivered watermarks are exact) */
  readonly cleanShutdown: boolean;
  private readonly exchanges: Database<ExchangeRecord, Buffer>;
  private readonly queues: Database<QueueRecord, Buffer>;
  private readonly bindings: Database<BindingRecord, Buffer>;
  private readonly messages: Database<Buffer, Buffer>;
  private readonly entries: Database<Buffer, Buffer>;
  /**
   * The same two databases opened without compression, for records the gate finds incompressible
   * (read back through the compressing handles, which return a value not marked compressed as it
   * is). Null with replication, whose log sees the writes of the handles it wraps only.
   */
  private readonly uncompressedMessages: Database<Buffer, Buffer> | null;
  private readonly uncompressedEntries: Database<Buffer, Buffer> | null;
  private readonly compressionGate = new CompressionGate();
  /** queue-entries for range reads: keys as seqs, values as views into slabs (slab-reader.ts) */
  private readonly entryReader: Database<Buffer, number>;
  private readonly shared: Database<Buffer, Buffer>;
  private readonly refs: Database<Buffer, Buffer>;
  private readonly counts: Database<Buffer, Buffer>;
  private readonly garbage: Database<Buffer, Buffer>;
  private readonly delivered: Database<Buffer, Buffer>;
  private readonly delayed: Database<Buffer, Buffer>;
  private lastTracked: PromiseLike<unknown> | null = null;
  private nextEntity = 1;
  private nextMessage = 1;
  private reservedMessages = 0;
  /** called once per failed write batch */
  onWriteError: (error: Error) => void = () => {};
  /**
   * Called after each read of stored messages with the bytes of bodies it read (read through the
   * memory map: the pages it touched are now resident; mapped-pages.ts). Once per read, not per
   * message.
   */
  onBodiesRead: ((bytes: number) => void) | null = null;
  private closed = false;
  /**
   * The key of the entry being put or removed. lmdb-js copies a key into its write instructions
   * before put()/remove() return (values it only points to), so one buffer serves every entry
   * write: two allocations fewer per stored message. Null with replication, whose log keeps each
   * key it is given until the end of the batch.
   */
  private readonly entryKeyScratch: Buffer | null;

  constructor(
    readonly path: string,
    private readonly log: Logger,
    writtenBy: string,
    private readonly replication: StoreReplication | null = null,
  ) {
    const options: RootDatabaseOptionsWithPath & { batchStartThreshold: number } = {
      path,
      maxDbs: 24,
      compression: false,
      overlappingSync: false,
      remapChunks: true,
      batchStartThreshold: WRITER_START_THRESHOLD,
    };
    this.root = open(options);
    this.entryKeyScratch = replication === null ? Buffer.allocUnsafe(ENTRY_KEY_SIZE) : null;
    this.meta = this.root.openDB<LayoutInfo | string | number, string>({ name: 'meta' });
    this.exchanges = this.root.openDB<ExchangeRecord, Buffer>({ name: 'exchanges', keyEncoding: 'binary' });
    this.queues = this.root.openDB<QueueRecord, Buffer>({ name: 'queues', keyEncoding: 'binary' });
    this.bindings = this.root.openDB<BindingRecord, Buffer>({ name: 'bindings', keyEncoding: 'binary' });
    this.messages = this.binaryDb('messages', true);
    this.entries = this.binaryDb('queue-entries', true);
    this.entryReader = openEntrySlabReader(this.root, 'queue-entries');
    this.uncompressedMessages = replication === null ? this.binaryDb('messages', false) : null;
    this.uncompressedEntries = replication === null ? this.binaryDb('queue-entries', false) : null;
    this.shared = this.binaryDb('shared', false);
    this.refs = this.binaryDb('refs', false);
    this.counts = this.binaryDb('counts', false);
    this.garbage = this.binaryDb('garbage', false);
    this.delivered = this.binaryDb('delivered', false);
    this.delayed = this.binaryDb('delayed', true);
    this.checkLayout(writtenBy);
    // A missing marker means a fresh folder: nothing to be unsure about.
    const state = this.meta.get('state');
    this.cleanShutdown = state === undefined || state === 'stopped';
    this.meta.putSync('state', 'running');
    this.nextEntity = 1 + Math.max(this.lastId(this.exchanges), this.lastId(this.queues), this.lastId(this.bindings));
    const reserved = this.meta.get('messageIds');
    this.nextMessage = typeof reserved === 'number' ? reserved : 1;
    this.reservedMessages = this.nextMessage;
    if (replication !== null) {
      const named: [string, Database<any, any>, boolean][] = [
        ['meta', this.meta, false], ['exchanges', this.exchanges, false], ['queues', this.queues, false],
        ['bindings', this.bindings, false], ['messages', this.messages, true], ['queue-entries', this.entries, true],
        ['shared', this.shared, true], ['refs', this.refs, true], ['counts', this.counts, true],
        ['garbage', this.garbage, true], ['delivered', this.delivered, true], ['delayed', this.delayed, true],
      ];
      for (const [name, db, binary] of named) replication.attach(this.root, name, db, binary);
    }
  }

  private binaryDb(name: string, compressed: boolean): Database<Buffer, Buffer> {
    return this.root.openDB<Buffer, Buffer>({
      name,
      keyEncoding: 'binary',
      encoding: 'binary',
      ...(compressed ? { compression: BODY_COMPRESSION_OPTIONS } : {}),
    });
  }

  /** When this data folder's store was created (from its layout record); '' if unknown. */
  get createdAt(): string {
    const info = this.meta.get('layout') as LayoutInfo | undefined;
    return info?.createdAt ?? '';
  }

  /** Refuses a data folder written with another layout, so nothing is ever misread; migrates older ones. */
  private checkLayout(writtenBy: string): void {
    const info = this.meta.get('layout') as LayoutInfo | undefined;
    if (info === undefined) {
      const empty =
        this.lastId(this.queues) === 0 &&
        this.lastId(this.exchanges) === 0 &&
        this.messages.getKeysCount({ limit: 1 }) === 0 &&
        this.root.openDB<Buffer, Buffer>({ name: V2_ENTRIES_DB, keyEncoding: 'binary' }).getKeysCount({ limit: 1 }) === 0;
      if (!empty) {
        throw new StoreLayoutError(
          `the data folder ${this.path} holds data but no layout version; it was not written by Warren. Point --data-dir at an empty folder or at a Warren data folder.`,
        );
      }
      this.meta.putSync('layout', { version: LAYOUT_VERSION, writtenBy, createdAt: new Date().toISOString() });
      return;
    }
    if (info.version < LAYOUT_VERSION && this.migrate(info, writtenBy)) return;
    if (info.version !== LAYOUT_VERSION) {
      const newer = info.version > LAYOUT_VERSION;
      throw new StoreLayoutError(
        newer
          ? `the data folder ${this.path} uses storage layout ${info.version} (written by ${info.writtenBy}); this Warren reads layout ${LAYOUT_VERSION}. Run the newer Warren, or start with an empty --data-dir.`
          : `the data folder ${this.path} uses storage layout ${info.version}, which this Warren cannot migrate. Export your definitions with the older version and start with an empty --data-dir.`,
      );
    }
  }

  /**
   * Brings an older layout up to date in place, one step at a time (v1→v2→…), each step in one
   * synchronous transaction with the new version number: a crash mid-way leaves either the old or
   * the new layout, never a mix. False when there is no path from this version.
   */
  private migrate(info: LayoutInfo, writtenBy: string): boolean {
    let version = info.version;
    while (version < LAYOUT_VERSION) {
      const step = MIGRATIONS.find((m) => m.from === version);
      if (step === undefined) return false;
      const to = version + 1;
      const started = Date.now();
      this.root.transactionSync(() => {
        step.run(this.root);
        this.meta.putSync('layout', { ...info, version: to, writtenBy, migratedFrom: info.migratedFrom ?? info.version });
      });
      this.log.info({ path: this.path, from: version, to, step: step.describe, ms: Date.now() - started }, 'storage layout migrated');
      version = to;
    }
    return true;
  }

  /** Opens (creating if needed) a named database of this environment, for modules beside this one. */
  openDatabase<V>(name: string): Database<V, Buffer> {
    const db = this.root.openDB<V, Buffer>({ name, keyEncoding: 'binary' });
    this.replication?.attach(this.root, name, db as Database<unknown, Buffer>, false);
    return db;
  }

  /** Watches a write made through openDatabase() for failure, like the store's own writes. */
  trackWrite(p: PromiseLike<unknown>): void {
    this.track(p);
  }

  private lastId(db: Database<unknown, Buffer>): number {
    for (const key of db.getKeys({ reverse: true, limit: 1 })) return (key as Buffer).readUInt32BE(0);
    return 0;
  }

  /** A fresh id for an exchange, queue or binding. */
  allocateEntityId(): number {
    return this.nextEntity++;
  }

  /** Recovery found data under this id (a non-durable queue's spill range): never hand it out. */
  noteEntityId(id: number): void {
    if (id >= this.nextEntity) this.nextEntity = id + 1;
  }

  /** A fresh message id; never one handed out before, even across a crash. */
  allocateMessageId(): number {
    if (this.nextMessage >= this.reservedMessages) {
      // The reservation is written before (or with) any record that carries one of its ids.
      this.reservedMessages = this.nextMessage + MESSAGE_ID_BLOCK;
      this.track(this.meta.put('messageIds', this.reservedMessages));
    }
    return this.nextMessage++;
  }

  /** Watches one write's batch promise (they are shared per batch) for failure. */
  private track(p: PromiseLike<unknown>): void {
    if (p === this.lastTracked) return;
    this.lastTracked = p;
    p.then(undefined, (err: unknown) => {
      const error = err instanceof Error ? err : new Error(String(err));
      this.log.error({ err: error }, 'storage write failed');
      this.onWriteError(error);
    });
  }

  // ---- Topology -----------------------------------------------------------------------------------

  putExchange(rec: ExchangeRecord): void {
    this.track(this.exchanges.put(idKey(rec.id), rec));
  }
  deleteExchange(id: number): void {
    this.track(this.exchanges.remove(idKey(id)));
    this.track(this.counts.remove(idKey(id)));
  }
  putQueue(rec: QueueRecord): void {
    this.track(this.queues.put(idKey(rec.id), rec));
  }
  deleteQueue(id: number): void {
    this.track(this.queues.remove(idKey(id)));
    this.track(this.delivered.remove(idKey(id)));
    this.track(this.counts.remove(idKey(id)));
  }
  putBinding(rec: BindingRecord): void {
    this.track(this.bindings.put(idKey(rec.id), rec));
  }
  deleteBinding(id: number): void {
    this.track(this.bindings.remove(idKey(id)));
  }

  loadExchanges(): ExchangeRecord[] {
    return [...this.exchanges.getRange({})].map((e) => e.value);
  }
  loadQueues(): QueueRecord[] {
    return [...this.queues.getRange({})].map((e) => e.value);
  }
  loadBindings(): BindingRecord[] {
    return [...this.bindings.getRange({})].map((e) => e.value);
  }

  // ---- Messages and entries -----------------------------------------------------------------------

  putMessage(messageId: number, record: Buffer): void {
    const db = this.bodyDb(this.messages, this.uncompressedMessages, SHARED_MESSAGES_SLOT, record);
    this.track(db.put(messageKey(messageId), record));
  }

  /**
   * The handle to write a body record with: the compressing one, or the other when the gate finds
   * the record not worth compressing (only records lmdb-js would compress, and never one whose first
   * byte would read as lmdb-js's compression mark).
   */
  private bodyDb(
    compressing: Database<Buffer, Buffer>,
    uncompressed: Database<Buffer, Buffer> | null,
    slotKey: number,
    record: Buffer,
  ): Database<Buffer, Buffer> {
    if (uncompressed === null || record.length < BODY_COMPRESSION_OPTIONS.threshold || record[0]! >= FIRST_COMPRESSION_MARK) return compressing;
    return this.compressionGate.worthCompressing(slotKey, record) ? compressing : uncompressed;
  }

  deleteMessage(messageId: number): void {
    this.track(this.messages.remove(messageKey(messageId)));
  }

  /** Reads a message; its buffers are private copies. */
  getMessage(messageId: number): StoredMessage | undefined {
    const value = this.messages.getBinary(messageKey(messageId));
    if (value === undefined) return undefined;
    this.onBodiesRead?.(value.length);
    return decodeMessage(value);
  }

  putRefs(messageId: number, count: number): void {
    const value = Buffer.allocUnsafe(4);
    value.writeUInt32BE(count, 0);
    this.track(this.refs.put(messageKey(messageId), value));
  }

  deleteRefs(messageId: number): void {
    this.track(this.refs.remove(messageKey(messageId)));
  }

  /** Committed reference count of a shared message (0 when it has none). */
  getRefs(messageId: number): number {
    const value = this.refs.getBinary(messageKey(messageId));
    return value === undefined ? 0 : value.readUInt32BE(0);
  }

  /** An entry's key, to hand to one put()/remove() at once (see entryKeyScratch). */
  private writeKey(queueId: number, level: number, seq: number): Buffer {
    const scratch = this.entryKeyScratch;
    return scratch === null ? entryKey(queueId, level, seq) : writeEntryKey(scratch, queueId, level, seq);
  }

  putEntry(queueId: number, level: number, seq: number, record: Buffer): void {
    const db = this.bodyDb(this.entries, this.uncompressedEntries, queueId, record);
    this.track(db.put(this.writeKey(queueId, level, seq), record));
  }

  deleteEntry(queueId: number, level: number, seq: number): void {
    this.track(this.entries.remove(this.writeKey(queueId, level, seq)));
  }

  /** Indexes an entry whose message is in `messages`. */
  putShared(queueId: number, level: number, seq: number, messageId: number): void {
    this.track(this.shared.put(this.writeKey(queueId, level, seq), messageKey(messageId)));
  }

  deleteShared(queueId: number, level: number, seq: number): void {
    this.track(this.shared.remove(this.writeKey(queueId, level, seq)));
  }

  /**
   * Entries of one queue level from seq fromSeq on, in order, until `limit` entries or `maxBytes`
   * of bodies (at least one entry when there is one). Only committed entries are visible. Values
   * are views into slabs shared by the records of a read (slab-reader.ts), not private copies.
   */
  readEntries(queueId: number, level: number, fromSeq: number, limit: number, maxBytes: number): StoredEntry[] {
    const out: StoredEntry[] = [];
    let bytes = 0;
    // Range bounds are entry keys (written as given); keys read come back as their seq.
    const range = { start: entryKey(queueId, level, fromSeq), end: entryKey(queueId, level, MAX_SEQ), limit } as unknown as { start: number; end: number; limit: number };
    for (const { key: seq, value } of this.entryReader.getRange(range)) {
      const header = decodeEntryValue(value);
      out.push({ queueId, level, seq, ...header, value });
      bytes += header.bodySize;
      if (bytes >= maxBytes) break;
    }
    this.onBodiesRead?.(bytes);
    return out;
  }

  /** The highest seq stored for a queue level (0 when none), looking at live and spilled entries. */
  lastSeq(queueId: number, level: number): number {
    let last = 0;
    for (const id of [queueId, (queueId | SPILL_BIT) >>> 0]) {
      for (const key of this.entries.getKeys({ start: entryKey(id, level, MAX_SEQ), end: entryKey(id, level, 0), reverse: true, limit: 1 })) {
        last = Math.max(last, readU64(key as Buffer, 5));
      }
    }
    return last;
  }

  /** The distinct queue ids that have entries (or shared index keys): one seek per id, no scan. */
  entryQueueIds(): number[] {
    const ids = new Set<number>();
    for (const db of [this.entries, this.shared]) {
      let from = 0;
      for (;;) {
        let found = -1;
        for (const key of db.getKeys({ start: idKey(from), limit: 1 })) found = (key as Buffer).readUInt32BE(0);
        if (found < 0) break;
        ids.add(found);
        if (found >= 0xffffffff) break;
        from = found + 1;
      }
    }
    return [...ids];
  }

  /**
   * Garbage sweeping: deletes up to `limit` entry keys of one id prefix (a queue, or its spill
   * range) in levels [fromLevel, toLevel], seqs [fromSeq, toSeq) — keys only, bodies are never
   * read — with their `shared` index keys. Returns the shared entries removed (their message ids,
   * for reference counts), and where to go on from (null when the range is done).
   */
  deleteRangeChunk(
    prefix: number,
    fromLevel: number,
    toLevel: number,
    fromSeq: number,
    toSeq: number,
    limit: number,
  ): { deleted: number; shared: SharedRef[]; next: { level: number; seq: number } | null } {
    let deleted = 0;
    const shared: SharedRef[] = [];
    for (let level = fromLevel; level <= toLevel; level++) {
      const start = entryKey(prefix, level, level === fromLevel ? fromSeq : 0);
      let last = -1;
      for (const key of this.entries.getKeys({ start, end: entryKey(prefix, level, toSeq), limit: limit - deleted })) {
        this.track(this.entries.remove(key as Buffer));
        last = readU64(key as Buffer, 5);
        deleted++;
      }
      const sharedEnd = deleted >= limit ? entryKey(prefix, level, last + 1) : entryKey(prefix, level, toSeq);
      for (const { key, value } of this.shared.getRange({ start, end: sharedEnd })) {
        shared.push({ queueId: prefix, level, seq: readU64(key, 5), messageId: readU64(value, 0) });
        this.track(this.shared.remove(key));
      }
      if (deleted >= limit) return { deleted, shared, next: { level, seq: last + 1 } };
    }
    return { deleted, shared, next: null };
  }

  // ---- Counts and garbage -------------------------------------------------------------------------

  putCounts(id: number, levels: readonly LevelCounts[]): void {
    this.track(this.counts.put(idKey(id), encodeCounts(levels)));
  }

  getCounts(id: number): LevelCounts[] {
    const value = this.counts.getBinary(idKey(id));
    return value === undefined ? [] : decodeCounts(value);
  }

  /** Ids that have a counts record (recovery: drop those of queues and exchanges that are gone). */
  countIds(): number[] {
    const out: number[] = [];
    for (const key of this.counts.getKeys({})) out.push((key as Buffer).readUInt32BE(0));
    return out;
  }

  deleteCounts(id: number): void {
    this.track(this.counts.remove(idKey(id)));
  }

  putGarbage(range: GarbageRange): void {
    this.track(this.garbage.put(garbageKey(range.queueId, range.level, range.fromSeq), encodeGarbage(range.toSeq, range.flags)));
  }

  deleteGarbage(range: GarbageRange): void {
    this.track(this.garbage.remove(garbageKey(range.queueId, range.level, range.fromSeq)));
  }

  /** Entry ranges still to delete (few records: one per purge or deletion not yet swept). */
  garbageRanges(): GarbageRange[] {
    const out: GarbageRange[] = [];
    for (const { key, value } of this.garbage.getRange({})) {
      out.push({ queueId: key.readUInt32BE(0), level: key[4]!, fromSeq: readU64(key, 5), ...decodeGarbage(value) });
    }
    return out;
  }

  // ---- Delayed messages ---------------------------------------------------------------------------

  putDelayed(exchangeId: number, dueAt: number, messageId: number, record: Buffer): void {
    this.track(this.delayed.put(delayedKey(exchangeId, dueAt, messageId), record));
  }

  deleteDelayed(exchangeId: number, dueAt: number, messageId: number): void {
    this.track(this.delayed.remove(delayedKey(exchangeId, dueAt, messageId)));
  }

  /**
   * Held messages of one exchange from (dueAt, messageId) on, in due order, until `limit` messages
   * or `maxBytes` of bodies (at least one).
   */
  readDelayed(
    exchangeId: number,
    fromDueAt: number,
    fromMessageId: number,
    limit: number,
    maxBytes: number,
  ): { dueAt: number; messageId: number; message: StoredMessage }[] {
    const out: { dueAt: number; messageId: number; message: StoredMessage }[] = [];
    let bytes = 0;
    for (const { key, value } of this.delayed.getRange({
      start: delayedKey(exchangeId, fromDueAt, fromMessageId),
      end: delayedKey(exchangeId, MAX_SEQ, MAX_SEQ),
      limit,
    })) {
      const message = decodeMessage(value);
      out.push({ dueAt: readU64(key, 4), messageId: readU64(key, 12), message });
      bytes += message.body.length;
      if (bytes >= maxBytes) break;
    }
    this.onBodiesRead?.(bytes);
    return out;
  }

  /** The exchange ids that hold delayed messages: one seek per id. */
  delayedExchangeIds(): number[] {
    const ids: number[] = [];
    let from = 0;
    for (;;) {
      let found = -1;
      for (const key of this.delayed.getKeys({ start: idKey(from), limit: 1 })) found = (key as Buffer).readUInt32BE(0);
      if (found < 0) break;
      ids.push(found);
      if (found >= 0xffffffff) break;
      from = found + 1;
    }
    return ids;
  }

  /** Deletes up to `limit` held messages of an exchange (keys only); returns how many. */
  deleteDelayedRange(exchangeId: number, limit: number): number {
    let deleted = 0;
    for (const key of this.delayed.getKeys({ start: delayedKey(exchangeId, 0, 0), end: delayedKey(exchangeId, MAX_SEQ, MAX_SEQ), limit })) {
      this.track(this.delayed.remove(key as Buffer));
      deleted++;
    }
    return deleted;
  }

  // ---- Watermarks ---------------------------------------------------------------------------------

  /** One u64 watermark per priority level. */
  putDelivered(queueId: number, seqs: readonly number[]): void {
    const value = Buffer.allocUnsafe(8 * seqs.length);
    for (let i = 0; i < seqs.length; i++) writeU64(value, 8 * i, seqs[i]!);
    this.track(this.delivered.put(idKey(queueId), value));
  }

  getDelivered(queueId: number): number[] {
    const value = this.delivered.getBinary(idKey(queueId));
    const out: number[] = [];
    if (value !== undefined) for (let o = 0; o + 8 <= value.length; o += 8) out.push(readU64(value, o));
    return out;
  }

  /**
   * Resolves once everything written so far is committed and synced to the local disk, without
   * waiting for a cluster's followers (the write-batch pacing in persistence.ts; durability and
   * confirms use whenFlushed()).
   */
  whenCommittedLocally(): PromiseLike<unknown> {
    return this.root.flushed;
  }

  /**
   * Runs `action` on the main thread while lmdb-js's writer thread waits for it inside a write
   * transaction (an asynchronous transaction callback: the writer holds the transaction open and
   * blocks on its lock until the callback returns). Neither thread is inside LMDB meanwhile, and
   * LMDB maps and unmaps its data file's 64 KiB chunks (remapChunks) only in a thread running one of
   * its transactions — here only these two — so no mapping of the data file changes while `action`
   * runs (mapped-pages.ts relies on this to advise them with MADV_DONTNEED). The callback joins the
   * current write batch, whose commit waits for it. Returns a promise that settles once the batch
   * is committed (or failed: its own writes report that), null when the store is closed.
   */
  whileWriterWaits(action: () => void): PromiseLike<unknown> | null {
    if (this.closed) return null;
    try {
      return this.root.transaction(action);
    } catch {
      return null; // closing
    }
  }

  /** Resolves once everything written so far is committed and synced to disk. */
  whenFlushed(): PromiseLike<unknown> {
    return this.replication === null ? this.root.flushed : this.replication.whenDurable(this.root.flushed);
  }

  /** markClean false: the next open treats this as a crash (a cluster follower's copy, never served from). */
  async close(markClean = true): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (markClean) await this.meta.put('state', 'stopped');
    await this.root.flushed;
    await this.root.close();
  }
}
