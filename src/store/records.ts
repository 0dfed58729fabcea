// What the store keeps, as plain records, and the binary layout of the two hot records: a message
// (written once however many queues hold it) and a queue entry (one per queue holding it).
//
//   message value: u8 format(1) ‖ u64 publishedAt ‖ shortstr exchange ‖ shortstr routingKey
//                  ‖ u32 propertiesLength ‖ properties ‖ body
//   entry value:   u64 messageId ‖ u64 expiresAt (0 = never) ‖ u8 flags ‖ u32 bodySize
//                  [‖ message record, when flags has ENTRY_INLINE]
//
// A message is stored inline in each entry that holds it: one write to store it and one delete to
// acknowledge it, and a queue's range of entries holds everything about its messages (so purging
// or deleting a queue is deleting a key range, never reading bodies). Only a large body (at least
// SHARED_BODY_MIN bytes) held by several durable queues is stored once, in `messages`, referenced
// by id from each entry; `shared` indexes those entries (queue ‖ level ‖ seq → message id) and
// `refs` counts them per message, so the record goes with its last entry.
//
//   counts value:  per priority level: u64 count ‖ u64 bytes ‖ u64 headSeq — the queue's stored
//                  persistent entries, and the lowest seq that may be live (raised by a purge)
//   garbage value: u64 toSeq ‖ u8 flags — entries [fromSeq, toSeq) of a queue level to delete
//
// Topology records (exchanges, queues, bindings) are small and cold: stored as msgpack objects,
// with AMQP argument tables kept as encoded table bytes so every type survives exactly.

import { readU64, writeU64 } from './keys.js';

export const MESSAGE_FORMAT = 1;

/** entry flag: the message was (or may have been) delivered before */
export const ENTRY_REDELIVERED = 1;
/** entry flag: written only to save memory (transient message or non-durable queue); dropped on restart */
export const ENTRY_TRANSIENT = 2;
/** entry flag: the message record follows the entry header in the same value */
export const ENTRY_INLINE = 4;
const ENTRY_HEADER_SIZE = 21;
/** Bodies at least this large, held by several durable queues, are stored once (as RabbitMQ's
 *  message store does above queue_index_embed_msgs_below); smaller ones inline in each entry. */
export const SHARED_BODY_MIN = 4096;

export interface ExchangeRecord {
  id: number;
  vhost: string;
  name: string;
  type: string;
  autoDelete: boolean;
  internal: boolean;
  /** encoded AMQP table */
  args: Uint8Array;
}

export interface QueueRecord {
  id: number;
  vhost: string;
  name: string;
  autoDelete: boolean;
  args: Uint8Array;
}

export interface BindingRecord {
  id: number;
  vhost: string;
  source: string;
  destinationKind: 'queue' | 'exchange';
  destination: string;
  routingKey: string;
  args: Uint8Array;
}

export interface StoredMessage {
  publishedAt: number;
  exchange: string;
  routingKey: string;
  properties: Buffer;
  body: Buffer;
}

export interface StoredEntry {
  queueId: number;
  level: number;
  seq: number;
  messageId: number;
  expiresAt: number;
  flags: number;
  bodySize: number;
  /** the whole value (for inline messages: decodeInlineMessage) */
  value: Buffer;
}

/**
 * Encodes a message record, optionally after `headroom` bytes left for the caller. `routing`, when
 * given, is the exchange and routing key already encoded as two short strings (Message.routingBytes,
 * kept from the publish): the record holds them in that very form, so they are copied instead of
 * being measured and UTF-8-encoded again for every stored entry.
 */
export function encodeMessage(
  publishedAt: number,
  exchange: string,
  routingKey: string,
  properties: Buffer,
  body: Buffer,
  headroom = 0,
  routing: Buffer | null = null,
): Buffer {
  const namesSize = routing !== null ? routing.length : 1 + Buffer.byteLength(exchange) + 1 + Buffer.byteLength(routingKey);
  const size = headroom + 1 + 8 + namesSize + 4 + properties.length + body.length;
  const buf = Buffer.allocUnsafe(size);
  buf[headroom] = MESSAGE_FORMAT;
  writeU64(buf, headroom + 1, publishedAt);
  let o = headroom + 9;
  if (routing !== null) {
    o = copyInto(routing, buf, o);
  } else {
    buf[o] = Buffer.byteLength(exchange);
    o += 1 + buf.write(exchange, o + 1, 'utf8');
    buf[o] = Buffer.byteLength(routingKey);
    o += 1 + buf.write(routingKey, o + 1, 'utf8');
  }
  const n = properties.length;
  buf[o] = n >>> 24;
  buf[o + 1] = n >>> 16;
  buf[o + 2] = n >>> 8;
  buf[o + 3] = n;
  copyInto(body, buf, copyInto(properties, buf, o + 4));
  return buf;
}

/**
 * Copies src into dst at `at`, returning the end. Every stored entry copies its routing names,
 * properties and body, mostly a few dozen bytes: a loop beats Uint8Array#set's call for those.
 */
function copyInto(src: Buffer, dst: Buffer, at: number): number {
  const n = src.length;
  if (n > 32) dst.set(src, at);
  else for (let i = 0; i < n; i++) dst[at + i] = src[i]!;
  return at + n;
}

/** Decodes a message record. The returned buffers are views into value: copy value if it is reused. */
export function decodeMessage(value: Buffer): StoredMessage {
  if (value[0] !== MESSAGE_FORMAT) throw new Error(`unknown message record format ${value[0]}`);
  const publishedAt = readU64(value, 1);
  let o = 9;
  const exchange = value.toString('utf8', o + 1, o + 1 + value[o]!);
  o += 1 + value[o]!;
  const routingKey = value.toString('utf8', o + 1, o + 1 + value[o]!);
  o += 1 + value[o]!;
  const propsLen = value.readUInt32BE(o);
  o += 4;
  const properties = value.subarray(o, o + propsLen);
  const body = value.subarray(o + propsLen);
  return { publishedAt, exchange, routingKey, properties, body };
}

export function encodeEntry(messageId: number, expiresAt: number, flags: number, bodySize: number): Buffer {
  const buf = Buffer.allocUnsafe(ENTRY_HEADER_SIZE);
  writeEntryHeader(buf, messageId, expiresAt, flags, bodySize);
  return buf;
}

/** An entry carrying its message inline (routing: as for encodeMessage). */
export function encodeInlineEntry(
  messageId: number,
  expiresAt: number,
  flags: number,
  publishedAt: number,
  exchange: string,
  routingKey: string,
  properties: Buffer,
  body: Buffer,
  routing: Buffer | null = null,
): Buffer {
  const buf = encodeMessage(publishedAt, exchange, routingKey, properties, body, ENTRY_HEADER_SIZE, routing);
  writeEntryHeader(buf, messageId, expiresAt, flags | ENTRY_INLINE, body.length);
  return buf;
}

export function decodeInlineMessage(value: Buffer): StoredMessage {
  return decodeMessage(value.subarray(ENTRY_HEADER_SIZE));
}

function writeEntryHeader(buf: Buffer, messageId: number, expiresAt: number, flags: number, bodySize: number): void {
  writeU64(buf, 0, messageId);
  writeU64(buf, 8, expiresAt);
  buf[16] = flags;
  buf.writeUInt32BE(bodySize, 17);
}

export function decodeEntryValue(value: Buffer): { messageId: number; expiresAt: number; flags: number; bodySize: number } {
  return { messageId: readU64(value, 0), expiresAt: readU64(value, 8), flags: value[16]!, bodySize: value.readUInt32BE(17) };
}

/** One priority level's stored persistent entries. */
export interface LevelCounts {
  count: number;
  bytes: number;
  /** lowest seq that may be live: entries below it are garbage (a purge moved it up) */
  headSeq: number;
}

const COUNTS_LEVEL_SIZE = 24;

export function encodeCounts(levels: readonly LevelCounts[]): Buffer {
  const buf = Buffer.allocUnsafe(COUNTS_LEVEL_SIZE * levels.length);
  for (let i = 0; i < levels.length; i++) {
    const l = levels[i]!;
    writeU64(buf, i * COUNTS_LEVEL_SIZE, l.count);
    writeU64(buf, i * COUNTS_LEVEL_SIZE + 8, l.bytes);
    writeU64(buf, i * COUNTS_LEVEL_SIZE + 16, l.headSeq);
  }
  return buf;
}

export function decodeCounts(buf: Buffer): LevelCounts[] {
  const out: LevelCounts[] = [];
  for (let o = 0; o + COUNTS_LEVEL_SIZE <= buf.length; o += COUNTS_LEVEL_SIZE) {
    out.push({ count: readU64(buf, o), bytes: readU64(buf, o + 8), headSeq: readU64(buf, o + 16) });
  }
  return out;
}

/** garbage flag: the whole queue is gone — every level, every seq */
export const GARBAGE_WHOLE_QUEUE = 1;
/** garbage flag: only the queue's spill range (entries written to save memory before a restart) */
export const GARBAGE_SPILL_ONLY = 2;

export interface GarbageRange {
  queueId: number;
  level: number;
  fromSeq: number;
  toSeq: number;
  flags: number;
}

export function encodeGarbage(toSeq: number, flags: number): Buffer {
  const buf = Buffer.allocUnsafe(9);
  writeU64(buf, 0, toSeq);
  buf[8] = flags;
  return buf;
}

export function decodeGarbage(buf: Buffer): { toSeq: number; flags: number } {
  return { toSeq: readU64(buf, 0), flags: buf[8] ?? 0 };
}
