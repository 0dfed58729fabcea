// Keeps the pages of LMDB's memory-mapped data file out of Warren's resident memory.
//
// LMDB reads through a read-only shared memory map of its data file. Every page a read touches
// stays mapped into the process, so reading a deep backlog back (a queue paged to disk, or a
// restart with millions of stored messages) made Warren's RSS grow by the size of the data it read
// — measured in ../shared/bench S10, 300,000 incompressible 1 KiB messages drained: a peak RSS of
// 686 MB, most of it data-file pages, until the kernel needed the memory. Those pages are the
// kernel's page cache, not memory Warren holds (the memory alarm does not count them, see
// process-memory.ts), yet operators and their dashboards read the RSS. RabbitMQ reads its message
// store with read(2), so its RSS never holds them.
//
// When the file-backed resident memory has grown by DROP_ABOVE_BYTES since start, the kernel is asked
// to reclaim the data file's resident pages from the process (madvise MADV_PAGEOUT through the
// optional addon, allocator.ts). The pages are clean, so that loses nothing: the next read of one
// reads it back. MADV_PAGEOUT and not MADV_DONTNEED, although DONTNEED was cheaper (S10's drain
// 0.87x with PAGEOUT, same run): the mappings are read from /proc/self/maps before the advice, and
// LMDB's writer thread may unmap a chunk in between and another thread map anonymous memory there,
// which DONTNEED would zero; PAGEOUT never changes memory contents. The check rides on the memory
// alarm's sample (4 per second), nothing per message. Measured on S10 (same run): peak RSS 679 ->
// 250 MiB. 64 MiB at most once a second left a 460 MiB peak: a drain reads over 100 MB/s, so the
// reclaim cannot be much rarer. LMDB maps the file in 64 KiB chunks (remapChunks), thousands of
// mappings, and one madvise per mapping sent an IPI to every CPU running a broker thread each time
// (perf: 2.8 % of the drain under madvise): the addon advises each run of adjacent mappings at once
// (5-21 calls per drop, not ~7,000).

import { realpathSync } from 'node:fs';
import { dropMappedFilePages } from './allocator.js';
import { lastFileBackedBytes } from './process-memory.js';

/**
 * Growth of file-backed resident memory over the first sample that has the data file's pages
 * dropped. The peak is about this plus what a drain maps in one sample's interval (a 126k msg/s
 * drain of 1 KiB messages reads about 31 MB in 250 ms): at 32 MiB S10 peaked at 259 MiB.
 */
const DROP_ABOVE_BYTES = 16 * 1024 * 1024;
/** At most one drop per this many ms (every memory sample): hot index pages fault back in after each. */
const MIN_INTERVAL_MS = 200;

export class MappedDataFilePages {
  /** file-backed resident memory at the first sample (the node binary's code and the like) */
  private baselineBytes = -1;
  private lastDropAt = 0;
  private resolvedPath: string | null = null;

  /** @param dataFile LMDB's data file (data.mdb); /proc/self/maps names it by its real path */
  constructor(private readonly dataFile: string) {}

  /** A memory sample was taken (process-memory.ts): unmap the data file's pages if they grew. */
  sampled(now = Date.now()): void {
    const fileBacked = lastFileBackedBytes();
    if (fileBacked === 0) return;
    if (this.baselineBytes < 0 || fileBacked < this.baselineBytes) this.baselineBytes = fileBacked;
    if (fileBacked - this.baselineBytes < DROP_ABOVE_BYTES || now - this.lastDropAt < MIN_INTERVAL_MS) return;
    this.lastDropAt = now;
    const path = this.realPath();
    if (path === null) return;
    dropMappedFilePages(path);
  }

  private realPath(): string | null {
    if (this.resolvedPath === null) {
      try {
        this.resolvedPath = realpathSync(this.dataFile);
      } catch {
        return null; // not created yet
      }
    }
    return this.resolvedPath;
  }
}
