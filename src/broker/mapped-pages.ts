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
// After every DROP_AFTER_READ_BYTES of message bodies read from the store (at most every
// MIN_READ_INTERVAL_MS), and when the file-backed resident memory has grown by DROP_ABOVE_BYTES
// since start (checked on the memory alarm's sample, 4 per second), the data file's pages are unmapped from the process (madvise MADV_DONTNEED through
// the optional addon, allocator.ts): they stay in the page cache, so the next read of one is a
// minor fault. Nothing per message: the reads are counted per batch read back.
//
// Why the advice runs inside an LMDB write transaction (LmdbStore.whileWriterWaits): the addon
// reads the mappings from /proc/self/maps and advises after, and LMDB's writer thread unmaps and
// maps 64 KiB chunks (remapChunks) as it goes. Were a chunk unmapped in between and anonymous memory
// mapped at its address by another thread, DONTNEED would zero that memory (silent corruption). The
// writer's transaction callback runs on the main thread while the writer waits for it, so then
// neither thread that maps LMDB's chunks is inside LMDB. Before, MADV_PAGEOUT made the advice safe
// at any time, but it evicts the pages from the page cache too: the writer, deleting drained
// entries, and the next reads of the B-tree's inner pages read them from disk again, and PAGEOUT's
// reclaim walk itself cost more (perf of ../shared/bench S10's drain: madvise 7.5 %, page-cache
// readahead 2.7 % of the broker's CPU). PAGEOUT stays for one case: an unmapping that waits for the
// writer longer than STALLED_MS (a slow commit on a loaded machine) while more pages pile up.
//
// Measured on S10 (same run): peak RSS 679 -> 250 MiB. 64 MiB at most once a second left a 460 MiB
// peak: a drain reads over 100 MB/s, so the reclaim cannot be much rarer. LMDB maps the file in
// 64 KiB chunks, thousands of mappings: the addon advises each run of adjacent ones at once (one
// madvise per mapping sent an IPI to every CPU running a broker thread each time).

import { realpathSync } from 'node:fs';
import { pageOutMappedFilePages, unmapMappedFilePages } from './allocator.js';
import { lastFileBackedBytes } from './process-memory.js';

/**
 * Growth of file-backed resident memory over the first sample that has the data file's pages
 * dropped. The peak is about this plus what a drain maps in one sample's interval (a 126k msg/s
 * drain of 1 KiB messages reads about 31 MB in 250 ms): at 32 MiB S10 peaked at 259 MiB.
 */
const DROP_ABOVE_BYTES = 16 * 1024 * 1024;
/**
 * Bytes of message bodies read from the store (LmdbStore.onBodiesRead) after which the pages are
 * dropped, whatever the samples say. Samples come 4 times a second, and a fast drain reads 35-40 MB
 * between two (S10 at 141k msg/s): on samples alone the peak grew with the drain's speed (262 MiB
 * against 244 at 90k msg/s, same run). Counted per read of a batch, not per message.
 */
const DROP_AFTER_READ_BYTES = 16 * 1024 * 1024;
/**
 * An unmapping still waiting for the writer thread after this many ms is helped by a MADV_PAGEOUT
 * (safe at any time, see above) when another drop is due: on a loaded machine the writer can be
 * held up by a slow commit while the drain goes on reading, and the pages would pile up meanwhile.
 */
const STALLED_MS = 100;
/** At most one drop per this many ms (every memory sample): hot index pages fault back in after each. */
const MIN_INTERVAL_MS = 200;
/**
 * At most one drop per this many ms after bodies read, whatever the read rate: each drop reads
 * /proc/self/maps (thousands of lines: LMDB maps its file in 64 KiB chunks), advises the file's
 * mappings, and holds the writer thread's transaction open until the main thread has run it. An
 * empty one — nothing else written — commits no page and syncs nothing (LMDB skips the commit of
 * a transaction that dirtied nothing: strace shows no pwrite or fdatasync per drop) and costs
 * about 50 µs of CPU in thread wake-ups. Without this bound a read rate of 1 GB/s (large messages
 * paged out) asked for 60 drops a second, one every read of 16 MiB; S10's drain (about 140 MB/s)
 * reads 16 MiB every 110 ms or so and is not held back by it.
 */
const MIN_READ_INTERVAL_MS = 50;

export class MappedDataFilePages {
  /** file-backed resident memory at the first sample (the node binary's code and the like) */
  private baselineBytes = -1;
  private lastDropAt = 0;
  private resolvedPath: string | null = null;
  /** an unmapping waits for the writer's transaction */
  private unmapPending = false;
  /** bodies read from the store since the last drop */
  private readBytes = 0;
  /** when the pending unmapping was asked for, and the last page-out that helped a stalled one */
  private unmapRequestedAt = 0;
  private lastPageOutAt = 0;
  private readonly unmapNow = (): void => {
    const path = this.realPath();
    if (path !== null) unmapMappedFilePages(path);
  };
  private readonly unmapSettled = (): void => {
    this.unmapPending = false;
  };

  /**
   * @param dataFile LMDB's data file (data.mdb); /proc/self/maps names it by its real path
   * @param whileWriterWaits runs an action while no thread can map or unmap the file's chunks
   *   (LmdbStore.whileWriterWaits); settles once it ran or will not; null when it cannot run it
   */
  constructor(
    private readonly dataFile: string,
    private readonly whileWriterWaits: (action: () => void) => PromiseLike<unknown> | null,
  ) {}

  /** A memory sample was taken (process-memory.ts): unmap the data file's pages if they grew. */
  sampled(now = Date.now()): void {
    const fileBacked = lastFileBackedBytes();
    if (fileBacked === 0) return;
    if (this.baselineBytes < 0 || fileBacked < this.baselineBytes) this.baselineBytes = fileBacked;
    if (fileBacked - this.baselineBytes < DROP_ABOVE_BYTES || now - this.lastDropAt < MIN_INTERVAL_MS) return;
    this.drop(now);
  }

  /** Message bodies were read from the store (through the map): drop the pages every so many. */
  bodiesRead(bytes: number, now = Date.now()): void {
    this.readBytes += bytes;
    if (this.readBytes >= DROP_AFTER_READ_BYTES && now - this.lastDropAt >= MIN_READ_INTERVAL_MS) this.drop(now);
  }

  private drop(now: number): void {
    if (this.unmapPending) {
      if (now - this.unmapRequestedAt >= STALLED_MS && now - this.lastPageOutAt >= STALLED_MS) this.pageOutNow(now);
      return;
    }
    this.lastDropAt = now;
    this.readBytes = 0;
    const done = this.whileWriterWaits(this.unmapNow);
    if (done === null) return;
    this.unmapPending = true;
    this.unmapRequestedAt = now;
    done.then(this.unmapSettled, this.unmapSettled);
  }

  private pageOutNow(now: number): void {
    this.lastPageOutAt = now;
    this.lastDropAt = now;
    this.readBytes = 0;
    const path = this.realPath();
    if (path !== null) pageOutMappedFilePages(path);
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
