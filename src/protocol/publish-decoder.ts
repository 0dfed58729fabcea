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
import { RouteMemo } from '../broker/exchange/route-memo.js';

/** An exchange and routing key as they arrived (both short strings), and decoded. */
interface RoutingNames {
  /** own copy of the bytes */
  readonly raw: Buffer;
  readonly exchange: string;
  readonly routingKey: string;
  /** raw may be written as it is into basic.deliver (ASCII) */
  readonly reusable: boolean;
  /**
   * The queues these names routed to, kept here so that the one lookup that finds the names finds
   * the route too (the broker checks it is still valid on every use: broker/exchange/route-memo.ts).
   */
  readonly route: RouteMemo;
}

/**
 * Pairs seen recently, by a hash of their bytes, for publishers that cycle through many routing keys
 * (a topic workload) and so miss their channel's last pair. Shared by every channel of the process
 * (bytes decode to the same strings everywhere); at most RECENT_LIMIT pairs, dropped all at once
 * when full, as the topic exchange's cache.
 */
const recent = new Map<number, RoutingNames>();
export const RECENT_LIMIT = 4096;

/** How many pairs the shared cache holds (for tests of its bound). */
export function recentRoutingNames(): number {
  return recent.size;
}

export class PublishDecoder {
  /** this channel's last pair */
  private last: RoutingNames | null = null;
  /** basic.deliver's exchange + routing-key bytes for the publish decoded last, or null */
  routingBytes: Buffer | null = null;
  /** the route memo of the publish decoded last (null before the first) */
  routeMemo: RouteMemo | null = null;

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
    let names: RoutingNames | null | undefined = this.last;
    if (names === null || !sameBytes(names.raw, buf, exAt, bitsAt)) {
      const hash = hashBytes(buf, exAt, bitsAt);
      names = recent.get(hash);
      if (names === undefined || !sameBytes(names.raw, buf, exAt, bitsAt)) {
        names = {
          raw: Buffer.from(buf.subarray(exAt, bitsAt)),
          exchange: buf.toString('utf8', exAt + 1, rkAt),
          routingKey: buf.toString('utf8', rkAt + 1, bitsAt),
          reusable: isAscii(buf, exAt, bitsAt),
          route: new RouteMemo(),
        };
        if (recent.size >= RECENT_LIMIT) recent.clear();
        recent.set(hash, names);
      }
      this.last = names;
    }
    this.routingBytes = names.reusable ? names.raw : null;
    this.routeMemo = names.route;
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
 * Whether raw equals buf[start, end). A loop beats a native compare for strings this short. It
 * runs from the end: the exchange name comes first and rarely changes, while routing keys that do
 * change (a topic publisher cycling through keys) mostly differ in their last words.
 */
function sameBytes(raw: Buffer, buf: Buffer, start: number, end: number): boolean {
  if (raw.length !== end - start) return false;
  for (let i = raw.length - 1; i >= 0; i--) if (raw[i] !== buf[start + i]) return false;
  return true;
}

/** FNV-1a over buf[start, end). */
function hashBytes(buf: Buffer, start: number, end: number): number {
  let h = 0x811c9dc5;
  for (let i = start; i < end; i++) h = Math.imul(h ^ buf[i]!, 0x01000193);
  return h;
}

/** Whether buf[start, end) is all ASCII (a length octet of 128 or more counts as not: no reuse then). */
function isAscii(buf: Buffer, start: number, end: number): boolean {
  for (let i = start; i < end; i++) if (buf[i]! >= 0x80) return false;
  return true;
}
