// Queue entries read back from a real LMDB store come out exact — compressed and raw records alike —
// in slabs (a few buffers per read, not one per record), and a message read back that stays in a
// queue gets its own copy from the memory gauge, so it never holds a whole slab alive.

import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import amqp from 'amqplib';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../src/log.js';
import { encodeBasicProperties } from '../../src/protocol/frame-writer.js';
import { LmdbStore } from '../../src/store/lmdb-store.js';
import { decodeInlineMessage, encodeInlineEntry } from '../../src/store/records.js';
import { SLAB_BYTES } from '../../src/store/slab-reader.js';
import { startTestBroker, tempDir, waitFor } from '../support/broker.js';
import { buildDeepQueue, deepBody } from './build-store.js';

const props = encodeBasicProperties({ deliveryMode: 2 });

/** Body i: repetitive (stored compressed) when i is even, random (stored raw) when odd. */
function body(i: number): Buffer {
  return i % 2 === 0 ? Buffer.alloc(1000 + (i % 300), `m${i}.`) : randomBytes(1000 + (i % 300));
}

describe('reading entries back in slabs', () => {
  it('every record exact, keys as seqs, a handful of buffers for thousands of records', async () => {
    const dir = tempDir('warren-slab-');
    const store = new LmdbStore(join(dir, 'lmdb'), createLogger('silent'), 'test: slab-reader');
    const COUNT = 3000;
    const bodies: Buffer[] = [];
    for (let i = 0; i < COUNT; i++) {
      bodies.push(body(i));
      store.putEntry(9, 0, 100 + i, encodeInlineEntry(i + 1, 0, 0, 1_700_000_000_000, '', 'q', props, bodies[i]!));
    }
    await store.whenFlushed();

    const read = store.readEntries(9, 0, 100, COUNT, Number.MAX_SAFE_INTEGER);
    expect(read.length).toBe(COUNT);
    const buffers = new Set<ArrayBufferLike>();
    let totalBytes = 0;
    for (let i = 0; i < COUNT; i++) {
      const e = read[i]!;
      expect(e.seq).toBe(100 + i);
      expect(e.messageId).toBe(i + 1);
      const m = decodeInlineMessage(e.value);
      expect(m.body.equals(bodies[i]!)).toBe(true);
      expect(m.routingKey).toBe('q');
      buffers.add(e.value.buffer);
      totalBytes += e.value.length;
    }
    // One buffer per SLAB_BYTES of records, less the record that did not fit (was one per record).
    expect(buffers.size).toBeLessThanOrEqual(Math.ceil(totalBytes / (SLAB_BYTES - 1400)));
    // A later read starts where the seq says, and limits still apply.
    const tail = store.readEntries(9, 0, 100 + COUNT - 5, 3, Number.MAX_SAFE_INTEGER);
    expect(tail.map((e) => e.seq)).toEqual([100 + COUNT - 5, 100 + COUNT - 4, 100 + COUNT - 3]);
    expect(decodeInlineMessage(tail[2]!.value).body.equals(bodies[COUNT - 3]!)).toBe(true);
    await store.close();
  });

  it('a message read back that stays in its queue gets its own copy within seconds', { timeout: 60_000 }, async () => {
    const dir = tempDir('warren-slab-held-');
    const COUNT = 2000;
    await buildDeepQueue(dir, 'held', COUNT, 1024);
    const b = await startTestBroker({ dataDir: dir });
    try {
      const conn = await amqp.connect(b.url);
      const ch = await conn.createChannel();
      // Take all but the last one: the last stays in memory, read back with its neighbours.
      for (let i = 0; i < COUNT - 1; i++) {
        const m = await ch.get('held', { noAck: true });
        expect(m && m.content.equals(deepBody(i, 1024))).toBe(true);
      }
      const queue = b.broker.vhosts.get('/')!.queues.get('held')!;
      const last = [...queue.ready.entries()];
      expect(last.length).toBe(1);
      const message = last[0]!.message;
      await waitFor(() => message.body.buffer.byteLength < 4096, `the last message's own copy (its buffer: ${message.body.buffer.byteLength} bytes)`, 10_000);
      expect(message.body.equals(deepBody(COUNT - 1, 1024))).toBe(true);
      const m = await ch.get('held', { noAck: true });
      expect(m && m.content.equals(deepBody(COUNT - 1, 1024))).toBe(true);
      await conn.close();
    } finally {
      await b.close();
    }
  });
});
