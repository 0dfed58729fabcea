// Adding one header to a message's raw property bytes without decoding and re-encoding the whole
// property list: the headers table is found by skipping the two short strings before it, and the
// new field is spliced in at its end (or a table is inserted when the message had none). Used for
// the headers the broker adds at delivery or append time: x-delivery-count (quorum queues) and
// x-stream-offset (streams). A header of the same name sent by the publisher is replaced, as
// RabbitMQ replaces it.

import { readFieldValue } from '../protocol/field-table.js';

const F_CONTENT_TYPE = 1 << 15;
const F_CONTENT_ENCODING = 1 << 14;
const F_HEADERS = 1 << 13;

/** Where the headers table sits in raw properties: its offset (or where it would go) and whether present. */
function locateHeaders(raw: Buffer): { at: number; present: boolean } {
  const flags = raw.readUInt16BE(0);
  let o = 2;
  if (flags & F_CONTENT_TYPE) o += 1 + raw[o]!;
  if (flags & F_CONTENT_ENCODING) o += 1 + raw[o]!;
  return { at: o, present: (flags & F_HEADERS) !== 0 };
}

/** Bytes of the field `key` (name, type and value) inside a table's entries, or null. */
function findField(raw: Buffer, entriesStart: number, entriesEnd: number, key: Buffer): [number, number] | null {
  let pos = entriesStart;
  while (pos < entriesEnd) {
    const start = pos;
    const keyLen = raw[pos]!;
    const nameStart = pos + 1;
    pos = nameStart + keyLen;
    const [, next] = readFieldValue(raw, pos, entriesEnd);
    if (keyLen === key.length && raw.compare(key, 0, keyLen, nameStart, nameStart + keyLen) === 0) return [start, next];
    pos = next;
  }
  return null;
}

/** The encoded field `key` = long (AMQP 'l', signed 64-bit) value. */
function encodeLongField(key: Buffer, value: number): Buffer {
  const field = Buffer.allocUnsafe(1 + key.length + 1 + 8);
  field[0] = key.length;
  key.copy(field, 1);
  field[1 + key.length] = 0x6c; // 'l'
  field.writeBigInt64BE(BigInt(value), 2 + key.length);
  return field;
}

/**
 * Raw properties with header `key` set to the 64-bit integer `value` (replacing a header of that
 * name). `key` is the name as bytes (callers keep it in a constant). Returns a new buffer.
 */
export function withLongHeader(raw: Buffer, key: Buffer, value: number): Buffer {
  const field = encodeLongField(key, value);
  const { at, present } = locateHeaders(raw);
  if (!present) {
    // Insert a table holding just this field where the headers belong, and set the flag.
    const out = Buffer.allocUnsafe(raw.length + 4 + field.length);
    raw.copy(out, 0, 0, at);
    out.writeUInt16BE(raw.readUInt16BE(0) | F_HEADERS, 0);
    out.writeUInt32BE(field.length, at);
    field.copy(out, at + 4);
    raw.copy(out, at + 4 + field.length, at);
    return out;
  }
  const tableLen = raw.readUInt32BE(at);
  const entriesStart = at + 4;
  const entriesEnd = entriesStart + tableLen;
  const existing = findField(raw, entriesStart, entriesEnd, key);
  const removed = existing === null ? 0 : existing[1] - existing[0];
  const out = Buffer.allocUnsafe(raw.length - removed + field.length);
  let o = raw.copy(out, 0, 0, entriesStart);
  out.writeUInt32BE(tableLen - removed + field.length, at);
  if (existing === null) o += raw.copy(out, o, entriesStart, entriesEnd);
  else {
    o += raw.copy(out, o, entriesStart, existing[0]);
    o += raw.copy(out, o, existing[1], entriesEnd);
  }
  o += field.copy(out, o);
  raw.copy(out, o, entriesEnd);
  return out;
}
