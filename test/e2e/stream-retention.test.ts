// Stream retention (Warren, in-process broker with its data folder in view): x-max-length-bytes and
// x-max-age remove old data by whole segments — the segment files go from the stream's folder —
// while the segment being written to always stays; readers positioned in removed data move on to
// the first message still stored.

import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { StreamQueue } from '../../src/broker/stream/stream-queue.js';
import { collector, uniqueName, waitFor, type Channel } from '../support/harness.js';
import { useTestBroker } from '../support/test-broker.js';

const broker = useTestBroker();
const clients = broker.clients;


/** The stream's segment files (its folder is named by the queue's store id). */
function segmentFiles(queueName: string): string[] {
  const q = broker.broker.vhosts.get('/')!.queues.get(queueName)!;
  return readdirSync(join(broker.dataDir, 'streams', String(q.storeId))).filter((f) => f.endsWith('.segment'));
}

async function publish(ch: Channel, q: string, bodies: string[]): Promise<void> {
  const pub = await (await clients.connect()).createConfirmChannel();
  for (const b of bodies) pub.sendToQueue(q, Buffer.from(b));
  await pub.waitForConfirms();
  void ch;
}

async function readAll(q: string, expected: number): Promise<{ bodies: string[]; offsets: number[] }> {
  const ch = await clients.channel();
  await ch.prefetch(1000);
  const c = collector((m) => ch.ack(m));
  await ch.consume(q, c.onMessage, { arguments: { 'x-stream-offset': 'first' } });
  await c.waitFor(expected);
  return { bodies: c.bodies(), offsets: c.messages.map((m) => Number(m.properties.headers!['x-stream-offset'])) };
}

describe('retention', () => {
  it('by size: the oldest whole segments go until the stream fits x-max-length-bytes', async () => {
    const ch = await clients.channel();
    const q = uniqueName('st-size');
    await ch.assertQueue(q, {
      durable: true,
      arguments: { 'x-queue-type': 'stream', 'x-max-length-bytes': 3000, 'x-stream-max-segment-size-bytes': 1000 },
    });
    const bodies = Array.from({ length: 60 }, (_, i) => `m${String(i).padStart(3, '0')}-${'x'.repeat(90)}`);
    await publish(ch, q, bodies);
    const count = (await ch.checkQueue(q)).messageCount;
    // Records are ~170 bytes: five per 1000-byte segment; about 3000 bytes (plus the active segment) stay.
    expect(count).toBeGreaterThanOrEqual(15);
    expect(count).toBeLessThanOrEqual(25);
    const kept = await readAll(q, count);
    const first = kept.offsets[0]!;
    expect(first).toBe(60 - count);
    expect(kept.offsets).toEqual(Array.from({ length: count }, (_, i) => first + i));
    expect(kept.bodies).toEqual(bodies.slice(first));
    // Whole segments: each remaining file starts at a segment boundary, the first at the first offset kept.
    // The stream drops removed segments at once but deletes their files in its file-operation queue,
    // after the fsync in flight (seconds on a busy disk): wait until the files are only the segments kept.
    const stream = broker.broker.vhosts.get('/')!.queues.get(q) as StreamQueue;
    expect(stream.segmentCount).toBeLessThanOrEqual(5);
    await waitFor(() => segmentFiles(q).length === stream.segmentCount, 'the removed segments\' files to be deleted', 15_000);
    const files = segmentFiles(q).sort();
    expect(files.length).toBe(stream.segmentCount);
    expect(Number(files[0]!.slice(0, 20))).toBe(first);
  });

  it('by age: segments whose newest message is older than x-max-age go', async () => {
    const ch = await clients.channel();
    const q = uniqueName('st-age');
    // One message per segment (segments of 1 byte), so every old message is its own removable segment.
    await ch.assertQueue(q, { durable: true, arguments: { 'x-queue-type': 'stream', 'x-max-age': '1s', 'x-stream-max-segment-size-bytes': 1 } });
    await publish(ch, q, ['old1', 'old2', 'old3']);
    const oldAt = Date.now();
    expect(segmentFiles(q).length).toBe(3);
    await waitFor(() => Date.now() > oldAt + 1100, 'the old messages to be over a second old', 3000);
    await publish(ch, q, ['new1', 'new2']);
    // Retention runs when a segment is started (and on a timer).
    await waitFor(() => segmentFiles(q).length === 2, 'old segments removed');
    const kept = await readAll(q, 2);
    expect(kept.bodies).toEqual(['new1', 'new2']);
    expect(kept.offsets).toEqual([3, 4]);
    expect((await ch.checkQueue(q)).messageCount).toBe(2);
  });

  it('by age on an idle stream: old segments go on the retention timer, with nothing published', async () => {
    const ch = await clients.channel();
    const q = uniqueName('st-age-idle');
    await ch.assertQueue(q, { durable: true, arguments: { 'x-queue-type': 'stream', 'x-max-age': '1s', 'x-stream-max-segment-size-bytes': 1 } });
    await publish(ch, q, ['old1', 'old2', 'old3']);
    expect(segmentFiles(q).length).toBe(3);
    // Nothing more is published: only the timer (every max(1 s, max-age / 2)) can remove the two
    // full segments; the one being written to ('old3') always stays.
    await waitFor(() => segmentFiles(q).length === 1, 'the idle stream\'s old segments removed', 10_000);
    expect((await ch.checkQueue(q)).messageCount).toBe(1);
    const kept = await readAll(q, 1);
    expect(kept.bodies).toEqual(['old3']);
    expect(kept.offsets).toEqual([2]);
  });

  it('a reader behind the retained data moves on to the first message still stored', async () => {
    const ch = await clients.channel();
    const q = uniqueName('st-behind');
    await ch.assertQueue(q, { durable: true, arguments: { 'x-queue-type': 'stream', 'x-max-length-bytes': 1, 'x-stream-max-segment-size-bytes': 1 } });
    await publish(ch, q, ['a', 'b']);
    // A slow reader at offset 0 (prefetch 1, not acking yet).
    const slowCh = await clients.channel();
    await slowCh.prefetch(1);
    const slow = collector();
    await slowCh.consume(q, slow.onMessage, { arguments: { 'x-stream-offset': 0 } });
    const [first] = await slow.waitFor(1);
    expect(first!.content.toString()).toBe('b'); // 'a' was already removed: only the active segment stays
    await publish(ch, q, ['c', 'd', 'e']);
    slowCh.ack(first!);
    const [, next] = await slow.waitFor(2);
    expect(next!.content.toString()).toBe('e');
    expect(Number(next!.properties.headers!['x-stream-offset'])).toBe(4);
  });
});
