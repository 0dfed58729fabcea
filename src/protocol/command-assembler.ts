// Per-channel content assembly: a content-carrying method, then a content header, then body frames
// until body-size bytes have arrived. Pure state machine; the caller feeds frames and receives
// complete commands. Frames out of order → 505 UNEXPECTED_FRAME; more body than announced → 501.
// Properties stay as raw bytes (the publisher's flags and list) so they can be forwarded untouched.
//
// Bodies: a body that arrives in one frame inside one socket read is kept as a view into that read
// (no copy: every small message). Any other body is copied once, straight into a buffer of the
// announced body-size: whole body frames as they come, and body frames split across socket reads
// piece by piece (FrameParser streams those to onBodyPiece). The announced size is the client's
// word, so it is never trusted for memory beyond what has arrived plus a bounded step: the room a
// body buffer has beyond its received bytes comes from the connection's BodyAllowance, and without
// allowance the buffer only grows as bytes arrive (at most doubling what arrived, so copies stay
// linear).

import { FrameError, UnexpectedFrame } from './errors.js';
import { readU16, readU32, viewOf } from './bytes.js';
import { METHOD_NAMES, type Method } from './generated/amqp.js';

export interface Content {
  /** the content-carrying method (basic.publish from clients) */
  method: Method;
  classId: number;
  bodySize: number;
  /** property flags + property list, as sent */
  rawProperties: Buffer;
  body: Buffer;
}

const EMPTY = Buffer.alloc(0);

/** Property lists up to this long are shared between messages while they repeat (see propertiesAt). */
export const SHARED_PROPERTIES_MAX_BYTES = 32;

/**
 * Room a connection's channels may allocate for bodies beyond the bytes that have arrived, in all.
 * 4 MiB takes a message up to 4 MiB in one allocation (larger ones grow, see grow()); a client
 * announcing big bodies on many channels and sending a few bytes of each makes Warren hold at most
 * this much more than it sent.
 */
export const BODY_ALLOWANCE_BYTES = 4 * 1024 * 1024;

/** One per connection, shared by its channels' assemblers (see the file comment). */
export class BodyAllowance {
  constructor(
    /** bytes that may still be allocated ahead of arrival */
    public available = BODY_ALLOWANCE_BYTES,
  ) {}
}

const enum State {
  Idle,
  ExpectHeader,
  ExpectBody,
}

export class CommandAssembler {
  private state = State.Idle;
  private method: Method | null = null;
  private classId = 0;
  private bodySize = 0;
  private rawProperties: Buffer = EMPTY;
  /** the last short property list, in a buffer of its own (see propertiesAt) */
  private sharedProperties: Buffer = EMPTY;
  /** the body being filled (null until its first bytes of a multi-part body arrive) */
  private body: Buffer | null = null;
  /** body bytes received so far */
  private received = 0;
  /** this body's share of the allowance, given back when it completes or is dropped */
  private charged = 0;

  constructor(private readonly allowance: BodyAllowance = new BodyAllowance()) {}

  /** True while a content method waits for its header or body. */
  get busy(): boolean {
    return this.state !== State.Idle;
  }

  /** body-size announced by the pending content header (0 when none) */
  get announcedBodySize(): number {
    return this.state === State.ExpectBody ? this.bodySize : 0;
  }

  /** The content method awaiting its content, if any. */
  get pendingMethod(): Method | null {
    return this.method;
  }

  /** A method frame arrived. Content methods are held; returns true when the caller may run it now. */
  onMethod(method: Method, hasContent: boolean): boolean {
    if (this.state !== State.Idle) throw this.outOfOrder();
    if (!hasContent) return true;
    this.method = method;
    this.state = State.ExpectHeader;
    return false;
  }

  /**
   * A content header arrived (payload buf[start, end)). Returns the completed content when the
   * body is empty, otherwise null.
   */
  onHeader(buf: Buffer, start: number, end: number): Content | null {
    if (this.state !== State.ExpectHeader) throw this.outOfOrder();
    if (end - start < 14) throw new FrameError('content header shorter than 14 bytes').at(this.method!.id);
    // RabbitMQ takes a header with a non-zero weight for something that is not a content header.
    if (readU16(buf, start + 2) !== 0) throw this.outOfOrder();
    this.classId = readU16(buf, start);
    const expected = this.classIdOfPending();
    if (this.classId !== expected) {
      throw new UnexpectedFrame(
        `expected content header for class ${expected}, got one for class ${this.classId} instead`,
      ).at(this.method!.id);
    }
    this.bodySize = readU32(buf, start + 4) * 4294967296 + readU32(buf, start + 8);
    this.rawProperties = this.propertiesAt(buf, start + 12, end);
    if (this.bodySize === 0) return this.finish(EMPTY);
    this.state = State.ExpectBody;
    return null;
  }

  /**
   * The property flags and list at buf[start, end). A publisher sends the same short list message
   * after message (delivery mode; content type): a list of at most SHARED_PROPERTIES_MAX_BYTES
   * equal to the one before is that one's buffer again, without a view made per message (making a
   * Buffer view was ~3 % of a publish's CPU), and the messages do not hold the socket chunk by their
   * properties. A short list that differs is copied into a buffer of its own, which the next ones
   * are compared with; longer lists stay views into the chunk, as before.
   * Safe because nothing writes property bytes in place: a message whose properties change gets
   * new bytes (Message.replaceProperties, Message.unpin).
   */
  private propertiesAt(buf: Buffer, start: number, end: number): Buffer {
    const n = end - start;
    if (n > SHARED_PROPERTIES_MAX_BYTES) return viewOf(buf, start, end);
    const shared = this.sharedProperties;
    if (shared.length === n) {
      let i = 0;
      while (i < n && shared[i] === buf[start + i]) i++;
      if (i === n) return shared;
    }
    const own = Buffer.allocUnsafeSlow(n);
    for (let i = 0; i < n; i++) own[i] = buf[start + i]!;
    this.sharedProperties = own;
    return own;
  }

  /** A body frame arrived whole. Returns the completed content when the last byte is in, else null. */
  onBody(buf: Buffer, start: number, end: number): Content | null {
    if (this.state !== State.ExpectBody) throw this.outOfOrder();
    const size = end - start;
    const total = this.received + size;
    if (total > this.bodySize) throw this.tooLong();
    // The whole body in one frame: a view, no copy (the hot path of small messages).
    if (this.received === 0 && total === this.bodySize) return this.finish(viewOf(buf, start, end));
    if (size > 0) this.append(buf, start, end, total);
    return total < this.bodySize ? null : this.finish(this.takeBody());
  }

  /**
   * A piece of a body frame split across socket reads (see BodyPieceSink in frame-parser.ts).
   * Returns the completed content after the last piece of the body's last frame, else null.
   */
  onBodyPiece(buf: Buffer, start: number, end: number, payloadSize: number, first: boolean, last: boolean): Content | null {
    if (first) {
      if (this.state !== State.ExpectBody) throw this.outOfOrder();
      if (this.received + payloadSize > this.bodySize) throw this.tooLong();
      // A whole body frame in this one piece (its header came in the read before): as onBody.
      if (last && this.received === 0 && payloadSize === this.bodySize) return this.finish(viewOf(buf, start, end));
      // Room for the whole frame now: its size was checked against frame_max already.
      if (this.body === null || this.body.length < this.received + payloadSize) this.grow(this.received + payloadSize);
    } else if (this.state !== State.ExpectBody) {
      return null; // the channel dropped this command while the frame was arriving
    }
    if (end > start) {
      buf.copy(this.body!, this.received, start, end);
      this.received += end - start;
    }
    return last && this.received === this.bodySize ? this.finish(this.takeBody()) : null;
  }

  /** Drops any half-assembled command (channel closing). */
  reset(): void {
    this.state = State.Idle;
    this.method = null;
    this.rawProperties = EMPTY;
    this.dropBody();
  }

  /** Copies buf[start, end) into the body; `total` is received + its length. */
  private append(buf: Buffer, start: number, end: number, total: number): void {
    if (this.body === null || this.body.length < total) this.grow(total);
    buf.copy(this.body!, this.received, start, end);
    this.received = total;
  }

  /**
   * Makes the body buffer hold at least `needed` bytes (what has arrived and the frame in hand):
   * the whole announced body when the connection's allowance covers the rest, otherwise `needed`
   * plus whatever allowance is left, but at least as much again as has arrived (so a body that
   * grows without allowance is copied a bounded number of times).
   */
  private grow(needed: number): void {
    // The room taken before is filled by now: give it back, then take what this size needs.
    this.allowance.available += this.charged;
    this.charged = 0;
    const rest = this.bodySize - needed;
    const fromAllowance = Math.min(rest, this.allowance.available);
    const extra = Math.max(fromAllowance, Math.min(rest, this.received));
    const body = Buffer.allocUnsafe(needed + extra);
    if (this.body !== null && this.received > 0) this.body.copy(body, 0, 0, this.received);
    this.body = body;
    this.allowance.available -= fromAllowance;
    this.charged = fromAllowance;
  }

  /** The filled body (exactly body-size bytes long), handed over to the content. */
  private takeBody(): Buffer {
    const body = this.body!;
    this.body = null;
    return body;
  }

  private dropBody(): void {
    this.body = null;
    this.received = 0;
    this.allowance.available += this.charged;
    this.charged = 0;
  }

  private tooLong(): FrameError {
    return new FrameError(`content body is longer than the ${this.bodySize} bytes its header announced`).at(this.method!.id);
  }

  private finish(body: Buffer): Content {
    const content: Content = {
      method: this.method!,
      classId: this.classId,
      bodySize: this.bodySize,
      rawProperties: this.rawProperties,
      body,
    };
    this.state = State.Idle;
    this.method = null;
    this.rawProperties = EMPTY;
    if (this.received !== 0) this.dropBody();
    return content;
  }

  /** The error for a frame that does not fit the current state (texts as RabbitMQ's). */
  private outOfOrder(): UnexpectedFrame {
    if (this.state === State.Idle) return new UnexpectedFrame('expected method frame, got non method frame instead');
    const err =
      this.state === State.ExpectHeader
        ? new UnexpectedFrame(`expected content header for class ${this.classIdOfPending()}, got non content header frame instead`)
        : new UnexpectedFrame('expected content body, got non content body frame instead');
    return err.at(this.method!.id);
  }

  private classIdOfPending(): number {
    return this.method ? this.method.id >>> 16 : 0;
  }

  describePending(): string {
    return this.method ? (METHOD_NAMES.get(this.method.id) ?? 'unknown') : 'none';
  }
}
