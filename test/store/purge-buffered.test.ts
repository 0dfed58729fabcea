// Purged and deleted messages never come back, and leave no record in the store, when some of them
// were paged out (written to the store only) and still waiting in the write buffer at the purge.
// A real broker pages persistent messages of a durable queue under a 1 MiB memory budget; one socket
// write carries the last publishes and the queue.purge (or queue.delete), so the broker handles them
// in one turn, before its write buffer goes to LMDB. After the sweep, a restart: the queue is empty
// (or gone) and LMDB holds no entry, shared index or message record for it.

import { join } from 'node:path';
import amqp from 'amqplib';
import { open } from 'lmdb';
import { afterEach, describe, expect, it } from 'vitest';
import type { DurablePersistence } from '../../src/broker/persistence.js';
import { encodeBasicProperties } from '../../src/protocol/frame-writer.js';
import * as M from '../../src/protocol/generated/amqp.js';
import { startTestBroker, tempDir, waitFor, type TestBroker } from '../support/broker.js';
import { RawClient, frame, headerPayload, methodFrame } from '../support/raw-client.js';

const BODY_SIZE = 1024;
/** Over the 1 MiB budget: the newest few hundred are paged out (and committed) before the purge. */
const PREFILL = 1500;
/** Published in the same socket write as the purge: paged out, still in the write buffer. */
const LAST = 40;
const PERSISTENT = encodeBasicProperties({ deliveryMode: 2 });

const running: TestBroker[] = [];
afterEach(async () => {
  for (const b of running.splice(0)) await b.close();
});

async function start(dataDir: string): Promise<TestBroker> {
  const b = await startTestBroker({ dataDir, memoryBudgetBytes: 1024 * 1024 });
  running.push(b);
  return b;
}

async function stop(b: TestBroker): Promise<void> {
  running.splice(running.indexOf(b), 1);
  await b.close();
}

function body(i: number): Buffer {
  const b = Buffer.alloc(BODY_SIZE, 0x2e);
  b.write(`m${i}`, 0);
  return b;
}

/** Records of each message database of a closed data folder (nothing else is stored there). */
async function storedRecords(dataDir: string): Promise<Record<string, number>> {
  const root = open({ path: join(dataDir, 'lmdb'), maxDbs: 24, readOnly: true });
  try {
    const out: Record<string, number> = {};
    for (const name of ['queue-entries', 'shared', 'messages', 'refs', 'garbage', 'delayed']) {
      out[name] = root.openDB({ name, keyEncoding: 'binary', encoding: 'binary' }).getKeysCount();
    }
    return out;
  } finally {
    await root.close();
  }
}

const NONE = { 'queue-entries': 0, shared: 0, messages: 0, refs: 0, garbage: 0, delayed: 0 };

/** Declares durable queue `q` and fills it over the memory budget, every message confirmed. */
async function prefill(b: TestBroker, q: string): Promise<void> {
  const conn = await amqp.connect(b.url);
  const ch = await conn.createConfirmChannel();
  await ch.assertQueue(q, { durable: true });
  for (let i = 0; i < PREFILL; i++) ch.sendToQueue(q, body(i), { persistent: true });
  await ch.waitForConfirms();
  await conn.close();
  const queue = b.broker.vhosts.get('/')!.queues.get(q)!;
  expect(queue.messageCount).toBe(PREFILL);
  expect(queue.pagedOutCount).toBeGreaterThan(0);
}

interface PublishTo {
  exchange: string;
  routingKey: string;
  /** the encoded basic properties of each message */
  properties: Buffer;
}
/** Persistent messages straight to queue q (the default exchange). */
const toQueue = (q: string): PublishTo => ({ exchange: '', routingKey: q, properties: PERSISTENT });

/**
 * LAST publishes and then `method`, in one socket write on a new raw connection; returns the
 * broker's reply `replyId` to `method`.
 */
async function publishesThen(b: TestBroker, to: PublishTo, method: M.Method, replyId: number): Promise<M.Method> {
  const { exchange, routingKey, properties } = to;
  const parts: Buffer[] = [];
  for (let i = 0; i < LAST; i++) {
    parts.push(methodFrame(1, { id: M.BASIC_PUBLISH, reserved1: 0, exchange, routingKey, mandatory: false, immediate: false }));
    parts.push(frame(2, 1, headerPayload(BODY_SIZE, properties)));
    parts.push(frame(3, 1, body(PREFILL + i)));
  }
  parts.push(methodFrame(1, method));
  const raw = await RawClient.handshake(b.port);
  try {
    await raw.openChannel(1);
    raw.write(Buffer.concat(parts));
    return await raw.waitForMethod(replyId, 1);
  } finally {
    raw.destroy();
  }
}

async function swept(b: TestBroker): Promise<void> {
  const persistence = b.broker.persistence as DurablePersistence;
  await waitFor(() => persistence.pendingSweeps === 0, 'the store to sweep what was dropped', 20_000);
}

/** Once the store has swept what was dropped, stops b and checks its folder holds no message record. */
async function expectNothingStoredAfterStop(b: TestBroker, dir: string): Promise<void> {
  await swept(b);
  await stop(b);
  expect(await storedRecords(dir)).toEqual(NONE);
}

/**
 * A broker on a fresh folder with durable queue `q` filled over its budget, then `method` (purge or
 * delete) right behind LAST more publishes, in one write: its reply counts every message, and once
 * swept and stopped the store holds no record of any. Returns the data folder, for a restart.
 */
async function dropWithLastPublishesBuffered(q: string, dirPrefix: string, method: M.Method, replyId: number): Promise<string> {
  const dir = tempDir(dirPrefix);
  const b = await start(dir);
  await prefill(b, q);
  const ok = (await publishesThen(b, toQueue(q), method, replyId)) as M.QueuePurgeOk | M.QueueDeleteOk;
  expect(ok.messageCount).toBe(PREFILL + LAST);
  await expectNothingStoredAfterStop(b, dir);
  return dir;
}

describe('paged messages still in the write buffer', () => {
  it('queue.purge: nothing comes back after a restart and the store holds no record of them', { timeout: 60_000 }, async () => {
    const dir = await dropWithLastPublishesBuffered('pb', 'warren-purge-buffered-', { id: M.QUEUE_PURGE, reserved1: 0, queue: 'pb', noWait: false }, M.QUEUE_PURGE_OK);

    const again = await start(dir);
    const conn = await amqp.connect(again.url);
    const ch = await conn.createChannel();
    expect((await ch.checkQueue('pb')).messageCount).toBe(0);
    expect(await ch.get('pb', { noAck: true })).toBe(false);
    // The queue goes on as usual: a new message is the only one there.
    ch.sendToQueue('pb', Buffer.from('after'), { persistent: true });
    await waitFor(async () => (await ch.checkQueue('pb')).messageCount === 1, 'the new message');
    const m = await ch.get('pb', { noAck: true });
    expect(m && m.content.toString()).toBe('after');
    expect(await ch.get('pb', { noAck: true })).toBe(false);
    await conn.close();
    await swept(again);
    await stop(again);
    expect(await storedRecords(dir)).toEqual(NONE);
  });

  it('queue.delete: the queue is gone after a restart and the store holds no record of its messages', { timeout: 60_000 }, async () => {
    const dir = await dropWithLastPublishesBuffered('db', 'warren-delete-buffered-', { id: M.QUEUE_DELETE, reserved1: 0, queue: 'db', ifUnused: false, ifEmpty: false, noWait: false }, M.QUEUE_DELETE_OK);

    const again = await start(dir);
    const conn = await amqp.connect(again.url);
    const ch = await conn.createChannel();
    const closed = new Promise<unknown>((resolve) => ch.once('error', resolve));
    await expect(ch.checkQueue('db')).rejects.toThrow(/404 \(NOT-FOUND\) with message "NOT_FOUND - no queue 'db' in vhost '\/'"/);
    await closed;
    await conn.close();
    await stop(again);
    expect(await storedRecords(dir)).toEqual(NONE);
  });

  it('exchange.delete of a delayed exchange: the store holds none of its held messages', { timeout: 60_000 }, async () => {
    const dir = tempDir('warren-delayed-buffered-');
    const b = await start(dir);
    const conn = await amqp.connect(b.url);
    const ch = await conn.createChannel();
    await ch.assertExchange('dx', 'x-delayed-message', { durable: true, arguments: { 'x-delayed-type': 'direct' } });
    // Held messages of a durable delayed exchange are all stored: these are committed first.
    for (let i = 0; i < PREFILL; i++) ch.publish('dx', 'k', body(i), { persistent: true, headers: { 'x-delay': 600_000 } });
    const ex = b.broker.vhosts.get('/')!.exchanges.get('dx') as unknown as { heldCount: number };
    await waitFor(() => ex.heldCount === PREFILL, 'every message held');
    await new Promise<void>((resolve, reject) => (b.broker.persistence as DurablePersistence).afterCommit({ onCommitted: resolve, onCommitFailed: reject }));
    await conn.close();
    const delayed = encodeBasicProperties({ deliveryMode: 2, headers: { 'x-delay': 600_000 } });
    await publishesThen(b, { exchange: 'dx', routingKey: 'k', properties: delayed }, { id: M.EXCHANGE_DELETE, reserved1: 0, exchange: 'dx', ifUnused: false, noWait: false }, M.EXCHANGE_DELETE_OK);
    await expectNothingStoredAfterStop(b, dir);
  });
});
