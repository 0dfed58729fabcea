// Streams across restarts (bin/warren as a child process, amqplib): after a clean stop and after
// kill -9 while publishing, every confirmed message is there with its offset and intact body,
// offsets go on where they stopped, consumer group positions are kept, a record cut short at the
// end of a segment is dropped, and the folder of a deleted stream is gone.

import { appendFileSync, existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../support/broker.js';
import type { ChildBroker } from '../support/child-broker.js';
import { useChildBrokers } from '../support/child-brokers.js';
import { collector, sleep, waitFor, QUIET_MS } from '../support/harness.js';

const { live, folders, clients, start, connect } = useChildBrokers();

async function stop(broker: ChildBroker, how: 'stop' | 'kill'): Promise<void> {
  await clients.closeAll(200);
  await (how === 'stop' ? broker.stop() : broker.kill());
  live.delete(broker);
}

const STREAM = { durable: true, arguments: { 'x-queue-type': 'stream', 'x-stream-max-segment-size-bytes': 20_000 } };

/** Body: sequence number and a filler that depends on it (damage shows). */
const body = (n: number): Buffer => Buffer.from(`${n}:${'0123456789abcdef'.repeat(8).slice(0, 20 + (n % 60))}`);

/** Reads the whole stream from first: offsets and bodies. */
async function readAll(broker: ChildBroker, q: string, expected: number): Promise<{ offset: number; body: Buffer }[]> {
  const ch = await (await connect(broker)).createChannel();
  await ch.prefetch(500);
  const c = collector((m) => ch.ack(m));
  await ch.consume(q, c.onMessage, { arguments: { 'x-stream-offset': 'first' } });
  await c.waitFor(expected, 20_000);
  await sleep(QUIET_MS);
  return c.messages.map((m) => ({ offset: Number(m.properties.headers!['x-stream-offset']), body: m.content }));
}

describe('stream recovery', () => {
  it('a clean restart keeps every message, offsets continue, group positions are kept', { timeout: 60_000 }, async () => {
    const dataDir = tempDir('warren-stream-');
    folders.push(dataDir);
    let broker = await start(dataDir);
    const q = 'recovered-stream';
    const pub = await (await connect(broker)).createConfirmChannel();
    await pub.assertQueue(q, STREAM);
    for (let i = 0; i < 2000; i++) pub.sendToQueue(q, body(i));
    await pub.waitForConfirms();
    // A group reads 500 and acknowledges them.
    const gch = await (await connect(broker)).createChannel();
    await gch.prefetch(100);
    let acked = 0;
    const g = collector((m) => {
      if (acked < 500) {
        acked++;
        gch.ack(m);
      }
    });
    await gch.consume(q, g.onMessage, { arguments: { 'x-stream-offset': 'first', 'x-stream-consumer-name': 'reporting' } });
    await g.waitFor(500);
    await gch.checkQueue(q); // the acks are in
    await gch.close();
    await stop(broker, 'stop');

    broker = await start(dataDir);
    const ch = await (await connect(broker)).createConfirmChannel();
    expect((await ch.checkQueue(q)).messageCount).toBe(2000);
    const all = await readAll(broker, q, 2000);
    expect(all.map((m) => m.offset)).toEqual(Array.from({ length: 2000 }, (_, i) => i));
    expect(all.every((m, i) => m.body.equals(body(i)))).toBe(true);
    ch.sendToQueue(q, body(2000));
    await ch.waitForConfirms();
    const next = await readAll(broker, q, 2001);
    expect(next[2000]!.offset).toBe(2000);
    // The group resumes after what it acknowledged before the restart.
    const rch = await (await connect(broker)).createChannel();
    await rch.prefetch(10);
    const resumed = collector();
    await rch.consume(q, resumed.onMessage, { arguments: { 'x-stream-consumer-name': 'reporting' } });
    const [firstResumed] = await resumed.waitFor(1);
    expect(Number(firstResumed!.properties.headers!['x-stream-offset'])).toBe(500);
    await stop(broker, 'stop');
  });

  it('kill -9 while publishing: every confirmed message is there, in order and intact', { timeout: 60_000 }, async () => {
    const dataDir = tempDir('warren-stream-kill-');
    folders.push(dataDir);
    let broker = await start(dataDir);
    const q = 'crash-stream';
    const pub = await (await connect(broker)).createConfirmChannel();
    pub.on('error', () => {});
    await pub.assertQueue(q, STREAM);
    let confirmed = 0;
    let sent = 0;
    let stopped = false;
    const publishing = (async () => {
      while (!stopped) {
        const batch = Array.from({ length: 100 }, () => sent++);
        for (const n of batch) pub.sendToQueue(q, body(n));
        try {
          await pub.waitForConfirms();
          confirmed = batch[batch.length - 1]! + 1;
        } catch {
          return;
        }
      }
    })();
    await waitFor(() => confirmed >= 3000, '3000 confirmed', 20_000);
    stopped = true;
    await broker.kill();
    live.delete(broker);
    await publishing;
    await clients.closeAll(200);

    broker = await start(dataDir);
    const ch = await (await connect(broker)).createChannel();
    const count = (await ch.checkQueue(q)).messageCount;
    expect(count).toBeGreaterThanOrEqual(confirmed);
    expect(count).toBeLessThanOrEqual(sent);
    const all = await readAll(broker, q, count);
    expect(all.length).toBe(count);
    expect(all.map((m) => m.offset)).toEqual(Array.from({ length: count }, (_, i) => i));
    expect(all.filter((m, i) => !m.body.equals(body(i)))).toEqual([]);
    await stop(broker, 'stop');
  });

  it('a record cut short at the end of a segment is dropped; the stream goes on after it', { timeout: 60_000 }, async () => {
    const dataDir = tempDir('warren-stream-torn-');
    folders.push(dataDir);
    let broker = await start(dataDir);
    const q = 'torn-stream';
    const pub = await (await connect(broker)).createConfirmChannel();
    await pub.assertQueue(q, STREAM);
    for (let i = 0; i < 10; i++) pub.sendToQueue(q, body(i));
    await pub.waitForConfirms();
    await stop(broker, 'stop');
    // A write cut short by a crash: a plausible record head and half a record.
    const streamDir = join(dataDir, 'streams', readdirSync(join(dataDir, 'streams'))[0]!);
    const segment = readdirSync(streamDir).filter((f) => f.endsWith('.segment')).sort().pop()!;
    const torn = Buffer.alloc(40, 7);
    torn.writeUInt32BE(500, 0);
    appendFileSync(join(streamDir, segment), torn);

    broker = await start(dataDir);
    const ch = await (await connect(broker)).createConfirmChannel();
    expect((await ch.checkQueue(q)).messageCount).toBe(10);
    ch.sendToQueue(q, body(10));
    await ch.waitForConfirms();
    const all = await readAll(broker, q, 11);
    expect(all.map((m) => m.offset)).toEqual(Array.from({ length: 11 }, (_, i) => i));
    expect(all.every((m, i) => m.body.equals(body(i)))).toBe(true);
    expect(broker.output.join('')).toContain('stream segment ended in an incomplete record');
    // Deleting the stream removes its folder.
    await ch.deleteQueue(q);
    await waitFor(() => !existsSync(streamDir), 'the stream folder removed');
    await stop(broker, 'stop');
  });
});
