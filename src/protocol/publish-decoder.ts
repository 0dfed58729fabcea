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

/** How many pairs the shared cache holds (for tests of its bound). */
export function recentRoutingNames(): number {
  return recentCount;
}

/** The recent pair whose bytes are view[start, end) (hash is hashBytes of them), or undefined. */
function findRecent(view: DataView<ArrayBufferLike>, start: number, end: number, hash: number): RoutingNames | undefined {
  for (let i = hash & SLOT_MASK; ; i = (i + 1) & SLOT_MASK) {
    const names = recentSlots[i];
    if (names === undefined) return undefined;
    if (names.hash === hash && sameBytes(names, view, start, end)) return names;
  }
}

function addRecent(names: RoutingNames): void {
  if (recentCount >= RECENT_LIMIT) {
    recentSlots.fill(undefined);
    recentCount = 0;
  }
  let i = names.hash & SLOT_MASK;
  while (recentSlots[i] !== undefined) i = (i + 1) & SLOT_MASK;
  recentSlots[i] = names;
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
    const view = viewOf(buf);
    let names: RoutingNames | null | undefined = this.names;
    if (names === null || !sameBytes(names, view, exAt, bitsAt)) {
      const hash = hashBytes(view, exAt, bitsAt);
      names = findRecent(view, exAt, bitsAt, hash);
      if (names === undefined) {
        const raw = Buffer.from(buf.subarray(exAt, bitsAt));
        names = {
          hash,
          raw,
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

function viewOf(buf: Buffer): DataView<ArrayBufferLike> {
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
  let n = names.raw.length; // (a DataView's byteLength is a call into the runtime)
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
