// Giving memory the C allocator holds but no longer uses back to the system (glibc's malloc_trim,
// through the optional addon native/malloc-trim.c, built into dist/native/ by `npm ci`).
//
// Socket read buffers and message bodies live outside the JS heap, in memory from glibc's malloc.
// Its main heap only shrinks from its top by itself: after a flood was consumed, a few blocks still
// live above hundreds of MiB of freed ones kept them resident (measured after 200 MB of 4 KiB
// messages were drained: a 311 MiB heap with almost nothing in use), which kept the memory
// alarm's figure high. malloc_trim hands every free page back (madvise), whatever lies above it.
// It walks the heaps, so it is called only after much memory was released (memory.ts), never per
// message. Without the addon (no C compiler at install, not glibc) trim() does nothing.

import { createRequire } from 'node:module';

interface MallocTrimAddon {
  trim(): boolean;
  dropFilePages(path: string): number;
}

/** Where the addon is from this file: dist/src/broker/ (built) or src/broker/ (tests run from source). */
const CANDIDATES = ['../../native/malloc-trim.node', '../../dist/native/malloc-trim.node'];

function load(): MallocTrimAddon | null {
  if (process.platform !== 'linux') return null;
  const require = createRequire(import.meta.url);
  for (const path of CANDIDATES) {
    try {
      return require(path) as MallocTrimAddon;
    } catch {
      // not built there
    }
  }
  return null;
}

const addon = load();

/** Whether trim() can give memory back (the addon was built and loads). */
export const allocatorTrimAvailable = addon !== null;

/** Gives the C allocator's free pages back to the system; true when some were. */
export function trimAllocator(): boolean {
  return addon !== null && addon.trim();
}

/**
 * Has the kernel reclaim from this process the resident pages of the read-only shared mappings of
 * `path` (LMDB's data file, madvise MADV_PAGEOUT); returns the bytes of mapping advised, 0 without
 * the addon. Nothing is lost: the pages are clean and a later read reads them back. See mapped-pages.ts.
 */
export function dropMappedFilePages(path: string): number {
  return addon === null ? 0 : addon.dropFilePages(path);
}
