// Broker-level totals that never go backwards: messages received, routed, delivered, confirmed,
// dead-lettered, and how many connections, channels and queues came and went. The hot path bumps
// plain numbers here (no objects, no calls into the metrics library); the Prometheus collectors read
// them at scrape time. Deleting a queue or closing a connection never lowers them, unlike sums over
// live objects (RabbitMQ 3.10's aggregated channel counters drop when channels close).

import type { DeadLetterReason } from './queue/queue.js';
import type { QueueType } from './queue/queue-types.js';

/**
 * Upper bounds (bytes) of RabbitMQ 4.1's `rabbitmq_message_size_bytes` histogram buckets; the last
 * bucket (+Inf) is implicit.
 */
/** Seconds: publisher-confirm latency and store commit time (sub-millisecond to seconds). */
export const LATENCY_BUCKETS: readonly number[] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
/** Entries written per store commit. */
export const BATCH_SIZE_BUCKETS: readonly number[] = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10_000];

export const MESSAGE_SIZE_BUCKETS: readonly number[] = [100, 1000, 10_000, 100_000, 1_000_000, 10_000_000, 50_000_000, 100_000_000];

/**
 * A histogram kept as plain numbers: per-bucket counts (not cumulative; the exposition adds them
 * up), the sum and the count. observe() is a handful of comparisons and increments.
 */
export class PlainHistogram {
  /** counts[i] = observations ≤ bounds[i] and > bounds[i-1]; the last slot is +Inf */
  readonly counts: number[];
  sum = 0;
  count = 0;

  constructor(readonly bounds: readonly number[]) {
    this.counts = new Array<number>(bounds.length + 1).fill(0);
  }

  /** `times` observations of the same value (a run of messages confirmed together). */
  observe(value: number, times = 1): void {
    const bounds = this.bounds;
    let i = 0;
    while (i < bounds.length && value > bounds[i]!) i++;
    this.counts[i]! += times;
    this.sum += value * times;
    this.count += times;
  }

  /** Cumulative counts, one per bound plus +Inf, as the exposition format wants them. */
  cumulative(): number[] {
    const out = new Array<number>(this.counts.length);
    let running = 0;
    for (let i = 0; i < this.counts.length; i++) {
      running += this.counts[i]!;
      out[i] = running;
    }
    return out;
  }
}

/** Messages that left a queue without being acknowledged, by reason and by whether a DLX took them. */
export class DeadLetterCounts {
  /** reason → with a dead-letter exchange configured (RabbitMQ's at_most_once strategy) */
  readonly toExchange = { expired: 0, rejected: 0, maxlen: 0, delivery_limit: 0 };
  /** reason → dropped because the queue has no dead-letter exchange (strategy "disabled") */
  readonly dropped = { expired: 0, rejected: 0, maxlen: 0, delivery_limit: 0 };

  count(reason: DeadLetterReason, hasDeadLetterExchange: boolean): void {
    if (hasDeadLetterExchange) this.toExchange[reason]++;
    else this.dropped[reason]++;
  }
}

/**
 * What consumers did with messages of one queue type (RabbitMQ labels these global counters with
 * queue_type). The channel bumps the set of the queue it delivers from, through its per-queue
 * counters (ChannelQueueCounters.totals): one increment per message, as before the split.
 */
export class QueueTypeTotals {
  deliveredConsumeAutoAck = 0;
  deliveredConsumeManualAck = 0;
  deliveredGetAutoAck = 0;
  deliveredGetManualAck = 0;
  getEmpty = 0;
  redelivered = 0;
  /** messages acknowledged by consumers (basic.ack) */
  acknowledged = 0;
  readonly deadLettered = new DeadLetterCounts();

  get delivered(): number {
    return this.deliveredConsumeAutoAck + this.deliveredConsumeManualAck + this.deliveredGetAutoAck + this.deliveredGetManualAck;
  }
}

export const QUEUE_TYPES: readonly QueueType[] = ['classic', 'quorum', 'stream'];
export const DEAD_LETTER_REASONS: readonly DeadLetterReason[] = ['expired', 'rejected', 'maxlen', 'delivery_limit'];

export class BrokerStats {
  readonly startedAt = Date.now();

  // ---- messages (AMQP 0-9-1 is the only protocol) ------------------------------------------------
  /** basic.publish accepted from clients */
  messagesReceived = 0;
  /** ... of which on channels in confirm mode */
  messagesReceivedConfirm = 0;
  /** published messages that reached at least one queue (or a delayed exchange, or a reply-to) */
  messagesRouted = 0;
  /** basic.ack sent to publishers, counted per message */
  messagesConfirmed = 0;
  unroutableDropped = 0;
  unroutableReturned = 0;
  /** deliveries, gets, acks and dead-lettering by the type of queue they concern */
  readonly byQueueType: Readonly<Record<QueueType, QueueTypeTotals>> = {
    classic: new QueueTypeTotals(),
    quorum: new QueueTypeTotals(),
    stream: new QueueTypeTotals(),
  };

  /** The counters of one queue type (a queue's own type: queue.type). */
  forQueueType(type: QueueType): QueueTypeTotals {
    return this.byQueueType[type];
  }

  private sum(read: (t: QueueTypeTotals) => number): number {
    const t = this.byQueueType;
    return read(t.classic) + read(t.quorum) + read(t.stream);
  }

  get deliveredConsumeAutoAck(): number {
    return this.sum((t) => t.deliveredConsumeAutoAck);
  }
  get deliveredConsumeManualAck(): number {
    return this.sum((t) => t.deliveredConsumeManualAck);
  }
  get deliveredGetAutoAck(): number {
    return this.sum((t) => t.deliveredGetAutoAck);
  }
  get deliveredGetManualAck(): number {
    return this.sum((t) => t.deliveredGetManualAck);
  }
  get getEmpty(): number {
    return this.sum((t) => t.getEmpty);
  }
  get redelivered(): number {
    return this.sum((t) => t.redelivered);
  }
  /** messages acknowledged by consumers (basic.ack) */
  get acknowledged(): number {
    return this.sum((t) => t.acknowledged);
  }
  /** dead-lettering of every queue type together (read at scrape time) */
  get deadLettered(): DeadLetterCounts {
    const all = new DeadLetterCounts();
    for (const type of QUEUE_TYPES) {
      const t = this.byQueueType[type].deadLettered;
      for (const reason of DEAD_LETTER_REASONS) {
        all.toExchange[reason] += t.toExchange[reason];
        all.dropped[reason] += t.dropped[reason];
      }
    }
    return all;
  }
  readonly messageSizes = new PlainHistogram(MESSAGE_SIZE_BUCKETS);
  /** from basic.publish arriving to its basic.ack leaving, seconds (Warren-only) */
  readonly confirmLatency = new PlainHistogram(LATENCY_BUCKETS);
  /** store batches: time from handing the batch to LMDB to its commit, and entries in it */
  readonly storeCommitSeconds = new PlainHistogram(LATENCY_BUCKETS);
  readonly storeCommitEntries = new PlainHistogram(BATCH_SIZE_BUCKETS);

  // ---- churn -------------------------------------------------------------------------------------
  /** connections that completed the handshake */
  connectionsOpened = 0;
  /** ... and later closed, whichever way */
  connectionsClosed = 0;
  channelsOpened = 0;
  channelsClosed = 0;
  /** successful non-passive queue.declare, new or existing */
  queuesDeclared = 0;
  queuesCreated = 0;
  queuesDeleted = 0;

  // ---- totals of objects that are gone (live ones are added at scrape time) ----------------------
  /** bytes and socket reads/writes of connections already closed */
  closedConnectionBytesIn = 0;
  closedConnectionBytesOut = 0;
  closedConnectionReads = 0;
  closedConnectionWrites = 0;
  /** per-queue counters of queues already deleted */
  deletedQueuesPublished = 0;
  deletedQueuesDiskReads = 0;
  deletedQueuesDiskWrites = 0;

  get messagesDelivered(): number {
    return this.deliveredConsumeAutoAck + this.deliveredConsumeManualAck + this.deliveredGetAutoAck + this.deliveredGetManualAck;
  }
}

/**
 * What a vhost's closed channels and connections and deleted queues had counted: its management
 * message_stats and byte counts add these to the live objects' counts, so they never drop when
 * those objects go (as RabbitMQ's vhost statistics).
 */
export class VhostRetiredTotals {
  publish = 0;
  deliverGet = 0;
  ack = 0;
  redeliver = 0;
  recvOct = 0;
  sendOct = 0;
}

/** One channel's counters for one exchange it published to (RabbitMQ's channel_exchange_metrics). */
export class ChannelExchangeCounters {
  published = 0;
  confirmed = 0;
  unroutableReturned = 0;
  unroutableDropped = 0;
  constructor(readonly exchange: { readonly name: string; readonly deleted: boolean }) {}
}

/** One channel's counters for one queue it consumed or got from (RabbitMQ's channel_queue_metrics). */
export class ChannelQueueCounters {
  deliveredAutoAck = 0;
  deliveredManualAck = 0;
  getAutoAck = 0;
  getManualAck = 0;
  getEmpty = 0;
  redelivered = 0;
  acked = 0;
  constructor(
    readonly queue: { readonly name: string; readonly deleted: boolean },
    /** the broker-level counters of this queue's type, bumped alongside these */
    readonly totals: QueueTypeTotals,
  ) {}
}

/** Entries kept before deleted objects are pruned from a channel's per-object counters. */
const PRUNE_ABOVE = 64;

/**
 * Per-object counters of one channel, keyed by the exchange or queue object. The last one used is
 * cached, so a channel that keeps publishing to one exchange (or consuming one queue) pays a pointer
 * comparison per message. Entries for deleted objects are dropped once there are many, so a
 * long-lived channel used for short-lived queues stays bounded.
 */
export class ChannelObjectCounters<K extends { readonly deleted: boolean }, C> {
  private readonly byObject = new Map<K, C>();
  private lastKey: K | null = null;
  private lastCounters: C | null = null;

  constructor(private readonly create: (key: K) => C) {}

  for(key: K): C {
    if (key === this.lastKey) return this.lastCounters!;
    let counters = this.byObject.get(key);
    if (counters === undefined) {
      if (this.byObject.size >= PRUNE_ABOVE) this.pruneDeleted();
      counters = this.create(key);
      this.byObject.set(key, counters);
    }
    this.lastKey = key;
    this.lastCounters = counters;
    return counters;
  }

  /** Counters of objects that still exist (deleted ones are dropped on the way). */
  *live(): IterableIterator<C> {
    for (const [key, counters] of this.byObject) {
      if (key.deleted) this.forget(key);
      else yield counters;
    }
  }

  private pruneDeleted(): void {
    for (const key of this.byObject.keys()) if (key.deleted) this.forget(key);
  }

  private forget(key: K): void {
    this.byObject.delete(key);
    if (this.lastKey === key) {
      this.lastKey = null;
      this.lastCounters = null;
    }
  }
}
