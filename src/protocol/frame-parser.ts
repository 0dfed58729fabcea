// Socket chunks → frames. A frame that lies wholly inside a chunk is handed on as a view into that
// chunk (no copy); only a frame split across chunks is copied, once, into a buffer of its exact
// size (so views into it stay valid after the parser moves on). The frame-end octet and the size
// limit are checked here; what a frame means is the connection's business.
//
// Size limit as RabbitMQ applies it: a payload may be up to frame_max bytes (RabbitMQ allows the
// 8 bytes of header and frame-end on top), checked as soon as the 7-byte header is in.

import { Layout } from './layouts.js';
import { FrameError } from './errors.js';
import { erlangBinary } from './erlang-format.js';
import { FRAME_END } from './generated/amqp.js';

export const FRAME_HEADER_SIZE = 7;
/** header + frame-end */
export const FRAME_OVERHEAD = 8;

/** Receives each complete frame; payload is buf[start, end). */
export type FrameSink = (type: number, channel: number, buf: Buffer, start: number, end: number) => void;

export class FrameParser {
  /** Largest acceptable payload: the negotiated frame_max. */
  maxPayloadSize: number;
  private readonly headerScratch = Buffer.allocUnsafe(FRAME_HEADER_SIZE);
  /** The frame being reassembled across chunks, or null. */
  private pending: Buffer | null = null;
  private pendingFill = 0;
  /** Size of the pending frame once its header is known; 0 while the header itself is incomplete. */
  private pendingTotal = 0;
  /** set by pause(): no frame is handed on until resume() */
  private paused = false;
  /** input not parsed yet because of a pause (a view into the chunk it came in; no copy) */
  private held: Buffer | null = null;

  constructor(
    maxPayloadSize: number,
    private readonly sink: FrameSink,
  ) {
    this.maxPayloadSize = maxPayloadSize;
  }

  /** Parses as many frames as the chunk completes. Throws FrameError on a malformed frame. */
  push(chunk: Buffer): void {
    if (this.paused) {
      this.held = this.held === null ? chunk : Buffer.concat([this.held, chunk]);
      return;
    }
    let pos = 0;
    const len = chunk.length;
    if (this.pending !== null) {
      pos = this.continuePending(chunk);
      if (this.pending !== null) return;
      if (this.paused) return this.hold(chunk, pos);
    }
    while (len - pos >= FRAME_HEADER_SIZE) {
      const size = chunk.readUInt32BE(pos + 3);
      const total = this.checkedTotal(chunk[pos]!, size);
      if (pos + total > len) break;
      if (chunk[pos + total - 1] !== FRAME_END) throw badFrameEnd(chunk, pos, total);
      this.sink(chunk[pos]!, chunk.readUInt16BE(pos + 1), chunk, pos + FRAME_HEADER_SIZE, pos + total - 1);
      pos += total;
      if (this.paused) return this.hold(chunk, pos);
    }
    if (pos < len) this.startPending(chunk, pos);
  }

  /**
   * Stops handing on frames after the current one (the sink may call this); the rest of the input
   * is kept as it is until resume(). Flow control and resource alarms stop reading this way.
   */
  pause(): void {
    this.paused = true;
  }

  get isPaused(): boolean {
    return this.paused;
  }

  /** Goes on with the input held since pause(). May throw FrameError, as push() does. */
  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    const held = this.held;
    this.held = null;
    if (held !== null) this.push(held);
  }

  private hold(chunk: Buffer, pos: number): void {
    if (pos < chunk.length) this.held = chunk.subarray(pos);
  }

  /** Bytes held back: waiting for the rest of a frame, or not parsed yet because of a pause. */
  get bufferedBytes(): number {
    return (this.pending === null ? 0 : this.pendingFill) + (this.held === null ? 0 : this.held.length);
  }

  private checkedTotal(type: number, size: number): number {
    if (size > this.maxPayloadSize) {
      throw new FrameError(`type ${type}, all octets = <<>>: {frame_too_large,${size},${this.maxPayloadSize - FRAME_OVERHEAD}}`);
    }
    return size + FRAME_OVERHEAD;
  }

  private startPending(chunk: Buffer, pos: number): void {
    const rest = chunk.length - pos;
    if (rest < FRAME_HEADER_SIZE) {
      chunk.copy(this.headerScratch, 0, pos);
      this.pending = this.headerScratch;
      this.pendingFill = rest;
      this.pendingTotal = 0;
      return;
    }
    const total = this.checkedTotal(chunk[pos]!, chunk.readUInt32BE(pos + 3));
    this.pending = Buffer.allocUnsafe(total);
    this.pendingFill = chunk.copy(this.pending, 0, pos);
    this.pendingTotal = total;
  }

  /** Feeds the start of a chunk into the pending frame; returns how many bytes it used. */
  private continuePending(chunk: Buffer): number {
    let pos = 0;
    if (this.pendingTotal === 0) {
      const n = Math.min(FRAME_HEADER_SIZE - this.pendingFill, chunk.length);
      chunk.copy(this.headerScratch, this.pendingFill, 0, n);
      this.pendingFill += n;
      pos = n;
      if (this.pendingFill < FRAME_HEADER_SIZE) return pos;
      const total = this.checkedTotal(this.headerScratch[0]!, this.headerScratch.readUInt32BE(3));
      const frame = Buffer.allocUnsafe(total);
      this.headerScratch.copy(frame, 0);
      this.pending = frame;
      this.pendingTotal = total;
    }
    const frame = this.pending!;
    const n = Math.min(this.pendingTotal - this.pendingFill, chunk.length - pos);
    chunk.copy(frame, this.pendingFill, pos, pos + n);
    this.pendingFill += n;
    pos += n;
    if (this.pendingFill < this.pendingTotal) return pos;
    const total = this.pendingTotal;
    this.pending = null;
    this.pendingFill = 0;
    this.pendingTotal = 0;
    if (frame[total - 1] !== FRAME_END) throw badFrameEnd(frame, 0, total);
    const header = Layout.frameHeader.decode(frame);
    this.sink(header.type, header.channel, frame, FRAME_HEADER_SIZE, total - 1);
    return pos;
  }
}

/** The frame at buf[pos, pos + total) does not end with 0xce. */
function badFrameEnd(buf: Buffer, pos: number, total: number): FrameError {
  // As RabbitMQ: the whole payload when short, its first 16 octets otherwise.
  const start = pos + FRAME_HEADER_SIZE;
  const end = pos + total - 1;
  const octets = end - start > 16 ? `first 16 octets = ${erlangBinary(buf, start, start + 16)}` : `all octets = ${erlangBinary(buf, start, end)}`;
  return new FrameError(`type ${buf[pos]}, ${octets}: {invalid_frame_end_marker,${buf[end]}}`);
}
