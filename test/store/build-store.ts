// Builds a data folder with a deep durable queue straight through the store layer — the records
// Warren itself would write for persistent messages published to a durable queue — so tests of
// start-up and purge at a million messages do not spend minutes publishing them over AMQP.

import { join } from 'node:path';
import { encodeTable } from '../../src/protocol/field-table.js';
import { encodeBasicProperties } from '../../src/protocol/frame-writer.js';
import { createLogger } from '../../src/log.js';
import { LmdbStore } from '../../src/store/lmdb-store.js';
import { encodeInlineEntry } from '../../src/store/records.js';

/** The body of message i (its number, padded): a consumer can check order and integrity. */
export function deepBody(i: number, size: number): Buffer {
  const b = Buffer.alloc(size, 0x2e);
  b.write(String(i).padStart(10, '0'), 0);
  return b;
}

/** Writes `count` persistent messages of `size` bytes to a new durable queue in vhost '/'. */
export async function buildDeepQueue(dataDir: string, queue: string, count: number, size: number): Promise<void> {
  const store = new LmdbStore(join(dataDir, 'lmdb'), createLogger('silent'), 'test: build-store');
  const queueId = store.allocateEntityId();
  store.putQueue({ id: queueId, vhost: '/', name: queue, autoDelete: false, args: encodeTable({}) });
  const props = encodeBasicProperties({ deliveryMode: 2 });
  const publishedAt = Date.now();
  const CHUNK = 50_000;
  for (let from = 0; from < count; from += CHUNK) {
    const to = Math.min(count, from + CHUNK);
    for (let i = from; i < to; i++) {
      const id = store.allocateMessageId();
      store.putEntry(queueId, 0, i + 1, encodeInlineEntry(id, 0, 0, publishedAt, '', queue, props, deepBody(i, size)));
    }
    await store.whenFlushed();
  }
  store.putCounts(queueId, [{ count, bytes: count * size, headSeq: 0 }]);
  await store.close();
}
