// Socket chunks → frames. A frame that lies wholly inside a chunk is handed on as a view into that
// chunk (no copy). A frame split across chunks is either
//  - streamed, when it is a body frame on a channel and the owner gave a BodyPieceSink: each
//    chunk's part of its payload is handed on as a view as it arrives, so the command assembler
//    copies those bytes once, straight into the message body (large messages arrive this way:
//    128 KiB body frames straddle the 64 KiB socket reads); or
//  - copied, once, into a buffer of its exact size (so views into it stay valid after the parser
//    moves on): method and header frames, and everything when there is no BodyPieceSink.
// The frame-end octet and the size limit are checked here; what a frame means is the connection's
// business.
//
// Size limit as RabbitMQ applies it: a payload may be up to frame_max bytes (RabbitMQ allows the
// 8 bytes of header and frame-end on top), checked as soon as the 7-byte header is in.

import { FrameError } from './errors.js';
import { readU16, readU32 } from './bytes.js';
import { erlangBinary } from './erlang-format.js';
import { FRAME_BODY, FRAME_END } from './generated/amqp.js';

export const FRAME_HEADER_SIZE = 7;
/** header + frame-end */
export const FRAME_OVERHEAD = 8;
/** payload octets a frame-end error shows (as RabbitMQ: the first 16, or all when shorter) */
const SHOWN_OCTETS = 16;

/** Receives each complete frame; payload is buf[start, end). */
export type FrameSink = (type: number, channel: number, buf: Buffer, start: number, end: number) => void;

/**
 * Receives a body frame split across chunks, piece by piece: payload bytes buf[start, end) (a view
 * into the chunk, valid only during the call; may be empty). `first` comes with the frame's first
 * piece, `payloadSize` is the whole frame's; `last` comes with its final piece, once the frame-end
 * octet has been checked. A frame whose frame-end octet is wrong gets no `last`: the parser throws.
 */
export type BodyPieceSink = (
  channel: number,
  buf: Buffer,
  start: number,
  end: number,
  payloadSize: number,
  first: boolean,
  last: boolean,
) => void;

const enum Pending {
  None,
  /** fewer than 7 bytes of the next frame have arrived (they are in scratch) */
  Header,
  /** a frame being copied into `frame` */
  Copy,
  /** a body frame being handed on piece by piece */
  Stream,
}

export class FrameParser {
  /** Largest acceptable payload: the negotiated frame_max. */
  maxPayloadSize: number;
  /** the pending frame's header, then (streamed frames) its first payload octets for error texts */
  private readonly scratch = Buffer.allocUnsafe(FRAME_HEADER_SIZE + SHOWN_OCTETS);
  private mode = Pending.None;
  /** the frame being copied (Pending.Copy) */
  private frame: Buffer | null = null;
  /** bytes of the pending frame received so far, header included */
  private fill = 0;
  /** size of the pending frame once its header is known */
  private total = 0;
  /** Pending.Stream: no piece of the frame handed on yet */
  private firstPiece = false;
  /** set by pause(): no frame is handed on until resume() */
  private paused = false;
  /** input not parsed yet because of a pause (a view into the chunk it came in; no copy) */
  private held: Buffer | null = null;

  constructor(
    maxPayloadSize: number,
    private readonly sink: FrameSink,
    private readonly bodyPieces: BodyPieceSink | null = null,
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
    if (this.mode !== Pending.None) {
      pos = this.continuePending(chunk);
      if ((this.mode as Pending) !== Pending.None) return; // (continuePending changes it)
      if (this.paused) return this.hold(chunk, pos);
    }
    pos = this.wholeFrames(chunk, pos);
    if (this.paused) return this.hold(chunk, pos);
    if (pos < len) {
      pos = this.startPending(chunk, pos);
      if (this.paused) this.hold(chunk, pos);
    }
  }

  /**
   * Hands on the whole frames from pos; returns the position after the last one (it stops early
   * when the sink pauses). A method of its own, ending right after its loop, because of how V8
   * (Node 20) treats a long first loop: it compiles the loop alone (on-stack replacement) and
   * keeps re-entering that code on later calls. A call after the loop that had not yet run when it
   * was compiled (push() keeping an incomplete last frame) then deoptimized it on every socket
   * read, hundreds of times a second, for good (seen under S5: ~850 in 5 s).
   */
  private wholeFrames(chunk: Buffer, pos: number): number {
    const len = chunk.length;
    while (len - pos >= FRAME_HEADER_SIZE) {
      const size = readU32(chunk, pos + 3);
      const total = this.checkedTotal(chunk[pos]!, size);
      if (pos + total > len) break;
      if (chunk[pos + total - 1] !== FRAME_END) throw badFrameEnd(chunk[pos]!, chunk, pos + FRAME_HEADER_SIZE, size, chunk[pos + total - 1]!);
      this.sink(chunk[pos]!, readU16(chunk, pos + 1), chunk, pos + FRAME_HEADER_SIZE, pos + total - 1);
      pos += total;
      if (this.paused) break;
    }
    return pos;
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

  /**
   * Bytes held back here: a frame waiting for its rest, or input not parsed yet because of a
   * pause. A streamed body frame's bytes are not counted: they went on to the assembler.
   */
  get bufferedBytes(): number {
    return (this.mode === Pending.Header || this.mode === Pending.Copy ? this.fill : 0) + (this.held === null ? 0 : this.held.length);
  }

  private checkedTotal(type: number, size: number): number {
    if (size > this.maxPayloadSize) {
      throw new FrameError(`type ${type}, all octets = <<>>: {frame_too_large,${size},${this.maxPayloadSize - FRAME_OVERHEAD}}`);
    }
    return size + FRAME_OVERHEAD;
  }

  /** The chunk ends inside a frame starting at pos; returns the position after what it used. */
  private startPending(chunk: Buffer, pos: number): number {
    const rest = chunk.length - pos;
    if (rest < FRAME_HEADER_SIZE) {
      chunk.copy(this.scratch, 0, pos);
      this.mode = Pending.Header;
      this.fill = rest;
      return chunk.length;
    }
    chunk.copy(this.scratch, 0, pos, pos + FRAME_HEADER_SIZE);
    this.fill = FRAME_HEADER_SIZE;
    this.headerComplete();
    return this.feed(chunk, pos + FRAME_HEADER_SIZE);
  }

  /** Feeds the start of a chunk into the pending frame; returns how many bytes it used. */
  private continuePending(chunk: Buffer): number {
    let pos = 0;
    if (this.mode === Pending.Header) {
      pos = Math.min(FRAME_HEADER_SIZE - this.fill, chunk.length);
      chunk.copy(this.scratch, this.fill, 0, pos);
      this.fill += pos;
      if (this.fill < FRAME_HEADER_SIZE) return pos;
      this.headerComplete();
    }
    return this.feed(chunk, pos);
  }

  /** The pending frame's header is in scratch: stream the frame or copy it. */
  private headerComplete(): void {
    const type = this.scratch[0]!;
    this.total = this.checkedTotal(type, this.scratch.readUInt32BE(3));
    if (type === FRAME_BODY && this.bodyPieces !== null && this.scratch.readUInt16BE(1) !== 0) {
      // Channel 0 is left to the copy: its error text shows the whole payload.
      this.mode = Pending.Stream;
      this.firstPiece = true;
      return;
    }
    const frame = Buffer.allocUnsafe(this.total);
    this.scratch.copy(frame, 0, 0, FRAME_HEADER_SIZE);
    this.frame = frame;
    this.mode = Pending.Copy;
  }

  /** Feeds chunk[pos, …) to the pending frame (its header is in); returns the position after what it used. */
  private feed(chunk: Buffer, pos: number): number {
    const total = this.total;
    const n = Math.min(total - this.fill, chunk.length - pos);
    const complete = this.fill + n === total;
    if (this.mode === Pending.Copy) {
      const frame = this.frame!;
      chunk.copy(frame, this.fill, pos, pos + n);
      if (!complete) {
        this.fill += n;
        return pos + n;
      }
      this.clearPending();
      const size = total - FRAME_OVERHEAD;
      if (frame[total - 1] !== FRAME_END) throw badFrameEnd(frame[0]!, frame, FRAME_HEADER_SIZE, size, frame[total - 1]!);
      this.sink(frame[0]!, readU16(frame, 1), frame, FRAME_HEADER_SIZE, total - 1);
      return pos + n;
    }
    // Pending.Stream: the payload part of these bytes goes on as a view; the frame-end octet, when
    // it is among them, is checked first.
    const payloadEnd = complete ? pos + n - 1 : pos + n;
    const payloadOffset = this.fill - FRAME_HEADER_SIZE;
    if (payloadOffset < SHOWN_OCTETS) {
      chunk.copy(this.scratch, FRAME_HEADER_SIZE + payloadOffset, pos, Math.min(payloadEnd, pos + SHOWN_OCTETS - payloadOffset));
    }
    const channel = this.scratch.readUInt16BE(1);
    const first = this.firstPiece;
    this.firstPiece = false;
    if (!complete) {
      this.fill += n;
      this.bodyPieces!(channel, chunk, pos, payloadEnd, total - FRAME_OVERHEAD, first, false);
      return pos + n;
    }
    this.clearPending();
    const endOctet = chunk[pos + n - 1]!;
    if (endOctet !== FRAME_END) throw badFrameEnd(FRAME_BODY, this.scratch, FRAME_HEADER_SIZE, total - FRAME_OVERHEAD, endOctet);
    this.bodyPieces!(channel, chunk, pos, payloadEnd, total - FRAME_OVERHEAD, first, true);
    return pos + n;
  }

  private clearPending(): void {
    this.mode = Pending.None;
    this.frame = null;
    this.fill = 0;
    this.total = 0;
  }
}

/**
 * A frame whose frame-end octet is not 0xce. buf[payloadStart, …) holds its payload (at least its
 * first 16 octets); as RabbitMQ, the text shows the whole payload when short, its first 16 octets
 * otherwise.
 */
function badFrameEnd(type: number, buf: Buffer, payloadStart: number, payloadSize: number, endOctet: number): FrameError {
  const octets =
    payloadSize > SHOWN_OCTETS
      ? `first 16 octets = ${erlangBinary(buf, payloadStart, payloadStart + SHOWN_OCTETS)}`
      : `all octets = ${erlangBinary(buf, payloadStart, payloadStart + payloadSize)}`;
  return new FrameError(`type ${type}, ${octets}: {invalid_frame_end_marker,${endOctet}}`);
}
