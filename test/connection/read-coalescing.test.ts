// Read coalescing (src/connection/read-coalescing.ts): a consumer acking at a sustained high rate
// is read in batches (the socket's receive low-water mark), never at low rates; a held connection
// still answers heartbeats and closes cleanly (the 1 ms tick releases what stopped short of the
// mark); every delivery and ack goes through intact; off (the default) holds nothing.

import { createServer, connect, type Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import * as M from '../../src/protocol/generated/amqp.js';
import {
  ACK_FRAME_BYTES,
  MAX_LOW_WATER,
  MIN_LOW_WATER,
  ReadCoalescing,
  lowWaterFor,
  readCoalescingAvailable,
} from '../../src/connection/read-coalescing.js';
import { RawClient, frame } from '../support/raw-client.js';
import { startTestBroker, type TestBroker } from '../support/broker.js';
import { waitFor } from '../support/wait.js';

describe('the low-water policy', () => {
  it('holds only at a high input rate and with enough acks owed, in powers of two up to the cap', () => {
    // S6's 1k msg/s consumer: 21 bytes of acks a ms, far below a batch worth holding for.
    expect(lowWaterFor(21, 100)).toBe(1);
    // A high rate but few deliveries outstanding: the client cannot send a batch without us.
    expect(lowWaterFor(5000, 40)).toBe(1);
    // S11's consumer: ~2,000 bytes/ms of acks, prefetch 100 -> half the window's acks (1,050) -> 1,024.
    expect(lowWaterFor(2000, 100)).toBe(1024);
    // Bounded by the rate: what arrives in HOLD_MS.
    expect(lowWaterFor(600, 10_000)).toBe(MIN_LOW_WATER);
    // Bounded by the cap.
    expect(lowWaterFor(1e9, 1e9)).toBe(MAX_LOW_WATER);
    // Never above half the acks owed.
    for (let unacked = 0; unacked < 1000; unacked += 7) {
      const mark = lowWaterFor(1e6, unacked);
      if (mark > 1) expect(mark).toBeLessThanOrEqual((unacked * ACK_FRAME_BYTES) / 2);
    }
  });
});

/** A loopback socket pair: the server side's reads are recorded with their times. */
async function socketPair(): Promise<{ server: Socket; client: Socket; reads: { at: number; bytes: number }[]; close(): void }> {
  const reads: { at: number; bytes: number }[] = [];
  const listener = createServer();
  await new Promise<void>((r) => listener.listen(0, '127.0.0.1', r));
  const port = (listener.address() as { port: number }).port;
  const accepted = new Promise<Socket>((r) => listener.once('connection', r));
  const client = connect({ host: '127.0.0.1', port, noDelay: true });
  const server = await accepted;
  server.on('data', (chunk: Buffer) => reads.push({ at: performance.now(), bytes: chunk.length }));
  return {
    server,
    client,
    reads,
    close() {
      client.destroy();
      server.destroy();
      listener.close();
    },
  };
}

const fdOf = (socket: Socket): unknown => (socket as unknown as { _handle?: { fd?: unknown } })._handle?.fd;

describe.runIf(readCoalescingAvailable)('a held socket', () => {
  it('is read once the mark is reached, and within about two ticks when its client stops short', async () => {
    const pair = await socketPair();
    const coalescing = new ReadCoalescing(true);
    try {
      const reader = coalescing.reader(fdOf(pair.server), { unackedDeliveries: () => 10_000, socketGone: false })!;
      expect(reader).not.toBeNull();
      // Two rate windows of 100 KiB each: a sustained ~10 MB/s.
      let now = 1_000_000;
      for (let i = 0; i < 3; i++) reader.afterRead((now += 10), 100_000, false);
      expect(reader.lowWater).toBe(MAX_LOW_WATER);
      expect(coalescing.heldCount).toBe(1);

      // Less than the mark waits in the kernel...
      pair.client.write(Buffer.alloc(1000));
      // ...until the mark is reached: then it all comes in one read.
      const sentAt = performance.now();
      pair.client.write(Buffer.alloc(MAX_LOW_WATER));
      await waitFor(() => pair.reads.length > 0, 'the read once the mark was reached');
      expect(pair.reads).toEqual([{ at: pair.reads[0]!.at, bytes: 1000 + MAX_LOW_WATER }]);
      expect(pair.reads[0]!.at - sentAt).toBeLessThan(500);
      reader.afterRead((now += 1), 1000 + MAX_LOW_WATER, false);

      // A client that stops short: the tick releases the hold and the bytes are read.
      const shortAt = performance.now();
      pair.client.write(Buffer.alloc(10));
      await waitFor(() => pair.reads.length > 1, 'the bytes held short of the mark');
      expect(pair.reads[1]!.bytes).toBe(10);
      // Two 1 ms ticks; generous for a loaded machine, far below anything a client would notice.
      expect(pair.reads[1]!.at - shortAt).toBeLessThan(100);
      expect(coalescing.releasedByTick).toBe(1);
      expect(reader.lowWater).toBe(1);
      expect(coalescing.heldCount).toBe(0);

      // Released by the tick: not held again at once (back-off), even at the same high rate.
      reader.afterRead((now += 1), 100_000, false);
      expect(reader.lowWater).toBe(1);
      // Paused reading (flow control, alarms) is never held either.
      reader.afterRead((now += 1_000), 100_000, true);
      expect(reader.lowWater).toBe(1);
    } finally {
      coalescing.stop();
      pair.close();
    }
  });

  it('is never touched again once its connection is gone', async () => {
    const pair = await socketPair();
    const coalescing = new ReadCoalescing(true);
    let gone = false;
    try {
      const reader = coalescing.reader(fdOf(pair.server), { unackedDeliveries: () => 10_000, get socketGone() { return gone; } })!;
      let now = 1_000_000;
      for (let i = 0; i < 3; i++) reader.afterRead((now += 10), 100_000, false);
      expect(coalescing.heldCount).toBe(1);
      // The socket is destroyed (its descriptor may be reused at once) before the connection's
      // teardown ran: the tick drops the hold without setting the option on the descriptor.
      gone = true;
      await waitFor(() => coalescing.heldCount === 0, 'the hold dropped by the tick');
      expect(reader.lowWater).toBe(MAX_LOW_WATER);
      expect(coalescing.releasedByTick).toBe(1);
      // Nor when more reads are reported or the connection closes.
      reader.afterRead((now += 10), 100_000, false);
      reader.close();
      expect(coalescing.heldCount).toBe(0);
      expect(reader.lowWater).toBe(MAX_LOW_WATER);
    } finally {
      coalescing.stop();
      pair.close();
    }
  });
});

/** Publishes `count` messages with distinct bodies to `queue` over a raw client. */
function publishNumbered(client: RawClient, queue: string, count: number): void {
  for (let i = 0; i < count; i++) client.publish(1, '', queue, Buffer.from(`message-${i}`));
}

/** The bodies of the deliveries received so far, and their delivery tags. */
function deliveries(client: RawClient): { tags: bigint[]; bodies: string[] } {
  const tags: bigint[] = [];
  const bodies: string[] = [];
  for (const f of client.frames) {
    if (f.method?.id === M.BASIC_DELIVER) tags.push(BigInt((f.method as M.BasicDeliver).deliveryTag));
    else if (f.type === 3) bodies.push(f.payload.toString());
  }
  return { tags, bodies };
}

function ackFrame(tag: bigint): Buffer {
  const payload = Buffer.alloc(13);
  payload.writeUInt16BE(60, 0);
  payload.writeUInt16BE(80, 2);
  payload.writeBigUInt64BE(tag, 4);
  payload[12] = 0;
  return frame(1, 1, payload);
}

/** A consumer with `count` deliveries outstanding (prefetch unlimited), over a raw client. */
async function consumerWithBacklog(broker: TestBroker, queue: string, count: number): Promise<RawClient> {
  const publisher = await RawClient.handshake(broker.port);
  await publisher.openChannel(1);
  publisher.send(1, { id: M.QUEUE_DECLARE, reserved1: 0, queue, passive: false, durable: false, exclusive: false, autoDelete: false, noWait: false, arguments: {} });
  await publisher.waitForMethod(M.QUEUE_DECLARE_OK, 1);
  publishNumbered(publisher, queue, count);
  await waitFor(() => broker.broker.vhosts.get('/')!.queues.get(queue)!.messageCount === count, 'the backlog published');
  publisher.destroy();

  const consumer = await RawClient.handshake(broker.port, { heartbeat: 0 });
  await consumer.openChannel(1);
  consumer.send(1, { id: M.BASIC_CONSUME, reserved1: 0, queue, consumerTag: 'c', noLocal: false, noAck: false, exclusive: false, noWait: false, arguments: {} });
  await waitFor(() => deliveries(consumer).bodies.length === count, 'every delivery');
  return consumer;
}

/** Acks tags [from, to) in writes of `perWrite` acks, one write per `everyMs` (0: back to back, yielding to I/O). */
async function ackPaced(client: RawClient, tags: bigint[], perWrite: number, everyMs: number): Promise<void> {
  for (let i = 0; i < tags.length; i += perWrite) {
    client.write(Buffer.concat(tags.slice(i, i + perWrite).map(ackFrame)));
    await new Promise((r) => (everyMs === 0 ? setImmediate(r) : setTimeout(r, everyMs)));
  }
}

describe.runIf(readCoalescingAvailable)('a consumer connection', () => {
  it('acking at a high rate is held, gets every body intact, answers a heartbeat and closes cleanly', async () => {
    const broker = await startTestBroker({ readCoalescing: 'on' });
    try {
      const coalescing = broker.server.readCoalescing;
      const count = 20_000;
      const consumer = await consumerWithBacklog(broker, 'rc-fast', count);
      const { tags, bodies } = deliveries(consumer);
      expect(bodies).toEqual(Array.from({ length: count }, (_, i) => `message-${i}`));
      const unacked = (): number => [...broker.server.connections].reduce((n, c) => n + c.unackedDeliveries(), 0);
      expect(unacked()).toBe(count);

      // 20 acks (420 bytes) per write, back to back: far above the rate a hold needs, until the
      // connection is held (the last 5,000 deliveries are never acked: the client owes plenty).
      let next = 0;
      while (coalescing.heldCount === 0 && next < count - 5000) {
        consumer.write(Buffer.concat(tags.slice(next, next + 20).map(ackFrame)));
        next += 20;
        await new Promise((r) => setImmediate(r));
      }
      expect(coalescing.holdsStarted).toBeGreaterThan(0);
      expect(coalescing.heldCount).toBe(1);
      // Held now: a heartbeat and a close (29 bytes, below any mark; with the acks still in flight
      // they may reach it, else the tick releases them) are read and answered.
      consumer.write(frame(8, 0, Buffer.alloc(0)));
      consumer.send(0, { id: M.CONNECTION_CLOSE, replyCode: 200, replyText: 'bye', classId: 0, methodId: 0 });
      await consumer.waitForMethod(M.CONNECTION_CLOSE_OK, 0, 2000);
      await waitFor(() => broker.server.connections.size === 0, 'the connection gone');
      expect(coalescing.heldCount).toBe(0);
      // Every ack sent was taken, and the unacked deliveries went back to the queue.
      expect(broker.broker.vhosts.get('/')!.queues.get('rc-fast')!.messageCount).toBe(count - next);
      consumer.destroy();
    } finally {
      await broker.stop();
    }
  });

  it('acking at a low rate is never held', async () => {
    const broker = await startTestBroker({ readCoalescing: 'on' });
    try {
      const coalescing = broker.server.readCoalescing;
      const consumer = await consumerWithBacklog(broker, 'rc-slow', 200);
      const { tags } = deliveries(consumer);
      // One ack every 2 ms (~500/s, 10 bytes a ms), 200 deliveries outstanding.
      await ackPaced(consumer, tags.slice(0, 150), 1, 2);
      await waitFor(() => broker.server.connections.size === 1 && [...broker.server.connections][0]!.unackedDeliveries() === 50, 'the acks processed');
      expect(coalescing.holdsStarted).toBe(0);
      consumer.destroy();
    } finally {
      await broker.stop();
    }
  });

  it('is never held with read coalescing off, the default', async () => {
    const broker = await startTestBroker();
    try {
      const coalescing = broker.server.readCoalescing;
      expect(coalescing.enabled).toBe(false);
      const consumer = await consumerWithBacklog(broker, 'rc-off', 5000);
      const { tags } = deliveries(consumer);
      await ackPaced(consumer, tags, 20, 0);
      await waitFor(() => [...broker.server.connections][0]!.unackedDeliveries() === 0, 'every ack processed');
      expect(coalescing.holdsStarted).toBe(0);
      consumer.destroy();
    } finally {
      await broker.stop();
    }
  });
});
