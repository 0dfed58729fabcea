// basic.publish decoded on the publish hot path. A publisher nearly always sends to the same exchange
// with the same routing key, message after message; the general decoder (generated/amqp.ts) makes
// two new strings from them every time, and every delivery then encodes them back into bytes for
// basic.deliver. Here the two short strings are kept as they arrived, once per distinct pair: when
// the next publish carries the same bytes, the strings decoded last time and those very bytes
// (the exchange and routing-key part of basic.deliver) are used again. A publisher cycling through
// many routing keys finds its pairs in a small process-wide cache instead.
//
// Safe because: the bytes compared are the whole of both short strings with their lengths, so equal
// bytes decode to equal strings; the wire bytes are reused for delivery only when they are ASCII,
// where decoding and re-encoding gives the same bytes back (a non-ASCII string is re-encoded as
// before, so invalid UTF-8 comes out replaced exactly as it did); and a frame the checks below do
// not accept is left to the general decoder, which reports it as it always did.

import { BASIC_PUBLISH, type BasicPublish } from './generated/amqp.js';
import { readU16 } from './bytes.js';

/** An exchange and routing key as they arrived (both short strings), and decoded. */
export interface RoutingNames {
  /** hashBytes of raw */
  readonly hash: number;
  /** own copy of the bytes */
  readonly raw: Buffer;
  /** raw.length as a small integer (a typed array's length is a float64 in optimized code) */
  readonly length: number;
  /** a view of raw, for comparing 4 bytes at a time */
  readonly rawView: DataView<ArrayBufferLike>;
  readonly exchange: string;
  readonly routingKey: string;
  /** raw may be written as it is into basic.deliver (ASCII) */
  readonly reusable: boolean;
  /**
   * Kept here for the broker, which makes it on first use (its route memo: the queues these names
   * routed to, so that the one lookup that finds the names finds the route too). Never read here:
   * the decoder knows nothing of routing.
   */
  routeMemo: unknown;
}

/**
 * Pairs seen recently, for publishers that cycle through many routing keys (a topic workload) and so
 * miss their channel's last pair. Shared by every channel of the process (bytes decode to the same
 * strings everywhere); at most RECENT_LIMIT pairs, dropped all at once when full, as the topic
 * exchange's cache.
 *
 * A table of its own rather than a Map: open addressing over twice as many slots as pairs, probed
 * from the slot of the pair's hash to the first empty one (so a probe is short and always ends).
 * A Map keyed by the hash costs a hash of the hash and a chain walk per message, and kept one pair
 * per hash, so two busy pairs with equal hashes kept replacing each other.
 */
export const RECENT_LIMIT = 4096;
const SLOTS = RECENT_LIMIT * 2; // a power of two
const SLOT_MASK = SLOTS - 1;
const recentSlots: (RoutingNames | undefined)[] = new Array<RoutingNames | undefined>(SLOTS).fill(undefined);
let recentCount = 0;
/**
 * Each slot's hash (-1: empty), length and bytes (the first INLINE_WORDS * 4, which is all of a
 * pair under 32 bytes, its last 0-3 bytes packed in one word), in flat arrays: a lookup
 * compares against one run of memory instead of following the pair object to its copy of the bytes
 * (perf annotate showed each of those loads as a cache miss among a thousand pairs).
 */
const INLINE_WORDS = 8;
const slotHashes = new Int32Array(SLOTS).fill(-1);
const slotLengths = new Int32Array(SLOTS);
const slotWords = new Int32Array(SLOTS * INLINE_WORDS);

/** The hash the shared cache files these name bytes under (for tests of pairs with equal hashes). */
export function routingNamesHash(bytes: Buffer): number {
  return hashBytes(new DataView(bytes.buffer, bytes.byteOffset, bytes.length), 0, bytes.length);
}

/** How many pairs the shared cache holds (for tests of its bound). */
export function recentRoutingNames(): number {
  return recentCount;
}

/** The recent pair whose bytes are view[start, end) (hash is hashBytes of them), or undefined. */
function findRecent(view: DataView<ArrayBufferLike>, start: number, end: number, hash: number): RoutingNames | undefined {
  const n = end - start;
  for (let i = hash & SLOT_MASK; ; i = (i + 1) & SLOT_MASK) {
    const h = slotHashes[i]!;
    if (h === -1) return undefined;
    if (h === hash && slotLengths[i] === n && sameInline(i, n, view, start)) return recentSlots[i];
  }
}

/** Whether the pair in slot i (n bytes long) has the bytes view[start, start + n). */
function sameInline(slot: number, n: number, view: DataView<ArrayBufferLike>, start: number): boolean {
  const full = n >> 2;
  const base = slot * INLINE_WORDS;
  if (full < INLINE_WORDS) {
    // All inline: the whole words, then the last 0-3 bytes packed into one more word.
    for (let k = 0; k < full; k++) if (slotWords[base + k] !== view.getInt32(start + 4 * k)) return false;
    return slotWords[base + full] === tailWord(view, start + 4 * full, n & 3);
  }
  for (let k = 0; k < INLINE_WORDS; k++) if (slotWords[base + k] !== view.getInt32(start + 4 * k)) return false;
  // Longer names: the rest from the pair's own copy.
  const raw = recentSlots[slot]!.rawView;
  for (let j = 4 * INLINE_WORDS; j < n; j++) if (raw.getUint8(j) !== view.getUint8(start + j)) return false;
  return true;
}

/** The count (0-3) bytes at view[at, …) packed into one word. */
function tailWord(view: DataView<ArrayBufferLike>, at: number, count: number): number {
  let w = 0;
  for (let j = 0; j < count; j++) w |= view.getUint8(at + j) << (8 * j);
  return w;
}

function addRecent(names: RoutingNames): void {
  if (recentCount >= RECENT_LIMIT) {
    recentSlots.fill(undefined);
    slotHashes.fill(-1);
    recentCount = 0;
  }
  let i = names.hash & SLOT_MASK;
  while (slotHashes[i] !== -1) i = (i + 1) & SLOT_MASK;
  recentSlots[i] = names;
  slotHashes[i] = names.hash;
  slotLengths[i] = names.length;
  const raw = names.rawView;
  const full = names.length >> 2;
  const base = i * INLINE_WORDS;
  for (let k = 0; k < full && k < INLINE_WORDS; k++) slotWords[base + k] = raw.getInt32(4 * k);
  if (full < INLINE_WORDS) slotWords[base + full] = tailWord(raw, 4 * full, names.length & 3);
  recentCount++;
}

export class PublishDecoder {
  /** this channel's last pair: the names of the publish decoded last (null before the first) */
  names: RoutingNames | null = null;
  /** basic.deliver's exchange + routing-key bytes for the publish decoded last, or null */
  routingBytes: Buffer | null = null;

  /**
   * Decodes basic.publish arguments at buf[o, e) (after the method id). Returns undefined when the
   * arguments are truncated: the caller then uses the general decoder, which says why.
   */
  decode(buf: Buffer, o: number, e: number): BasicPublish | undefined {
    const exAt = o + 2;
    if (exAt >= e) return undefined;
    const rkAt = exAt + 1 + buf[exAt]!;
    if (rkAt >= e) return undefined;
    const bitsAt = rkAt + 1 + buf[rkAt]!;
    if (bitsAt >= e) return undefined;
    const view = dataViewOf(buf);
    let names: RoutingNames | null | undefined = this.names;
    if (names === null || !sameBytes(names, view, exAt, bitsAt)) {
      const hash = hashBytes(view, exAt, bitsAt);
      names = findRecent(view, exAt, bitsAt, hash);
      if (names === undefined) {
        const raw = Buffer.from(buf.subarray(exAt, bitsAt));
        names = {
          hash,
          raw,
          length: bitsAt - exAt,
          rawView: new DataView(raw.buffer, raw.byteOffset, raw.length),
          exchange: buf.toString('utf8', exAt + 1, rkAt),
          routingKey: buf.toString('utf8', rkAt + 1, bitsAt),
          reusable: isAscii(buf, exAt, bitsAt),
          routeMemo: null,
        };
        addRecent(names);
      }
      this.names = names;
    }
    this.routingBytes = names.reusable ? names.raw : null;
    const bits = buf[bitsAt]!;
    return {
      id: BASIC_PUBLISH,
      reserved1: readU16(buf, o),
      exchange: names.exchange,
      routingKey: names.routingKey,
      mandatory: (bits & 1) !== 0,
      immediate: (bits & 2) !== 0,
    };
  }
}

/**
 * A DataView over the buffer decoded last. Hashing and comparing the names 4 bytes at a time
 * through it costs half of doing it byte by byte through the Buffer; a socket read holds hundreds of
 * publishes, so the view is made about once per read. Held process-wide, it keeps at most one read
 * buffer alive.
 */
let lastView: DataView<ArrayBufferLike> = new DataView(new ArrayBuffer(0));
let lastViewOf: Buffer | null = null;

function dataViewOf(buf: Buffer): DataView<ArrayBufferLike> {
  if (buf !== lastViewOf) {
    lastView = new DataView(buf.buffer, buf.byteOffset, buf.length);
    lastViewOf = buf;
  }
  return lastView;
}

/**
 * Whether the names' bytes equal view[start, end). A loop beats a native compare for strings this
 * short. It runs from the end: the exchange name comes first and rarely changes, while routing keys
 * that do change (a topic publisher cycling through keys) mostly differ in their last words.
 */
function sameBytes(names: RoutingNames, view: DataView<ArrayBufferLike>, start: number, end: number): boolean {
  let n = names.length;
  if (n !== end - start) return false;
  const raw = names.rawView;
  for (; n >= 4; n -= 4) if (raw.getInt32(n - 4) !== view.getInt32(start + n - 4)) return false;
  for (; n > 0; n--) if (raw.getUint8(n - 1) !== view.getUint8(start + n - 1)) return false;
  return true;
}

/** A hash of view[start, end), 4 bytes a step (multiply and rotate, then a final mix); a Smi. */
function hashBytes(view: DataView<ArrayBufferLike>, start: number, end: number): number {
  let h = (end - start) | 0;
  let i = start;
  for (; i + 4 <= end; i += 4) {
    h = Math.imul(h ^ view.getInt32(i), 0x9e3779b1);
    h = (h << 13) | (h >>> 19);
  }
  for (; i < end; i++) h = Math.imul(h ^ view.getUint8(i), 0x01000193);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  return h & 0x3fffffff; // a small integer (Smi): a larger one is a heap number, boxed per lookup
}

/** Whether buf[start, end) is all ASCII (a length octet of 128 or more counts as not: no reuse then). */
function isAscii(buf: Buffer, start: number, end: number): boolean {
  for (let i = start; i < end; i++) if (buf[i]! >= 0x80) return false;
  return true;
}
