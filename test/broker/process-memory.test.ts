// The memory alarm's figure (process-memory.ts): the RSS less file-backed pages, on Linux.

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { heldMemoryBytes, parseHeldMemory } from '../../src/broker/process-memory.js';

describe('the memory the alarm measures', () => {
  it('is RssAnon + RssShmem of /proc/self/status', () => {
    const status = 'VmRSS:\t  300000 kB\nRssAnon:\t  200000 kB\nRssFile:\t   99000 kB\nRssShmem:\t    1000 kB\n';
    expect(parseHeldMemory(status)).toBe(201000 * 1024);
    expect(parseHeldMemory('VmRSS:\t  300000 kB\n')).toBeUndefined();
  });

  it('on this machine: no more than the RSS, and what /proc says', () => {
    const before = parseHeldMemory(readFileSync('/proc/self/status', 'latin1'))!;
    const held = heldMemoryBytes();
    const after = parseHeldMemory(readFileSync('/proc/self/status', 'latin1'))!;
    // Allocation between the reads moves the figure a little, never by more than a few MiB.
    expect(Math.abs(held - (before + after) / 2)).toBeLessThan(8 * 1024 * 1024);
    expect(held).toBeLessThan(process.memoryUsage.rss());
    expect(held).toBeGreaterThan(10 * 1024 * 1024);
  });
});
