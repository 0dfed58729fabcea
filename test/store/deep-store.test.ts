// A million stored messages: bin/warren is listening about as fast as on an empty folder (it reads
// counts, not messages), the count is right at once, messages come out in order, and purging the
// queue takes no time and reads no message (the entries are swept in the background, keys only).

import { rmSync } from 'node:fs';
import amqp from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DurablePersistence } from '../../src/broker/persistence.js';
import { ChildBroker } from '../support/child-broker.js';
import { startTestBroker, tempDir, waitFor } from '../support/broker.js';
import { buildDeepQueue, deepBody } from './build-store.js';

const COUNT = 1_000_000;
const SIZE = 64;
const folders: string[] = [];
let deepDir = '';

beforeAll(async () => {
  deepDir = tempDir('warren-deep-');
  folders.push(deepDir);
  await buildDeepQueue(deepDir, 'deep', COUNT, SIZE);
}, 120_000);

afterAll(() => {
  for (const d of folders) rmSync(d, { recursive: true, force: true });
});

/** ms from spawning bin/warren to its 'listening' line. */
async function timeToListen(dataDir: string): Promise<{ ms: number; broker: ChildBroker }> {
  const t0 = Date.now();
  const broker = await ChildBroker.start(dataDir);
  return { ms: Date.now() - t0, broker };
}

describe(`a store with ${COUNT.toLocaleString('en')} messages`, () => {
  it('bin/warren listens about as fast as on an empty folder, with the count right at once', { timeout: 120_000 }, async () => {
    const empty = tempDir('warren-empty-');
    folders.push(empty);
    // Best of three for each: start-up time on a shared machine is noisy. (Reading every message,
    // as start-up used to, takes seconds here: 5.2 s for 2.7 million.)
    const emptyTimes: number[] = [];
    const deepTimes: number[] = [];
    for (let round = 0; round < 3; round++) {
      const e = await timeToListen(empty);
      emptyTimes.push(e.ms);
      await e.broker.stop();
      const d = await timeToListen(deepDir);
      deepTimes.push(d.ms);
      const conn = await amqp.connect(d.broker.url);
      const ch = await conn.createChannel();
      expect((await ch.checkQueue('deep')).messageCount).toBe(COUNT);
      await conn.close();
      await d.broker.stop();
    }
    const emptyMs = Math.min(...emptyTimes);
    const deepMs = Math.min(...deepTimes);
    console.log(`start to listening: empty folder ${emptyMs} ms, ${COUNT} messages ${deepMs} ms`);
    expect(deepMs - emptyMs, `empty ${emptyTimes.join('/')} ms, deep ${deepTimes.join('/')} ms`).toBeLessThan(1000);
  });

  it('messages come out in order; purge drops the rest without reading one', { timeout: 120_000 }, async () => {
    const broker = await startTestBroker({ dataDir: deepDir });
    try {
      const queue = broker.broker.vhosts.get('/')!.queues.get('deep')!;
      expect(queue.messageCount).toBe(COUNT);
      const conn = await amqp.connect(broker.url);
      const ch = await conn.createChannel();
      for (let i = 0; i < 3; i++) {
        const m = await ch.get('deep', { noAck: true });
        expect(m && m.content.equals(deepBody(i, SIZE))).toBe(true);
      }
      // Purge: count the reads of stored messages it makes (none).
      const persistence = broker.broker.persistence as DurablePersistence;
      let reads = 0;
      const load = persistence.loadEntries.bind(persistence);
      persistence.loadEntries = (...args) => {
        reads++;
        return load(...args);
      };
      const t0 = Date.now();
      const { messageCount } = await ch.purgeQueue('deep');
      const purgeMs = Date.now() - t0;
      console.log(`purge of ${messageCount} messages: ${purgeMs} ms`);
      expect(messageCount).toBe(COUNT - 3);
      expect(reads).toBe(0);
      expect((await ch.checkQueue('deep')).messageCount).toBe(0);
      await conn.close();
      // The store sweeps the purged range in the background, a chunk per batch.
      await waitFor(() => persistence.pendingSweeps === 0, 'the purged entries to be swept', 60_000);
    } finally {
      await broker.close();
    }
    // Nothing comes back.
    const again = await startTestBroker({ dataDir: deepDir });
    try {
      expect(again.broker.vhosts.get('/')!.queues.get('deep')!.messageCount).toBe(0);
      const conn = await amqp.connect(again.url);
      const ch = await conn.createChannel();
      expect(await ch.get('deep', { noAck: true })).toBe(false);
      await conn.close();
    } finally {
      await again.close();
    }
  });
});
