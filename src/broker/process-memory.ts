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
//
// The sample runs 4 times a second beside the message path, so it is one pread(2) of a file kept
// open into a buffer kept for it, parsed as bytes: no open/fstat/close per sample (readFileSync
// made five system calls and a 1.4 KiB string each time, 9-12 µs; this is about 3 µs), nothing
// for the collector. The kernel writes the file afresh on every read from offset 0.
//
// The memory gauge's own 1 s tick needs the same figure the alarm sampled at most 250 ms before:
// recentHeldMemoryBytes() gives it that sample instead of reading /proc again (a read of /proc on
// a timer is main-thread time a message arriving then waits behind).

import { openSync, readSync } from 'node:fs';
import { performance } from 'node:perf_hooks';

const STATUS = '/proc/self/status';
/** /proc/self/status is about 1.4 KiB; room for a much longer one (a long list of groups). */
const STATUS_BUFFER_BYTES = 16 * 1024;
let procAvailable = process.platform === 'linux';
let statusFd = -1;
let statusBuffer: Buffer | null = null;

const RSS_ANON = Buffer.from('\nRssAnon:', 'latin1');
const RSS_FILE = Buffer.from('\nRssFile:', 'latin1');
const RSS_SHMEM = Buffer.from('\nRssShmem:', 'latin1');

/**
 * The number after `field` (a "\nName:" line start) in the first `length` bytes of a
 * /proc/self/status text, in bytes (the file says kB), or undefined when the line is not there.
 */
function fieldBytes(status: Buffer, length: number, field: Buffer): number | undefined {
  const at = status.indexOf(field);
  if (at < 0 || at + field.length >= length) return undefined;
  let i = at + field.length;
  while (i < length && (status[i] === 0x20 || status[i] === 0x09)) i++;
  let kb = 0;
  let digits = 0;
  for (; i < length; i++, digits++) {
    const c = status[i]! - 0x30;
    if (c < 0 || c > 9) break;
    kb = kb * 10 + c;
  }
  return digits === 0 ? undefined : kb * 1024;
}

/** RssAnon + RssShmem in bytes, or undefined when the /proc/self/status text does not say. */
export function parseHeldMemory(status: Buffer, length = status.length): number | undefined {
  const anon = fieldBytes(status, length, RSS_ANON);
  const shmem = fieldBytes(status, length, RSS_SHMEM);
  if (anon === undefined || shmem === undefined) return undefined;
  return anon + shmem;
}

/** RssFile in bytes (file-backed resident pages), or undefined when the text does not say. */
export function parseFileBackedMemory(status: Buffer, length = status.length): number | undefined {
  return fieldBytes(status, length, RSS_FILE);
}

/** RssFile at the last heldMemoryBytes() call; 0 where /proc does not say. */
let fileBackedBytes = 0;
/** the figure of the last heldMemoryBytes() call, and when it was taken (performance.now() ms) */
let lastHeldBytes = 0;
let lastSampleAtMs = -Infinity;
/** samples actually read (for tests) */
let samplesTaken = 0;

/** How many times the memory held was read from the system (not reused). */
export function heldMemorySamplesTaken(): number {
  return samplesTaken;
}

/** The file-backed resident memory (RssFile) seen by the last heldMemoryBytes() call. */
export function lastFileBackedBytes(): number {
  return fileBackedBytes;
}

/** Reads /proc/self/status into statusBuffer; returns its length. Throws where there is no procfs. */
function readStatus(): number {
  if (statusFd < 0) {
    statusFd = openSync(STATUS, 'r');
    statusBuffer = Buffer.allocUnsafe(STATUS_BUFFER_BYTES);
  }
  return readSync(statusFd, statusBuffer!, 0, STATUS_BUFFER_BYTES, 0);
}

/** The memory this process holds (see above); one small read of /proc, for a sampling timer. */
export function heldMemoryBytes(): number {
  samplesTaken++;
  lastHeldBytes = sampleHeldMemory();
  lastSampleAtMs = performance.now();
  return lastHeldBytes;
}

/**
 * The memory held as sampled (by anyone in this process) at most `maxAgeMs` ago, or a fresh
 * sample when the last one is older.
 */
export function recentHeldMemoryBytes(maxAgeMs: number): number {
  return performance.now() - lastSampleAtMs <= maxAgeMs ? lastHeldBytes : heldMemoryBytes();
}

function sampleHeldMemory(): number {
  if (procAvailable) {
    try {
      const length = readStatus();
      const held = parseHeldMemory(statusBuffer!, length);
      fileBackedBytes = parseFileBackedMemory(statusBuffer!, length) ?? 0;
      if (held !== undefined) return held;
    } catch {
      // no procfs (a container without /proc): the RSS from now on
    }
    procAvailable = false;
  }
  return process.memoryUsage.rss();
}
