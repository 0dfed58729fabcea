// Output of one connection. Frames are encoded straight into a large buffer; small bodies are
// copied in beside them (cheaper than a separate write), large bodies are queued as the original
// buffer (zero copy). Everything written during one dispatcher run goes out in one corked
// socket write. The socket's own buffer level tells the dispatcher when this connection is backed
// up, so its consumers pause instead of Warren buffering without bound.

import type { Socket } from 'node:net';
import type { Dispatcher } from '../broker/dispatch.js';
import type { Message } from '../broker/message.js';
import { FRAME_END, type Method } from '../protocol/generated/amqp.js';
import {
  contentHeaderFrameSize,
  copyBytes,
  deliverFrameSize,
  methodFrameSize,
  writeBodyFrameHeader,
  writeContentHeaderFrame,
  writeDeliverFrame,
  writeMethodFrame,
} from '../protocol/frame-writer.js';

const CHUNK_SIZE = 64 * 1024;
/**
 * The first buffer of a connection's output: enough for the handshake replies, channel opens and
 * heartbeats. Most connections of a large deployment sit idle, and a full chunk each would touch a
 * page of its own; this one comes from Node's shared buffer pool (several connections to a page).
 * The first write that does not fit moves the output to full chunks for good.
 */
const FIRST_BUFFER_SIZE = 1024;
/** Bodies at least this large are written as their own buffer instead of being copied. */
const COPY_THRESHOLD = 4096;
/** Above this many bytes waiting in the socket, consumers on this connection pause. */
export const HIGH_WATER_BYTES = 1024 * 1024;

export class Outbound {
  private buf: Buffer = Buffer.allocUnsafe(FIRST_BUFFER_SIZE);
  /** start of the part of buf not yet handed to the socket */
  private start = 0;
  private pos = 0;
  private readonly chunks: Buffer[] = [];
  private queuedBytes = 0;
  private marked = false;
  /** counters for metrics */
  bytesWritten = 0;
  /** socket writes (RabbitMQ's send_cnt) */
  writesCount = 0;
  /** epoch ms of the last write, for heartbeats */
  lastWriteAt = Date.now();
  /** 64 KiB buffers taken after the first one (a connection whose socket keeps up needs one) */
  buffersTaken = 0;

  /** socket null: a held output (see Channel), released into a connection's output later */
  constructor(
    private readonly socket: Socket | null,
    private readonly dispatcher: Dispatcher,
  ) {}

  /** Size of the buffer frames are encoded into now (small on a connection that never needed more). */
  get bufferBytes(): number {
    return this.buf.length;
  }

  /** Moves everything written to a held output to the end of this one. */
  append(held: Outbound): void {
    held.cut();
    if (held.chunks.length === 0) return;
    this.cut();
    for (const c of held.chunks) this.chunks.push(c);
    this.queuedBytes += held.queuedBytes;
    held.chunks.length = 0;
    held.queuedBytes = 0;
    this.mark();
  }

  /** Bytes buffered here and in the socket, not yet on the wire. */
  get backlogBytes(): number {
    return this.queuedBytes + (this.pos - this.start) + (this.socket?.writableLength ?? 0);
  }

  /** True when consumers on this connection should wait for 'drain'. */
  get backedUp(): boolean {
    return this.backlogBytes > HIGH_WATER_BYTES;
  }

  writeMethod(channel: number, method: Method): void {
    const size = methodFrameSize(method);
    this.reserve(size);
    this.pos = writeMethodFrame(this.buf, this.pos, channel, method);
    this.mark();
  }

  /** A content-carrying method (basic.return, basic.get-ok) followed by header and body frames. */
  writeMethodWithContent(channel: number, method: Method, message: Message, frameMax: number): void {
    this.writeMethod(channel, method);
    this.writeContent(channel, message, frameMax);
  }

  /** basic.deliver + header + body: the delivery hot path, no argument objects. */
  writeDelivery(
    channel: number,
    tagBytes: Buffer,
    deliveryTag: number,
    redelivered: boolean,
    message: Message,
    frameMax: number,
  ): void {
    const routingBytes = message.routingBytes;
    this.reserve(deliverFrameSize(tagBytes, routingBytes));
    this.pos = writeDeliverFrame(this.buf, this.pos, channel, tagBytes, deliveryTag, redelivered, routingBytes);
    this.writeContent(channel, message, frameMax);
    this.mark();
  }

  private writeContent(channel: number, message: Message, frameMax: number): void {
    const body = message.body;
    const props = message.rawProperties;
    this.reserve(contentHeaderFrameSize(props));
    this.pos = writeContentHeaderFrame(this.buf, this.pos, channel, 60, body.length, props);
    const maxPayload = frameMax - 8;
    for (let offset = 0; offset < body.length; offset += maxPayload) {
      const end = Math.min(body.length, offset + maxPayload);
      const size = end - offset;
      if (size < COPY_THRESHOLD) {
        this.reserve(size + 8);
        this.pos = writeBodyFrameHeader(this.buf, this.pos, channel, size);
        this.pos = offset === 0 && end === body.length ? copyBytes(body, this.buf, this.pos) : this.pos + body.copy(this.buf, this.pos, offset, end);
        this.buf[this.pos++] = FRAME_END;
      } else {
        this.reserve(8);
        this.pos = writeBodyFrameHeader(this.buf, this.pos, channel, size);
        this.cut();
        const part = offset === 0 && end === body.length ? body : body.subarray(offset, end);
        this.chunks.push(part);
        this.queuedBytes += size;
        this.buf[this.pos++] = FRAME_END;
      }
    }
  }

  /** Raw bytes (protocol header, heartbeat). */
  writeRaw(bytes: Buffer): void {
    this.reserve(bytes.length);
    this.pos += bytes.copy(this.buf, this.pos);
    this.mark();
  }

  /** Hands everything buffered to the socket in one corked write. */
  flush(): void {
    this.marked = false;
    this.cut();
    const chunks = this.chunks;
    if (chunks.length === 0) return;
    const socket = this.socket;
    if (socket === null) return; // held output: released with append()
    if (socket.destroyed || !socket.writable) {
      chunks.length = 0;
      this.queuedBytes = 0;
      return;
    }
    if (chunks.length === 1) {
      socket.write(chunks[0]!);
    } else {
      socket.cork();
      for (let i = 0; i < chunks.length; i++) socket.write(chunks[i]!);
      socket.uncork();
    }
    const flushed = this.queuedBytes;
    this.bytesWritten += flushed;
    this.writesCount++;
    // pop() rather than a length store, which is a runtime call: this runs once per socket write.
    while (chunks.length > 0) chunks.pop();
    this.queuedBytes = 0;
    if (!this.rewoundAfterWrite(socket)) this.startFreshIfShort(flushed);
    this.lastWriteAt = Date.now();
  }

  /**
   * After a flush: when the socket took everything at once (the usual case: nothing left in its
   * buffer), the next frames are encoded from the start of the same buffer instead of after the
   * bytes just written, so a busy connection writes from one buffer for good rather than taking a
   * fresh 64 KiB one every few flushes (an allocation, new pages to fault in and charge, more
   * external memory for V8 to collect: per consumer read, that was a cost S11's small batches paid
   * most). Safe because nothing refers to the written bytes any more: a write that completes
   * synchronously has copied them into the kernel, and a write still in progress (partial, or a
   * TLS record not yet out) keeps the socket's writableLength above zero, in which case the buffer
   * is left alone. Returns whether it rewound.
   */
  private rewoundAfterWrite(socket: Socket): boolean {
    if (socket.writableLength !== 0 || this.start !== this.pos) return false;
    this.start = 0;
    this.pos = 0;
    return true;
  }

  /**
   * After a flush of `flushed` bytes: when the room left in the buffer is unlikely to hold the next
   * flush of the same size, the next frames go into a fresh buffer rather than straddling two. A
   * flush straddling two buffers goes out as a corked writev of two chunks, which costs the socket
   * more than one write of one chunk; a loaded consumer connection flushes about the same amount
   * every time (prefetch × message), so the last flush is a good guess. The flushed bytes stay
   * with the socket; nothing else refers to the old buffer's unused end.
   */
  private startFreshIfShort(flushed: number): void {
    if (this.buf.length - this.pos >= Math.min(flushed, CHUNK_SIZE / 2)) return;
    if (this.reusedFirstBuffer(flushed)) return;
    this.buf = Buffer.allocUnsafe(CHUNK_SIZE);
    this.buffersTaken++;
    this.start = 0;
    this.pos = 0;
  }

  private mark(): void {
    if (!this.marked && this.socket !== null) {
      this.marked = true;
      this.dispatcher.markOutput(this);
    }
  }

  private reserve(n: number): void {
    if (this.buf.length - this.pos >= n) return;
    this.cut();
    if (this.reusedFirstBuffer(n)) return;
    this.buf = Buffer.allocUnsafe(Math.max(CHUNK_SIZE, n));
    this.buffersTaken++;
    this.start = 0;
    this.pos = 0;
  }

  /**
   * An idle connection's heartbeats fill the small first buffer over minutes: once everything
   * written to it has left the socket (nothing queued here, nothing left in the socket's buffer, so
   * no pending write still points into it), it is written again from the start instead of being
   * replaced by a full chunk. Returns whether it did (room for n bytes from the start).
   */
  private reusedFirstBuffer(n: number): boolean {
    const reusable = this.buf.length === FIRST_BUFFER_SIZE && n <= FIRST_BUFFER_SIZE && this.chunks.length === 0 && this.socket !== null && this.socket.writableLength === 0;
    if (reusable) {
      this.start = 0;
      this.pos = 0;
    }
    return reusable;
  }

  /** Moves the written part of buf onto the chunk list. */
  private cut(): void {
    if (this.pos > this.start) {
      this.chunks.push(this.buf.subarray(this.start, this.pos));
      this.queuedBytes += this.pos - this.start;
      this.start = this.pos;
    }
  }
}
