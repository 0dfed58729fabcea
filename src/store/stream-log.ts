// A stream's messages on disk: an append-only log of numbered records in segment files, one
// folder per stream. Segment files were measured against LMDB for this (append 1 M small records,
// read them back in order): appending to a file is one write per batch instead of a B-tree insert
// per record, and retention is the removal of whole files, which is what streams need.
//
//   <dir>/<first offset, 20 digits>.segment   records, back to back
//   <dir>/<first offset, 20 digits>.index     16 bytes per record: u64 timestamp ‖ u32 position ‖ u32 size
//   <dir>/offsets.json                        positions of named consumer groups
//
//   record: u32 size (bytes after this field) ‖ u32 crc32 (of the bytes after it) ‖ u64 offset
//           ‖ u64 timestamp (epoch ms) ‖ u8 filter length ‖ filter value ‖ u8 exchange length
//           ‖ exchange ‖ u8 routing key length ‖ routing key ‖ u32 properties length
//           ‖ properties ‖ body
//
// Appends are encoded into large write buffers and handed to the file system together, one write
// at a time (a "batch"); sync() resolves once everything appended so far is written, and is what
// publisher confirms wait for (as on RabbitMQ: written, not fdatasync'ed; see sync()). Records stay readable from memory by the caller (its
// tail cache) until written; reads of written records are short synchronous preads, so memory
// does not grow with the length of the stream: only one small object per segment is kept.
// Old data is removed by whole segments (retention by size and by age). On open, the tail of each
// segment is checked record by record (size, crc, offset) and anything after the last good record —
// a write cut short by a crash — is cut off.

import {
  closeSync,
  fdatasync,
  fstatSync,
  ftruncateSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  rename,
  rmSync,
  unlink,
  writeFile,
  writeSync,
  writevSync,
  close,
} from 'node:fs';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import type { Logger } from '../log.js';

const INDEX_ENTRY = 16;
const RECORD_HEAD = 8; // u32 size ‖ u32 crc
/** The fixed part of a record after the head: offset, timestamp, the three length bytes, properties length. */
const RECORD_FIXED = 8 + 8 + 1 + 1 + 1 + 4;
const WRITE_CHUNK = 1024 * 1024;
/** Appends wait this long for company before they are written (unless a confirm asks first). */
const WRITE_DELAY_MS = 1;
/** RabbitMQ's default segment size. */
export const DEFAULT_SEGMENT_BYTES = 500_000_000;
/** Segment positions are u32 in the index. */
const MAX_SEGMENT_BYTES = 4_000_000_000;
const OFFSETS_FILE = 'offsets.json';
/** Written segments are fdatasync'ed this long after a write (and at close). */
export const SYNC_DELAY_MS = 200;

const TWO_32 = 4294967296;
function writeU64(buf: Buffer, at: number, v: number): void {
  buf.writeUInt32BE(Math.floor(v / TWO_32), at);
  buf.writeUInt32BE(v >>> 0, at + 4);
}
function readU64(buf: Buffer, at: number): number {
  return buf.readUInt32BE(at) * TWO_32 + buf.readUInt32BE(at + 4);
}

/** Writes a record's properties straight into the write buffer (measured first). */
export interface PropertiesWriter {
  readonly size: number;
  /** writes at dst[at]; returns the offset after */
  writeTo(dst: Buffer, at: number): number;
}

/** One record as read back: views into a read buffer (or the write buffer). */
export interface StreamRecord {
  readonly offset: number;
  readonly timestamp: number;
  /** x-stream-filter-value, or '' when the message had none */
  readonly filterValue: string;
  /** exchange and routing key as two short strings (the wire form basic.deliver uses) */
  readonly routingBytes: Buffer;
  readonly exchange: string;
  readonly routingKey: string;
  readonly properties: Buffer;
  readonly body: Buffer;
  /** bytes the record takes in its segment */
  readonly size: number;
}

/** Decodes the record whose head starts at `at` in buf (already known to be complete). */
export function decodeRecord(buf: Buffer, at: number): StreamRecord {
  const size = RECORD_HEAD + buf.readUInt32BE(at);
  let o = at + RECORD_HEAD;
  const offset = readU64(buf, o);
  const timestamp = readU64(buf, o + 8);
  o += 16;
  const filterLen = buf[o]!;
  const filterValue = filterLen === 0 ? '' : buf.toString('utf8', o + 1, o + 1 + filterLen);
  o += 1 + filterLen;
  const routingStart = o;
  const exLen = buf[o]!;
  const exchange = exLen === 0 ? '' : buf.toString('utf8', o + 1, o + 1 + exLen);
  o += 1 + exLen;
  const rkLen = buf[o]!;
  const routingKey = buf.toString('utf8', o + 1, o + 1 + rkLen);
  o += 1 + rkLen;
  const routingBytes = buf.subarray(routingStart, o);
  const propsLen = buf.readUInt32BE(o);
  o += 4;
  const properties = buf.subarray(o, o + propsLen);
  const body = buf.subarray(o + propsLen, at + size);
  return { offset, timestamp, filterValue, routingBytes, exchange, routingKey, properties, body, size };
}

class Segment {
  /** records and bytes appended (written or waiting in the batch) */
  count = 0;
  size = 0;
  /** bytes handed to the file system */
  writtenSize = 0;
  firstTimestamp = 0;
  lastTimestamp = 0;
  /** written since the last fdatasync */
  dirty = false;
  deleted = false;

  constructor(
    readonly firstOffset: number,
    readonly fd: number,
    readonly indexFd: number,
    readonly path: string,
  ) {}

  get endOffset(): number {
    return this.firstOffset + this.count;
  }
}

/** Appended records of one segment waiting to be written. */
interface BatchPart {
  segment: Segment;
  /** (position, size) pairs in the write buffers of `chunks` (one entry per record) */
  records: number[];
  chunks: Buffer[];
  index: Buffer;
  indexLen: number;
  filePos: number;
  indexPos: number;
}

/** A reader's place: the segment and file position of the record at `offset`. */
export interface LogCursor {
  offset: number;
  segment: Segment | null;
  filePos: number;
}

function segmentName(firstOffset: number): string {
  return String(firstOffset).padStart(20, '0');
}

function datasyncAsync(fd: number): Promise<void> {
  return new Promise((resolve, reject) => fdatasync(fd, (err) => (err ? reject(err) : resolve())));
}

export class StreamLog {
  private segments: Segment[] = [];
  /** offset the next append gets */
  private end = 0;
  /** offsets below this are in the files (readable with read()) */
  private writtenEnd = 0;
  /** offsets below this are on disk (fdatasync'ed) */
  private writeWaiters: { target: number; resolve: () => void; reject: (err: Error) => void }[] = [];
  private durabilityTimer: NodeJS.Timeout | null = null;
  /** the background fdatasync, awaited before a segment's files are closed */
  private syncInFlight: Promise<void> = Promise.resolve();
  private chunk: Buffer = Buffer.allocUnsafe(0);
  private chunkPos = 0;
  private batch: BatchPart[] = [];
  private batchEnd = 0;
  private writeScheduled = false;
  private writing = false;
  /** every file operation runs in this chain, one after another */
  private chain: Promise<void> = Promise.resolve();
  private readonly readHead = Buffer.allocUnsafe(INDEX_ENTRY);
  /** where the last appended record's bytes are (decodeRecord(lastBuffer, lastAt)) */
  lastBuffer: Buffer = Buffer.alloc(0);
  lastAt = 0;
  lastRecordSize = 0;
  /** set when a write failed: nothing more is accepted (the folder needs attention) */
  failed: Error | null = null;
  private closed = false;

  constructor(
    readonly dir: string,
    private maxSegmentBytes: number,
    private readonly log: Logger,
  ) {
    this.maxSegmentBytes = Math.min(Math.max(1, maxSegmentBytes), MAX_SEGMENT_BYTES);
    this.open();
  }

  /** First offset still stored (older ones were removed by retention). */
  get firstOffset(): number {
    return this.segments[0]?.firstOffset ?? this.end;
  }

  /** Offset the next append gets (one past the last record). */
  get nextOffset(): number {
    return this.end;
  }

  /** Offsets below this can be read from the files. */
  get readableEnd(): number {
    return this.writtenEnd;
  }

  get messageCount(): number {
    return this.end - this.firstOffset;
  }

  /** Bytes of all segments. */
  get sizeBytes(): number {
    let n = 0;
    for (const s of this.segments) n += s.size;
    return n;
  }

  get segmentCount(): number {
    return this.segments.length;
  }

  // ---- Opening and recovery -----------------------------------------------------------------------

  private open(): void {
    mkdirSync(this.dir, { recursive: true });
    const names = readdirSync(this.dir)
      .filter((n) => /^[0-9]{20}\.segment$/.test(n))
      .sort();
    for (const name of names) {
      const first = Number(name.slice(0, 20));
      const segment = this.openSegment(first, false);
      this.recoverSegment(segment);
      const previous = this.segments[this.segments.length - 1];
      if (previous !== undefined && previous.endOffset !== first) {
        this.log.warn({ dir: this.dir, segment: name, expected: previous.endOffset }, 'stream segment does not follow the previous one; later segments dropped');
        this.removeSegmentFiles(segment);
        break;
      }
      this.segments.push(segment);
    }
    const last = this.segments[this.segments.length - 1];
    this.end = last === undefined ? 0 : last.endOffset;
    if (last === undefined) this.segments.push(this.openSegment(0, true));
    this.writtenEnd = this.end;
  }

  private openSegment(firstOffset: number, create: boolean): Segment {
    const base = join(this.dir, segmentName(firstOffset));
    const flags = create ? 'w+' : 'r+';
    const fd = openSync(`${base}.segment`, flags);
    let indexFd: number;
    try {
      indexFd = openSync(`${base}.index`, create ? 'w+' : 'a+');
      if (!create) {
        // 'a+' creates a missing index; reopen it for positioned writes.
        closeSync(indexFd);
        indexFd = openSync(`${base}.index`, 'r+');
      }
    } catch (err) {
      closeSync(fd);
      throw err;
    }
    if (create) this.syncDirectory();
    return new Segment(firstOffset, fd, indexFd, base);
  }

  /**
   * Counts a segment's records from its index, checks the last ones against the data (a crash can
   * leave the index ahead of or behind the data), indexes records the index missed, and cuts off
   * anything after the last good record.
   */
  private recoverSegment(seg: Segment): void {
    const fileSize = fstatSync(seg.fd).size;
    let count = Math.floor(fstatSync(seg.indexFd).size / INDEX_ENTRY);
    const entry = Buffer.allocUnsafe(INDEX_ENTRY);
    let goodEnd = 0;
    while (count > 0) {
      readSync(seg.indexFd, entry, 0, INDEX_ENTRY, (count - 1) * INDEX_ENTRY);
      const pos = entry.readUInt32BE(8);
      const size = entry.readUInt32BE(12);
      if (pos + size <= fileSize && this.validRecordAt(seg, pos, size, seg.firstOffset + count - 1)) {
        goodEnd = pos + size;
        break;
      }
      count--;
    }
    // Records written after the index's last good entry: check and index them.
    let pos = goodEnd;
    const head = Buffer.allocUnsafe(RECORD_HEAD);
    const fresh: Buffer[] = [];
    while (pos + RECORD_HEAD <= fileSize) {
      readSync(seg.fd, head, 0, RECORD_HEAD, pos);
      const size = RECORD_HEAD + head.readUInt32BE(0);
      if (size < RECORD_HEAD + RECORD_FIXED || pos + size > fileSize) break;
      const record = Buffer.allocUnsafe(size);
      readSync(seg.fd, record, 0, size, pos);
      if (crc32(record.subarray(RECORD_HEAD)) !== record.readUInt32BE(4)) break;
      if (readU64(record, RECORD_HEAD) !== seg.firstOffset + count) break;
      const e = Buffer.allocUnsafe(INDEX_ENTRY);
      writeU64(e, 0, readU64(record, RECORD_HEAD + 8));
      e.writeUInt32BE(pos, 8);
      e.writeUInt32BE(size, 12);
      fresh.push(e);
      count++;
      pos += size;
    }
    if (fresh.length > 0) writeSync(seg.indexFd, Buffer.concat(fresh), 0, fresh.length * INDEX_ENTRY, (count - fresh.length) * INDEX_ENTRY);
    if (pos < fileSize) {
      this.log.warn({ dir: this.dir, segment: seg.path, keptBytes: pos, fileBytes: fileSize }, 'stream segment ended in an incomplete record (a crash mid-write); cut off');
      ftruncateSync(seg.fd, pos);
    }
    ftruncateSync(seg.indexFd, count * INDEX_ENTRY);
    seg.count = count;
    seg.size = pos;
    seg.writtenSize = pos;
    if (count > 0) {
      readSync(seg.indexFd, entry, 0, INDEX_ENTRY, 0);
      seg.firstTimestamp = readU64(entry, 0);
      readSync(seg.indexFd, entry, 0, INDEX_ENTRY, (count - 1) * INDEX_ENTRY);
      seg.lastTimestamp = readU64(entry, 0);
    }
  }

  private validRecordAt(seg: Segment, pos: number, size: number, offset: number): boolean {
    if (size < RECORD_HEAD + RECORD_FIXED) return false;
    const record = Buffer.allocUnsafe(size);
    if (readSync(seg.fd, record, 0, size, pos) !== size) return false;
    if (RECORD_HEAD + record.readUInt32BE(0) !== size) return false;
    if (readU64(record, RECORD_HEAD) !== offset) return false;
    return crc32(record.subarray(RECORD_HEAD)) === record.readUInt32BE(4);
  }

  private syncDirectory(): void {
    let fd = -1;
    try {
      fd = openSync(this.dir, 'r');
      fsyncSync(fd);
    } catch {
      // Not every file system can sync a directory; the segment's own sync still applies.
    } finally {
      if (fd >= 0) closeSync(fd);
    }
  }

  // ---- Appending ----------------------------------------------------------------------------------

  /**
   * Appends one record; returns its offset. The record's bytes stay readable in the write buffer at
   * lastBuffer / lastAt (see decodeRecord) for as long as the caller holds that buffer. The write
   * happens at the end of this event-loop turn (or with the write in flight's successor).
   */
  append(timestamp: number, filterValue: string, exchange: string, routingKey: string, properties: PropertiesWriter, body: Buffer): number {
    if (this.closed) throw new Error('stream log is closed');
    const filterLen = filterValue === '' ? 0 : Math.min(255, Buffer.byteLength(filterValue));
    const exLen = Buffer.byteLength(exchange);
    const rkLen = Buffer.byteLength(routingKey);
    const size = RECORD_HEAD + RECORD_FIXED + filterLen + exLen + rkLen + properties.size + body.length;
    let segment = this.segments[this.segments.length - 1]!;
    if (segment.count > 0 && segment.size + size > this.maxSegmentBytes) segment = this.roll();
    if (this.chunk.length - this.chunkPos < size) {
      this.chunk = Buffer.allocUnsafe(Math.max(WRITE_CHUNK, size));
      this.chunkPos = 0;
    }
    const buf = this.chunk;
    const at = this.chunkPos;
    const offset = this.end++;
    let o = at + RECORD_HEAD;
    writeU64(buf, o, offset);
    writeU64(buf, o + 8, timestamp);
    o += 16;
    buf[o] = filterLen;
    if (filterLen > 0) buf.write(filterValue, o + 1, filterLen, 'utf8');
    o += 1 + filterLen;
    buf[o] = exLen;
    if (exLen > 0) buf.write(exchange, o + 1, exLen, 'utf8');
    o += 1 + exLen;
    buf[o] = rkLen;
    if (rkLen > 0) buf.write(routingKey, o + 1, rkLen, 'utf8');
    o += 1 + rkLen;
    buf.writeUInt32BE(properties.size, o);
    o = properties.writeTo(buf, o + 4);
    body.copy(buf, o);
    buf.writeUInt32BE(size - RECORD_HEAD, at);
    buf.writeUInt32BE(crc32(buf.subarray(at + RECORD_HEAD, at + size)), at + 4);
    this.chunkPos = at + size;
    this.lastBuffer = buf;
    this.lastAt = at;
    this.lastRecordSize = size;

    const part = this.batchPartFor(segment);
    part.records.push(at, size);
    part.chunks.push(buf);
    if (part.index.length - part.indexLen < INDEX_ENTRY) {
      const grown = Buffer.allocUnsafe(Math.max(4096, part.index.length * 2));
      part.index.copy(grown, 0, 0, part.indexLen);
      part.index = grown;
    }
    writeU64(part.index, part.indexLen, timestamp);
    part.index.writeUInt32BE(segment.size, part.indexLen + 8);
    part.index.writeUInt32BE(size, part.indexLen + 12);
    part.indexLen += INDEX_ENTRY;
    if (segment.count === 0) segment.firstTimestamp = timestamp;
    segment.lastTimestamp = timestamp;
    segment.count++;
    segment.size += size;
    this.batchEnd = this.end;
    if (!this.writeScheduled) {
      // A moment's wait gathers what arrives over several socket reads into one write; a waiting
      // confirm (sync()) writes at once.
      this.writeScheduled = true;
      setTimeout(this.writeBatch, WRITE_DELAY_MS);
    }
    return offset;
  }

  private batchPartFor(segment: Segment): BatchPart {
    const last = this.batch[this.batch.length - 1];
    if (last !== undefined && last.segment === segment) return last;
    const part: BatchPart = {
      segment,
      records: [],
      chunks: [],
      index: Buffer.allocUnsafe(4096),
      indexLen: 0,
      filePos: segment.size,
      indexPos: segment.count * INDEX_ENTRY,
    };
    this.batch.push(part);
    return part;
  }

  /** Starts a new segment after the current one. */
  private roll(): Segment {
    const segment = this.openSegment(this.end, true);
    this.segments.push(segment);
    return segment;
  }

  /**
   * Hands the batch to the file system (queued behind earlier file operations). One write at a
   * time: appends that arrive while a write is in flight go together in the next one, so a busy
   * stream writes large batches however its publishers' frames are cut. The write itself is a
   * synchronous pwrite into the page cache (a memory copy): measured cheaper per message than
   * handing each batch to libuv's thread pool, whose hand-off cost the main thread 60–100 µs a call.
   */
  private readonly writeBatch = (): void => {
    this.writeScheduled = false;
    if (this.writing) return; // the write in flight takes the batch when it is done
    const parts = this.batch;
    if (parts.length === 0) return;
    this.writing = true;
    this.batch = [];
    const end = this.batchEnd;
    this.enqueue(async () => {
      for (const part of parts) {
        if (part.segment.deleted) continue;
        const pieces = coalesce(part.chunks, part.records);
        writevSync(part.segment.fd, pieces, part.filePos);
        writeSync(part.segment.indexFd, part.index, 0, part.indexLen, part.indexPos);
        part.segment.dirty = true;
        part.segment.writtenSize = part.filePos + byteLength(pieces);
      }
      this.writtenEnd = end;
      this.writing = false;
      this.releaseWaiters();
      this.scheduleDurability();
      this.onWritten();
      if (this.batch.length > 0) this.writeBatch();
    }).catch(() => {
      this.writing = false; // failed: already logged, and the waiters were told
    });
  };

  /** Told when more records became readable from the files. */
  onWritten: () => void = () => {};

  private enqueue(op: () => Promise<void>): Promise<void> {
    const next = this.chain.then(() => {
      if (this.failed !== null) throw this.failed;
      return op();
    });
    this.chain = next.catch((err: unknown) => {
      this.fail(err);
      this.releaseWaiters(); // waiters hear about the failure
    });
    return next;
  }

  /**
   * Resolves once everything appended so far is written to the segment files (rejects when it
   * could not be); null when there is nothing to wait for. As RabbitMQ's streams, a confirm waits
   * for the write, not for an fdatasync: written data survives a crash of Warren (the operating
   * system holds it), and each written segment is fdatasync'ed within SYNC_DELAY_MS (RabbitMQ
   * leaves that to the operating system entirely), so a power loss can cost at most that much.
   */
  sync(): Promise<void> | null {
    if (this.failed !== null) return Promise.reject(this.failed);
    if (this.end === this.writtenEnd && this.batch.length === 0) return null;
    const target = this.end;
    this.writeBatch();
    return new Promise<void>((resolve, reject) => this.writeWaiters.push({ target, resolve, reject }));
  }

  /** Tells the waiters whose records are written (or that writing failed). */
  private releaseWaiters(): void {
    if (this.writeWaiters.length === 0) return;
    const waiting = this.writeWaiters;
    this.writeWaiters = [];
    for (const w of waiting) {
      if (this.failed !== null) w.reject(this.failed);
      else if (w.target <= this.writtenEnd) w.resolve();
      else this.writeWaiters.push(w);
    }
  }

  /** fdatasyncs the written segments a moment after they were written. */
  private scheduleDurability(): void {
    if (this.durabilityTimer !== null || this.closed) return;
    this.durabilityTimer = setTimeout(() => {
      this.durabilityTimer = null;
      // Beside the write chain, so that writes (and confirms) do not wait for it.
      this.syncInFlight = this.syncDirty().catch((err: unknown) => this.log.warn({ err, dir: this.dir }, 'stream fdatasync failed'));
    }, SYNC_DELAY_MS);
    this.durabilityTimer.unref();
  }

  private async syncDirty(): Promise<void> {
    await this.syncInFlight;
    const dirty = this.segments.filter((seg) => seg.dirty && !seg.deleted);
    for (const seg of dirty) seg.dirty = false;
    await Promise.all(dirty.map((seg) => datasyncAsync(seg.fd)));
  }

  private fail(err: unknown): void {
    if (this.failed !== null) return;
    this.failed = err instanceof Error ? err : new Error(String(err));
    this.log.error({ err: this.failed, dir: this.dir }, 'stream write failed: publishing to this stream is refused until Warren is restarted with the disk problem fixed');
  }

  // ---- Reading ------------------------------------------------------------------------------------

  /** A cursor at `offset` (clamped to the stored range). */
  cursorAt(offset: number): LogCursor {
    const clamped = Math.min(Math.max(offset, this.firstOffset), this.end);
    return { offset: clamped, segment: null, filePos: 0 };
  }

  /**
   * Reads written records from the cursor on, about maxBytes of them (at least one), and moves the
   * cursor past them. Returns [] at the readable end.
   */
  read(cursor: LogCursor, maxBytes: number): StreamRecord[] {
    if (cursor.offset < this.firstOffset) {
      cursor.offset = this.firstOffset;
      cursor.segment = null;
    }
    if (cursor.offset >= this.writtenEnd) return [];
    let seg = cursor.segment;
    if (seg === null || seg.deleted || cursor.offset < seg.firstOffset || cursor.offset >= seg.endOffset) {
      seg = this.segmentOf(cursor.offset);
      if (seg === null) return [];
      cursor.segment = seg;
      cursor.filePos = this.positionOf(seg, cursor.offset);
    }
    const limit = Math.min(seg.writtenSize, seg.size);
    if (cursor.filePos >= limit) {
      // The rest of this segment is not written yet, or the cursor is at its end: the next segment.
      if (cursor.offset >= seg.endOffset) cursor.segment = null;
      return [];
    }
    readSync(seg.fd, this.readHead, 0, 4, cursor.filePos);
    const first = RECORD_HEAD + this.readHead.readUInt32BE(0);
    const length = Math.min(limit - cursor.filePos, Math.max(first, maxBytes));
    const buf = Buffer.allocUnsafe(length);
    const got = readSync(seg.fd, buf, 0, length, cursor.filePos);
    const out: StreamRecord[] = [];
    let o = 0;
    while (o + RECORD_HEAD <= got && cursor.offset < this.writtenEnd) {
      const size = RECORD_HEAD + buf.readUInt32BE(o);
      if (o + size > got) break;
      out.push(decodeRecord(buf, o));
      o += size;
      cursor.offset++;
    }
    cursor.filePos += o;
    if (cursor.offset >= seg.endOffset) cursor.segment = null;
    return out;
  }

  private segmentOf(offset: number): Segment | null {
    const segs = this.segments;
    let lo = 0;
    let hi = segs.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const s = segs[mid]!;
      if (offset < s.firstOffset) hi = mid - 1;
      else if (offset >= s.endOffset) lo = mid + 1;
      else return s;
    }
    return null;
  }

  private positionOf(seg: Segment, offset: number): number {
    readSync(seg.indexFd, this.readHead, 0, INDEX_ENTRY, (offset - seg.firstOffset) * INDEX_ENTRY);
    return this.readHead.readUInt32BE(8);
  }

  private timestampOf(seg: Segment, offset: number): number {
    readSync(seg.indexFd, this.readHead, 0, INDEX_ENTRY, (offset - seg.firstOffset) * INDEX_ENTRY);
    return readU64(this.readHead, 0);
  }

  /** The first written offset whose timestamp is at or after `timestamp` (the end when none is). */
  offsetAtTime(timestamp: number): number {
    for (const seg of this.segments) {
      if (seg.count === 0 || seg.lastTimestamp < timestamp) continue;
      // Binary search within the segment's written records.
      let lo = seg.firstOffset;
      let hi = Math.min(seg.endOffset, this.writtenEnd) - 1;
      if (hi < lo) break;
      while (lo < hi) {
        const mid = Math.floor((lo + hi) / 2);
        if (this.timestampOf(seg, mid) < timestamp) lo = mid + 1;
        else hi = mid;
      }
      return this.timestampOf(seg, lo) >= timestamp ? lo : Math.min(seg.endOffset, this.writtenEnd);
    }
    return this.end;
  }

  // ---- Retention ----------------------------------------------------------------------------------

  /**
   * Removes the oldest whole segments while the stream is larger than maxBytes or their newest
   * record is older than maxAgeMs (the segment being written to always stays). Returns how many
   * records went.
   */
  applyRetention(maxBytes: number | undefined, maxAgeMs: number | undefined, now: number): number {
    let removed = 0;
    let total = this.sizeBytes;
    while (this.segments.length > 1) {
      const oldest = this.segments[0]!;
      const tooBig = maxBytes !== undefined && total > maxBytes;
      const tooOld = maxAgeMs !== undefined && oldest.lastTimestamp < now - maxAgeMs;
      // Only segments completely written can go (their files are not being written to).
      if ((!tooBig && !tooOld) || oldest.endOffset > this.writtenEnd) break;
      this.segments.shift();
      oldest.deleted = true;
      total -= oldest.size;
      removed += oldest.count;
      this.enqueue(async () => {
        await this.syncInFlight;
        this.removeSegmentFiles(oldest);
      });
    }
    return removed;
  }

  private removeSegmentFiles(seg: Segment): void {
    seg.deleted = true;
    closeSync(seg.fd);
    closeSync(seg.indexFd);
    unlink(`${seg.path}.segment`, () => {});
    unlink(`${seg.path}.index`, () => {});
  }

  // ---- Consumer group positions -------------------------------------------------------------------

  /** Named consumer groups' stored positions (last acknowledged offset). */
  loadGroupOffsets(): Map<string, number> {
    const out = new Map<string, number>();
    try {
      const data = JSON.parse(readFileSync(join(this.dir, OFFSETS_FILE), 'utf8')) as Record<string, unknown>;
      for (const [name, offset] of Object.entries(data)) if (typeof offset === 'number') out.set(name, offset);
    } catch {
      // None stored yet (or unreadable: groups start over from their own offset argument).
    }
    return out;
  }

  /** Stores the groups' positions (replacing the file in one rename). */
  saveGroupOffsets(offsets: ReadonlyMap<string, number>): Promise<void> {
    const data = JSON.stringify(Object.fromEntries(offsets));
    const path = join(this.dir, OFFSETS_FILE);
    return this.enqueue(
      () =>
        new Promise<void>((resolve, reject) =>
          writeFile(`${path}.tmp`, data, (err) => (err ? reject(err) : rename(`${path}.tmp`, path, (e) => (e ? reject(e) : resolve())))),
        ),
    );
  }

  // ---- Closing ------------------------------------------------------------------------------------

  /** Writes and syncs what is pending, then closes the files. */
  async close(): Promise<void> {
    if (this.closed) return;
    try {
      await this.sync();
    } catch {
      // Already logged; closing goes on.
    }
    this.closed = true;
    if (this.durabilityTimer !== null) clearTimeout(this.durabilityTimer);
    this.durabilityTimer = null;
    await this.chain;
    await this.syncDirty().catch(() => {});
    for (const s of this.segments) {
      if (s.deleted) continue;
      s.deleted = true;
      await new Promise<void>((r) => close(s.fd, () => close(s.indexFd, () => r())));
    }
  }

  /** Closes and removes the stream's folder (the stream was deleted). */
  async destroy(): Promise<void> {
    this.batch = [];
    this.end = this.writtenEnd;
    await this.close();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

function byteLength(buffers: readonly Buffer[]): number {
  let n = 0;
  for (const b of buffers) n += b.length;
  return n;
}

/** Records that sit back to back in the same write buffer become one piece (fewer pieces for writev). */
function coalesce(chunks: readonly Buffer[], records: readonly number[]): Buffer[] {
  const out: Buffer[] = [];
  let chunk: Buffer | null = null;
  let start = 0;
  let end = 0;
  for (let i = 0; i < chunks.length; i++) {
    const c = chunks[i]!;
    const at = records[2 * i]!;
    const size = records[2 * i + 1]!;
    if (c === chunk && at === end) {
      end += size;
      continue;
    }
    if (chunk !== null) out.push(chunk.subarray(start, end));
    chunk = c;
    start = at;
    end = at + size;
  }
  if (chunk !== null) out.push(chunk.subarray(start, end));
  return out;
}
