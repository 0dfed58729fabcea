// Reading a deep backlog back from disk does not leave LMDB's data file mapped into Warren's RSS.
//
// bin/warren stores 160 MB of incompressible persistent messages, is restarted (so every body is
// on disk only), and a consumer drains them, checking each body. LMDB reads through a memory map:
// every page read stayed resident in the process (RssFile), so the drain grew the RSS by the whole
// data it read — ../shared/bench S10 peaked at 686 MB. Warren now has the kernel reclaim the data
// file's pages as they pile up (src/broker/mapped-pages.ts). The test asserts
// the file-backed resident memory ends near its figure before the drain, and that no message is
// lost or damaged on the way. Then, on a real store in-process: the drops that reading bodies asks
// for are bounded in rate however fast the reads come.

import { createHash, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { MappedDataFilePages } from '../../src/broker/mapped-pages.js';
import { createLogger } from '../../src/log.js';
import { LmdbStore } from '../../src/store/lmdb-store.js';
import { tempDir } from '../support/broker.js';
import { statusMiB, usePerTestChildBroker } from '../support/per-test-child-broker.js';
import { waitFor } from '../support/wait.js';

const BODY_BYTES = 64 * 1024;
const COUNT = 2_500; // 160 MB
/** How far above its figure before the drain the file-backed resident memory may end. */
const FILE_PAGES_WITHIN_MIB = 100;

const warren = usePerTestChildBroker();

/** The broker's file-backed resident memory (RssFile), in MiB. */
const fileBackedMiB = (): number => statusMiB(warren.broker)('RssFile');

describe("LMDB's mapped data file and the RSS (bin/warren)", () => {
  it('160 MB read back from disk after a restart: every message intact, and the data file does not stay in the RSS', { timeout: 180_000 }, async () => {
    await warren.start('warren-mapped-pages-');
    const ch = await (await warren.clients.connect()).createConfirmChannel();
    await ch.assertQueue('backlog', { durable: true });
    const digests: string[] = [];
    for (let i = 0; i < COUNT; i++) {
      const body = randomBytes(BODY_BYTES);
      digests.push(createHash('sha1').update(body).digest('hex'));
      if (!ch.sendToQueue('backlog', body, { persistent: true, messageId: String(i) })) await new Promise((r) => ch.once('drain', r));
      if (i % 200 === 199) await ch.waitForConfirms();
    }
    await ch.waitForConfirms();

    // A restart on the same folder (a clean stop): every body is on disk only.
    await warren.restart();
    const before = fileBackedMiB();
    const reader = await (await warren.clients.connect()).createChannel();
    await reader.prefetch(200);
    let got = 0;
    let damaged = 0;
    let peak = before;
    await reader.consume('backlog', (m) => {
      if (m === null) return;
      if (createHash('sha1').update(m.content).digest('hex') !== digests[Number(m.properties.messageId)]) damaged++;
      got++;
      if (got % 100 === 0) peak = Math.max(peak, fileBackedMiB());
      reader.ack(m);
    });
    await waitFor(() => got === COUNT, `the ${COUNT} messages (have ${got})`, 120_000);
    expect(damaged).toBe(0);
    expect((await reader.checkQueue('backlog')).messageCount).toBe(0);
    // The drain read the whole backlog through the map: without the unmapping, all of it stays.
    await waitFor(
      () => fileBackedMiB() < before + FILE_PAGES_WITHIN_MIB,
      `file-backed resident memory back under ${(before + FILE_PAGES_WITHIN_MIB).toFixed(0)} MiB (at start ${before.toFixed(0)}, peak ${peak.toFixed(0)}, now ${fileBackedMiB().toFixed(0)})`,
      10_000,
    );
  });
});

describe('drops after bodies read (real LMDB store)', () => {
  it('come at most every 50 ms however fast bodies are read, each through a writer transaction', { timeout: 30_000 }, async () => {
    const dir = tempDir('warren-drops-');
    const store = new LmdbStore(join(dir, 'lmdb'), createLogger('silent'), 'test: mapped-pages');
    store.putEntry(1, 0, 1, randomBytes(4096));
    await store.whenFlushed();
    let drops = 0;
    const pages = new MappedDataFilePages(join(dir, 'lmdb', 'data.mdb'), (action) => {
      drops++;
      return store.whileWriterWaits(action);
    });
    // 16 MiB "read" per turn: a read rate far beyond any drain. Each drop settles in well under a
    // millisecond (its transaction commits nothing), so without the bound there is one per turn.
    const windowMs = 500;
    const started = Date.now();
    let turns = 0;
    while (Date.now() - started < windowMs) {
      pages.bodiesRead(16 * 1024 * 1024);
      turns++;
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
    const elapsed = Date.now() - started;
    await store.close();
    expect(turns).toBeGreaterThan(50);
    expect(drops).toBeGreaterThanOrEqual(2);
    expect(drops, `${drops} drops in ${elapsed} ms over ${turns} reads`).toBeLessThanOrEqual(Math.floor(elapsed / 50) + 1);
  });
});

