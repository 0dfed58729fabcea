// A stream's memory does not grow with its length (Warren, in-process broker, amqplib): after
// 40 MB went into a stream, what the stream holds in memory — its tail cache — is within its
// bound, whatever the stream's length, and stays there while a consumer replays everything from
// the start; the consumer's read block is bounded too. (Segment files and their small per-segment
// objects are the only things that grow.)

import { describe, expect, it } from 'vitest';
import { TAIL_CACHE_BYTES, type StreamQueue } from '../../src/broker/stream/stream-queue.js';
import { uniqueName, waitFor } from '../support/harness.js';
import { useTestBroker } from '../support/test-broker.js';

const broker = useTestBroker();
const clients = broker.clients;


const MESSAGES = 40_000;
const BODY = Buffer.alloc(1000, 'x');
/** The cache may exceed its budget by what is not written yet (one batch) and one record. */
const CACHE_LIMIT = TAIL_CACHE_BYTES + 2 * 1024 * 1024;

describe('stream memory', () => {
  it(`${MESSAGES} messages of 1 kB: the tail cache stays within its bound while publishing and replaying`, { timeout: 60_000 }, async () => {
    const q = uniqueName('st-mem');
    const pub = await (await clients.connect()).createConfirmChannel();
    await pub.assertQueue(q, { durable: true, arguments: { 'x-queue-type': 'stream', 'x-stream-max-segment-size-bytes': 4_000_000 } });
    const stream = broker.broker.vhosts.get('/')!.queues.get(q) as StreamQueue;
    let peak = 0;
    for (let sent = 0; sent < MESSAGES; sent += 1000) {
      for (let i = 0; i < 1000; i++) pub.sendToQueue(q, BODY);
      await pub.waitForConfirms();
      peak = Math.max(peak, stream.tailCacheBytes);
    }
    expect(stream.messageCount).toBe(MESSAGES);
    expect(stream.messageBytes).toBeGreaterThan(MESSAGES * BODY.length);
    expect(peak).toBeLessThanOrEqual(CACHE_LIMIT);
    expect(stream.segmentCount).toBeGreaterThanOrEqual(10);

    const ch = await clients.channel();
    await ch.prefetch(500);
    let received = 0;
    await ch.consume(
      q,
      (m) => {
        if (m === null) return;
        received++;
        ch.ack(m); // the test keeps nothing either
      },
      { arguments: { 'x-stream-offset': 'first' } },
    );
    for (let seen = 5000; seen <= MESSAGES; seen += 5000) {
      await waitFor(() => received >= seen, `${seen} messages replayed`, 20_000);
      expect(stream.tailCacheBytes).toBeLessThanOrEqual(CACHE_LIMIT);
      expect(stream.largestReaderBlockBytes).toBeLessThanOrEqual(256 * 1024 + 2048);
    }
  });
});
