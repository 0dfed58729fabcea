// One broker per data folder. Two Warrens writing the same LMDB environment would allocate the same
// message and queue ids and corrupt each other's recovery, so a broker takes an exclusive lock on
// its data folder at start and gives it back at stop.
//
// The lock is a file, <data>/warren.lock, created with O_EXCL and holding the owner's pid and (on
// Linux) its process start time. A lock whose owner is gone (kill -9, power cut) is stale and is
// taken over; the start time tells a live owner from an unrelated process that reused its pid.
// Taking over is itself race-free: the stale file is renamed away first (only one contender's
// rename succeeds), then the new lock is created with O_EXCL again.

import { closeSync, linkSync, openSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';

export const LOCK_FILE = 'warren.lock';

export class DataFolderLocked extends Error {
  constructor(
    readonly dataDir: string,
    readonly ownerPid: number,
  ) {
    super(`the data folder ${dataDir} is in use by another running Warren (pid ${ownerPid}); stop that broker first or choose another --data-dir`);
  }
}

/** A held lock; release() gives it back (idempotent). */
export interface DataLock {
  readonly path: string;
  release(): void;
}

/** Process start time in clock ticks since boot (Linux), or '' where /proc is not available. */
function startTimeOf(pid: number): string {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    // Field 22; the command name (field 2) may contain spaces but ends with the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return fields[19] ?? '';
  } catch {
    return '';
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The owner named in a lock file, if that process is still the one that wrote it. */
function liveOwner(path: string): number | null {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return null;
  }
  const [pidText, startTime = ''] = text.trim().split(/\s+/);
  const pid = Number(pidText);
  if (!Number.isInteger(pid) || pid <= 0 || !isAlive(pid)) return null;
  // Same pid, different start time: the pid was reused by an unrelated process.
  if (startTime !== '' && startTimeOf(pid) !== '' && startTimeOf(pid) !== startTime) return null;
  return pid;
}

function create(path: string): boolean {
  let fd: number;
  try {
    fd = openSync(path, 'wx', 0o644);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  }
  try {
    writeSync(fd, `${process.pid} ${startTimeOf(process.pid)}\n`);
  } finally {
    closeSync(fd);
  }
  return true;
}

/** Takes the data folder's lock or throws DataFolderLocked naming the running owner. */
export function lockDataFolder(dataDir: string): DataLock {
  const path = join(dataDir, LOCK_FILE);
  for (let attempt = 0; attempt < 5; attempt++) {
    if (create(path)) {
      let held = true;
      return {
        path,
        release() {
          if (!held) return;
          held = false;
          // Only our own lock is removed (never one another process took over meanwhile).
          if (liveOwner(path) === process.pid) rmSync(path, { force: true });
        },
      };
    }
    const owner = liveOwner(path);
    if (owner !== null) throw new DataFolderLocked(dataDir, owner);
    // Stale: move it out of the way; if another starting broker got there first, try again.
    const aside = `${path}.stale-${process.pid}`;
    try {
      renameSync(path, aside);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      continue;
    }
    // Between our look and the rename another broker may have replaced the stale lock with its
    // own: then it is put back and that broker wins.
    const moved = liveOwner(aside);
    if (moved !== null) {
      try {
        linkSync(aside, path);
      } catch {
        // someone holds the path again: they are the owner now
      }
      rmSync(aside, { force: true });
      throw new DataFolderLocked(dataDir, moved);
    }
    rmSync(aside, { force: true });
  }
  const owner = liveOwner(path);
  throw new DataFolderLocked(dataDir, owner ?? 0);
}
