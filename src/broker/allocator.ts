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
  unmapFilePages(path: string): number;
  pageOutFilePages(path: string): number;
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
 * Unmaps from this process the resident pages of the read-only shared mappings of `path` (LMDB's
 * data file, madvise MADV_DONTNEED); returns the bytes of mapping advised, 0 without the addon. The
 * pages stay in the page cache. Only while no other thread can unmap one of the file's mappings:
 * DONTNEED zeroes anonymous memory, and an address read from /proc/self/maps could be reused by
 * some in between. See mapped-pages.ts.
 */
export function unmapMappedFilePages(path: string): number {
  return addon === null ? 0 : addon.unmapFilePages(path);
}

/**
 * As unmapMappedFilePages with madvise MADV_PAGEOUT: safe whatever other threads do (it never
 * changes memory contents), but the pages leave the page cache too, so a later read goes to disk.
 */
export function pageOutMappedFilePages(path: string): number {
  return addon === null ? 0 : addon.pageOutFilePages(path);
}
