// Binary keys for the LMDB databases, built from numeric ids (never from names, which can be long
// and change meaning across vhosts). Big-endian so that byte order is numeric order: a queue's
// entries sort by priority level, then sequence number, so one level of one queue is one range.

const TWO_32 = 4294967296;
/** The largest sequence number / time a key can hold (2^53 - 1 fits a u64). */
export const MAX_SEQ = Number.MAX_SAFE_INTEGER;

/**
 * Big-endian u64 (value up to 2^53 - 1) as plain element stores: written for every stored and
 * removed entry, where Buffer#writeUInt32BE's argument checks showed in profiles.
 */
function writeU64(buf: Buffer, offset: number, value: number): void {
  put32(buf, offset, Math.floor(value / TWO_32));
  put32(buf, offset + 4, value >>> 0);
}

/** Big-endian u32; a Uint8Array keeps the low 8 bits of each store. */
function put32(buf: Buffer, o: number, v: number): void {
  buf[o] = v >>> 24;
  buf[o + 1] = v >>> 16;
  buf[o + 2] = v >>> 8;
  buf[o + 3] = v;
}

export function readU64(buf: Buffer, offset: number): number {
  return buf.readUInt32BE(offset) * TWO_32 + buf.readUInt32BE(offset + 4);
}

/**
 * Entries written only to save memory (transient messages of durable queues) live under the
 * queue's id with this bit set: a separate range that recovery drops whole, without reading it.
 */
export const SPILL_BIT = 0x80000000;

/** messages, refs: message id (u64) */
export function messageKey(messageId: number): Buffer {
  const key = Buffer.allocUnsafe(8);
  writeU64(key, 0, messageId);
  return key;
}

export const ENTRY_KEY_SIZE = 13;

/** entries, shared: queue id (u32, SPILL_BIT for spilled entries) ‖ level (u8) ‖ seq (u64) */
export function entryKey(queueId: number, level: number, seq: number): Buffer {
  return writeEntryKey(Buffer.allocUnsafe(ENTRY_KEY_SIZE), queueId, level, seq);
}

/** entryKey() written into `key` (ENTRY_KEY_SIZE bytes), which it returns. */
export function writeEntryKey(key: Buffer, queueId: number, level: number, seq: number): Buffer {
  put32(key, 0, queueId >>> 0);
  key[4] = level;
  writeU64(key, 5, seq);
  return key;
}

export function parseEntryKey(key: Buffer): { queueId: number; level: number; seq: number } {
  return { queueId: key.readUInt32BE(0), level: key[4]!, seq: readU64(key, 5) };
}

/** delayed: exchange id (u32, SPILL_BIT when paged from a non-durable exchange) ‖ due (u64) ‖ message id (u64) */
export function delayedKey(exchangeId: number, dueAt: number, messageId: number): Buffer {
  const key = Buffer.allocUnsafe(20);
  key.writeUInt32BE(exchangeId >>> 0, 0);
  writeU64(key, 4, dueAt);
  writeU64(key, 12, messageId);
  return key;
}

/** garbage: queue id (u32) ‖ level (u8) ‖ first seq (u64) — a range of entries to sweep */
export function garbageKey(queueId: number, level: number, fromSeq: number): Buffer {
  return entryKey(queueId, level, fromSeq);
}

/** entity databases (exchanges, queues, bindings, watermarks, counts): id (u32) */
export function idKey(id: number): Buffer {
  const key = Buffer.allocUnsafe(4);
  key.writeUInt32BE(id >>> 0, 0);
  return key;
}

export { writeU64 };
