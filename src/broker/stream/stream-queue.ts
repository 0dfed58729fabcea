// A stream (x-queue-type stream): an append-only log that any number of consumers read
// independently, each from its own position; consuming removes nothing. Retention (x-max-length-
// bytes, x-max-age) removes whole old segments. It plugs into the broker as a Queue subclass so
// that routing, bindings, listings and deletion work unchanged; the parts that differ are here:
//
//   - publish appends to the log (src/store/stream-log.ts); the confirm waits for the log's sync,
//     which the persistence layer runs with every commit (SyncSource);
//   - each delivery carries x-stream-offset (put into the stored properties at append time, so every
//     reader sends the same bytes with no per-delivery work);
//   - the dispatcher calls deliverToReaders() instead of take(): each consumer (a StreamReader)
//     moves through the log at its own pace, limited by its prefetch. Recent records are served
//     from a bounded in-memory tail cache, older ones are read from the segment files in blocks;
//   - consumer groups (Warren's extension): consumers sharing x-stream-consumer-name share a stored
//     position (the highest offset they acknowledged); with x-single-active-consumer only the
//     oldest of them receives, and the next one takes over from the group's position.

import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NotImplemented } from '../../protocol/errors.js';
import type { FieldTable } from '../../protocol/field-table.js';
import { StreamLog, decodeRecord, type LogCursor, type StreamRecord } from '../../store/stream-log.js';
import { Deque } from '../../util/deque.js';
import { LongHeaderSplice } from '../message-headers.js';
import { Message } from '../message.js';
import type { CommitWaiter, SyncSource } from '../persistence.js';
import type { Consumer } from '../queue/consumers.js';
import { EntryState, QueueEntry } from '../queue/entry.js';
import { EnqueueResult, Queue, type QueueHost } from '../queue/queue.js';
import type { QueueArguments } from '../queue/arguments.js';
import type { QueueType } from '../queue/queue-types.js';
import { STREAM_QUEUE_ARGUMENTS, parseStreamConsumeArguments, type OffsetSpec, type StreamArguments } from './stream-arguments.js';
import { parseAgeMs } from '../queue/known-arguments.js';

const OFFSET_HEADER = Buffer.from('x-stream-offset');
const FILTER_HEADER = 'x-stream-filter-value';
/** The tail cache keeps about this many bytes of recent records (plus any not yet written). */
export const TAIL_CACHE_BYTES = 8 * 1024 * 1024;
/** Bytes a reader reads from a segment file at a time. */
const READ_BLOCK_BYTES = 256 * 1024;
/** Deliveries (or filtered-out records) per reader per dispatcher run. */
const READER_BUDGET = 256;
/** Group positions are written this long after they change (and when the stream closes). */
const GROUP_SAVE_DELAY_MS = 500;

/** A message read back from the log: its routing fields are already in wire form. */
class StreamMessage extends Message {
  private readonly wireRouting: Buffer;
  constructor(record: StreamRecord) {
    super(record.exchange, record.routingKey, record.properties, record.body, record.timestamp);
    this.wireRouting = record.routingBytes;
  }
  override get routingBytes(): Buffer {
    return this.wireRouting;
  }
}

/**
 * A recent record in memory: where its bytes are in the log's write buffer. It is decoded, and its
 * message made, on first delivery; every reader then shares that message.
 */
class CachedRecord {
  private decoded: StreamRecord | null = null;
  private message: StreamMessage | null = null;
  constructor(
    readonly offset: number,
    readonly size: number,
    private readonly buffer: Buffer,
    private readonly at: number,
  ) {}
  get record(): StreamRecord {
    return (this.decoded ??= decodeRecord(this.buffer, this.at));
  }
  get delivery(): StreamMessage {
    return (this.message ??= new StreamMessage(this.record));
  }
}

/** Consumers sharing a name: their stored position and, with single-active-consumer, who receives. */
class ConsumerGroup {
  readonly members: StreamReader[] = [];
  constructor(
    readonly name: string,
    /** highest offset acknowledged by the group, undefined when none yet */
    public position: number | undefined,
  ) {}
}

class StreamReader {
  /** next offset to look at */
  nextOffset: number;
  readonly cursor: LogCursor;
  /** records read from a segment file and not yet looked at */
  private block: StreamRecord[] = [];
  private blockIndex = 0;

  constructor(
    readonly consumer: Consumer,
    start: number,
    readonly filter: ReadonlySet<string> | null,
    readonly matchUnfiltered: boolean,
    readonly group: ConsumerGroup | null,
    readonly singleActive: boolean,
  ) {
    this.nextOffset = start;
    this.cursor = { offset: start, segment: null, filePos: 0 };
  }

  /** Receives now: not a waiting member of a single-active group. */
  get active(): boolean {
    return !this.singleActive || this.group!.members.find((r) => r.singleActive) === this;
  }

  moveTo(offset: number): void {
    this.nextOffset = offset;
    this.cursor.offset = offset;
    this.cursor.segment = null;
    this.block = [];
    this.blockIndex = 0;
  }

  matches(record: StreamRecord): boolean {
    if (this.filter === null) return true;
    return record.filterValue === '' ? this.matchUnfiltered : this.filter.has(record.filterValue);
  }

  /** The record at nextOffset from the files (the caller checked it is not in the cache). */
  fromDisk(log: StreamLog): StreamRecord | undefined {
    const cached = this.block[this.blockIndex];
    if (cached !== undefined && cached.offset === this.nextOffset) {
      this.blockIndex++;
      return cached;
    }
    if (this.cursor.offset !== this.nextOffset) {
      this.cursor.offset = this.nextOffset;
      this.cursor.segment = null;
    }
    this.block = log.read(this.cursor, READ_BLOCK_BYTES);
    this.blockIndex = 0;
    const first = this.block[0];
    if (first === undefined) return undefined;
    // Retention may have moved the reader on past removed records.
    this.nextOffset = first.offset;
    this.blockIndex = 1;
    return first;
  }

  /** Bytes of the block read from the files that this reader still refers to. */
  get blockBytes(): number {
    const first = this.block[0];
    if (first === undefined) return 0;
    return first.body.buffer === this.block[this.block.length - 1]!.body.buffer ? first.body.buffer.byteLength : 0;
  }

  /** Forgets the read block (memory) once the reader is served from the cache. */
  dropBlock(): void {
    if (this.block.length > 0) {
      this.block = [];
      this.blockIndex = 0;
    }
  }
}

/** A delivery from a stream remembers its reader, for the group's position on ack. */
class StreamEntry extends QueueEntry {
  constructor(
    queue: Queue,
    message: Message,
    offset: number,
    readonly reader: StreamReader,
  ) {
    super(queue, message, offset, 0, 0);
    this.state = EntryState.Unacked;
  }
}

/** The lower of two optional limits. */
function lower(a: number | undefined, b: number | undefined): number | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return Math.min(a, b);
}

export class StreamQueue extends Queue implements SyncSource {
  readonly streamOptions: StreamArguments;
  private logInstance: StreamLog | null = null;
  private readonly cache = new Deque<CachedRecord>(1024);
  private cacheBytes = 0;
  private readonly readers = new Map<Consumer, StreamReader>();
  /** the same readers in a list, for round-robin delivery */
  private readonly readerList: StreamReader[] = [];
  private nextReader = 0;
  /** writes each appended message's properties with its x-stream-offset (reused) */
  private readonly offsetHeader = new LongHeaderSplice(OFFSET_HEADER);
  private readonly groups = new Map<string, ConsumerGroup>();
  private storedGroupPositions: Map<string, number> | null = null;
  private groupSaveTimer: NodeJS.Timeout | null = null;
  private retentionTimer: NodeJS.Timeout | null = null;

  constructor(
    host: QueueHost,
    name: string,
    args: FieldTable,
    parsed: StreamArguments,
    private readonly streamsDir: string,
  ) {
    super(host, name, { durable: true, exclusiveOwner: null, autoDelete: false, args, parsed: STREAM_QUEUE_ARGUMENTS });
    this.streamOptions = parsed;
  }

  override get type(): QueueType {
    return 'stream';
  }

  /** Classic settings do not apply to a stream (its retention comes from its own arguments). */
  override declaredOptions(): QueueArguments {
    return STREAM_QUEUE_ARGUMENTS;
  }

  /** A policy changed: classic settings do not apply; retention (max-age, max-length-bytes) does, now. */
  override applyOptions(): void {
    if (this.logInstance === null || this.deleted) return;
    this.armRetentionTimer();
    this.applyRetention();
  }

  /** The log, opened (and recovered) on first use: the queue's store id names its folder. */
  private get log(): StreamLog {
    if (this.logInstance !== null) return this.logInstance;
    const id = this.host.persistence.ensureQueueId(this);
    // Without a store (embedded brokers with transient persistence) a stream lives in a temporary folder.
    const dir = id !== 0 ? join(this.streamsDir, String(id)) : mkdtempSync(join(tmpdir(), 'warren-stream-'));
    const log = new StreamLog(dir, this.effectiveSettings().maxSegmentBytes, this.host.log);
    log.onWritten = () => {
      // Segments can only go once written: retention looks again after every write.
      this.applyRetention();
      if (this.readers.size > 0) this.host.queueReady(this);
    };
    this.logInstance = log;
    this.host.persistence.addSyncSource(this);
    this.armRetentionTimer();
    this.applyRetention();
    return log;
  }

  /**
   * Retention and segment size: the stream's arguments combined with its policy, as RabbitMQ
   * combines them for streams (the lower of the two; the segment size counts when the stream's
   * files are opened).
   */
  private effectiveSettings(): StreamArguments {
    const def = this.appliedPolicy.definition;
    const age = typeof def['max-age'] === 'string' ? parseAgeMs(def['max-age']) : undefined;
    const bytes = def['max-length-bytes'];
    const segment = def['stream-max-segment-size-bytes'];
    const own = this.streamOptions;
    return {
      maxAgeMs: lower(own.maxAgeMs, age),
      maxLengthBytes: lower(own.maxLengthBytes, typeof bytes === 'number' ? bytes : undefined),
      maxSegmentBytes: this.args['x-stream-max-segment-size-bytes'] === undefined && typeof segment === 'number' ? segment : own.maxSegmentBytes,
    };
  }

  /** Age retention also runs on a timer, so an idle stream's old segments go too. */
  private armRetentionTimer(): void {
    if (this.retentionTimer !== null) clearInterval(this.retentionTimer);
    this.retentionTimer = null;
    const { maxAgeMs } = this.effectiveSettings();
    if (maxAgeMs === undefined || this.deleted) return;
    this.retentionTimer = setInterval(this.applyRetention, Math.min(60_000, Math.max(1000, Math.floor(maxAgeMs / 2))));
    this.retentionTimer.unref();
  }

  /** Stored messages (RabbitMQ reports a stream's length the same way). */
  override get messageCount(): number {
    return this.deleted ? 0 : this.log.messageCount;
  }

  /**
   * A stream keeps its messages whatever its readers do, so flow control measures only what is
   * not written to the segment files yet: publishers wait when the disk falls behind.
   */
  override get flowBacklog(): number {
    return this.logInstance === null ? 0 : this.logInstance.nextOffset - this.logInstance.readableEnd;
  }

  override get messageBytes(): number {
    return this.deleted ? 0 : this.log.sizeBytes;
  }

  /** Bytes of recent records held in memory (bounded by TAIL_CACHE_BYTES plus what is not written yet). */
  get tailCacheBytes(): number {
    return this.cacheBytes;
  }

  /** The largest block a reader holds from the segment files (each is at most one read). */
  get largestReaderBlockBytes(): number {
    let max = 0;
    for (const r of this.readers.values()) max = Math.max(max, r.blockBytes);
    return max;
  }

  /** First and next offset, and segment count (listings). */
  get firstOffset(): number {
    return this.log.firstOffset;
  }

  get nextOffset(): number {
    return this.log.nextOffset;
  }

  get segmentCount(): number {
    return this.log.segmentCount;
  }

  // ---- Publishing ---------------------------------------------------------------------------------

  override enqueue(message: Message, now: number): EnqueueResult {
    const log = this.log;
    if (log.failed !== null) return EnqueueResult.Rejected;
    let filterValue = '';
    if (message.hasHeaders) {
      const v = message.headers?.[FILTER_HEADER];
      if (typeof v === 'string') filterValue = v;
    }
    const splice = this.offsetHeader;
    splice.prepare(message.rawProperties, log.nextOffset);
    const offset = log.append(now, filterValue, message.exchange, message.routingKey, splice, message.body);
    this.cache.push(new CachedRecord(offset, log.lastRecordSize, log.lastBuffer, log.lastAt));
    this.cacheBytes += log.lastRecordSize;
    this.trimCache();
    this.publishedTotal++;
    if (this.readers.size > 0) this.host.queueReady(this);
    return EnqueueResult.AcceptedPendingCommit;
  }

  /** Keeps the tail cache within its budget; records not yet written always stay. */
  private trimCache(): void {
    const written = this.log.readableEnd;
    while (this.cacheBytes > TAIL_CACHE_BYTES) {
      const head = this.cache.peek();
      if (head === undefined || head.offset >= written) return;
      this.cache.shift();
      this.cacheBytes -= head.size;
    }
  }

  private readonly applyRetention = (): void => {
    const log = this.logInstance;
    if (log === null || this.deleted) return;
    const { maxLengthBytes, maxAgeMs } = this.effectiveSettings();
    if (maxLengthBytes === undefined && maxAgeMs === undefined) return;
    try {
      if (log.applyRetention(maxLengthBytes, maxAgeMs, Date.now()) === 0) return;
      // Cached records older than the stream's new start go too.
      const first = log.firstOffset;
      for (;;) {
        const head = this.cache.peek();
        if (head === undefined || head.offset >= first) break;
        this.cache.shift();
        this.cacheBytes -= head.size;
      }
    } catch (err) {
      this.host.log.error({ err, queue: this.name, vhost: this.host.name }, 'stream retention failed');
    }
  };

  // ---- SyncSource -------------------------------------------------------------------------------

  sync(): PromiseLike<unknown> | null {
    return this.logInstance?.sync() ?? null;
  }

  async close(): Promise<void> {
    this.stopTimers();
    if (this.logInstance === null) return;
    if (this.groupSaveTimer !== null || this.groups.size > 0) await this.saveGroups().catch(() => {});
    await this.logInstance.close();
  }

  // ---- Consumers ----------------------------------------------------------------------------------

  override addConsumer(consumer: Consumer): void {
    const log = this.log;
    const args = parseStreamConsumeArguments(consumer.args, this.name, this.host.name, Date.now());
    const group = args.name === undefined ? null : this.groupNamed(args.name);
    let start: number;
    if (args.offset === undefined && group !== null && group.position !== undefined) start = group.position + 1;
    else start = this.startOffset(args.offset ?? { kind: 'next' }, log);
    const reader = new StreamReader(consumer, start, args.filter, args.matchUnfiltered, group, args.singleActive);
    group?.members.push(reader);
    this.readers.set(consumer, reader);
    this.readerList.push(reader);
    super.addConsumer(consumer);
  }

  private startOffset(spec: OffsetSpec, log: StreamLog): number {
    switch (spec.kind) {
      case 'first':
        return log.firstOffset;
      case 'next':
        return log.nextOffset;
      case 'last':
        // The last message (RabbitMQ starts at its last chunk of messages; Warren's chunks are single messages).
        return Math.max(log.firstOffset, log.nextOffset - 1);
      case 'offset':
        // An offset not written yet is waited for (as RabbitMQ): the reader starts when it arrives.
        return Math.max(spec.offset, log.firstOffset);
      case 'timestamp':
        return this.offsetAtTime(spec.ms, log);
    }
  }

  /** First record published at or after ms, looking at the cache first (not yet written records). */
  private offsetAtTime(ms: number, log: StreamLog): number {
    const fromDisk = log.offsetAtTime(ms);
    if (fromDisk < log.readableEnd) return fromDisk;
    for (let i = 0; i < this.cache.length; i++) {
      const c = this.cache.at(i)!;
      if (c.offset >= log.readableEnd && c.record.timestamp >= ms) return c.offset;
    }
    return log.nextOffset;
  }

  private groupNamed(name: string): ConsumerGroup {
    let group = this.groups.get(name);
    if (group === undefined) {
      this.storedGroupPositions ??= this.log.loadGroupOffsets();
      group = new ConsumerGroup(name, this.storedGroupPositions.get(name));
      this.groups.set(name, group);
    }
    return group;
  }

  override removeConsumer(consumer: Consumer): boolean {
    const reader = this.readers.get(consumer);
    if (reader !== undefined) {
      this.readers.delete(consumer);
      this.readerList.splice(this.readerList.indexOf(reader), 1);
      const group = reader.group;
      if (group !== null) {
        const wasActive = reader.singleActive && reader.active;
        group.members.splice(group.members.indexOf(reader), 1);
        // The next waiting consumer takes over where the group got to.
        if (wasActive) {
          const next = group.members.find((r) => r.singleActive);
          if (next !== undefined && group.position !== undefined) next.moveTo(Math.max(group.position + 1, this.log.firstOffset));
        }
      }
    }
    return super.removeConsumer(consumer);
  }

  /** basic.get is refused by the channel for streams; nothing is ever taken from a stream. */
  override take(): QueueEntry | undefined {
    return undefined;
  }

  /** Delivers to every reader that has room, each from its own position. True when work is left. */
  deliverToReaders(budget: number): boolean {
    const list = this.readerList;
    const n = list.length;
    if (this.deleted || n === 0) return false;
    const log = this.log;
    let more = false;
    // Round-robin from where the last run stopped, so that no reader waits behind busier ones.
    const start = this.nextReader % n;
    for (let k = 0; k < n; k++) {
      const i = (start + k) % n;
      if (budget <= 0) {
        this.nextReader = i;
        return true;
      }
      const reader = list[i]!;
      if (!reader.active) continue;
      const used = this.serve(reader, log, Math.min(budget, READER_BUDGET));
      budget -= used;
      if (used === READER_BUDGET && reader.nextOffset < log.nextOffset) more = true;
    }
    this.nextReader = start + 1;
    return more;
  }

  /** Delivers to one reader up to its room or the budget; returns the budget used. */
  private serve(reader: StreamReader, log: StreamLog, budget: number): number {
    const consumer = reader.consumer;
    const cache = this.cache;
    let used = 0;
    while (used < budget && reader.nextOffset < log.nextOffset && consumer.canReceive()) {
      if (reader.nextOffset < log.firstOffset) reader.moveTo(log.firstOffset);
      // Recent records come from the tail cache (one message object shared by every reader), older
      // ones from the segment files.
      const head = cache.peek();
      let cached: CachedRecord | undefined;
      let record: StreamRecord | undefined;
      if (head !== undefined && reader.nextOffset >= head.offset) {
        reader.dropBlock();
        cached = cache.at(reader.nextOffset - head.offset);
        record = cached?.record;
      } else record = reader.fromDisk(log);
      if (record === undefined) break;
      used++;
      reader.nextOffset = record.offset + 1;
      if (!reader.matches(record)) continue;
      const message = cached !== undefined ? cached.delivery : new StreamMessage(record);
      const entry = new StreamEntry(this, message, record.offset, reader);
      this.unackedCount++;
      this.deliveredTotal++;
      consumer.channel.deliver(consumer, entry);
    }
    return used;
  }

  // ---- Acknowledgements ---------------------------------------------------------------------------

  /** An ack: the message stays in the stream; the consumer has room again and its group moves on. */
  override settle(entry: QueueEntry, byAck = true): void {
    if (entry.state !== EntryState.Unacked) return;
    entry.state = EntryState.Done;
    this.unackedCount--;
    if (byAck) this.ackedTotal++;
    const group = (entry as StreamEntry).reader.group;
    if (group !== null && (group.position === undefined || entry.seq > group.position)) {
      group.position = entry.seq;
      this.scheduleGroupSave();
    }
    this.host.queueReady(this);
  }

  /** A consumer went away (or basic.recover): stream messages are not requeued; its reader is gone. */
  override requeue(entry: QueueEntry): void {
    if (entry.state !== EntryState.Unacked) return;
    entry.state = EntryState.Done;
    this.unackedCount--;
  }

  override rejectWithoutRequeue(entry: QueueEntry): void {
    this.requeue(entry);
  }

  override purge(): number {
    throw new NotImplemented(`queue.purge not supported by stream queues queue '${this.name}' in vhost '${this.host.name}'`);
  }

  private scheduleGroupSave(): void {
    if (this.groupSaveTimer !== null) return;
    this.groupSaveTimer = setTimeout(() => {
      this.groupSaveTimer = null;
      this.saveGroups().catch((err: unknown) => this.host.log.warn({ err, queue: this.name }, 'storing stream consumer group positions failed'));
    }, GROUP_SAVE_DELAY_MS);
    this.groupSaveTimer.unref();
  }

  private saveGroups(): Promise<void> {
    const positions = new Map(this.storedGroupPositions ?? []);
    for (const g of this.groups.values()) if (g.position !== undefined) positions.set(g.name, g.position);
    this.storedGroupPositions = positions;
    return this.log.saveGroupOffsets(positions);
  }

  // ---- Deletion ---------------------------------------------------------------------------------

  private stopTimers(): void {
    if (this.groupSaveTimer !== null) clearTimeout(this.groupSaveTimer);
    this.groupSaveTimer = null;
    if (this.retentionTimer !== null) clearInterval(this.retentionTimer);
    this.retentionTimer = null;
  }

  /** Deleted: its files go once the store has committed the deletion (a crash before keeps them). */
  override destroy(): void {
    super.destroy();
    this.stopTimers();
    this.readers.clear();
    this.readerList.length = 0;
    this.cache.clear();
    this.cacheBytes = 0;
    const log = this.logInstance;
    if (log === null) return;
    const persistence = this.host.persistence;
    persistence.removeSyncSource(this);
    const remove = (): void => {
      log.destroy().catch((err: unknown) => this.host.log.warn({ err, dir: log.dir }, 'removing a deleted stream folder failed'));
    };
    const waiter: CommitWaiter = { onCommitted: remove, onCommitFailed: remove };
    persistence.afterCommit(waiter);
  }
}
