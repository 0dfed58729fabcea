// What one scrape reads: rows for the per-object families (queues, channels, connections and the
// channels' per-exchange / per-queue counters), each with its labels rendered once, and totals over
// live objects for the aggregated endpoint. Built lazily, once per scrape, from the live model;
// gauges are therefore exact under churn (nothing is incremented and decremented by hand).

import type { Broker } from '../broker/broker.js';
import type { Queue } from '../broker/queue/queue.js';
import { unackedOf } from '../broker/queue-figures.js';
import type { ChannelExchangeCounters, ChannelQueueCounters } from '../broker/stats.js';
import type { Channel } from '../connection/channel.js';
import type { Connection } from '../connection/connection.js';
import { labelPairs, type ExpositionWriter, type Row } from './exposition.js';

/** RabbitMQ labels channels and connections with Erlang pids; Warren's are pid-shaped too. */
export function channelLabel(connectionId: number, channelId: number): string {
  return `<0.${connectionId}.${channelId}>`;
}

export interface QueueTotals {
  ready: number;
  unacked: number;
  readyBytes: number;
  unackedBytes: number;
  /** ready + unacked messages held in memory (classic and quorum queues) */
  ramCount: number;
  ramBytes: number;
  /** of classic queues: ready and unacked messages in memory */
  readyInMemory: number;
  unackedInMemory: number;
  pagedOut: number;
  pagedOutBytes: number;
  persistent: number;
  persistentBytes: number;
  consumers: number;
  published: number;
  diskReads: number;
  diskWrites: number;
  /** age of the oldest head message across queues, seconds (NaN when every queue is empty) */
  oldestHeadAgeSec: number;
}

export interface ChannelTotals {
  channels: number;
  consumers: number;
  publishers: number;
  unacked: number;
  unconfirmed: number;
  uncommittedMessages: number;
  uncommittedAcks: number;
  consumerPrefetch: number;
  channelPrefetch: number;
}

export interface ConnectionTotals {
  open: number;
  bytesIn: number;
  bytesOut: number;
  reads: number;
  writes: number;
  pendingWrites: number;
}

/** Live connections as the metrics see them (the AMQP server's registry). */
export interface ConnectionSource {
  readonly connections: ReadonlySet<Connection>;
}

export class Snapshot {
  readonly now = Date.now();
  private queues: Row<Queue>[] | null = null;
  /** queue rows without streams, and classic ones only (families RabbitMQ has for those types) */
  private nonStreamQueues: Row<Queue>[] | null = null;
  private classicQueues: Row<Queue>[] | null = null;
  private channels: Row<Channel>[] | null = null;
  private connections: Row<Connection>[] | null = null;
  private channelExchanges: Row<ChannelExchangeCounters>[] | null = null;
  private channelQueues: Row<ChannelQueueCounters>[] | null = null;
  private queueSums: QueueTotals | null = null;
  private channelSums: ChannelTotals | null = null;
  private connectionSums: ConnectionTotals | null = null;

  constructor(
    readonly broker: Broker,
    private readonly source: ConnectionSource,
    /** only objects of these virtual hosts (detailed endpoint's ?vhost=); null = all */
    private readonly vhosts: ReadonlySet<string> | null = null,
  ) {}

  private wanted(vhost: string | undefined): boolean {
    return this.vhosts === null || (vhost !== undefined && this.vhosts.has(vhost));
  }

  /** Connections that completed the handshake. */
  private *openConnections(): IterableIterator<Connection> {
    for (const c of this.source.connections) if (c.isOpen && this.wanted(c.vhost?.name)) yield c;
  }

  queueRows(): readonly Row<Queue>[] {
    if (this.queues !== null) return this.queues;
    const rows: Row<Queue>[] = [];
    for (const vhost of this.broker.vhosts.values()) {
      if (!this.wanted(vhost.name)) continue;
      for (const queue of vhost.queues.values()) rows.push(queueRow(vhost.name, queue));
    }
    this.queues = rows;
    return rows;
  }

  /**
   * Builds the queue rows ahead of a per-object scrape in slices, yielding between them: with tens
   * of thousands of queues, rendering their labels at once would hold the event loop. Queues are
   * taken from a copy of the list, so ones deleted meanwhile simply show their last values.
   */
  async prepareQueueRows(w: ExpositionWriter): Promise<void> {
    if (this.queues !== null) return;
    const rows: Row<Queue>[] = [];
    for (const vhost of this.broker.vhosts.values()) {
      if (!this.wanted(vhost.name)) continue;
      const queues = [...vhost.queues.values()];
      for (let i = 0; i < queues.length; i++) {
        rows.push(queueRow(vhost.name, queues[i]!));
        if ((i & 63) === 63 && w.sliceUsed) await w.yield();
      }
    }
    this.queues = rows;
  }

  /** Rows of classic queues and quorum queues (RabbitMQ exports byte and memory figures for those). */
  queueRowsWithoutStreams(): readonly Row<Queue>[] {
    return (this.nonStreamQueues ??= this.queueRows().filter((r) => r.item.type !== 'stream'));
  }

  /** Rows of classic queues (paging, disk and head-timestamp families are theirs alone in RabbitMQ). */
  classicQueueRows(): readonly Row<Queue>[] {
    return (this.classicQueues ??= this.queueRows().filter((r) => r.item.type === 'classic'));
  }

  connectionRows(): readonly Row<Connection>[] {
    if (this.connections !== null) return this.connections;
    const rows: Row<Connection>[] = [];
    // As RabbitMQ: connection rows carry the connection's pid under the label "channel".
    for (const c of this.openConnections()) rows.push({ labels: labelPairs([['channel', channelLabel(c.id, 0)]]), item: c });
    this.connections = rows;
    return rows;
  }

  channelRows(): readonly Row<Channel>[] {
    if (this.channels !== null) return this.channels;
    const rows: Row<Channel>[] = [];
    for (const c of this.openConnections()) {
      for (const ch of c.channels.values()) {
        if (ch.isReleased) continue;
        rows.push({ labels: labelPairs([['channel', channelLabel(c.id, ch.id)]]), item: ch });
      }
    }
    this.channels = rows;
    return rows;
  }

  channelExchangeRows(): readonly Row<ChannelExchangeCounters>[] {
    if (this.channelExchanges !== null) return this.channelExchanges;
    const rows: Row<ChannelExchangeCounters>[] = [];
    for (const { item: ch } of this.channelRows()) {
      const vhost = ch.connection.vhost?.name ?? '';
      const pid = channelLabel(ch.connection.id, ch.id);
      for (const counters of ch.exchangeCounters.live()) {
        rows.push({ labels: labelPairs([['channel', pid], ['vhost', vhost], ['exchange', counters.exchange.name]]), item: counters });
      }
    }
    this.channelExchanges = rows;
    return rows;
  }

  channelQueueRows(): readonly Row<ChannelQueueCounters>[] {
    if (this.channelQueues !== null) return this.channelQueues;
    const rows: Row<ChannelQueueCounters>[] = [];
    for (const { item: ch } of this.channelRows()) {
      const vhost = ch.connection.vhost?.name ?? '';
      const pid = channelLabel(ch.connection.id, ch.id);
      for (const counters of ch.queueCounters.live()) {
        rows.push({ labels: labelPairs([['channel', pid], ['vhost', vhost], ['queue', counters.queue.name]]), item: counters });
      }
    }
    this.channelQueues = rows;
    return rows;
  }

  queueTotals(): QueueTotals {
    if (this.queueSums !== null) return this.queueSums;
    const stats = this.broker.stats;
    const t: QueueTotals = {
      ready: 0,
      unacked: 0,
      readyBytes: 0,
      unackedBytes: 0,
      ramCount: 0,
      ramBytes: 0,
      readyInMemory: 0,
      unackedInMemory: 0,
      pagedOut: 0,
      pagedOutBytes: 0,
      persistent: 0,
      persistentBytes: 0,
      consumers: 0,
      published: stats.deletedQueuesPublished,
      diskReads: stats.deletedQueuesDiskReads,
      diskWrites: stats.deletedQueuesDiskWrites,
      oldestHeadAgeSec: NaN,
    };
    let oldest = Infinity;
    for (const vhost of this.broker.vhosts.values()) {
      for (const q of vhost.queues.values()) {
        // The same figures the per-object families show for each queue type (sums of them).
        t.ready += q.messageCount;
        t.unacked += unackedOf(q);
        t.consumers += q.consumerCount;
        t.published += q.publishedTotal;
        if (q.type === 'stream') continue;
        t.readyBytes += q.messageBytes;
        t.unackedBytes += q.unackedBytes;
        t.persistent += persistentCount(q);
        t.persistentBytes += persistentBytes(q);
        t.ramCount += q.ready.count + q.unackedCount;
        t.ramBytes += q.ready.bytes + q.unackedBytes;
        const head = headPublishedAt(q);
        if (head < oldest) oldest = head;
        if (q.type !== 'classic') continue;
        t.readyInMemory += q.ready.count;
        t.unackedInMemory += q.unackedCount;
        t.pagedOut += q.pagedOutCount;
        t.pagedOutBytes += q.messageBytes - q.ready.bytes;
        t.diskReads += q.diskReadsTotal;
        t.diskWrites += q.diskWritesTotal;
      }
    }
    if (oldest !== Infinity) t.oldestHeadAgeSec = Math.max(0, this.now - oldest) / 1000;
    this.queueSums = t;
    return t;
  }

  channelTotals(): ChannelTotals {
    if (this.channelSums !== null) return this.channelSums;
    const t: ChannelTotals = {
      channels: 0,
      consumers: 0,
      publishers: 0,
      unacked: 0,
      unconfirmed: 0,
      uncommittedMessages: 0,
      uncommittedAcks: 0,
      consumerPrefetch: 0,
      channelPrefetch: 0,
    };
    for (const { item: ch } of this.channelRows()) {
      t.channels++;
      t.consumers += ch.consumers.size;
      if (ch.publishedTotal > 0) t.publishers++;
      t.unacked += ch.unacked.size;
      t.unconfirmed += ch.unconfirmedCount;
      t.uncommittedMessages += ch.uncommittedMessages;
      t.uncommittedAcks += ch.uncommittedAcks;
      t.consumerPrefetch += ch.consumerPrefetchCount;
      t.channelPrefetch += ch.channelPrefetchCount;
    }
    this.channelSums = t;
    return t;
  }

  /** Live connections plus everything connections already closed had counted. */
  connectionTotals(): ConnectionTotals {
    if (this.connectionSums !== null) return this.connectionSums;
    const stats = this.broker.stats;
    const t: ConnectionTotals = {
      open: 0,
      bytesIn: stats.closedConnectionBytesIn,
      bytesOut: stats.closedConnectionBytesOut,
      reads: stats.closedConnectionReads,
      writes: stats.closedConnectionWrites,
      pendingWrites: 0,
    };
    for (const c of this.source.connections) {
      t.bytesIn += c.bytesRead;
      t.bytesOut += c.outbound.bytesWritten;
      t.reads += c.readsCount;
      t.writes += c.outbound.writesCount;
      if (c.isOpen) {
        t.open++;
        t.pendingWrites += c.socket.writableLength > 0 ? 1 : 0;
      }
    }
    this.connectionSums = t;
    return t;
  }
}

function queueRow(vhost: string, queue: Queue): Row<Queue> {
  return { labels: labelPairs([['vhost', vhost], ['queue', queue.name]]), item: queue };
}

/** When the message at the head of a queue was accepted (epoch ms), or Infinity when none is ready. */
export function headPublishedAt(queue: Queue): number {
  if (queue.ready.count === 0) return Infinity;
  const head = queue.ready.peek();
  return head === undefined ? Infinity : head.message.publishedAt;
}

/** Persistent messages the store holds for a queue (ready, unacked or paged out), all levels. */
export function persistentCount(queue: Queue): number {
  let n = 0;
  for (const c of queue.storedCounts) n += c.count;
  return n;
}

export function persistentBytes(queue: Queue): number {
  let n = 0;
  for (const c of queue.storedCounts) n += c.bytes;
  return n;
}
