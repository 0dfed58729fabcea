// Paging under memory pressure follows the memory alarm's figure (the memory Warren holds:
// RssAnon + RssShmem), not the whole RSS. The RSS also counts file-backed pages — the node binary
// and the pages of LMDB's data file that reads touched — which grow with the backlog read back from
// disk and which Warren cannot give back, so paging by the RSS stayed on for good after a deep
// queue was read. Here the high watermark is set so that half of it (the paging threshold) lies
// midway between this process's held memory and its RSS: no pressure. Below the held memory:
// pressure, new messages go to disk.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { heldMemoryBytes } from '../../src/broker/process-memory.js';
import { startTestBroker, type TestBroker } from '../support/broker.js';

let broker: TestBroker;
beforeAll(async () => {
  broker = await startTestBroker();
});
afterAll(async () => {
  await broker?.stop();
});

const MIB = 1024 * 1024;

describe('memory pressure (paging) follows the memory alarm figure', () => {
  it('paging threshold between the held memory and the RSS: no pressure; below the held memory: pressure', () => {
    const resources = broker.broker.resources;
    const memory = broker.broker.memory;
    const held = heldMemoryBytes();
    const rss = process.memoryUsage.rss();
    // The node binary's pages alone are tens of MiB: the two figures are far enough apart for the
    // few allocations between this sample and the broker's own to make no difference.
    expect(rss - held).toBeGreaterThan(20 * MIB);

    // Paging starts at half the watermark: put that midway between held and RSS.
    resources.setMemoryHighWatermark({ bytes: held + rss });
    expect(resources.memoryUsedBytes).toBeLessThan((held + rss) / 2);
    expect(memory.overBudget).toBe(false);

    // Half the watermark well below what is held: pressure.
    resources.setMemoryHighWatermark({ bytes: held });
    expect(memory.overBudget).toBe(true);

    resources.setMemoryHighWatermark({ bytes: 1024 * 1024 * MIB });
    expect(memory.overBudget).toBe(false);
  });
});
