// Frames written in place into a caller's buffer: method frames, content headers (with the
// publisher's property bytes forwarded untouched), body-frame envelopes and heartbeats. Bodies are
// split at frame_max − 8. Sizes are computed before writing so the caller reserves space once.

import {
  BASIC_DELIVER,
  FRAME_BODY,
  FRAME_END,
  FRAME_HEADER,
  FRAME_HEARTBEAT,
  FRAME_METHOD,
  methodArgsSize,
  writeMethodArgs,
  type BasicProperties,
  type Method,
  basicPropertiesSize,
  writeBasicProperties,
} from './generated/amqp.js';
import { writeShortStr } from './field-table.js';
import { FRAME_OVERHEAD } from './frame-parser.js';

/** A heartbeat frame never changes: one shared buffer. */
export const HEARTBEAT_FRAME = Buffer.from([FRAME_HEARTBEAT, 0, 0, 0, 0, 0, 0, FRAME_END]);

export function methodFrameSize(m: Method): number {
  return FRAME_OVERHEAD + 4 + methodArgsSize(m);
}

export function writeMethodFrame(buf: Buffer, offset: number, channel: number, m: Method): number {
  buf[offset] = FRAME_METHOD;
  buf.writeUInt16BE(channel, offset + 1);
  buf.writeUInt32BE(m.id, offset + 7);
  const end = writeMethodArgs(buf, offset + 11, m);
  buf.writeUInt32BE(end - offset - 7, offset + 3);
  buf[end] = FRAME_END;
  return end + 1;
}

/** One method frame as its own buffer (handshake, tests; not the delivery path). */
export function encodeMethodFrame(channel: number, m: Method): Buffer {
  const buf = Buffer.allocUnsafe(methodFrameSize(m));
  writeMethodFrame(buf, 0, channel, m);
  return buf;
}

/** A short string in wire form (length octet + UTF-8), for strings written on every delivery. */
export function encodeShortStr(value: string): Buffer {
  const buf = Buffer.allocUnsafe(1 + Buffer.byteLength(value));
  writeShortStr(buf, 0, value);
  return buf;
}

/**
 * Copies bytes on the delivery path: for tiny copies a loop beats any call; for the rest
 * Uint8Array#set (a builtin memcpy) beats Buffer#copy, whose argument checks cost more than
 * copying a few hundred bytes (a content header with headers). The caller has reserved the room.
 */
export function copyBytes(src: Buffer, dst: Buffer, at: number): number {
  const n = src.length;
  if (n > 32) {
    dst.set(src, at);
    return at + n;
  }
  for (let i = 0; i < n; i++) dst[at + i] = src[i]!;
  return at + n;
}

// Big-endian stores for the per-delivery frame writers: plain element stores (a Uint8Array keeps the
// low 8 bits of what is stored), without the argument and range checks of Buffer#writeUInt*BE
// that showed in delivery profiles. Values are in range by construction (sizes, channel numbers).
function put16(buf: Buffer, o: number, v: number): void {
  buf[o] = v >>> 8;
  buf[o + 1] = v;
}

function put32(buf: Buffer, o: number, v: number): void {
  buf[o] = v >>> 24;
  buf[o + 1] = v >>> 16;
  buf[o + 2] = v >>> 8;
  buf[o + 3] = v;
}

/** Size of a basic.deliver frame from the pre-encoded consumer tag and exchange+routing key. */
export function deliverFrameSize(tagBytes: Buffer, routingBytes: Buffer): number {
  // header 7 + ids 4 + tag + delivery-tag 8 + bits 1 + exchange+routing-key + end 1
  return 21 + tagBytes.length + routingBytes.length;
}

/**
 * basic.deliver written directly: the delivery hot path. The consumer tag and the message's
 * exchange and routing key come pre-encoded (a consumer's tag once per consumer, a message's
 * names once per message however many queues it reaches), so nothing is UTF-8-encoded here.
 */
export function writeDeliverFrame(
  buf: Buffer,
  offset: number,
  channel: number,
  tagBytes: Buffer,
  deliveryTag: number,
  redelivered: boolean,
  routingBytes: Buffer,
): number {
  buf[offset] = FRAME_METHOD;
  put16(buf, offset + 1, channel);
  put32(buf, offset + 7, BASIC_DELIVER);
  let o = copyBytes(tagBytes, buf, offset + 11);
  put32(buf, o, Math.floor(deliveryTag / 4294967296));
  put32(buf, o + 4, deliveryTag >>> 0);
  buf[o + 8] = redelivered ? 1 : 0;
  o = copyBytes(routingBytes, buf, o + 9);
  put32(buf, offset + 3, o - offset - 7);
  buf[o] = FRAME_END;
  return o + 1;
}

/** Size of a content header frame carrying these raw property bytes (flags included). */
export function contentHeaderFrameSize(rawProperties: Buffer): number {
  return FRAME_OVERHEAD + 12 + rawProperties.length;
}

export function writeContentHeaderFrame(
  buf: Buffer,
  offset: number,
  channel: number,
  classId: number,
  bodySize: number,
  rawProperties: Buffer,
): number {
  buf[offset] = FRAME_HEADER;
  put16(buf, offset + 1, channel);
  put32(buf, offset + 3, 12 + rawProperties.length);
  put16(buf, offset + 7, classId);
  put16(buf, offset + 9, 0);
  put32(buf, offset + 11, Math.floor(bodySize / 4294967296));
  put32(buf, offset + 15, bodySize >>> 0);
  const end = copyBytes(rawProperties, buf, offset + 19);
  buf[end] = FRAME_END;
  return end + 1;
}

/** Writes the 7-byte header of a body frame; the caller appends the payload and FRAME_END. */
export function writeBodyFrameHeader(buf: Buffer, offset: number, channel: number, size: number): number {
  buf[offset] = FRAME_BODY;
  put16(buf, offset + 1, channel);
  put32(buf, offset + 3, size);
  return offset + 7;
}

/** Property flags and list for properties we build ourselves (dead-lettering, returns of our own). */
export function encodeBasicProperties(p: BasicProperties): Buffer {
  const buf = Buffer.allocUnsafe(basicPropertiesSize(p));
  writeBasicProperties(buf, 0, p);
  return buf;
}
