// Looking for keys in an encoded field table without decoding it. A published message with headers
// needs only one answer on the hot path — does its table have a top-level "CC" or "BCC" key
// (sender-selected distribution)? — and decoding the whole table into objects and strings for that
// costs more than everything else the broker does with the message. The scan here walks the
// encoded fields, skipping each value by its type octet and length, and allocates nothing.
//
// Safe as a filter in front of readTable(): it accepts a table only when every check readTable()
// makes passes (lengths inside the table and frame, known type octets, same rules for nested tables
// and arrays), so "valid, no such key" means readTable() would succeed and find no such key. In
// every other case (a key found, a malformed table, nesting deeper than the scan goes) the caller
// decodes the table as before, which gives the same result or the same error as before.

import { readU32 } from './bytes.js';

/** scanRoutingHeaderKeys(): the table could not be vouched for; decode it to find out. */
export const SCAN_DECODE = -1;
/** bits of a successful scan */
export const SCAN_HAS_CC = 1;
export const SCAN_HAS_BCC = 2;

/** Nesting the scan follows before handing the table to the full decoder. */
const MAX_SCAN_DEPTH = 8;

/**
 * What follows each type octet, by octet: the size of a fixed-size value (0 for V), or one of the
 * markers below; UNKNOWN for every octet readFieldValue() refuses. One table load instead of a
 * switch per field: the scan runs for every published message with headers.
 */
const UNKNOWN = -1;
const LONG_BYTES = -2; // S, x: a 4-byte length, then that many bytes
const NESTED_TABLE = -3; // F
const NESTED_ARRAY = -4; // A
const VALUE_SIZE = new Int8Array(256).fill(UNKNOWN);
for (const [type, size] of [
  ['V', 0], ['t', 1], ['b', 1], ['B', 1], ['s', 2], ['u', 2], ['I', 4], ['i', 4], ['f', 4], ['D', 5],
  ['l', 8], ['d', 8], ['T', 8], ['S', LONG_BYTES], ['x', LONG_BYTES], ['F', NESTED_TABLE], ['A', NESTED_ARRAY],
] as const) {
  VALUE_SIZE[type.charCodeAt(0)] = size;
}


/**
 * Scans the table at buf[offset] (with its 4-byte length; the frame ends at end) for the top-level
 * keys "CC" and "BCC". Returns SCAN_HAS_CC | SCAN_HAS_BCC bits (0: neither), or SCAN_DECODE when
 * the table is malformed or nested too deeply to vouch for.
 */
export function scanRoutingHeaderKeys(buf: Buffer, offset: number, end: number): number {
  if (offset + 4 > end) return SCAN_DECODE;
  const tableEnd = offset + 4 + readU32(buf, offset);
  if (tableEnd > end) return SCAN_DECODE;
  let found = 0;
  let pos = offset + 4;
  while (pos < tableEnd) {
    const keyLen = buf[pos]!;
    const key = pos + 1;
    pos = key + keyLen;
    if (pos > tableEnd) return SCAN_DECODE;
    if (keyLen === 2 && buf[key] === 0x43 && buf[key + 1] === 0x43) found |= SCAN_HAS_CC;
    else if (keyLen === 3 && buf[key] === 0x42 && buf[key + 1] === 0x43 && buf[key + 2] === 0x43) found |= SCAN_HAS_BCC;
    pos = skipFieldValue(buf, pos, tableEnd, 0);
    if (pos < 0) return SCAN_DECODE;
  }
  return found;
}

/** Offset just past the value (type octet first) at pos, or -1 where readFieldValue() would fail. */
function skipFieldValue(buf: Buffer, pos: number, end: number, depth: number): number {
  if (pos >= end) return -1;
  const size = VALUE_SIZE[buf[pos]!]!;
  pos += 1;
  let next: number;
  if (size >= 0) next = pos + size;
  else if (size === LONG_BYTES) {
    if (pos + 4 > end) return -1;
    next = pos + 4 + readU32(buf, pos);
  } else if (size === NESTED_TABLE) return skipNested(buf, pos, end, depth, true);
  else if (size === NESTED_ARRAY) return skipNested(buf, pos, end, depth, false);
  else return -1; // unknown type octet: readFieldValue() rejects it
  return next > end ? -1 : next;
}

/** Skips a nested table or array (its 4-byte length first); -1 if malformed or too deep. */
function skipNested(buf: Buffer, pos: number, end: number, depth: number, table: boolean): number {
  if (depth >= MAX_SCAN_DEPTH || pos + 4 > end) return -1;
  const nestedEnd = pos + 4 + readU32(buf, pos);
  if (nestedEnd > end) return -1;
  pos += 4;
  while (pos < nestedEnd) {
    if (table) {
      pos += 1 + buf[pos]!;
      if (pos > nestedEnd) return -1;
    }
    pos = skipFieldValue(buf, pos, nestedEnd, depth + 1);
    if (pos < 0) return -1;
  }
  return nestedEnd;
}
