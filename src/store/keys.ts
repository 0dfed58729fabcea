// Binary keys for the LMDB databases, built from numeric ids (never from names, which can be long
// and change meaning across vhosts). Big-endian so that byte order is numeric order: a queue's
// entries sort by sequence number and a range scan over one queue is a prefix scan.

const TWO_32 = 4294967296;

function writeU64(buf: Buffer, offset: number, value: number): void {
  buf.writeUInt32BE(Math.floor(value / TWO_32), offset);
  buf.writeUInt32BE(value >>> 0, offset + 4);
}

export function readU64(buf: Buffer, offset: number): number {
  return buf.readUInt32BE(offset) * TWO_32 + buf.readUInt32BE(offset + 4);
}

/** messages: message id (u64) */
export function messageKey(messageId: number): Buffer {
  const key = Buffer.allocUnsafe(8);
  writeU64(key, 0, messageId);
  return key;
}

/** entries: queue id (u32) ‖ seq (u64) */
export function entryKey(queueId: number, seq: number): Buffer {
  const key = Buffer.allocUnsafe(12);
  key.writeUInt32BE(queueId, 0);
  writeU64(key, 4, seq);
  return key;
}

export function parseEntryKey(key: Buffer): { queueId: number; seq: number } {
  return { queueId: key.readUInt32BE(0), seq: readU64(key, 4) };
}

/** delayed: exchange id (u32) ‖ due time (u64 epoch ms) ‖ message id (u64) — sorted by due time */
export function delayedKey(exchangeId: number, dueAt: number, messageId: number): Buffer {
  const key = Buffer.allocUnsafe(20);
  key.writeUInt32BE(exchangeId, 0);
  writeU64(key, 4, dueAt);
  writeU64(key, 12, messageId);
  return key;
}

/** entity databases (exchanges, queues, bindings, watermarks): id (u32) */
export function idKey(id: number): Buffer {
  const key = Buffer.allocUnsafe(4);
  key.writeUInt32BE(id, 0);
  return key;
}

export { writeU64 };
