// The binary form of the replication log: what a leader appends to its `replog` database in the
// same LMDB transaction as the writes it describes, ships to followers, and what they apply.
//
//   replog key 0x00                       → head: u64 seq ‖ u64 epoch (the last record's)
//   replog key 0x01 ‖ u64 seq ‖ u64 epoch ‖ u32 size → one record: the writes of one transaction
//
// Seq and epoch in the key let a leader check a follower's position (does my log hold (seq,
// epoch)?) and sum the log's size without reading any value. A record is a list of operations:
//
//   op:  u8 kind ‖ u8 db ‖ [shortstr db name when db = 255] ‖ u8 keyType ‖ u16 keyLen ‖ key
//        ‖ (puts) u32 valueLen ‖ value
//
// kind: PUT_BINARY (value bytes as they are, for binary databases), PUT_OBJECT (a structured value
// — msgpack databases — as v8.serialize), REMOVE. Databases are numbered from a fixed table, with
// any other name spelled out, so a database added later replicates without a format change.

import { deserialize, serialize } from 'node:v8';

export const REPLOG_DB = 'replog';
export const HEAD_KEY = Buffer.from([0]);
const RECORD_PREFIX = 1;
export const RECORD_KEY_SIZE = 21;

export const OP_PUT_BINARY = 1;
export const OP_PUT_OBJECT = 2;
export const OP_REMOVE = 3;

const KEY_BINARY = 0;
const KEY_STRING = 1;

/** Databases known by number (names as the store opens them). */
export const KNOWN_DBS: readonly string[] = [
  'meta',
  'exchanges',
  'queues',
  'bindings',
  'messages',
  'queue-entries',
  'shared',
  'refs',
  'counts',
  'garbage',
  'delivered',
  'delayed',
  'model',
];
const NAMED_DB = 255;

const TWO_32 = 4294967296;

function writeU64(buf: Buffer, offset: number, value: number): void {
  buf.writeUInt32BE(Math.floor(value / TWO_32), offset);
  buf.writeUInt32BE(value >>> 0, offset + 4);
}

function readU64(buf: Buffer, offset: number): number {
  return buf.readUInt32BE(offset) * TWO_32 + buf.readUInt32BE(offset + 4);
}

export interface LogPosition {
  seq: number;
  epoch: number;
}

export function encodeHead(p: LogPosition): Buffer {
  const buf = Buffer.allocUnsafe(16);
  writeU64(buf, 0, p.seq);
  writeU64(buf, 8, p.epoch);
  return buf;
}

export function decodeHead(buf: Buffer | undefined): LogPosition {
  if (buf === undefined || buf.length < 16) return { seq: 0, epoch: 0 };
  return { seq: readU64(buf, 0), epoch: readU64(buf, 8) };
}

export function recordKey(seq: number, epoch: number, size: number): Buffer {
  const key = Buffer.allocUnsafe(RECORD_KEY_SIZE);
  key[0] = RECORD_PREFIX;
  writeU64(key, 1, seq);
  writeU64(key, 9, epoch);
  key.writeUInt32BE(size >>> 0, 17);
  return key;
}

/** The first key of the record numbered seq (whatever its epoch and size). */
export function recordKeyFrom(seq: number): Buffer {
  return recordKey(seq, 0, 0);
}

export interface RecordKeyInfo {
  seq: number;
  epoch: number;
  size: number;
}

export function parseRecordKey(key: Buffer): RecordKeyInfo | null {
  if (key.length !== RECORD_KEY_SIZE || key[0] !== RECORD_PREFIX) return null;
  return { seq: readU64(key, 1), epoch: readU64(key, 9), size: key.readUInt32BE(17) };
}

/** A record as shipped: its position and its operations. */
export interface LogRecord {
  seq: number;
  epoch: number;
  ops: Buffer;
}

/** Collects the operations of one transaction as buffer parts (values are not copied until built). */
export class OpBuilder {
  private parts: Buffer[] = [];
  private bytes = 0;

  get empty(): boolean {
    return this.parts.length === 0;
  }

  get size(): number {
    return this.bytes;
  }

  put(db: string, key: Buffer | string, value: unknown, binary: boolean): void {
    if (binary && value instanceof Uint8Array) {
      this.header(OP_PUT_BINARY, db, key);
      const v = Buffer.isBuffer(value) ? value : Buffer.from(value.buffer, value.byteOffset, value.byteLength);
      this.lengthPrefixed(v);
    } else {
      this.header(OP_PUT_OBJECT, db, key);
      this.lengthPrefixed(serialize(value));
    }
  }

  remove(db: string, key: Buffer | string): void {
    this.header(OP_REMOVE, db, key);
  }

  /** The operations so far as one buffer; the builder starts over. */
  take(): Buffer {
    const out = Buffer.concat(this.parts, this.bytes);
    this.parts = [];
    this.bytes = 0;
    return out;
  }

  private header(kind: number, db: string, key: Buffer | string): void {
    const index = KNOWN_DBS.indexOf(db);
    const nameLen = index < 0 ? Buffer.byteLength(db) : 0;
    const keyBuf = typeof key === 'string' ? Buffer.from(key, 'utf8') : key;
    const head = Buffer.allocUnsafe(2 + (index < 0 ? 1 + nameLen : 0) + 3);
    let o = 0;
    head[o++] = kind;
    head[o++] = index < 0 ? NAMED_DB : index;
    if (index < 0) {
      head[o++] = nameLen;
      o += head.write(db, o, 'utf8');
    }
    head[o++] = typeof key === 'string' ? KEY_STRING : KEY_BINARY;
    head.writeUInt16BE(keyBuf.length, o);
    this.push(head);
    this.push(keyBuf);
  }

  private lengthPrefixed(value: Buffer): void {
    const len = Buffer.allocUnsafe(4);
    len.writeUInt32BE(value.length, 0);
    this.push(len);
    this.push(value);
  }

  private push(b: Buffer): void {
    this.parts.push(b);
    this.bytes += b.length;
  }
}

export interface DecodedOp {
  kind: number;
  db: string;
  key: Buffer | string;
  /** PUT_BINARY: the bytes (a view into the record); PUT_OBJECT: the structured value */
  value: unknown;
}

/** Decodes a record's operations; throws on a malformed record (the stream is then dropped). */
export function decodeOps(ops: Buffer): DecodedOp[] {
  const out: DecodedOp[] = [];
  let o = 0;
  while (o < ops.length) {
    const kind = ops[o++]!;
    const index = ops[o++]!;
    let db: string;
    if (index === NAMED_DB) {
      const len = ops[o++]!;
      db = ops.toString('utf8', o, o + len);
      o += len;
    } else {
      const known = KNOWN_DBS[index];
      if (known === undefined) throw new Error(`replication record names unknown database #${index}`);
      db = known;
    }
    const keyType = ops[o++]!;
    const keyLen = ops.readUInt16BE(o);
    o += 2;
    const keyBytes = ops.subarray(o, o + keyLen);
    o += keyLen;
    const key = keyType === KEY_STRING ? keyBytes.toString('utf8') : Buffer.from(keyBytes);
    let value: unknown = undefined;
    if (kind === OP_PUT_BINARY || kind === OP_PUT_OBJECT) {
      const len = ops.readUInt32BE(o);
      o += 4;
      const bytes = ops.subarray(o, o + len);
      o += len;
      value = kind === OP_PUT_BINARY ? bytes : deserialize(bytes);
    } else if (kind !== OP_REMOVE) {
      throw new Error(`replication record has unknown operation ${kind}`);
    }
    if (o > ops.length) throw new Error('replication record is truncated');
    out.push({ kind, db, key, value });
  }
  return out;
}
