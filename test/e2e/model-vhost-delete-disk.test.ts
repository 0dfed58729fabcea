// Deleting a vhost deletes its messages from disk: the LMDB pages they used are free again, so the
// same amount of data written afterwards reuses them and the data file does not grow. The control
// step shows that the file does grow when nothing was freed (so the check can fail).

import { randomBytes } from 'node:crypto';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import amqp from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestBroker, type TestBroker } from '../support/broker.js';

const MESSAGES = 400;
const BODY_BYTES = 40 * 1024; // 400 × 40 KiB ≈ 16 MiB, random so that compression cannot shrink it
const MiB = 1024 * 1024;

let b: TestBroker;
beforeAll(async () => {
  b = await startTestBroker();
});
afterAll(async () => {
  await b.stop();
});

const dataFileBytes = (): number => statSync(join(b.dataDir, 'lmdb', 'data.mdb')).size;

/** Creates a vhost and fills a durable queue in it with persistent messages (confirmed = on disk). */
async function fillVhost(name: string): Promise<void> {
  await b.broker.admin.putVhost(name, {}, 'guest');
  const conn = await amqp.connect(`${b.url}/${encodeURIComponent(name)}`);
  const ch = await conn.createConfirmChannel();
  await ch.assertQueue('big', { durable: true });
  for (let i = 0; i < MESSAGES; i++) ch.sendToQueue('big', randomBytes(BODY_BYTES), { persistent: true });
  await ch.waitForConfirms();
  expect((await ch.checkQueue('big')).messageCount).toBe(MESSAGES);
  await conn.close();
}

describe('deleting a vhost frees its disk space', () => {
  it('data written after the deletion reuses the freed pages; without a deletion the file grows', async () => {
    await fillVhost('first');
    const afterFirst = dataFileBytes();
    expect(afterFirst).toBeGreaterThan(14 * MiB);

    expect(await b.broker.admin.deleteVhost('first')).toBe(true);
    await fillVhost('second');
    const afterSecond = dataFileBytes();
    expect(afterSecond - afterFirst).toBeLessThan(4 * MiB);

    // Control: nothing deleted this time, so the same amount of data needs new pages.
    await fillVhost('third');
    expect(dataFileBytes() - afterSecond).toBeGreaterThan(12 * MiB);
  });
});
