// A raw AMQP 0-9-1 client over a plain socket, for sending hostile or hand-built bytes and reading
// exactly what the broker answers. Uses Warren's own codec only to build well-formed frames and to
// decode replies; the bytes under test are written by the tests themselves.

import { connect, type Socket } from 'node:net';
import { encodeMethodFrame } from '../../src/protocol/frame-writer.js';
import { FrameParser } from '../../src/protocol/frame-parser.js';
import * as M from '../../src/protocol/generated/amqp.js';
import { encodeTable, type FieldTable } from '../../src/protocol/field-table.js';

export interface RawFrame {
  type: number;
  channel: number;
  payload: Buffer;
  /** decoded method, for method frames */
  method?: M.Method;
}

export const PROTOCOL_HEADER = Buffer.from('AMQP\x00\x00\x09\x01', 'latin1');

export function frame(type: number, channel: number, payload: Buffer, end = 0xce): Buffer {
  const buf = Buffer.alloc(8 + payload.length);
  buf[0] = type;
  buf.writeUInt16BE(channel, 1);
  buf.writeUInt32BE(payload.length, 3);
  payload.copy(buf, 7);
  buf[7 + payload.length] = end;
  return buf;
}

export function methodFrame(channel: number, method: M.Method): Buffer {
  return encodeMethodFrame(channel, method);
}

/** Content header payload: class 60, weight 0, body size, then the given property bytes. */
export function headerPayload(bodySize: number, properties: Buffer = Buffer.from([0, 0]), classId = 60): Buffer {
  const buf = Buffer.alloc(12 + properties.length);
  buf.writeUInt16BE(classId, 0);
  buf.writeUInt16BE(0, 2);
  buf.writeUInt32BE(Math.floor(bodySize / 2 ** 32), 4);
  buf.writeUInt32BE(bodySize >>> 0, 8);
  properties.copy(buf, 12);
  return buf;
}

/** What a raw handshake sends: the server's proposals and vhost / unless given. */
export interface HandshakeOptions {
  channelMax?: number;
  frameMax?: number;
  heartbeat?: number;
  clientProperties?: FieldTable;
  virtualHost?: string;
}

export class RawClient {
  readonly frames: RawFrame[] = [];
  readonly raw: Buffer[] = [];
  closed = false;
  private parser: FrameParser | null = null;
  private waiters: (() => void)[] = [];

  private constructor(readonly socket: Socket) {
    socket.on('data', (chunk) => {
      this.raw.push(chunk);
      if (this.parser) {
        try {
          this.parser.push(chunk);
        } catch {
          /* broker sent something odd: keep raw bytes for the test */
        }
      }
      this.wake();
    });
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
    socket.on('error', () => {});
  }

  static open(port: number): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      // No Nagle: hand-built frames go out as written (else each small write may wait ~40 ms).
      const socket = connect({ host: '127.0.0.1', port, noDelay: true }, () => resolve(new RawClient(socket)));
      socket.once('error', reject);
    });
  }

  /** Connects and completes the handshake (guest/guest, vhost /). */
  static async handshake(port: number, tune: HandshakeOptions = {}): Promise<RawClient> {
    const c = await RawClient.handshakeUntilOpen(port, tune);
    await c.waitForMethod(M.CONNECTION_OPEN_OK);
    return c;
  }

  /**
   * Connects and sends the handshake up to connection.open (guest/guest), without waiting for the
   * answer: for tests of what the broker does with the tune-ok or the open.
   */
  static async handshakeUntilOpen(port: number, tune: HandshakeOptions = {}): Promise<RawClient> {
    const c = await RawClient.open(port);
    c.startParsing();
    c.write(PROTOCOL_HEADER);
    await c.waitForMethod(M.CONNECTION_START);
    c.send(0, {
      id: M.CONNECTION_START_OK,
      clientProperties: tune.clientProperties ?? { product: 'raw-test' },
      mechanism: 'PLAIN',
      response: Buffer.from('\0guest\0guest'),
      locale: 'en_US',
    });
    const t = (await c.waitForMethod(M.CONNECTION_TUNE)) as M.ConnectionTune;
    c.send(0, {
      id: M.CONNECTION_TUNE_OK,
      channelMax: tune.channelMax ?? t.channelMax,
      frameMax: tune.frameMax ?? t.frameMax,
      heartbeat: tune.heartbeat ?? 0,
    });
    c.send(0, { id: M.CONNECTION_OPEN, virtualHost: tune.virtualHost ?? '/', reserved1: '', reserved2: false });
    return c;
  }

  startParsing(): void {
    this.parser = new FrameParser(1 << 30, (type, channel, buf, start, end) => {
      const payload = Buffer.from(buf.subarray(start, end));
      const f: RawFrame = { type, channel, payload };
      if (type === 1 && payload.length >= 4) {
        const method = M.decodeMethodArgs(payload.readUInt32BE(0), payload, 4, payload.length);
        if (method !== undefined) f.method = method;
      }
      this.frames.push(f);
    });
  }

  write(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  send(channel: number, method: M.Method): void {
    this.write(methodFrame(channel, method));
  }

  async openChannel(channel: number): Promise<void> {
    this.send(channel, { id: M.CHANNEL_OPEN, reserved1: '' });
    await this.waitForMethod(M.CHANNEL_OPEN_OK, channel);
  }

  /** Publishes with raw property bytes and a body split into frames of at most frameBody bytes. */
  publish(channel: number, exchange: string, routingKey: string, body: Buffer, properties = Buffer.from([0, 0])): void {
    this.send(channel, { id: M.BASIC_PUBLISH, reserved1: 0, exchange, routingKey, mandatory: false, immediate: false });
    this.write(frame(2, channel, headerPayload(body.length, properties)));
    if (body.length > 0) this.write(frame(3, channel, body));
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  private waitForChange(timeoutMs: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(resolve, timeoutMs);
      this.waiters.push(() => {
        clearTimeout(t);
        resolve();
      });
    });
  }

  /** Waits for a method with this id (on this channel, if given); throws after the timeout. */
  async waitForMethod(id: number, channel?: number, timeoutMs = 5000): Promise<M.Method> {
    const deadline = Date.now() + timeoutMs;
    let seen = 0;
    for (;;) {
      for (; seen < this.frames.length; seen++) {
        const f = this.frames[seen]!;
        if (f.method?.id === id && (channel === undefined || f.channel === channel)) {
          this.frames.splice(seen, 1);
          return f.method;
        }
      }
      if (this.closed) throw new Error(`socket closed while waiting for ${M.METHOD_NAMES.get(id)}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${M.METHOD_NAMES.get(id)}`);
      await this.waitForChange(left);
    }
  }

  /** Waits for connection.close from the broker and returns it. */
  async expectConnectionClose(timeoutMs = 5000): Promise<M.ConnectionClose> {
    return (await this.waitForMethod(M.CONNECTION_CLOSE, 0, timeoutMs)) as M.ConnectionClose;
  }

  async expectChannelClose(channel: number, timeoutMs = 5000): Promise<M.ChannelClose> {
    return (await this.waitForMethod(M.CHANNEL_CLOSE, channel, timeoutMs)) as M.ChannelClose;
  }

  /** Waits until the broker closes the socket. */
  async waitClosed(timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error('socket still open');
      await this.waitForChange(left);
    }
  }

  /** All bytes received so far. */
  received(): Buffer {
    return Buffer.concat(this.raw);
  }

  destroy(): void {
    this.socket.destroy();
  }
}

export { encodeTable };
