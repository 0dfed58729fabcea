// A connection's output (src/connection/outbound.ts) over a real loopback socket: deliveries of
// every size (bodies copied in beside the frames, and large ones queued as their own buffer) with
// flushes of varying size in between — so that flushes fill buffers, straddle them, and start fresh
// ones after a flush that left too little room — arrive byte for byte, in order, and parse as the
// frames that were written.

import { once } from 'node:events';
import { createServer, connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { Dispatcher } from '../../src/broker/dispatch.js';
import { Message } from '../../src/broker/message.js';
import { createLogger } from '../../src/log.js';
import { Outbound } from '../../src/connection/outbound.js';
import { encodeShortStr } from '../../src/protocol/frame-writer.js';
import { FrameParser } from '../../src/protocol/frame-parser.js';
import { waitFor } from '../support/broker.js';

const closers: (() => void)[] = [];
afterEach(() => {
  for (const c of closers.splice(0)) c();
});

/** A connected loopback socket pair: what the server side writes, the client side reads. */
async function socketPair(): Promise<{ server: Socket; client: Socket }> {
  const srv = createServer();
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const port = (srv.address() as { port: number }).port;
  const accepted = once(srv, 'connection');
  const client = connect(port, '127.0.0.1');
  const [server] = (await accepted) as [Socket];
  closers.push(() => {
    client.destroy();
    server.destroy();
    srv.close();
  });
  return { server, client };
}

describe('Outbound', () => {
  it('deliveries of every size, flushed in batches of varying size, arrive as written', async () => {
    const { server, client } = await socketPair();
    const out = new Outbound(server, new Dispatcher(createLogger('silent')));
    const frameMax = 131_072;
    const received: { type: number; channel: number; payload: Buffer }[] = [];
    const parser = new FrameParser(frameMax, (type, channel, buf, start, end) => {
      received.push({ type, channel, payload: Buffer.from(buf.subarray(start, end)) });
    });
    client.on('data', (chunk: Buffer) => parser.push(chunk));

    const tag = encodeShortStr('amq.ctag-test');
    const properties = Buffer.concat([Buffer.from([0x10, 0x00]), Buffer.from([2])]); // delivery-mode 2
    // Sizes from empty through "copied in" (< 4096) to "own buffer" and split over frames.
    const sizes = [0, 1, 16, 300, 4095, 4096, 20_000, 70_000, frameMax * 2 + 5];
    const expected: { tagNo: number; body: Buffer }[] = [];
    let tagNo = 0;
    let seed = 7;
    const next = (n: number) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    for (let batch = 0; batch < 400; batch++) {
      const perFlush = 1 + next(batch % 5 === 0 ? 300 : 20);
      for (let i = 0; i < perFlush; i++) {
        const size = sizes[next(20) < 17 ? next(5) : next(sizes.length)]!;
        const body = Buffer.alloc(size);
        for (let b = 0; b < size; b += 997) body[b] = (tagNo + b) & 0xff;
        const message = new Message('ex', `key-${tagNo % 7}`, properties, body, 0);
        out.writeDelivery(1, tag, ++tagNo, false, message, frameMax);
        expected.push({ tagNo, body });
      }
      out.flush();
      if (batch % 50 === 0) await new Promise((r) => setImmediate(r)); // let the socket drain now and then
    }
    const totalFrames = expected.reduce((n, e) => n + 2 + Math.ceil(e.body.length / (frameMax - 8)), 0);
    await waitFor(() => received.length >= totalFrames, 'every frame to arrive', 30_000);
    expect(received.length).toBe(totalFrames);

    let f = 0;
    for (const e of expected) {
      const deliver = received[f++]!;
      expect([deliver.type, deliver.channel, deliver.payload.readUInt32BE(0)]).toEqual([1, 1, (60 << 16) | 60]);
      const tagAt = 4 + tag.length;
      expect(Number(deliver.payload.readBigUInt64BE(tagAt))).toBe(e.tagNo);
      const header = received[f++]!;
      expect([header.type, Number(header.payload.readBigUInt64BE(4))]).toEqual([2, e.body.length]);
      expect(header.payload.subarray(12)).toEqual(properties);
      const parts: Buffer[] = [];
      while (parts.reduce((n, p) => n + p.length, 0) < e.body.length) {
        const body = received[f++]!;
        expect(body.type).toBe(3);
        parts.push(body.payload);
      }
      expect(Buffer.concat(parts).equals(e.body)).toBe(true);
    }
    expect(out.writesCount).toBe(400);
  });

  // An idle connection (most of a large deployment) writes its handshake replies and heartbeats only:
  // its output keeps the small first buffer for good instead of taking a 64 KiB one each.
  it('an idle connection keeps its small first buffer: heartbeats write it again once the socket took them', async () => {
    const { server, client } = await socketPair();
    const out = new Outbound(server, new Dispatcher(createLogger('silent')));
    let received = Buffer.alloc(0);
    client.on('data', (chunk: Buffer) => (received = Buffer.concat([received, chunk])));
    expect(out.bufferBytes).toBe(1024);
    for (let i = 0; i < 1000; i++) {
      out.writeRaw(heartbeat(i));
      out.flush();
      await waitFor(() => server.writableLength === 0, 'the socket to take the heartbeat');
    }
    expect(out.bufferBytes).toBe(1024);
    await waitFor(() => received.length === 8000, '1000 heartbeat frames');
    for (let i = 0; i < 1000; i++) expect(received.subarray(i * 8, i * 8 + 8)).toEqual(heartbeat(i));
  });

  // A consumer connection that keeps up flushes a few KiB per read of its acks: each flush goes to
  // the kernel at once, so the next one is encoded from the start of the same buffer.
  it('a busy connection whose socket keeps up writes every flush from one 64 KiB buffer', async () => {
    const { server, client } = await socketPair();
    const out = new Outbound(server, new Dispatcher(createLogger('silent')));
    const frameMax = 131_072;
    const bodies: Buffer[] = [];
    let arrived: { count: number; resolve: () => void } | null = null;
    const parser = new FrameParser(frameMax, (type, _channel, buf, start, end) => {
      if (type !== 3) return;
      bodies.push(Buffer.from(buf.subarray(start, end)));
      if (arrived !== null && bodies.length >= arrived.count) arrived.resolve();
    });
    client.on('data', (chunk: Buffer) => parser.push(chunk));
    /** Resolves once the client has read `count` bodies (as a consumer reads between our flushes). */
    const received = (count: number): Promise<void> =>
      bodies.length >= count
        ? Promise.resolve()
        : new Promise<void>((resolve, reject) => {
            const timer = setTimeout(() => reject(new Error(`timed out waiting for ${count} deliveries`)), 5000);
            arrived = { count, resolve: () => (clearTimeout(timer), (arrived = null), resolve()) };
          });
    const tag = encodeShortStr('amq.ctag-test');
    const properties = Buffer.from([0x10, 0x00, 1]);
    const flushes = 1000;
    const perFlush = 23; // about 6 KiB a flush, as S11's consumer gets per read of its acks
    for (let f = 0; f < flushes; f++) {
      for (let i = 0; i < perFlush; i++) {
        const n = f * perFlush + i;
        const body = Buffer.alloc(200, n & 0xff);
        body.writeUInt32BE(n, 0);
        out.writeDelivery(1, tag, n + 1, false, new Message('', 'q', properties, body, 0), frameMax);
      }
      out.flush();
      expect(server.writableLength).toBe(0); // the kernel took the flush at once
      await received((f + 1) * perFlush);
    }
    // The small first buffer, then one 64 KiB buffer for good (without rewinding: one per ten flushes).
    expect(out.buffersTaken).toBe(1);
    expect(bodies.length).toBe(flushes * perFlush);
    for (let n = 0; n < flushes * perFlush; n++) {
      const body = bodies[n]!;
      expect(body.readUInt32BE(0)).toBe(n);
      expect(body.subarray(4).every((b) => b === (n & 0xff))).toBe(true);
    }
  });

  it('while the socket still holds bytes written from the small buffer, that buffer is not written again', async () => {
    const { server, client } = await socketPair();
    const out = new Outbound(server, new Dispatcher(createLogger('silent')));
    const parts: Buffer[] = [];
    client.on('data', (chunk: Buffer) => parts.push(chunk));
    client.pause();
    // The socket backs up: what the output hands it next waits in the socket, pointing into the buffer.
    const ballast = Buffer.alloc(16 * 1024 * 1024, 0x61);
    server.write(ballast);
    expect(server.writableLength).toBeGreaterThan(0);
    for (let i = 0; i < 200; i++) {
      out.writeRaw(heartbeat(i));
      out.flush();
    }
    expect(server.writableLength).toBeGreaterThan(ballast.length / 2);
    expect(out.bufferBytes).toBe(64 * 1024);
    client.resume();
    const total = ballast.length + 200 * 8;
    await waitFor(() => parts.reduce((n, p) => n + p.length, 0) === total, 'the ballast and 200 heartbeats', 30_000);
    const all = Buffer.concat(parts);
    expect(all.subarray(0, ballast.length).equals(ballast)).toBe(true);
    for (let i = 0; i < 200; i++) expect(all.subarray(ballast.length + i * 8, ballast.length + i * 8 + 8)).toEqual(heartbeat(i));
  });
});

/** A heartbeat-shaped frame (type 8) carrying i in its channel field, so each one can be told apart. */
function heartbeat(i: number): Buffer {
  return Buffer.from([8, (i >> 8) & 0xff, i & 0xff, 0, 0, 0, 0, 0xce]);
}
