// A durable delayed exchange whose stored count says more messages than the store holds (a data
// folder written by a broken build, or damaged) releases the ones there are and writes its count
// down to what is left, so the next start does not expect the missing messages again.

import { join } from 'node:path';
import amqp from 'amqplib';
import { open } from 'lmdb';
import { describe, expect, it } from 'vitest';
import type { DurablePersistence } from '../../src/broker/persistence.js';
import { createLogger } from '../../src/log.js';
import { encodeTable } from '../../src/protocol/field-table.js';
import { encodeBasicProperties } from '../../src/protocol/frame-writer.js';
import { idKey } from '../../src/store/keys.js';
import { LmdbStore } from '../../src/store/lmdb-store.js';
import { decodeCounts, encodeMessage } from '../../src/store/records.js';
import { getAll } from '../support/amqp.js';
import { startTestBroker, tempDir, waitFor } from '../support/broker.js';

const STORED = 3;
const COUNTED = 5;

/** A durable delayed exchange 'dx' bound to durable queue 'q', holding STORED messages already due, counted as COUNTED. */
async function buildFolder(dataDir: string): Promise<number> {
  const store = new LmdbStore(join(dataDir, 'lmdb'), createLogger('silent'), 'test: delayed-count');
  const exchangeId = store.allocateEntityId();
  store.putExchange({ id: exchangeId, vhost: '/', name: 'dx', type: 'x-delayed-message', autoDelete: false, internal: false, args: encodeTable({ 'x-delayed-type': 'direct' }) });
  store.putQueue({ id: store.allocateEntityId(), vhost: '/', name: 'q', autoDelete: false, args: encodeTable({}) });
  store.putBinding({ id: store.allocateEntityId(), vhost: '/', source: 'dx', destinationKind: 'queue', destination: 'q', routingKey: 'k', args: encodeTable({}) });
  const props = encodeBasicProperties({ deliveryMode: 2 });
  const due = Date.now() - 1000;
  for (let i = 0; i < STORED; i++) {
    store.putDelayed(exchangeId, due, store.allocateMessageId(), encodeMessage(due, 'dx', 'k', props, Buffer.from(`d${i}`)));
  }
  store.putCounts(exchangeId, [{ count: COUNTED, bytes: 0, headSeq: 0 }]);
  await store.close();
  return exchangeId;
}

/** The count a closed data folder keeps for an exchange. */
async function storedCount(dataDir: string, exchangeId: number): Promise<number | undefined> {
  const root = open({ path: join(dataDir, 'lmdb'), maxDbs: 24, readOnly: true });
  try {
    const value = root.openDB({ name: 'counts', keyEncoding: 'binary', encoding: 'binary' }).getBinary(idKey(exchangeId));
    return value === undefined ? undefined : decodeCounts(value)[0]?.count;
  } finally {
    await root.close();
  }
}

describe('delayed exchange count', () => {
  it('fewer stored messages than counted: the ones there are go out and the count is written down to 0', { timeout: 30_000 }, async () => {
    const dir = tempDir('warren-delayed-count-');
    const exchangeId = await buildFolder(dir);
    expect(await storedCount(dir, exchangeId)).toBe(COUNTED);

    const b = await startTestBroker({ dataDir: dir });
    try {
      const q = b.broker.vhosts.get('/')!.queues.get('q')!;
      const dx = b.broker.vhosts.get('/')!.exchanges.get('dx') as unknown as { heldCount: number };
      await waitFor(() => q.messageCount === STORED && dx.heldCount === 0, `${STORED} released, none held (q ${q.messageCount}, held ${dx.heldCount})`);
      const persistence = b.broker.persistence as DurablePersistence;
      await new Promise<void>((resolve, reject) => persistence.afterCommit({ onCommitted: resolve, onCommitFailed: reject }));
      const conn = await amqp.connect(b.url);
      const ch = await conn.createChannel();
      expect((await getAll(ch, 'q')).map((m) => m.content.toString())).toEqual(['d0', 'd1', 'd2']);
      await conn.close();
    } finally {
      await b.close();
    }
    expect(await storedCount(dir, exchangeId)).toBe(0);

    const again = await startTestBroker({ dataDir: dir });
    try {
      const dx = again.broker.vhosts.get('/')!.exchanges.get('dx') as unknown as { heldCount: number };
      expect(dx.heldCount).toBe(0);
    } finally {
      await again.close();
    }
  });
});
