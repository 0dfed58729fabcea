// basic.publish decoded on the publish hot path. A publisher nearly always sends to the same exchange
// with the same routing key, message after message; the general decoder (generated/amqp.ts) makes
// two new strings from them every time, and every delivery then encodes them back into bytes for
// basic.deliver. Here the two short strings are kept as they arrived, once per distinct pair: when
// the next publish carries the same bytes, the strings decoded last time and those very bytes
// (the exchange and routing-key part of basic.deliver) are used again.
//
// Safe because: the bytes compared are the whole of both short strings with their lengths, so equal
// bytes decode to equal strings; the wire bytes are reused for delivery only when they are ASCII,
// where decoding and re-encoding gives the same bytes back (a non-ASCII string is re-encoded as
// before, so invalid UTF-8 comes out replaced exactly as it did); and a frame the checks below do
// not accept is left to the general decoder, which reports it as it always did.

import { BASIC_PUBLISH, type BasicPublish } from './generated/amqp.js';

export class PublishDecoder {
  /** exchange and routing key short strings of the last publish, own copy (null: not reusable) */
  private lastRaw: Buffer | null = null;
  private lastExchange = '';
  private lastRoutingKey = '';
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
    const len = bitsAt - exAt;
    const last = this.lastRaw;
    let same = last !== null && last.length === len;
    // A loop beats a native compare for strings this short.
    for (let i = 0; same && i < len; i++) same = last![i] === buf[exAt + i];
    if (!same) {
      this.lastExchange = buf.toString('utf8', exAt + 1, rkAt);
      this.lastRoutingKey = buf.toString('utf8', rkAt + 1, bitsAt);
      this.lastRaw = isAscii(buf, exAt, bitsAt) ? Buffer.from(buf.subarray(exAt, bitsAt)) : null;
    }
    this.routingBytes = this.lastRaw;
    const bits = buf[bitsAt]!;
    return {
      id: BASIC_PUBLISH,
      reserved1: buf.readUInt16BE(o),
      exchange: this.lastExchange,
      routingKey: this.lastRoutingKey,
      mandatory: (bits & 1) !== 0,
      immediate: (bits & 2) !== 0,
    };
  }
}

/** Whether buf[start, end) is all ASCII (a length octet of 128 or more counts as not: no reuse then). */
function isAscii(buf: Buffer, start: number, end: number): boolean {
  for (let i = start; i < end; i++) if (buf[i]! >= 0x80) return false;
  return true;
}
