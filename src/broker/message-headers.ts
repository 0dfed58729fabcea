// Adding one header to a message's raw property bytes without decoding and re-encoding the whole
// property list: the headers table is found by skipping the two short strings before it, and the
// new field is spliced in at its end (or a table is inserted when the message had none). Used for
// the headers the broker adds at delivery or append time: x-delivery-count (quorum queues) and
// x-stream-offset (streams). A header of the same name sent by the publisher is replaced, as
// RabbitMQ replaces it.
//
// LongHeaderSplice writes straight into a caller's buffer (a stream's write buffer), so appending
// to a stream allocates nothing for it; withLongHeader() returns a new buffer.

import { readFieldValue } from '../protocol/field-table.js';

const F_CONTENT_TYPE = 1 << 15;
const F_CONTENT_ENCODING = 1 << 14;
const F_HEADERS = 1 << 13;

/** Bytes of a field: name length, name, type 'l', 8 value bytes. */
const fieldSize = (key: Buffer): number => 1 + key.length + 1 + 8;

/** Raw properties with one 64-bit integer header set; measured first, then written anywhere. */
export class LongHeaderSplice {
  private raw: Buffer = Buffer.alloc(2);
  private value = 0;
  /** where the headers table is (or would go) */
  private tableAt = 0;
  private present = false;
  private tableLen = 0;
  /** bytes of an existing field of the same name, when there is one */
  private existingStart = -1;
  private existingEnd = -1;
  /** bytes of the result */
  size = 0;

  constructor(private readonly key: Buffer) {}

  /** Measures raw + the header; returns the size of the result. */
  prepare(raw: Buffer, value: number): number {
    this.raw = raw;
    this.value = value;
    const flags = raw.readUInt16BE(0);
    let o = 2;
    if (flags & F_CONTENT_TYPE) o += 1 + raw[o]!;
    if (flags & F_CONTENT_ENCODING) o += 1 + raw[o]!;
    this.tableAt = o;
    this.present = (flags & F_HEADERS) !== 0;
    this.existingStart = this.existingEnd = -1;
    const field = fieldSize(this.key);
    if (!this.present) return (this.size = raw.length + 4 + field);
    this.tableLen = raw.readUInt32BE(o);
    this.findExisting(o + 4, o + 4 + this.tableLen);
    const removed = this.existingStart < 0 ? 0 : this.existingEnd - this.existingStart;
    return (this.size = raw.length - removed + field);
  }

  private findExisting(start: number, end: number): void {
    const raw = this.raw;
    const key = this.key;
    let pos = start;
    while (pos < end) {
      const fieldStart = pos;
      const keyLen = raw[pos]!;
      const nameStart = pos + 1;
      pos = nameStart + keyLen;
      const [, next] = readFieldValue(raw, pos, end);
      if (keyLen === key.length && raw.compare(key, 0, keyLen, nameStart, nameStart + keyLen) === 0) {
        this.existingStart = fieldStart;
        this.existingEnd = next;
        return;
      }
      pos = next;
    }
  }

  private writeField(dst: Buffer, at: number): number {
    const key = this.key;
    dst[at] = key.length;
    key.copy(dst, at + 1);
    dst[at + 1 + key.length] = 0x6c; // 'l'
    dst.writeBigInt64BE(BigInt(this.value), at + 2 + key.length);
    return at + fieldSize(key);
  }

  /** Writes the prepared result at dst[at]; returns the offset after it. */
  writeTo(dst: Buffer, at: number): number {
    const raw = this.raw;
    const tableAt = this.tableAt;
    const field = fieldSize(this.key);
    if (!this.present) {
      raw.copy(dst, at, 0, tableAt);
      dst.writeUInt16BE(raw.readUInt16BE(0) | F_HEADERS, at);
      dst.writeUInt32BE(field, at + tableAt);
      let o = this.writeField(dst, at + tableAt + 4);
      o += raw.copy(dst, o, tableAt);
      return o;
    }
    const entriesStart = tableAt + 4;
    const entriesEnd = entriesStart + this.tableLen;
    const removed = this.existingStart < 0 ? 0 : this.existingEnd - this.existingStart;
    let o = at + raw.copy(dst, at, 0, entriesStart);
    dst.writeUInt32BE(this.tableLen - removed + field, at + tableAt);
    if (this.existingStart < 0) o += raw.copy(dst, o, entriesStart, entriesEnd);
    else {
      o += raw.copy(dst, o, entriesStart, this.existingStart);
      o += raw.copy(dst, o, this.existingEnd, entriesEnd);
    }
    o = this.writeField(dst, o);
    o += raw.copy(dst, o, entriesEnd);
    return o;
  }
}

/**
 * Raw properties with header `key` set to the 64-bit integer `value` (replacing a header of that
 * name). `key` is the name as bytes (callers keep it in a constant). Returns a new buffer.
 */
export function withLongHeader(raw: Buffer, key: Buffer, value: number): Buffer {
  const splice = new LongHeaderSplice(key);
  const out = Buffer.allocUnsafe(splice.prepare(raw, value));
  splice.writeTo(out, 0);
  return out;
}
