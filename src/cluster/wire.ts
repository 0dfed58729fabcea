// The replication port's framing and handshake (--cluster-port). A follower connects to the
// leader; both prove they know the cluster secret (HMAC-SHA256 over both nonces — the secret never
// travels); then the leader's side is a raw-deflate stream (level 1, flushed per batch) carrying a
// snapshot and/or log records, and the follower's side carries acknowledgements.
//
//   frame: u32 length (of what follows) ‖ u8 type ‖ payload
//
//   HELLO      leader → follower   JSON {version, leader, epoch, nonce}
//   AUTH       follower → leader   JSON {node, nonce, mac, seq, epoch}      (its log position)
//   WELCOME    leader → follower   JSON {mac, snapshot: boolean}            (then deflate)
//   REFUSED    leader → follower   JSON {reason}
//   SNAP_BEGIN / SNAP_CHUNK (bytes) / SNAP_END    a copy of the leader's store
//   RECORDS    u32 count, then per record u64 seq ‖ u64 epoch ‖ u32 length ‖ operations
//   PING       leader → follower   (idle keep-alive: the follower reconnects when they stop)
//   ACK        follower → leader   u64 seq durably applied (also sent when idle, as a heartbeat)
//   INSTALLED  follower → leader   u64 seq: the snapshot is in place, stream from the record after

import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { LogRecord } from './log-records.js';

export const WIRE_VERSION = 1;

export const F_HELLO = 1;
export const F_AUTH = 2;
export const F_WELCOME = 3;
export const F_REFUSED = 4;
export const F_SNAP_BEGIN = 5;
export const F_SNAP_CHUNK = 6;
export const F_SNAP_END = 7;
export const F_RECORDS = 8;
export const F_PING = 9;
export const F_ACK = 10;
export const F_INSTALLED = 11;

/** Largest frame before authentication (a handshake is tiny). */
export const MAX_HANDSHAKE_FRAME = 64 * 1024;
/** Largest frame after (a record holds a whole transaction: a 128 MB message fits). */
export const MAX_FRAME = 1024 * 1024 * 1024;

const TWO_32 = 4294967296;

export interface Frame {
  type: number;
  payload: Buffer;
}

export function frame(type: number, payload: Buffer | string | object = Buffer.alloc(0)): Buffer {
  const body = Buffer.isBuffer(payload) ? payload : Buffer.from(typeof payload === 'string' ? payload : JSON.stringify(payload), 'utf8');
  const out = Buffer.allocUnsafe(5 + body.length);
  out.writeUInt32BE(body.length + 1, 0);
  out[4] = type;
  body.copy(out, 5);
  return out;
}

/** Header of a frame whose payload is written separately (large snapshot chunks, record batches). */
export function frameHeader(type: number, payloadLength: number): Buffer {
  const out = Buffer.allocUnsafe(5);
  out.writeUInt32BE(payloadLength + 1, 0);
  out[4] = type;
  return out;
}

export function json<T>(f: Frame): T {
  return JSON.parse(f.payload.toString('utf8')) as T;
}

export function ackFrame(seq: number, type = F_ACK): Buffer {
  const payload = Buffer.allocUnsafe(8);
  payload.writeUInt32BE(Math.floor(seq / TWO_32), 0);
  payload.writeUInt32BE(seq >>> 0, 4);
  return frame(type, payload);
}

export function readAck(f: Frame): number {
  return f.payload.readUInt32BE(0) * TWO_32 + f.payload.readUInt32BE(4);
}

/** One RECORDS frame as parts (header, then each record's header and its operations: no copy). */
export function recordsFrame(records: readonly LogRecord[]): Buffer[] {
  let length = 4;
  const parts: Buffer[] = [];
  const count = Buffer.allocUnsafe(4);
  count.writeUInt32BE(records.length, 0);
  parts.push(count);
  for (const r of records) {
    const h = Buffer.allocUnsafe(20);
    h.writeUInt32BE(Math.floor(r.seq / TWO_32), 0);
    h.writeUInt32BE(r.seq >>> 0, 4);
    h.writeUInt32BE(Math.floor(r.epoch / TWO_32), 8);
    h.writeUInt32BE(r.epoch >>> 0, 12);
    h.writeUInt32BE(r.ops.length, 16);
    parts.push(h, r.ops);
    length += 20 + r.ops.length;
  }
  parts.unshift(frameHeader(F_RECORDS, length));
  return parts;
}

export function readRecords(f: Frame): LogRecord[] {
  const p = f.payload;
  const count = p.readUInt32BE(0);
  const out: LogRecord[] = [];
  let o = 4;
  for (let i = 0; i < count; i++) {
    const seq = p.readUInt32BE(o) * TWO_32 + p.readUInt32BE(o + 4);
    const epoch = p.readUInt32BE(o + 8) * TWO_32 + p.readUInt32BE(o + 12);
    const len = p.readUInt32BE(o + 16);
    o += 20;
    if (o + len > p.length) throw new Error('replication frame is truncated');
    out.push({ seq, epoch, ops: p.subarray(o, o + len) });
    o += len;
  }
  return out;
}

/** Splits a byte stream into frames; copies only what spans chunks. */
export class FrameReader {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  maxFrame = MAX_HANDSHAKE_FRAME;

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
  }

  /** The next complete frame, or null; throws on a frame out of bounds. */
  next(): Frame | null {
    if (this.pendingBytes < 4) return null;
    const length = this.peek(4).readUInt32BE(0);
    if (length < 1 || length > this.maxFrame) throw new Error(`replication frame of ${length} bytes is out of bounds`);
    if (this.pendingBytes < 4 + length) return null;
    const whole = this.take(4 + length);
    return { type: whole[4]!, payload: whole.subarray(5) };
  }

  /** Whatever follows the frames read so far (the stream changes encoding after a handshake). */
  rest(): Buffer {
    const out = Buffer.concat(this.pending, this.pendingBytes);
    this.pending = [];
    this.pendingBytes = 0;
    return out;
  }

  /** Bytes waiting (for back-pressure). */
  get buffered(): number {
    return this.pendingBytes;
  }

  private peek(n: number): Buffer {
    if (this.pending[0]!.length >= n) return this.pending[0]!;
    const joined = Buffer.concat(this.pending);
    this.pending = [joined];
    return joined;
  }

  private take(n: number): Buffer {
    let first = this.pending[0]!;
    if (first.length < n) {
      first = Buffer.concat(this.pending);
      this.pending = [first];
    }
    const out = first.subarray(0, n);
    if (first.length === n) this.pending.shift();
    else this.pending[0] = first.subarray(n);
    this.pendingBytes -= n;
    return out;
  }
}

export function nonce(): string {
  return randomBytes(16).toString('hex');
}

/** Proof of the secret for one side of one handshake. */
export function mac(secret: string, role: 'leader' | 'follower', nonceA: string, nonceB: string, node: string): string {
  return createHmac('sha256', secret).update(`${role}\n${nonceA}\n${nonceB}\n${node}`).digest('hex');
}

export function macEquals(a: string, b: string): boolean {
  const x = Buffer.from(a, 'utf8');
  const y = Buffer.from(b, 'utf8');
  return x.length === y.length && timingSafeEqual(x, y);
}
