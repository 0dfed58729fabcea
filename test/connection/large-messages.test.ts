// Large messages over real sockets. Published bodies whose frames are cut across the broker's
// socket reads at awkward points (inside a frame header, inside body frames, just before a
// frame-end octet) are delivered byte for byte; amqplib round-trips 1 MiB and 16 MiB bodies; and a
// client that announces huge bodies, sends a few bytes and vanishes makes the broker hold no more
// than its bounded allowance, gives all of it back, and leaves the broker serving others.

import { createHash } from 'node:crypto';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import amqp, { type ChannelModel } from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Connection } from '../../src/connection/connection.js';
import { BODY_ALLOWANCE_BYTES } from '../../src/protocol/command-assembler.js';
import * as M from '../../src/protocol/generated/amqp.js';
import { startTestBroker, type TestBroker } from '../support/broker.js';
import { RawClient, frame, headerPayload, methodFrame } from '../support/raw-client.js';
import { waitFor } from '../support/wait.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

let broker: TestBroker;
let consumer: ChannelModel;

beforeAll(async () => {
  broker = await startTestBroker();
  consumer = await amqp.connect(broker.url);
});

afterAll(async () => {
  await consumer.close();
  await broker.stop();
});

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

function pattern(n: number, seed: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = (i * 131 + seed * 17 + (i >>> 11)) & 0xff;
  return b;
}

/** The broker's side of a raw client's connection. */
async function serverSide(raw: RawClient): Promise<Connection> {
  const peer = `127.0.0.1:${raw.socket.localPort}`;
  return waitFor(
    () => [...broker.broker.connections].find((c) => (c as Connection).peer === peer) as Connection | undefined,
    `the broker's connection for ${peer}`,
  );
}

/** Writes each piece only after the broker has read the one before: each is a read of its own. */
async function writeAsSeparateReads(raw: RawClient, server: Connection, bytes: Buffer, cuts: number[]): Promise<void> {
  let prev = 0;
  for (const cut of [...cuts, bytes.length]) {
    const target = server.bytesRead + (cut - prev);
    raw.write(bytes.subarray(prev, cut));
    await waitFor(() => server.bytesRead >= target, `the broker to read ${target} bytes`);
    prev = cut;
  }
}

/** basic.publish to the default exchange + content header + body frames of at most maxPayload. */
function publishBytes(queue: string, body: Buffer, maxPayload: number): Buffer {
  const parts = [
    methodFrame(1, { id: M.BASIC_PUBLISH, reserved1: 0, exchange: '', routingKey: queue, mandatory: false, immediate: false }),
    frame(2, 1, headerPayload(body.length)),
  ];
  for (let o = 0; o < body.length; o += maxPayload) parts.push(frame(3, 1, body.subarray(o, Math.min(body.length, o + maxPayload))));
  return Buffer.concat(parts);
}

/** Consumes `count` messages from queue with amqplib. */
async function consume(queue: string, count: number): Promise<Buffer[]> {
  const ch = await consumer.createChannel();
  const got: Buffer[] = [];
  await ch.consume(queue, (m) => m !== null && got.push(m.content), { noAck: true });
  await waitFor(() => got.length >= count, `${count} messages from ${queue}`, 20_000);
  await ch.close();
  return got;
}

describe('bodies cut across the broker\'s socket reads', () => {
  it('frame headers, body frames and frame-end octets split across reads: every body delivered exactly', async () => {
    const FRAME_MAX = 4096;
    const raw = await RawClient.handshake(broker.port, { frameMax: FRAME_MAX });
    const server = await serverSide(raw);
    await raw.openChannel(1);
    raw.send(1, { id: M.QUEUE_DECLARE, reserved1: 0, queue: 'split-reads', passive: false, durable: false, exclusive: false, autoDelete: false, noWait: false, arguments: {} });
    await raw.waitForMethod(M.QUEUE_DECLARE_OK, 1);
    const maxPayload = FRAME_MAX - 8;
    const bodies = [
      Buffer.alloc(0), // header only
      pattern(maxPayload, 1), // exactly one full frame
      pattern(FRAME_MAX, 2), // frame_max bytes: one full frame and 8 bytes
      pattern(50 * maxPayload + 1001, 3), // many frames
      pattern(3000, 4), // one frame
    ];
    const sent: string[] = [];
    for (const [i, body] of bodies.entries()) {
      const bytes = publishBytes('split-reads', body, maxPayload);
      const bodyStart = bytes.length - body.length - 8 * Math.ceil(body.length / maxPayload);
      // inside the first body frame's header, right after it, in the middle of the payload, just
      // before its frame-end octet, and (many frames) inside the headers of later frames
      const cuts = [bodyStart + 3, bodyStart + 7, bodyStart + 100, bodyStart + Math.min(8 + body.length, 8 + maxPayload) - 1];
      if (body.length > 2 * maxPayload) cuts.push(bodyStart + FRAME_MAX + 2, bodyStart + 2 * FRAME_MAX - 1, bodyStart + 10 * FRAME_MAX + 5000);
      const valid = [...new Set(cuts)].filter((c) => c > 0 && c < bytes.length).sort((a, b) => a - b);
      await writeAsSeparateReads(raw, server, bytes, valid);
      sent.push(sha(body));
      expect(server.bodyAllowance.available, `allowance after body ${i}`).toBe(BODY_ALLOWANCE_BYTES);
    }
    const got = await consume('split-reads', bodies.length);
    expect(got.map(sha)).toEqual(sent);
    expect(got.map((b) => b.length)).toEqual(bodies.map((b) => b.length));
    raw.destroy();
  });

  it('128 KiB body frames in 64 KiB reads (as a client publishing 1 MiB messages sends them): bodies exact', async () => {
    const raw = await RawClient.handshake(broker.port);
    const server = await serverSide(raw);
    expect(server.frameMax).toBe(131072);
    await raw.openChannel(1);
    raw.send(1, { id: M.QUEUE_DECLARE, reserved1: 0, queue: 'mib-reads', passive: false, durable: false, exclusive: false, autoDelete: false, noWait: false, arguments: {} });
    await raw.waitForMethod(M.QUEUE_DECLARE_OK, 1);
    const bodies = [pattern(1 << 20, 5), pattern((1 << 20) + 7, 6), pattern(131064 * 3, 7)];
    const stream = Buffer.concat(bodies.map((b) => publishBytes('mib-reads', b, 131064)));
    const cuts: number[] = [];
    for (let p = 65536; p < stream.length; p += 65536) cuts.push(p);
    await writeAsSeparateReads(raw, server, stream, cuts);
    const got = await consume('mib-reads', bodies.length);
    expect(got.map(sha)).toEqual(bodies.map(sha));
    raw.destroy();
  });
});

describe('amqplib round trips', () => {
  for (const [name, size] of [
    ['1 MiB', 1 << 20],
    ['16 MiB', 16 << 20],
  ] as const) {
    it(`${name} bodies arrive with the same checksum`, async () => {
      const publisher = await amqp.connect(broker.url);
      const ch = await publisher.createChannel();
      const q = (await ch.assertQueue('', { exclusive: false, autoDelete: true })).queue;
      const bodies = [pattern(size, 8), pattern(size, 9), pattern(size - 1, 10)];
      for (const b of bodies) ch.sendToQueue(q, b);
      const got = await consume(q, bodies.length);
      expect(got.map((b) => b.length)).toEqual(bodies.map((b) => b.length));
      expect(got.map(sha)).toEqual(bodies.map(sha));
      await publisher.close();
    });
  }
});

describe('a client announcing huge bodies and sending a few bytes', () => {
  it('holds at most the allowance, gives it all back when the client vanishes, and the broker carries on', async () => {
    const CHANNELS = 20;
    const ANNOUNCED = 100 * 1024 * 1024; // under the 128 MiB max message size
    gc();
    gc();
    const before = process.memoryUsage().arrayBuffers;
    const raw = await RawClient.handshake(broker.port);
    const server = await serverSide(raw);
    for (let ch = 1; ch <= CHANNELS; ch++) await raw.openChannel(ch);
    // Channels 1..N-1: publish, a header announcing 100 MiB, one whole body frame of 10 bytes.
    // Channel N: the same, but its body frame announces 100 KiB of payload and stops after 10.
    const parts: Buffer[] = [];
    for (let ch = 1; ch <= CHANNELS; ch++) {
      parts.push(methodFrame(ch, { id: M.BASIC_PUBLISH, reserved1: 0, exchange: '', routingKey: 'nowhere', mandatory: false, immediate: false }));
      parts.push(frame(2, ch, headerPayload(ANNOUNCED)));
      parts.push(ch < CHANNELS ? frame(3, ch, Buffer.alloc(10, ch)) : frame(3, ch, Buffer.alloc(100 * 1024, ch)).subarray(0, 7 + 10));
    }
    const stream = Buffer.concat(parts);
    await writeAsSeparateReads(raw, server, stream, []);
    expect(server.bodyAllowance.available).toBe(0);
    gc();
    gc();
    const held = process.memoryUsage().arrayBuffers - before;
    expect(held).toBeLessThan(BODY_ALLOWANCE_BYTES + 2 * 1024 * 1024);
    raw.destroy();
    await waitFor(() => ![...broker.broker.connections].includes(server), 'the broker to drop the connection');
    expect(server.bodyAllowance.available).toBe(BODY_ALLOWANCE_BYTES);
    gc();
    gc();
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(2 * 1024 * 1024);
    // and the broker carries on
    const publisher = await amqp.connect(broker.url);
    const ch = await publisher.createChannel();
    const q = (await ch.assertQueue('', { autoDelete: true })).queue;
    ch.sendToQueue(q, pattern(1 << 20, 11));
    const got = await consume(q, 1);
    expect(sha(got[0]!)).toBe(sha(pattern(1 << 20, 11)));
    await publisher.close();
  });
});
