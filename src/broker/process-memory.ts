// The memory the memory alarm and paging measure: what this process holds in RAM of its own.
//
// On Linux that is the resident anonymous memory plus resident shared memory (RssAnon + RssShmem of
// /proc/self/status), not the whole RSS: the RSS also counts file-backed pages — the node binary's
// code and, above all, the pages of LMDB's memory-mapped data file that reads touched. Those are
// the kernel's page cache, dropped whenever memory is short and read again when needed; counting
// them made the alarm follow how much of the data file had been read, so a flood paged to disk
// (and read back, or deleted) kept the alarm set for good although Warren held little. RabbitMQ's
// default (`rss`) strategy measures the process RSS too, but RabbitMQ maps no data files.
// Elsewhere (no /proc) it is the RSS.

import { readFileSync } from 'node:fs';

const STATUS = '/proc/self/status';
let procAvailable = process.platform === 'linux';

/** RssAnon + RssShmem in bytes, or undefined when /proc/self/status does not say. */
export function parseHeldMemory(status: string): number | undefined {
  const anon = /^RssAnon:\s+(\d+) kB/m.exec(status);
  const shmem = /^RssShmem:\s+(\d+) kB/m.exec(status);
  if (anon === null || shmem === null) return undefined;
  return (Number(anon[1]) + Number(shmem[1])) * 1024;
}

/** RssFile in bytes (file-backed resident pages), or undefined when /proc/self/status does not say. */
export function parseFileBackedMemory(status: string): number | undefined {
  const file = /^RssFile:\s+(\d+) kB/m.exec(status);
  return file === null ? undefined : Number(file[1]) * 1024;
}

/** RssFile at the last heldMemoryBytes() call; 0 where /proc does not say. */
let fileBackedBytes = 0;

/** The file-backed resident memory (RssFile) seen by the last heldMemoryBytes() call. */
export function lastFileBackedBytes(): number {
  return fileBackedBytes;
}

/** The memory this process holds (see above); one small read of /proc, for a once-a-second timer. */
export function heldMemoryBytes(): number {
  if (procAvailable) {
    try {
      const status = readFileSync(STATUS, 'latin1');
      const held = parseHeldMemory(status);
      fileBackedBytes = parseFileBackedMemory(status) ?? 0;
      if (held !== undefined) return held;
    } catch {
      // no procfs (a container without /proc): the RSS from now on
    }
    procAvailable = false;
  }
  return process.memoryUsage.rss();
}
