// AMQP field tables and arrays, with every field type RabbitMQ accepts:
//   t b B s u I i l f d D S A T F V x
// Decoding produces plain JavaScript values (numbers, strings, booleans, nested tables); the few
// types that have no plain equivalent keep their type through wrapper classes (Timestamp, Decimal,
// and TypedValue for forcing an encoding), so that re-encoding reproduces what a client would see.
// 64-bit integers decode to a number when exact and to a bigint otherwise: never a lossy number.
//
// Decoded tables are null-prototype objects so a hostile key such as "__proto__" is just a key.

import { FrameError } from './errors.js';

export type FieldValue =
  | boolean
  | number
  | bigint
  | string
  | Buffer
  | null
  | Timestamp
  | Decimal
  | TypedValue
  | FieldValue[]
  | FieldTable;

export interface FieldTable {
  [key: string]: FieldValue;
}

/**
 * Type letters of a decoded table's fields, when it was decoded with recordTypes (method arguments):
 * RabbitMQ's reply texts name the wire type ("of type 'byte'"). A symbol key, so it never shows up
 * among the table's own keys.
 */
export const FIELD_TYPES: unique symbol = Symbol('amqp field types');

/** The wire type letter of table[key], if the table recorded it. */
export function fieldTypeOf(table: FieldTable, key: string): string | undefined {
  return (table as { [FIELD_TYPES]?: Record<string, string> })[FIELD_TYPES]?.[key];
}

/** A shallow copy of a table that keeps its recorded field types (plain spread would drop them). */
export function copyTable(table: FieldTable | undefined): FieldTable {
  const copy: FieldTable = Object.create(null) as FieldTable;
  if (table === undefined) return copy;
  for (const key in table) copy[key] = table[key]!;
  const types = (table as { [FIELD_TYPES]?: Record<string, string> })[FIELD_TYPES];
  if (types !== undefined) Object.defineProperty(copy, FIELD_TYPES, { value: { ...types }, enumerable: false });
  return copy;
}

/** An AMQP timestamp ('T'): seconds since the epoch, 64-bit unsigned. */
export class Timestamp {
  constructor(readonly seconds: number) {}
  static fromDate(date: Date): Timestamp {
    return new Timestamp(Math.floor(date.getTime() / 1000));
  }
}

/** An AMQP decimal ('D'): value × 10^-scale. */
export class Decimal {
  constructor(
    readonly scale: number,
    readonly value: number,
  ) {}
}

/** A value with an explicit AMQP type letter, for when the natural mapping is not the one wanted. */
export class TypedValue {
  constructor(
    readonly type: 'b' | 'B' | 's' | 'u' | 'I' | 'i' | 'l' | 'f' | 'd' | 'S' | 'x',
    readonly value: number | bigint | string | Buffer,
  ) {}
}

const TWO_32 = 4294967296;

/**
 * Tables and arrays nested deeper than this are refused as undecodable (501 FRAME_ERROR). Decoding,
 * sizing, encoding and comparing tables all recurse, so hostile nesting (a frame can hold tens of
 * thousands of levels) would otherwise exhaust the stack; no client nests anywhere near this deep.
 * RabbitMQ has no such bound (it decodes whatever fits in a frame).
 */
export const MAX_FIELD_NESTING = 128;

function fail(what: string): never {
  throw new FrameError(`cannot decode field table: ${what}`);
}

export function readShortStr(buf: Buffer, offset: number, end: number): [string, number] {
  if (offset >= end) fail('short string past end of frame');
  const len = buf[offset]!;
  const start = offset + 1;
  if (start + len > end) fail('short string past end of frame');
  return [buf.toString('utf8', start, start + len), start + len];
}

/** Reads a table. Returns the table and the offset just after it. */
export function readTable(buf: Buffer, offset: number, end: number, recordTypes = false, depth = 0): [FieldTable, number] {
  if (offset + 4 > end) fail('table length past end of frame');
  const len = buf.readUInt32BE(offset);
  let pos = offset + 4;
  const tableEnd = pos + len;
  if (tableEnd > end) fail('table longer than its frame');
  const table: FieldTable = Object.create(null) as FieldTable;
  const types: Record<string, string> | null = recordTypes ? Object.create(null) : null;
  if (types !== null) Object.defineProperty(table, FIELD_TYPES, { value: types, enumerable: false });
  while (pos < tableEnd) {
    const keyLen = buf[pos]!;
    pos += 1;
    if (pos + keyLen > tableEnd) fail('field name past end of table');
    const key = buf.toString('utf8', pos, pos + keyLen);
    pos += keyLen;
    if (types !== null && pos < tableEnd) types[key] = String.fromCharCode(buf[pos]!);
    const [value, next] = readFieldValue(buf, pos, tableEnd, recordTypes, depth);
    table[key] = value;
    pos = next;
  }
  return [table, tableEnd];
}

function readArray(buf: Buffer, offset: number, end: number, recordTypes: boolean, depth: number): [FieldValue[], number] {
  if (offset + 4 > end) fail('array length past end of frame');
  const len = buf.readUInt32BE(offset);
  let pos = offset + 4;
  const arrayEnd = pos + len;
  if (arrayEnd > end) fail('array longer than its frame');
  const values: FieldValue[] = [];
  const types: string[] | null = recordTypes ? [] : null;
  if (types !== null) Object.defineProperty(values, FIELD_TYPES, { value: types, enumerable: false });
  while (pos < arrayEnd) {
    if (types !== null) types.push(String.fromCharCode(buf[pos]!));
    const [value, next] = readFieldValue(buf, pos, arrayEnd, recordTypes, depth);
    values.push(value);
    pos = next;
  }
  return [values, arrayEnd];
}

function need(pos: number, n: number, end: number): void {
  if (pos + n > end) fail('value past end of table');
}

function readInt64(buf: Buffer, pos: number): number | bigint {
  const big = buf.readBigInt64BE(pos);
  return big >= BigInt(Number.MIN_SAFE_INTEGER) && big <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(big) : big;
}

/** `depth`: how many tables/arrays enclose this value (0 for a value of a top-level table). */
export function readFieldValue(buf: Buffer, offset: number, end: number, recordTypes = false, depth = 0): [FieldValue, number] {
  need(offset, 1, end);
  const type = buf[offset]!;
  let pos = offset + 1;
  switch (type) {
    case 0x74 /* t */:
      need(pos, 1, end);
      return [buf[pos] !== 0, pos + 1];
    case 0x62 /* b */:
      need(pos, 1, end);
      return [buf.readInt8(pos), pos + 1];
    case 0x42 /* B */:
      need(pos, 1, end);
      return [buf[pos]!, pos + 1];
    case 0x73 /* s */:
      need(pos, 2, end);
      return [buf.readInt16BE(pos), pos + 2];
    case 0x75 /* u */:
      need(pos, 2, end);
      return [buf.readUInt16BE(pos), pos + 2];
    case 0x49 /* I */:
      need(pos, 4, end);
      return [buf.readInt32BE(pos), pos + 4];
    case 0x69 /* i */:
      need(pos, 4, end);
      return [buf.readUInt32BE(pos), pos + 4];
    case 0x6c /* l */:
      need(pos, 8, end);
      return [readInt64(buf, pos), pos + 8];
    case 0x66 /* f */:
      need(pos, 4, end);
      return [buf.readFloatBE(pos), pos + 4];
    case 0x64 /* d */:
      need(pos, 8, end);
      return [buf.readDoubleBE(pos), pos + 8];
    case 0x44 /* D */:
      need(pos, 5, end);
      return [new Decimal(buf[pos]!, buf.readUInt32BE(pos + 1)), pos + 5];
    case 0x53 /* S */: {
      need(pos, 4, end);
      const len = buf.readUInt32BE(pos);
      pos += 4;
      need(pos, len, end);
      return [buf.toString('utf8', pos, pos + len), pos + len];
    }
    case 0x78 /* x */: {
      need(pos, 4, end);
      const len = buf.readUInt32BE(pos);
      pos += 4;
      need(pos, len, end);
      return [Buffer.from(buf.subarray(pos, pos + len)), pos + len];
    }
    case 0x41 /* A */:
      if (depth >= MAX_FIELD_NESTING) fail(`nested deeper than ${MAX_FIELD_NESTING} levels`);
      return readArray(buf, pos, end, recordTypes, depth + 1);
    case 0x54 /* T */: {
      need(pos, 8, end);
      const hi = buf.readUInt32BE(pos);
      const lo = buf.readUInt32BE(pos + 4);
      return [new Timestamp(hi * TWO_32 + lo), pos + 8];
    }
    case 0x46 /* F */:
      if (depth >= MAX_FIELD_NESTING) fail(`nested deeper than ${MAX_FIELD_NESTING} levels`);
      return readTable(buf, pos, end, recordTypes, depth + 1);
    case 0x56 /* V */:
      return [null, pos];
    default:
      return fail(`unknown field type '${String.fromCharCode(type)}' (0x${type.toString(16)})`);
  }
}

// ---------------------------------------------------------------------------------------------
// Encoding: sizes are computed first so that callers allocate once and write in place.

function isTable(value: FieldValue): value is FieldTable {
  return (
    typeof value === 'object' &&
    value !== null &&
    !Array.isArray(value) &&
    !Buffer.isBuffer(value) &&
    !(value instanceof Timestamp) &&
    !(value instanceof Decimal) &&
    !(value instanceof TypedValue)
  );
}

const NUMERIC_TYPES = new Set(['b', 'B', 's', 'u', 'I', 'i', 'l', 'f', 'd']);

/** A numeric value re-encoded with the type it was decoded with, when its table or array recorded it. */
function withRecordedType(container: FieldTable | FieldValue[], key: string | number, value: FieldValue): FieldValue {
  if (typeof value !== 'number' && typeof value !== 'bigint') return value;
  const types = (container as { [FIELD_TYPES]?: Record<string, string> | string[] })[FIELD_TYPES];
  const type = types === undefined ? undefined : (types as Record<string | number, string>)[key];
  return type !== undefined && NUMERIC_TYPES.has(type) ? new TypedValue(type as TypedValue['type'], value) : value;
}

/** Bytes of a table including its 4-byte length prefix. */
export function tableSize(table: FieldTable | undefined | null): number {
  let size = 4;
  if (!table) return size;
  for (const key in table) {
    const value = table[key];
    if (value === undefined) continue;
    size += 1 + Buffer.byteLength(key) + fieldValueSize(withRecordedType(table, key, value));
  }
  return size;
}

function arraySize(values: FieldValue[]): number {
  let size = 4;
  for (let i = 0; i < values.length; i++) size += fieldValueSize(withRecordedType(values, i, values[i]!));
  return size;
}

/** Bytes of a value including its type octet. */
export function fieldValueSize(value: FieldValue): number {
  switch (typeof value) {
    case 'boolean':
      return 2;
    case 'number':
      return Number.isInteger(value) && value >= -2147483648 && value <= 2147483647 ? 5 : 9;
    case 'bigint':
      return 9;
    case 'string':
      return 5 + Buffer.byteLength(value);
    default:
      break;
  }
  if (value === null || value === undefined) return 1;
  if (Buffer.isBuffer(value)) return 5 + value.length;
  if (Array.isArray(value)) return 1 + arraySize(value);
  if (value instanceof Timestamp) return 9;
  if (value instanceof Decimal) return 6;
  if (value instanceof TypedValue) return typedSize(value);
  return 1 + tableSize(value);
}

function typedSize(tv: TypedValue): number {
  switch (tv.type) {
    case 'b':
    case 'B':
      return 2;
    case 's':
    case 'u':
      return 3;
    case 'I':
    case 'i':
    case 'f':
      return 5;
    case 'l':
    case 'd':
      return 9;
    case 'S':
    case 'x':
      return 5 + (typeof tv.value === 'string' ? Buffer.byteLength(tv.value) : Buffer.isBuffer(tv.value) ? tv.value.length : 0);
  }
}

export function writeShortStr(buf: Buffer, offset: number, value: string): number {
  const len = buf.write(value, offset + 1, 'utf8');
  if (len > 255) throw new RangeError(`short string longer than 255 bytes: ${value.slice(0, 40)}…`);
  buf[offset] = len;
  return offset + 1 + len;
}

export function writeLongStr(buf: Buffer, offset: number, value: Buffer | string): number {
  const len = typeof value === 'string' ? buf.write(value, offset + 4, 'utf8') : value.copy(buf, offset + 4);
  buf.writeUInt32BE(len, offset);
  return offset + 4 + len;
}

/** Writes a table (with its length prefix) at offset; returns the offset after it. */
export function writeTable(buf: Buffer, offset: number, table: FieldTable | undefined | null): number {
  let pos = offset + 4;
  if (table) {
    for (const key in table) {
      const value = table[key];
      if (value === undefined) continue;
      pos = writeShortStr(buf, pos, key);
      pos = writeFieldValue(buf, pos, withRecordedType(table, key, value));
    }
  }
  buf.writeUInt32BE(pos - offset - 4, offset);
  return pos;
}

function writeArray(buf: Buffer, offset: number, values: FieldValue[]): number {
  let pos = offset + 4;
  for (let i = 0; i < values.length; i++) pos = writeFieldValue(buf, pos, withRecordedType(values, i, values[i]!));
  buf.writeUInt32BE(pos - offset - 4, offset);
  return pos;
}

function writeInt64(buf: Buffer, pos: number, value: number | bigint): number {
  buf.writeBigInt64BE(typeof value === 'bigint' ? value : BigInt(value), pos);
  return pos + 8;
}

export function writeFieldValue(buf: Buffer, offset: number, value: FieldValue): number {
  let pos = offset + 1;
  switch (typeof value) {
    case 'boolean':
      buf[offset] = 0x74;
      buf[pos] = value ? 1 : 0;
      return pos + 1;
    case 'number':
      if (Number.isInteger(value)) {
        if (value >= -2147483648 && value <= 2147483647) {
          buf[offset] = 0x49;
          buf.writeInt32BE(value, pos);
          return pos + 4;
        }
        // Integral but beyond 64 bits (a decoded double such as 1e20): keep it a double.
        if (Math.abs(value) < 2 ** 63) {
          buf[offset] = 0x6c;
          return writeInt64(buf, pos, value);
        }
      }
      buf[offset] = 0x64;
      buf.writeDoubleBE(value, pos);
      return pos + 8;
    case 'bigint':
      buf[offset] = 0x6c;
      return writeInt64(buf, pos, value);
    case 'string':
      buf[offset] = 0x53;
      return writeLongStr(buf, pos, value);
    default:
      break;
  }
  if (value === null || value === undefined) {
    buf[offset] = 0x56;
    return pos;
  }
  if (Buffer.isBuffer(value)) {
    buf[offset] = 0x78;
    return writeLongStr(buf, pos, value);
  }
  if (Array.isArray(value)) {
    buf[offset] = 0x41;
    return writeArray(buf, pos, value);
  }
  if (value instanceof Timestamp) {
    buf[offset] = 0x54;
    buf.writeUInt32BE(Math.floor(value.seconds / TWO_32), pos);
    buf.writeUInt32BE(value.seconds % TWO_32, pos + 4);
    return pos + 8;
  }
  if (value instanceof Decimal) {
    buf[offset] = 0x44;
    buf[pos] = value.scale;
    buf.writeUInt32BE(value.value, pos + 1);
    return pos + 5;
  }
  if (value instanceof TypedValue) return writeTyped(buf, offset, value);
  if (isTable(value)) {
    buf[offset] = 0x46;
    return writeTable(buf, pos, value);
  }
  throw new TypeError(`cannot encode field value of type ${typeof value}`);
}

function writeTyped(buf: Buffer, offset: number, tv: TypedValue): number {
  buf[offset] = tv.type.charCodeAt(0);
  const pos = offset + 1;
  const n = tv.value as number;
  switch (tv.type) {
    case 'b':
      buf.writeInt8(n, pos);
      return pos + 1;
    case 'B':
      buf.writeUInt8(n, pos);
      return pos + 1;
    case 's':
      buf.writeInt16BE(n, pos);
      return pos + 2;
    case 'u':
      buf.writeUInt16BE(n, pos);
      return pos + 2;
    case 'I':
      buf.writeInt32BE(n, pos);
      return pos + 4;
    case 'i':
      buf.writeUInt32BE(n, pos);
      return pos + 4;
    case 'f':
      buf.writeFloatBE(n, pos);
      return pos + 4;
    case 'l':
      return writeInt64(buf, pos, tv.value as number | bigint);
    case 'd':
      buf.writeDoubleBE(n, pos);
      return pos + 8;
    case 'S':
    case 'x':
      return writeLongStr(buf, pos, tv.value as string | Buffer);
  }
}

/** Encodes a table into a fresh buffer (including its length prefix). */
export function encodeTable(table: FieldTable): Buffer {
  const buf = Buffer.allocUnsafe(tableSize(table));
  writeTable(buf, 0, table);
  return buf;
}

/** Decodes a whole buffer holding one table (with its length prefix), recording field types. */
export function decodeTable(buf: Buffer): FieldTable {
  return readTable(buf, 0, buf.length, true)[0];
}
