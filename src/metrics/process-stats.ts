// Process and node figures for the Prometheus families RabbitMQ reports about its node: resident
// memory, open and maximum file descriptors, free disk space where the data folder lives. Read at
// scrape time from /proc and statfs (Linux); where a figure cannot be read it is left out rather
// than reported as a made-up number.

import { readdirSync, readFileSync, statfsSync } from 'node:fs';

export function residentMemoryBytes(): number {
  return process.memoryUsage.rss();
}

/** Open file descriptors of this process, or null where /proc is not available. */
export function openFds(): number | null {
  try {
    return readdirSync('/proc/self/fd').length;
  } catch {
    return null;
  }
}

/** The soft limit on open files (what the process can actually use), or null. */
export function maxFds(): number | null {
  try {
    const limits = readFileSync('/proc/self/limits', 'utf8');
    const m = /^Max open files\s+(\d+|unlimited)/m.exec(limits);
    if (m === null || m[1] === 'unlimited') return null;
    return Number(m[1]);
  } catch {
    return null;
  }
}

/** Bytes available to unprivileged users on the file system holding path, or null. */
export function diskFreeBytes(path: string): number | null {
  try {
    const s = statfsSync(path);
    return Number(s.bavail) * Number(s.bsize);
  } catch {
    return null;
  }
}
