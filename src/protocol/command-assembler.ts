// Per-channel content assembly: a content-carrying method, then a content header, then body frames
// until body-size bytes have arrived. Pure state machine; the caller feeds frames and receives
// complete commands. Frames out of order → 505 UNEXPECTED_FRAME; more body than announced → 501.
// Properties stay as raw bytes (the publisher's flags and list) so they can be forwarded untouched;
// a body in one frame is kept as a view, a body in several frames is joined once at the end (never
// allocated up front from the announced size, which the client controls).

import { FrameError, UnexpectedFrame } from './errors.js';
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
  /** body fragments received so far (views into their frames) */
  private fragments: Buffer[] = [];
  private received = 0;

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
    if (buf.readUInt16BE(start + 2) !== 0) throw this.outOfOrder();
    this.classId = buf.readUInt16BE(start);
    const expected = this.classIdOfPending();
    if (this.classId !== expected) {
      throw new UnexpectedFrame(
        `expected content header for class ${expected}, got one for class ${this.classId} instead`,
      ).at(this.method!.id);
    }
    this.bodySize = buf.readUInt32BE(start + 4) * 4294967296 + buf.readUInt32BE(start + 8);
    this.rawProperties = buf.subarray(start + 12, end);
    if (this.bodySize === 0) return this.finish(EMPTY);
    this.state = State.ExpectBody;
    return null;
  }

  /** A body frame arrived. Returns the completed content when the last byte is in, else null. */
  onBody(buf: Buffer, start: number, end: number): Content | null {
    if (this.state !== State.ExpectBody) throw this.outOfOrder();
    const size = end - start;
    const total = this.received + size;
    if (total > this.bodySize) {
      throw new FrameError(
        `content body is longer than the ${this.bodySize} bytes its header announced`,
      ).at(this.method!.id);
    }
    if (this.received === 0 && total === this.bodySize) return this.finish(buf.subarray(start, end));
    if (size > 0) this.fragments.push(buf.subarray(start, end));
    this.received = total;
    if (total < this.bodySize) return null;
    const body = this.fragments.length === 1 ? this.fragments[0]! : Buffer.concat(this.fragments, total);
    return this.finish(body);
  }

  /** Drops any half-assembled command (channel closing). */
  reset(): void {
    this.state = State.Idle;
    this.method = null;
    this.rawProperties = EMPTY;
    this.fragments = [];
    this.received = 0;
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
    if (this.fragments.length > 0) this.fragments = [];
    this.received = 0;
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
