// The memory alarm's figure (process-memory.ts): the RSS less file-backed pages, on Linux, read
// from /proc/self/status through one file descriptor kept open.

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  heldMemoryBytes,
  heldMemorySamplesTaken,
  lastFileBackedBytes,
  parseFileBackedMemory,
  parseHeldMemory,
  recentHeldMemoryBytes,
} from '../../src/broker/process-memory.js';
import { waitFor } from '../support/wait.js';

const status = (text: string): Buffer => Buffer.from(text, 'latin1');
const fromProc = (): Buffer => readFileSync('/proc/self/status');
const MIB = 1024 * 1024;

describe('the memory the alarm measures', () => {
  it('is RssAnon + RssShmem of /proc/self/status; RssFile is the file-backed part', () => {
    const text = status('Name:\tnode\nVmRSS:\t  300000 kB\nRssAnon:\t  200000 kB\nRssFile:\t   99000 kB\nRssShmem:\t    1000 kB\n');
    expect(parseHeldMemory(text)).toBe(201000 * 1024);
    expect(parseFileBackedMemory(text)).toBe(99000 * 1024);
    expect(parseHeldMemory(status('Name:\tnode\nVmRSS:\t  300000 kB\n'))).toBeUndefined();
    expect(parseFileBackedMemory(status('Name:\tnode\nRssFile:\t  kB\n'))).toBeUndefined();
  });

  it('reads only the bytes of the last read: a longer text read before leaves no figures behind', () => {
    const text = status('Name:\tnode\nRssAnon:\t  7 kB\nRssShmem:\t  1 kB\n');
    const cut = text.indexOf('\nRssShmem:');
    expect(parseHeldMemory(text)).toBe(8 * 1024);
    expect(parseHeldMemory(text, cut)).toBeUndefined();
  });

  it('on this machine: no more than the RSS, and what /proc says', () => {
    const before = parseHeldMemory(fromProc())!;
    const held = heldMemoryBytes();
    const after = parseHeldMemory(fromProc())!;
    // Allocation between the reads moves the figure a little, never by more than a few MiB.
    expect(Math.abs(held - (before + after) / 2)).toBeLessThan(8 * MIB);
    expect(held).toBeLessThan(process.memoryUsage.rss());
    expect(held).toBeGreaterThan(10 * MIB);
    expect(Math.abs(lastFileBackedBytes() - parseFileBackedMemory(fromProc())!)).toBeLessThan(8 * MIB);
  });

  it('each sample is taken afresh through the descriptor kept open: 64 MiB touched shows, and goes when freed', async () => {
    const start = heldMemoryBytes();
    let block: Buffer | null = Buffer.alloc(64 * MIB, 1); // written: resident
    const grown = heldMemoryBytes();
    expect(grown - start).toBeGreaterThan(48 * MIB);
    expect(block[64 * MIB - 1]).toBe(1);
    block = null;
    // Large buffers go back to the system with their collection (glibc maps them on their own).
    const { setFlagsFromString } = await import('node:v8');
    const { runInNewContext } = await import('node:vm');
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    // Array buffers are freed on a background thread after their collection: poll.
    await waitFor(() => {
      gc();
      return heldMemoryBytes() < grown - 32 * MIB;
    }, 'the held memory to fall after freeing 64 MiB', 10_000);
  });

  it('a sample younger than the age asked for is reused without reading /proc; an older one is taken afresh', () => {
    const first = heldMemoryBytes();
    const taken = heldMemorySamplesTaken();
    const block = Buffer.alloc(64 * MIB, 1); // resident now, but not in the last sample
    expect(recentHeldMemoryBytes(60_000)).toBe(first);
    expect(heldMemorySamplesTaken()).toBe(taken);
    const fresh = recentHeldMemoryBytes(-1);
    expect(heldMemorySamplesTaken()).toBe(taken + 1);
    expect(fresh - first).toBeGreaterThan(48 * MIB);
    expect(recentHeldMemoryBytes(60_000)).toBe(fresh);
    expect(heldMemorySamplesTaken()).toBe(taken + 1);
    expect(block[64 * MIB - 1]).toBe(1);
  });
});
