// The store side of replication (the store's StoreReplication hook). On a leader it wraps every
// database the store opens so that each put/remove is also described in an operation list, and
// when lmdb-js closes the event turn's write batch ('beforecommit', still inside the transaction)
// it appends that list as one numbered record to the `replog` database: the record and the writes
// it describes commit together or not at all. Durability (the store's whenFlushed, which every
// confirm, ack and *-ok waits on) is then held back until the in-sync followers have the record.
//
// On a follower the same class registers the store's databases and applies shipped records to
// them, each batch of records in one transaction with the records themselves (so the follower's
// log mirrors the leader's and it can lead next), and reads the position it has reached.
//
// The log is kept bounded: whole segments of old records go once every connected follower has
// them and the log is over its retention size (or regardless, far over it: such a follower gets a
// snapshot instead).

import type { Database, RootDatabase } from 'lmdb';
import type { StoreReplication } from '../store/lmdb-store.js';
import {
  HEAD_KEY,
  OP_PUT_BINARY,
  OP_REMOVE,
  OpBuilder,
  REPLOG_DB,
  decodeHead,
  decodeOps,
  encodeHead,
  parseRecordKey,
  recordKey,
  recordKeyFrom,
  type LogPosition,
  type LogRecord,
} from './log-records.js';

/** Log bytes kept for followers that reconnect (beyond this, old segments go once nobody needs them). */
export const LOG_RETAIN_BYTES = 64 * 1024 * 1024;
/** Beyond this many bytes old segments go even if a follower still needs them (it gets a snapshot). */
export const LOG_MAX_BYTES = 4 * LOG_RETAIN_BYTES;
const SEGMENT_BYTES = 1024 * 1024;
const SEGMENT_RECORDS = 10_000;

interface Segment {
  firstSeq: number;
  lastSeq: number;
  bytes: number;
}

/** What a leader's log waits on before a commit counts as durable (the in-sync set). */
export interface DurabilityGate {
  whenReplicated(seq: number): PromiseLike<unknown>;
}

interface AttachedDb {
  db: Database<unknown, Buffer | string>;
  binary: boolean;
}

export class ReplicationLog implements StoreReplication {
  private root: RootDatabase | null = null;
  private replog: Database<Buffer, Buffer> | null = null;
  private readonly dbs = new Map<string, AttachedDb>();
  private readonly ops = new OpBuilder();
  private readonly segments: Segment[] = [];
  private bytes = 0;
  /** the last record appended (possibly not committed yet) */
  private headPos: LogPosition = { seq: 0, epoch: 0 };
  /** the last record known committed to the local disk */
  committedSeq = 0;
  /** when the oldest record not yet committed locally was appended (0: none waiting) */
  private uncommittedSince = 0;
  /** leader: told when records up to seq are committed locally (the shippers send them) */
  onCommitted: (seq: number) => void = () => {};

  /**
   * leader: epoch of this leadership (records carry it) and the gate confirms wait on;
   * follower: epoch 0, gate null.
   */
  constructor(
    readonly role: 'leader' | 'follower',
    private readonly epoch: number,
    private readonly gate: DurabilityGate | null,
  ) {}

  get head(): LogPosition {
    return { ...this.headPos };
  }

  /** Bytes of records held. */
  get logBytes(): number {
    return this.bytes;
  }

  attach(root: RootDatabase, name: string, db: Database<unknown, Buffer | string>, binaryValues: boolean): void {
    if (this.root === null) this.open(root);
    if (this.dbs.has(name)) return;
    this.dbs.set(name, { db, binary: binaryValues });
    if (this.role === 'leader') this.wrap(name, db, binaryValues);
  }

  private open(root: RootDatabase): void {
    this.root = root;
    const replog = root.openDB<Buffer, Buffer>({ name: REPLOG_DB, keyEncoding: 'binary', encoding: 'binary' });
    this.replog = replog;
    this.headPos = decodeHead(replog.getBinary(HEAD_KEY));
    this.committedSeq = this.headPos.seq;
    // One pass over the keys (no values) sums the log's size per segment.
    let seg: Segment | null = null;
    for (const key of replog.getKeys({ start: recordKeyFrom(0) })) {
      const info = parseRecordKey(key as Buffer);
      if (info === null) continue;
      if (seg === null || seg.bytes >= SEGMENT_BYTES || seg.lastSeq - seg.firstSeq >= SEGMENT_RECORDS) {
        seg = { firstSeq: info.seq, lastSeq: info.seq, bytes: 0 };
        this.segments.push(seg);
      }
      seg.lastSeq = info.seq;
      seg.bytes += info.size;
      this.bytes += info.size;
    }
    if (this.role === 'leader') {
      if (this.headPos.epoch === 0) {
        // A store that never had a log: no follower position can match it (each gets a snapshot).
        this.headPos = { seq: this.headPos.seq, epoch: this.epoch };
        void replog.put(HEAD_KEY, encodeHead(this.headPos));
      }
      root.on('beforecommit', this.seal);
    }
  }

  /** Leader: every put/remove of this database is also described in the turn's operation list. */
  private wrap(name: string, db: Database<unknown, Buffer | string>, binary: boolean): void {
    const ops = this.ops;
    const put = db.put.bind(db) as (...args: unknown[]) => Promise<boolean>;
    const remove = db.remove.bind(db) as (...args: unknown[]) => Promise<boolean>;
    // The clean-shutdown marker describes this copy of the data, not the data: never shipped.
    const skip = name === 'meta' ? (key: unknown) => key === 'state' : () => false;
    (db as unknown as { put: unknown }).put = (key: Buffer | string, value: unknown, ...rest: unknown[]) => {
      if (!skip(key)) ops.put(name, key, value, binary);
      return put(key, value, ...rest);
    };
    (db as unknown as { remove: unknown }).remove = (key: Buffer | string, ...rest: unknown[]) => {
      if (!skip(key)) ops.remove(name, key);
      return remove(key, ...rest);
    };
  }

  /** Leader, at the end of the turn's write batch (inside its transaction): append the record. */
  private readonly seal = (): void => {
    if (this.ops.empty || this.replog === null) return;
    const record = this.ops.take();
    const seq = this.headPos.seq + 1;
    if (this.uncommittedSince === 0) this.uncommittedSince = Date.now();
    this.headPos = { seq, epoch: this.epoch };
    this.account(seq, record.length);
    this.replog.put(recordKey(seq, this.epoch, record.length), record);
    this.replog.put(HEAD_KEY, encodeHead(this.headPos)).then(
      () => this.committed(seq),
      () => {
        // The store's own writes in this batch failed too; the store reports it.
      },
    );
  };

  private committed(seq: number): void {
    if (seq <= this.committedSeq) return;
    this.committedSeq = seq;
    // Later records still waiting started waiting no earlier than now (a disk watchdog's measure).
    this.uncommittedSince = seq >= this.headPos.seq ? 0 : Date.now();
    this.onCommitted(seq);
  }

  /** How long the oldest record appended and not yet committed has waited (0: none). */
  uncommittedForMs(): number {
    return this.uncommittedSince === 0 ? 0 : Date.now() - this.uncommittedSince;
  }

  whenDurable(flushed: PromiseLike<unknown>): PromiseLike<unknown> {
    const gate = this.gate;
    if (gate === null) return flushed;
    // The record this turn's writes will go into, or the last one if nothing is pending.
    const target = this.ops.empty ? this.headPos.seq : this.headPos.seq + 1;
    return flushed.then(() => gate.whenReplicated(target));
  }

  // ---- Reading (leader: shipping; both: position checks) ------------------------------------------

  /** Whether this log holds the position (a follower's last record) exactly. */
  holds(p: LogPosition): boolean {
    if (p.epoch === 0) return false;
    if (p.seq === this.headPos.seq) return p.epoch === this.headPos.epoch;
    if (this.replog === null) return false;
    for (const key of this.replog.getKeys({ start: recordKeyFrom(p.seq), limit: 1 })) {
      const info = parseRecordKey(key as Buffer);
      return info !== null && info.seq === p.seq && info.epoch === p.epoch;
    }
    return false;
  }

  /**
   * Committed records from seq `from` on, up to `maxBytes` (at least one). Null when the record
   * `from` is no longer held (trimmed): that follower needs a snapshot.
   */
  read(from: number, maxBytes: number): LogRecord[] | null {
    const out: LogRecord[] = [];
    if (this.replog === null || from > this.committedSeq) return out;
    let bytes = 0;
    let expect = from;
    for (const { key, value } of this.replog.getRange({ start: recordKeyFrom(from), end: recordKeyFrom(this.committedSeq + 1) })) {
      const info = parseRecordKey(key);
      if (info === null) break;
      if (info.seq !== expect) return out.length === 0 ? null : out;
      out.push({ seq: info.seq, epoch: info.epoch, ops: value });
      expect++;
      bytes += value.length;
      if (bytes >= maxBytes) break;
    }
    if (out.length === 0 && from <= this.committedSeq) return null;
    return out;
  }

  // ---- Applying (follower) ------------------------------------------------------------------------

  /**
   * Applies shipped records in order, in the current write batch (one transaction with the records
   * and the new head); the caller waits for the store's flush before acknowledging. Throws when a
   * record does not follow the last one (the stream is then restarted from the follower's position).
   */
  apply(records: readonly LogRecord[]): number {
    const root = this.root;
    const replog = this.replog;
    if (root === null || replog === null) throw new Error('the follower store is not open');
    for (const record of records) {
      if (record.seq !== this.headPos.seq + 1) {
        throw new Error(`replication record ${record.seq} does not follow ${this.headPos.seq}`);
      }
      for (const op of decodeOps(record.ops)) {
        const target = this.database(root, op.db);
        if (op.kind === OP_REMOVE) void target.db.remove(op.key);
        else if (op.kind === OP_PUT_BINARY) void target.db.put(op.key, op.value as Buffer);
        else void target.db.put(op.key, op.value);
      }
      void replog.put(recordKey(record.seq, record.epoch, record.ops.length), record.ops);
      this.headPos = { seq: record.seq, epoch: record.epoch };
      this.account(record.seq, record.ops.length);
    }
    if (records.length > 0) {
      const seq = this.headPos.seq;
      replog.put(HEAD_KEY, encodeHead(this.headPos)).then(
        () => this.committed(seq),
        () => {},
      );
    }
    return this.headPos.seq;
  }

  private database(root: RootDatabase, name: string): AttachedDb {
    let found = this.dbs.get(name);
    if (found === undefined) {
      // A database this Warren's store opens lazily (ModelStore's): opened as openDatabase() does.
      found = { db: root.openDB<unknown, Buffer>({ name, keyEncoding: 'binary' }) as Database<unknown, Buffer | string>, binary: false };
      this.dbs.set(name, found);
    }
    return found;
  }

  // ---- Retention ----------------------------------------------------------------------------------

  private account(seq: number, size: number): void {
    let seg = this.segments[this.segments.length - 1];
    if (seg === undefined || seg.bytes >= SEGMENT_BYTES || seg.lastSeq - seg.firstSeq >= SEGMENT_RECORDS) {
      seg = { firstSeq: seq, lastSeq: seq, bytes: 0 };
      this.segments.push(seg);
    }
    seg.lastSeq = seq;
    seg.bytes += size;
    this.bytes += size;
  }

  /**
   * Drops old whole segments while the log is over `retainBytes`: only those every follower still
   * streaming has (below `neededFrom`), unless the log is over `maxBytes`. Returns records dropped.
   */
  trim(neededFrom: number, retainBytes = LOG_RETAIN_BYTES, maxBytes = LOG_MAX_BYTES): number {
    const replog = this.replog;
    if (replog === null) return 0;
    let dropped = 0;
    while (this.segments.length > 1 && this.bytes > retainBytes) {
      const seg = this.segments[0]!;
      if (seg.lastSeq >= this.committedSeq) break;
      if (seg.lastSeq >= neededFrom && this.bytes <= maxBytes) break;
      for (const key of replog.getKeys({ start: recordKeyFrom(seg.firstSeq), end: recordKeyFrom(seg.lastSeq + 1) })) {
        void replog.remove(key as Buffer);
        dropped++;
      }
      this.bytes -= seg.bytes;
      this.segments.shift();
    }
    return dropped;
  }

  /** The oldest record held (head + 1 when none). */
  get firstSeq(): number {
    return this.segments[0]?.firstSeq ?? this.headPos.seq + 1;
  }
}
