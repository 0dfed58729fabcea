// The LMDB environment in the data folder and its named databases. Writes are lmdb-js's
// asynchronous puts: every write made in one event-loop turn lands in one transaction committed on
// lmdb-js's worker thread; durability is observed per batch through whenFlushed(), never per
// message. Reads are synchronous (memory-mapped) and short. putSync/transactionSync are used only
// while opening (layout check).
//
// Databases:  meta        'layout' → { version, … }
//             exchanges   id → ExchangeRecord (msgpack)
//             queues      id → QueueRecord
//             bindings    id → BindingRecord
//             messages    message id → message record (binary, see records.ts)
//             entries     queue id ‖ seq → entry record (binary)
//             delivered   queue id → per priority level, highest seq possibly delivered (u64 each)
//             delayed     exchange id ‖ due ‖ message id → message record (x-delayed-message)
//             model       kind ‖ id → users, vhosts, permissions, policies… (model-store.ts)

import { open, type Database, type RootDatabase } from 'lmdb';
import type { Logger } from '../log.js';
import { MIGRATIONS } from './migrations.js';
import { delayedKey, entryKey, idKey, messageKey, readU64, writeU64 } from './keys.js';
import {
  decodeEntryValue,
  decodeMessage,
  type BindingRecord,
  type ExchangeRecord,
  type QueueRecord,
  type StoredEntry,
  type StoredMessage,
} from './records.js';

/** Bump when the on-disk layout changes; add a migration from the previous version below. */
export const LAYOUT_VERSION = 2;

export class StoreLayoutError extends Error {}

/**
 * Message records (and entries with inline messages) of 512 bytes or more are LZ4-compressed on
 * lmdb-js's writer thread, as storage engines such as WiredTiger do by default: typical payloads
 * (JSON, text) shrink severalfold, so the memory-mapped file — which counts towards the process's
 * resident memory as it is read — stays small; incompressible data costs a quick failed attempt.
 * Part of the on-disk layout: changing it needs a new LAYOUT_VERSION.
 */
const BODY_COMPRESSION = {
  threshold: 512,
  // lmdb-js's default shared dictionary helps tiny JSON values but makes each compression several
  // times slower on the single writer thread; message bodies above the threshold do well without.
  dictionary: Buffer.from([0]),
};

interface LayoutInfo {
  version: number;
  writtenBy: string;
  createdAt: string;
  /** set by a migration: the layout this folder was first written with */
  migratedFrom?: number;
}

export class LmdbStore {
  private readonly root: RootDatabase;
  private readonly meta: Database<LayoutInfo | string, string>;
  /** whether the previous run closed the store cleanly (its delivered watermarks are exact) */
  readonly cleanShutdown: boolean;
  private readonly exchanges: Database<ExchangeRecord, Buffer>;
  private readonly queues: Database<QueueRecord, Buffer>;
  private readonly bindings: Database<BindingRecord, Buffer>;
  private readonly messages: Database<Buffer, Buffer>;
  private readonly entries: Database<Buffer, Buffer>;
  private readonly delivered: Database<Buffer, Buffer>;
  private readonly delayed: Database<Buffer, Buffer>;
  private lastTracked: PromiseLike<unknown> | null = null;
  private nextEntity = 1;
  private nextMessage = 1;
  /** called once per failed write batch */
  onWriteError: (error: Error) => void = () => {};
  private closed = false;

  constructor(
    readonly path: string,
    private readonly log: Logger,
    writtenBy: string,
  ) {
    this.root = open({ path, maxDbs: 16, compression: false, overlappingSync: false, remapChunks: true });
    this.meta = this.root.openDB<LayoutInfo | string, string>({ name: 'meta' });
    this.exchanges = this.root.openDB<ExchangeRecord, Buffer>({ name: 'exchanges', keyEncoding: 'binary' });
    this.queues = this.root.openDB<QueueRecord, Buffer>({ name: 'queues', keyEncoding: 'binary' });
    this.bindings = this.root.openDB<BindingRecord, Buffer>({ name: 'bindings', keyEncoding: 'binary' });
    this.messages = this.root.openDB<Buffer, Buffer>({ name: 'messages', keyEncoding: 'binary', encoding: 'binary', compression: BODY_COMPRESSION });
    this.entries = this.root.openDB<Buffer, Buffer>({ name: 'entries', keyEncoding: 'binary', encoding: 'binary', compression: BODY_COMPRESSION });
    this.delivered = this.root.openDB<Buffer, Buffer>({ name: 'delivered', keyEncoding: 'binary', encoding: 'binary' });
    this.delayed = this.root.openDB<Buffer, Buffer>({ name: 'delayed', keyEncoding: 'binary', encoding: 'binary', compression: BODY_COMPRESSION });
    this.checkLayout(writtenBy);
    // A missing marker means a fresh folder: nothing to be unsure about.
    const state = this.meta.get('state');
    this.cleanShutdown = state === undefined || state === 'stopped';
    this.meta.putSync('state', 'running');
    this.nextEntity = 1 + Math.max(this.lastId(this.exchanges), this.lastId(this.queues), this.lastId(this.bindings));
    this.nextMessage = 1 + this.lastMessageId();
  }

  /** Refuses a data folder written with another layout, so nothing is ever misread. */
  private checkLayout(writtenBy: string): void {
    const info = this.meta.get('layout') as LayoutInfo | undefined;
    if (info === undefined) {
      const empty = this.lastId(this.queues) === 0 && this.lastId(this.exchanges) === 0 && this.lastMessageId() === 0;
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
      this.root.transactionSync(() => {
        step.run(this.root);
        this.meta.putSync('layout', { ...info, version: to, writtenBy, migratedFrom: info.migratedFrom ?? info.version });
      });
      this.log.info({ path: this.path, from: version, to, step: step.describe }, 'storage layout migrated');
      version = to;
    }
    return true;
  }

  /** Opens (creating if needed) a named database of this environment, for modules beside this one. */
  openDatabase<V>(name: string): Database<V, Buffer> {
    return this.root.openDB<V, Buffer>({ name, keyEncoding: 'binary' });
  }

  /** Watches a write made through openDatabase() for failure, like the store's own writes. */
  trackWrite(p: PromiseLike<unknown>): void {
    this.track(p);
  }

  private lastId(db: Database<unknown, Buffer>): number {
    for (const key of db.getKeys({ reverse: true, limit: 1 })) return (key as Buffer).readUInt32BE(0);
    return 0;
  }

  private lastMessageId(): number {
    for (const key of this.messages.getKeys({ reverse: true, limit: 1 })) return readU64(key as Buffer, 0);
    return 0;
  }

  /** A fresh id for an exchange, queue or binding. */
  allocateEntityId(): number {
    return this.nextEntity++;
  }

  allocateMessageId(): number {
    return this.nextMessage++;
  }

  /** Recovery saw this message id in use (inline entries and delayed messages have no record in
   *  `messages`): never hand it out again. */
  noteMessageId(id: number): void {
    if (id >= this.nextMessage) this.nextMessage = id + 1;
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
  }
  putQueue(rec: QueueRecord): void {
    this.track(this.queues.put(idKey(rec.id), rec));
  }
  deleteQueue(id: number): void {
    this.track(this.queues.remove(idKey(id)));
    this.track(this.delivered.remove(idKey(id)));
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
    this.track(this.messages.put(messageKey(messageId), record));
  }

  deleteMessage(messageId: number): void {
    this.track(this.messages.remove(messageKey(messageId)));
  }

  /** Reads a message; its buffers are private copies. */
  getMessage(messageId: number): StoredMessage | undefined {
    const value = this.messages.getBinary(messageKey(messageId));
    return value === undefined ? undefined : decodeMessage(value);
  }

  putEntry(queueId: number, seq: number, record: Buffer): void {
    this.track(this.entries.put(entryKey(queueId, seq), record));
  }

  deleteEntry(queueId: number, seq: number): void {
    this.track(this.entries.remove(entryKey(queueId, seq)));
  }

  /** Up to limit entries of a queue with seq ≥ fromSeq, in order (only committed ones are visible). */
  readEntries(queueId: number, fromSeq: number, limit: number): StoredEntry[] {
    const out: StoredEntry[] = [];
    for (const { key, value } of this.entries.getRange({
      start: entryKey(queueId, fromSeq),
      end: entryKey(queueId + 1, 0),
      limit,
    })) {
      out.push({ queueId, seq: readU64(key, 4), ...decodeEntryValue(value), value });
    }
    return out;
  }

  /** Every entry of every queue, in key order (recovery). */
  *allEntries(): IterableIterator<StoredEntry> {
    for (const { key, value } of this.entries.getRange({})) {
      yield { queueId: key.readUInt32BE(0), seq: readU64(key, 4), ...decodeEntryValue(value), value };
    }
  }

  /** Every stored message id (recovery: find orphans). */
  *allMessageIds(): IterableIterator<number> {
    for (const key of this.messages.getKeys({})) yield readU64(key as Buffer, 0);
  }

  putDelayed(exchangeId: number, dueAt: number, messageId: number, record: Buffer): void {
    this.track(this.delayed.put(delayedKey(exchangeId, dueAt, messageId), record));
  }

  deleteDelayed(exchangeId: number, dueAt: number, messageId: number): void {
    this.track(this.delayed.remove(delayedKey(exchangeId, dueAt, messageId)));
  }

  /** Every held delayed message (recovery). */
  *allDelayed(): IterableIterator<{ exchangeId: number; dueAt: number; messageId: number; message: StoredMessage }> {
    for (const { key, value } of this.delayed.getRange({})) {
      yield { exchangeId: key.readUInt32BE(0), dueAt: readU64(key, 4), messageId: readU64(key, 12), message: decodeMessage(Buffer.from(value)) };
    }
  }

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

  /** Resolves once everything written so far is committed and synced to disk. */
  whenFlushed(): PromiseLike<unknown> {
    return this.root.flushed;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.meta.put('state', 'stopped');
    await this.root.flushed;
    await this.root.close();
  }
}
