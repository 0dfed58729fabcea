// The metric families of RabbitMQ's rabbitmq_prometheus plugin that Warren can answer truthfully,
// with RabbitMQ's names, types, HELP texts and labels (checked against a RabbitMQ 3.10 node and the
// plugin's metrics.md; rabbitmq_message_size_bytes and the rabbitmq_endpoint label are 4.1's).
// Families about the Erlang VM itself (reductions, schedulers, Erlang process memory) have no
// meaning here and are not exported; rabbitmq_erlang_uptime_seconds is kept because dashboards
// join on it.
//
// Per-object families are defined once (ObjectFamilySpec) and appear three ways: summed without
// labels on /metrics, one sample per object on /metrics/per-object, and as rabbitmq_detailed_* on
// /metrics/detailed when their group is asked for. Counters summed on /metrics come from broker
// totals that include deleted objects, so they never go backwards.

import { propertyTimestamp } from '../broker/message-timestamp.js';
import type { Queue } from '../broker/queue/queue.js';
import { QUEUE_TYPES, type ChannelExchangeCounters, type ChannelQueueCounters, type QueueTypeTotals } from '../broker/stats.js';
import type { DeadLetterReason } from '../broker/queue/queue.js';
import type { QueueType } from '../broker/queue/queue-types.js';
import type { Channel } from '../connection/channel.js';
import type { Connection } from '../connection/connection.js';
import { Family, RowFamily, ValueFamily, labelPairs, type MetricType, type Row, type Sample } from './exposition.js';
import { headPublishedAt, persistentBytes, persistentCount, type Snapshot } from './snapshot.js';
import { unackedOf } from '../broker/queue-figures.js';

/** The families /metrics/detailed can be asked for (RabbitMQ's names for them). */
export const DETAILED_GROUPS = [
  'queue_coarse_metrics',
  'queue_consumer_count',
  'queue_metrics',
  'channel_metrics',
  'channel_exchange_metrics',
  'channel_queue_metrics',
  'connection_coarse_metrics',
  'connection_metrics',
] as const;
export type DetailedGroup = (typeof DETAILED_GROUPS)[number];
/** Families that /metrics/detailed does not offer under any group. */
type NoGroup = 'none';

/** Scrape-time access for the families: the current snapshot. */
export interface ScrapeContext {
  snapshot(): Snapshot;
}

interface ObjectFamilySpec<T> {
  /** name without the rabbitmq_ / rabbitmq_detailed_ prefix */
  name: string;
  help: string;
  type: MetricType;
  group: DetailedGroup | NoGroup;
  rows: (s: Snapshot) => readonly Row<T>[];
  value: (item: T) => number;
  /** the unlabelled value on /metrics; null = the family is listed there without a sample (as RabbitMQ) */
  total: ((s: Snapshot) => number) | null;
  skipNaN?: boolean;
}

const queues = (s: Snapshot): readonly Row<Queue>[] => s.queueRows();
const nonStreamQueues = (s: Snapshot): readonly Row<Queue>[] => s.queueRowsWithoutStreams();
const classicQueues = (s: Snapshot): readonly Row<Queue>[] => s.classicQueueRows();
const channels = (s: Snapshot): readonly Row<Channel>[] => s.channelRows();
const connections = (s: Snapshot): readonly Row<Connection>[] => s.connectionRows();
const channelExchanges = (s: Snapshot): readonly Row<ChannelExchangeCounters>[] => s.channelExchangeRows();
const channelQueues = (s: Snapshot): readonly Row<ChannelQueueCounters>[] => s.channelQueueRows();

function spec<T>(s: ObjectFamilySpec<T>): ObjectFamilySpec<unknown> {
  return s as unknown as ObjectFamilySpec<unknown>;
}

/** The head message's timestamp property (seconds), NaN when the queue is empty or it has none. */
function headTimestamp(q: Queue): number {
  if (q.ready.count === 0) return NaN;
  const head = q.ready.peek();
  const ts = head === undefined ? null : propertyTimestamp(head.message.rawProperties);
  return ts === null ? NaN : ts;
}

const OBJECT_FAMILIES: readonly ObjectFamilySpec<unknown>[] = [
  // ---- queue_coarse_metrics / queue_consumer_count: every queue type ------------------------------
  spec({ name: 'queue_messages_ready', help: 'Messages ready to be delivered to consumers', type: 'gauge', group: 'queue_coarse_metrics', rows: queues, value: (q) => q.messageCount, total: (s) => s.queueTotals().ready }),
  spec({ name: 'queue_messages_unacked', help: 'Messages delivered to consumers but not yet acknowledged', type: 'gauge', group: 'queue_coarse_metrics', rows: queues, value: unackedOf, total: (s) => s.queueTotals().unacked }),
  spec({ name: 'queue_messages', help: 'Sum of ready and unacknowledged messages - total queue depth', type: 'gauge', group: 'queue_coarse_metrics', rows: queues, value: (q) => q.messageCount + unackedOf(q), total: (s) => s.queueTotals().ready + s.queueTotals().unacked }),
  spec({ name: 'queue_consumers', help: 'Consumers on a queue', type: 'gauge', group: 'queue_consumer_count', rows: queues, value: (q) => q.consumerCount, total: (s) => s.queueTotals().consumers }),
  // ---- queue_metrics: classic and quorum queues (RabbitMQ has none of these for streams) ------------
  spec({ name: 'queue_messages_ram', help: 'Ready and unacknowledged messages stored in memory', type: 'gauge', group: 'queue_metrics', rows: nonStreamQueues, value: (q) => q.ready.count + q.unackedCount, total: (s) => s.queueTotals().ramCount }),
  spec({ name: 'queue_messages_ram_bytes', help: 'Size of ready and unacknowledged messages stored in memory', type: 'gauge', group: 'queue_metrics', rows: nonStreamQueues, value: (q) => q.ready.bytes + q.unackedBytes, total: (s) => s.queueTotals().ramBytes }),
  spec({ name: 'queue_messages_persistent', help: 'Persistent messages', type: 'gauge', group: 'queue_metrics', rows: nonStreamQueues, value: persistentCount, total: (s) => s.queueTotals().persistent }),
  spec({ name: 'queue_messages_persistent_bytes', help: 'Size in bytes of persistent messages', type: 'gauge', group: 'queue_metrics', rows: nonStreamQueues, value: persistentBytes, total: (s) => s.queueTotals().persistentBytes }),
  spec({ name: 'queue_messages_bytes', help: 'Size in bytes of ready and unacknowledged messages', type: 'gauge', group: 'queue_metrics', rows: nonStreamQueues, value: (q) => q.messageBytes + q.unackedBytes, total: (s) => s.queueTotals().readyBytes + s.queueTotals().unackedBytes }),
  spec({ name: 'queue_messages_ready_bytes', help: 'Size in bytes of ready messages', type: 'gauge', group: 'queue_metrics', rows: nonStreamQueues, value: (q) => q.messageBytes, total: (s) => s.queueTotals().readyBytes }),
  spec({ name: 'queue_messages_unacked_bytes', help: 'Size in bytes of all unacknowledged messages', type: 'gauge', group: 'queue_metrics', rows: nonStreamQueues, value: (q) => q.unackedBytes, total: (s) => s.queueTotals().unackedBytes }),
  // ---- queue_metrics: classic queues only (as RabbitMQ) ------------------------------------------
  spec({ name: 'queue_messages_ready_ram', help: 'Ready messages stored in memory', type: 'gauge', group: 'queue_metrics', rows: classicQueues, value: (q) => q.ready.count, total: (s) => s.queueTotals().readyInMemory }),
  spec({ name: 'queue_messages_unacked_ram', help: 'Unacknowledged messages stored in memory', type: 'gauge', group: 'queue_metrics', rows: classicQueues, value: (q) => q.unackedCount, total: (s) => s.queueTotals().unackedInMemory }),
  spec({ name: 'queue_messages_paged_out', help: 'Messages paged out to disk', type: 'gauge', group: 'queue_metrics', rows: classicQueues, value: (q) => q.pagedOutCount, total: (s) => s.queueTotals().pagedOut }),
  spec({ name: 'queue_messages_paged_out_bytes', help: 'Size in bytes of messages paged out to disk', type: 'gauge', group: 'queue_metrics', rows: classicQueues, value: (q) => q.messageBytes - q.ready.bytes, total: (s) => s.queueTotals().pagedOutBytes }),
  spec({ name: 'queue_head_message_timestamp', help: 'Timestamp of the first message in the queue, if any', type: 'gauge', group: 'queue_metrics', rows: classicQueues, value: headTimestamp, total: null }),
  spec({ name: 'queue_disk_reads_total', help: 'Total number of times queue read messages from disk', type: 'counter', group: 'queue_metrics', rows: classicQueues, value: (q) => q.diskReadsTotal, total: (s) => s.queueTotals().diskReads }),
  spec({ name: 'queue_disk_writes_total', help: 'Total number of times queue wrote messages to disk', type: 'counter', group: 'queue_metrics', rows: classicQueues, value: (q) => q.diskWritesTotal, total: (s) => s.queueTotals().diskWrites }),
  // ---- channel_metrics ----------------------------------------------------------------------------
  spec({ name: 'channel_consumers', help: 'Consumers on a channel', type: 'gauge', group: 'channel_metrics', rows: channels, value: (c) => c.consumers.size, total: (s) => s.channelTotals().consumers }),
  spec({ name: 'channel_messages_unacked', help: 'Delivered but not yet acknowledged messages', type: 'gauge', group: 'channel_metrics', rows: channels, value: (c) => c.unacked.size, total: (s) => s.channelTotals().unacked }),
  spec({ name: 'channel_messages_unconfirmed', help: 'Published but not yet confirmed messages', type: 'gauge', group: 'channel_metrics', rows: channels, value: (c) => c.unconfirmedCount, total: (s) => s.channelTotals().unconfirmed }),
  spec({ name: 'channel_messages_uncommitted', help: 'Messages received in a transaction but not yet committed', type: 'gauge', group: 'channel_metrics', rows: channels, value: (c) => c.uncommittedMessages, total: (s) => s.channelTotals().uncommittedMessages }),
  spec({ name: 'channel_acks_uncommitted', help: 'Message acknowledgements in a transaction not yet committed', type: 'gauge', group: 'channel_metrics', rows: channels, value: (c) => c.uncommittedAcks, total: (s) => s.channelTotals().uncommittedAcks }),
  spec({ name: 'consumer_prefetch', help: 'Limit of unacknowledged messages for each consumer', type: 'gauge', group: 'channel_metrics', rows: channels, value: (c) => c.consumerPrefetchCount, total: (s) => s.channelTotals().consumerPrefetch }),
  spec({ name: 'channel_prefetch', help: 'Total limit of unacknowledged messages for all consumers on a channel', type: 'gauge', group: 'channel_metrics', rows: channels, value: (c) => c.channelPrefetchCount, total: (s) => s.channelTotals().channelPrefetch }),
  // ---- channel_exchange_metrics -------------------------------------------------------------------
  spec({ name: 'channel_messages_published_total', help: 'Total number of messages published into an exchange on a channel', type: 'counter', group: 'channel_exchange_metrics', rows: channelExchanges, value: (c) => c.published, total: (s) => s.broker.stats.messagesReceived }),
  spec({ name: 'channel_messages_confirmed_total', help: 'Total number of messages published into an exchange and confirmed on the channel', type: 'counter', group: 'channel_exchange_metrics', rows: channelExchanges, value: (c) => c.confirmed, total: (s) => s.broker.stats.messagesConfirmed }),
  spec({ name: 'channel_messages_unroutable_returned_total', help: 'Total number of messages published as mandatory into an exchange and returned to the publisher as unroutable', type: 'counter', group: 'channel_exchange_metrics', rows: channelExchanges, value: (c) => c.unroutableReturned, total: (s) => s.broker.stats.unroutableReturned }),
  spec({ name: 'channel_messages_unroutable_dropped_total', help: 'Total number of messages published as non-mandatory into an exchange and dropped as unroutable', type: 'counter', group: 'channel_exchange_metrics', rows: channelExchanges, value: (c) => c.unroutableDropped, total: (s) => s.broker.stats.unroutableDropped }),
  // ---- channel_queue_metrics ----------------------------------------------------------------------
  spec({ name: 'channel_get_ack_total', help: 'Total number of messages fetched with basic.get in manual acknowledgement mode', type: 'counter', group: 'channel_queue_metrics', rows: channelQueues, value: (c) => c.getManualAck, total: (s) => s.broker.stats.deliveredGetManualAck }),
  spec({ name: 'channel_get_total', help: 'Total number of messages fetched with basic.get in automatic acknowledgement mode', type: 'counter', group: 'channel_queue_metrics', rows: channelQueues, value: (c) => c.getAutoAck, total: (s) => s.broker.stats.deliveredGetAutoAck }),
  spec({ name: 'channel_messages_delivered_ack_total', help: 'Total number of messages delivered to consumers in manual acknowledgement mode', type: 'counter', group: 'channel_queue_metrics', rows: channelQueues, value: (c) => c.deliveredManualAck, total: (s) => s.broker.stats.deliveredConsumeManualAck }),
  spec({ name: 'channel_messages_delivered_total', help: 'Total number of messages delivered to consumers in automatic acknowledgement mode', type: 'counter', group: 'channel_queue_metrics', rows: channelQueues, value: (c) => c.deliveredAutoAck, total: (s) => s.broker.stats.deliveredConsumeAutoAck }),
  spec({ name: 'channel_messages_redelivered_total', help: 'Total number of messages redelivered to consumers', type: 'counter', group: 'channel_queue_metrics', rows: channelQueues, value: (c) => c.redelivered, total: (s) => s.broker.stats.redelivered }),
  spec({ name: 'channel_messages_acked_total', help: 'Total number of messages acknowledged by consumers', type: 'counter', group: 'channel_queue_metrics', rows: channelQueues, value: (c) => c.acked, total: (s) => s.broker.stats.acknowledged }),
  spec({ name: 'channel_get_empty_total', help: 'Total number of times basic.get operations fetched no message', type: 'counter', group: 'channel_queue_metrics', rows: channelQueues, value: (c) => c.getEmpty, total: (s) => s.broker.stats.getEmpty }),
  // ---- connection_coarse_metrics / connection_metrics --------------------------------------------
  spec({ name: 'connection_incoming_bytes_total', help: 'Total number of bytes received on a connection', type: 'counter', group: 'connection_coarse_metrics', rows: connections, value: (c) => c.bytesRead, total: (s) => s.connectionTotals().bytesIn }),
  spec({ name: 'connection_outgoing_bytes_total', help: 'Total number of bytes sent on a connection', type: 'counter', group: 'connection_coarse_metrics', rows: connections, value: (c) => c.outbound.bytesWritten, total: (s) => s.connectionTotals().bytesOut }),
  spec({ name: 'connection_incoming_packets_total', help: 'Total number of packets received on a connection', type: 'counter', group: 'connection_metrics', rows: connections, value: (c) => c.readsCount, total: (s) => s.connectionTotals().reads }),
  spec({ name: 'connection_outgoing_packets_total', help: 'Total number of packets sent on a connection', type: 'counter', group: 'connection_metrics', rows: connections, value: (c) => c.outbound.writesCount, total: (s) => s.connectionTotals().writes }),
  spec({ name: 'connection_pending_packets', help: 'Number of packets waiting to be sent on a connection', type: 'gauge', group: 'connection_metrics', rows: connections, value: (c) => (c.socket.writableLength > 0 ? 1 : 0), total: (s) => s.connectionTotals().pendingWrites }),
  spec({ name: 'connection_channels', help: 'Channels on a connection', type: 'gauge', group: 'connection_metrics', rows: connections, value: (c) => c.channels.size, total: (s) => s.channelTotals().channels }),
  // ---- queue publishes (per queue; RabbitMQ splits these further by channel and exchange) --------
  spec({ name: 'queue_messages_published_total', help: 'Total number of messages published to queues', type: 'counter', group: 'none', rows: queues, value: (q) => q.publishedTotal, total: (s) => s.queueTotals().published }),
];

// ---- node-level and global families ---------------------------------------------------------------

const AMQP = labelPairs([['protocol', 'amqp091']]);
/** RabbitMQ's queue_type label values. */
const RABBIT_QUEUE_TYPE: Readonly<Record<QueueType, string>> = {
  classic: 'rabbit_classic_queue',
  quorum: 'rabbit_quorum_queue',
  stream: 'rabbit_stream_queue',
};
const BY_QUEUE_TYPE = QUEUE_TYPES.map((type) => ({ type, labels: labelPairs([['protocol', 'amqp091'], ['queue_type', RABBIT_QUEUE_TYPE[type]]]) }));
const DLX = (type: QueueType, strategy: string): string => labelPairs([['queue_type', RABBIT_QUEUE_TYPE[type]], ['dead_letter_strategy', strategy]]);

/**
 * The series RabbitMQ 3.10 exports for each dead-letter reason: classic queues never dead-letter
 * for a delivery limit, and only quorum queues have the at_least_once strategy (which Warren does
 * not run: its dead-lettering is atomic with the removal, so those series stay 0). Warren's classic
 * queues can have a delivery limit; that series appears once it counts something.
 */
const DEAD_LETTER_SERIES: Readonly<Record<DeadLetterReason, readonly (readonly [QueueType, 'at_least_once' | 'at_most_once' | 'disabled'])[]>> = {
  delivery_limit: [['quorum', 'at_least_once'], ['quorum', 'at_most_once'], ['quorum', 'disabled']],
  expired: [['classic', 'at_most_once'], ['classic', 'disabled'], ['quorum', 'at_least_once'], ['quorum', 'at_most_once'], ['quorum', 'disabled']],
  maxlen: [['classic', 'at_most_once'], ['classic', 'disabled'], ['quorum', 'at_most_once'], ['quorum', 'disabled']],
  rejected: [['classic', 'at_most_once'], ['classic', 'disabled'], ['quorum', 'at_least_once'], ['quorum', 'at_most_once'], ['quorum', 'disabled']],
};

export interface NodeReadings {
  nodeName: string;
  clusterName: string;
  clusterId: string;
  buildLabels: readonly (readonly [string, string])[];
  residentMemoryBytes(): number;
  openFds(): number | null;
  maxFds(): number | null;
  diskFreeBytes(): number | null;
  /** the memory alarm's threshold, when the broker has one */
  memoryLimitBytes(): number | null;
  diskFreeLimitBytes(): number | null;
  memoryAlarm(): boolean;
  diskAlarm(): boolean;
  uptimeSeconds(): number;
  startTimeSeconds(): number;
}

function value(name: string, help: string, type: MetricType, read: () => readonly Sample[] | number | null): Family {
  return new ValueFamily(`rabbitmq_${name}`, help, type, read);
}

function identity(node: NodeReadings, endpoint: string): Family[] {
  return [
    new ValueFamily('rabbitmq_build_info', 'RabbitMQ & Erlang/OTP version info', 'untyped', () => [{ labels: labelPairs(node.buildLabels), value: 1 }]),
    new ValueFamily('rabbitmq_identity_info', 'RabbitMQ node & cluster identity info', 'untyped', () => [
      {
        labels: labelPairs([
          ['rabbitmq_node', node.nodeName],
          ['rabbitmq_cluster', node.clusterName],
          ['rabbitmq_cluster_permanent_id', node.clusterId],
          ['rabbitmq_endpoint', endpoint],
        ]),
        value: 1,
      },
    ]),
  ];
}

/** Families whose value does not depend on the endpoint (node, churn, global counters). */
function nodeAndGlobalFamilies(ctx: ScrapeContext, node: NodeReadings): Family[] {
  const stats = (): ReturnType<ScrapeContext['snapshot']>['broker']['stats'] => ctx.snapshot().broker.stats;
  const orNull = (v: number | null): number | null => v;
  const dl = (reason: DeadLetterReason) => (): Sample[] => {
    const byType = stats().byQueueType;
    const samples: Sample[] = DEAD_LETTER_SERIES[reason].map(([type, strategy]) => {
      const counts = byType[type].deadLettered;
      const value = strategy === 'at_least_once' ? 0 : strategy === 'at_most_once' ? counts.toExchange[reason] : counts.dropped[reason];
      return { labels: DLX(type, strategy), value };
    });
    if (reason === 'delivery_limit') {
      const classic = byType.classic.deadLettered;
      if (classic.toExchange.delivery_limit > 0) samples.push({ labels: DLX('classic', 'at_most_once'), value: classic.toExchange.delivery_limit });
      if (classic.dropped.delivery_limit > 0) samples.push({ labels: DLX('classic', 'disabled'), value: classic.dropped.delivery_limit });
    }
    return samples;
  };
  /** One sample per queue type, as RabbitMQ labels its delivery counters. */
  const perType = (read: (t: QueueTypeTotals) => number) => (): Sample[] =>
    BY_QUEUE_TYPE.map(({ type, labels }) => ({ labels, value: read(stats().byQueueType[type]) }));
  return [
    new ValueFamily('process_start_time_seconds', 'Start time of the process since unix epoch in seconds.', 'gauge', () => node.startTimeSeconds()),
    value('alarms_file_descriptor_limit', 'is 1 if file descriptor limit alarm is in effect', 'untyped', () => 0),
    value('alarms_free_disk_space_watermark', 'is 1 if free disk space watermark alarm is in effect', 'untyped', () => (node.diskAlarm() ? 1 : 0)),
    value('alarms_memory_used_watermark', 'is 1 if VM memory watermark alarm is in effect', 'untyped', () => (node.memoryAlarm() ? 1 : 0)),
    value('connections_opened_total', 'Total number of connections opened', 'counter', () => stats().connectionsOpened),
    value('connections_closed_total', 'Total number of connections closed or terminated', 'counter', () => stats().connectionsClosed),
    value('channels_opened_total', 'Total number of channels opened', 'counter', () => stats().channelsOpened),
    value('channels_closed_total', 'Total number of channels closed', 'counter', () => stats().channelsClosed),
    value('queues_declared_total', 'Total number of queues declared', 'counter', () => stats().queuesDeclared),
    value('queues_created_total', 'Total number of queues created', 'counter', () => stats().queuesCreated),
    value('queues_deleted_total', 'Total number of queues deleted', 'counter', () => stats().queuesDeleted),
    value('process_open_fds', 'Open file descriptors', 'gauge', () => orNull(node.openFds())),
    value('process_open_tcp_sockets', 'Open TCP sockets', 'gauge', () => ctx.snapshot().connectionTotals().open),
    value('process_resident_memory_bytes', 'Memory used in bytes', 'gauge', () => node.residentMemoryBytes()),
    value('disk_space_available_bytes', 'Disk space available in bytes', 'gauge', () => orNull(node.diskFreeBytes())),
    value('process_max_fds', 'Open file descriptors limit', 'gauge', () => orNull(node.maxFds())),
    value('resident_memory_limit_bytes', 'Memory high watermark in bytes', 'gauge', () => orNull(node.memoryLimitBytes())),
    value('disk_space_available_limit_bytes', 'Free disk space low watermark in bytes', 'gauge', () => orNull(node.diskFreeLimitBytes())),
    value('erlang_uptime_seconds', 'Node uptime', 'gauge', () => node.uptimeSeconds()),
    value('connections', 'Connections currently open', 'gauge', () => ctx.snapshot().connectionTotals().open),
    value('channels', 'Channels currently open', 'gauge', () => ctx.snapshot().channelTotals().channels),
    value('consumers', 'Consumers currently connected', 'gauge', () => ctx.snapshot().channelTotals().consumers),
    value('queues', 'Queues available', 'gauge', () => ctx.snapshot().queueRows().length),
    value('global_consumers', 'Current number of consumers', 'gauge', () => [{ labels: AMQP, value: ctx.snapshot().channelTotals().consumers }]),
    value('global_messages_acknowledged_total', 'Total number of messages acknowledged by consumers', 'counter', perType((t) => t.acknowledged)),
    value('global_messages_confirmed_total', 'Total number of messages confirmed to publishers', 'counter', () => [{ labels: AMQP, value: stats().messagesConfirmed }]),
    // Quorum queues' at-least-once dead-lettering confirms each copy; Warren does not run that strategy.
    value('global_messages_dead_lettered_confirmed_total', 'Total number of messages dead-lettered and confirmed by target queues', 'counter', () => [
      { labels: DLX('quorum', 'at_least_once'), value: 0 },
    ]),
    value('global_messages_dead_lettered_delivery_limit_total', 'Total number of messages dead-lettered due to delivery-limit exceeded', 'counter', dl('delivery_limit')),
    value('global_messages_dead_lettered_expired_total', 'Total number of messages dead-lettered due to message TTL exceeded', 'counter', dl('expired')),
    value('global_messages_dead_lettered_maxlen_total', 'Total number of messages dead-lettered due to overflow drop-head or reject-publish-dlx', 'counter', dl('maxlen')),
    value('global_messages_dead_lettered_rejected_total', 'Total number of messages dead-lettered due to basic.reject or basic.nack', 'counter', dl('rejected')),
    value('global_messages_delivered_consume_auto_ack_total', 'Total number of messages delivered to consumers using basic.consume with automatic acknowledgment', 'counter', perType((t) => t.deliveredConsumeAutoAck)),
    value('global_messages_delivered_consume_manual_ack_total', 'Total number of messages delivered to consumers using basic.consume with manual acknowledgment', 'counter', perType((t) => t.deliveredConsumeManualAck)),
    value('global_messages_delivered_get_auto_ack_total', 'Total number of messages delivered to consumers using basic.get with automatic acknowledgment', 'counter', perType((t) => t.deliveredGetAutoAck)),
    value('global_messages_delivered_get_manual_ack_total', 'Total number of messages delivered to consumers using basic.get with manual acknowledgment', 'counter', perType((t) => t.deliveredGetManualAck)),
    value('global_messages_delivered_total', 'Total number of messages delivered to consumers', 'counter', perType((t) => t.delivered)),
    value('global_messages_get_empty_total', 'Total number of times basic.get operations fetched no message', 'counter', perType((t) => t.getEmpty)),
    value('global_messages_received_confirm_total', 'Total number of messages received from publishers expecting confirmations', 'counter', () => [{ labels: AMQP, value: stats().messagesReceivedConfirm }]),
    value('global_messages_received_total', 'Total number of messages received from publishers', 'counter', () => [{ labels: AMQP, value: stats().messagesReceived }]),
    value('global_messages_redelivered_total', 'Total number of messages redelivered to consumers', 'counter', perType((t) => t.redelivered)),
    value('global_messages_routed_total', 'Total number of messages routed to queues or streams', 'counter', () => [{ labels: AMQP, value: stats().messagesRouted }]),
    value('global_messages_unroutable_dropped_total', 'Total number of messages published as non-mandatory into an exchange and dropped as unroutable', 'counter', () => [{ labels: AMQP, value: stats().unroutableDropped }]),
    value('global_messages_unroutable_returned_total', 'Total number of messages published as mandatory into an exchange and returned to the publisher as unroutable', 'counter', () => [{ labels: AMQP, value: stats().unroutableReturned }]),
    value('global_publishers', 'Current number of publishers', 'gauge', () => [{ labels: AMQP, value: ctx.snapshot().channelTotals().publishers }]),
    value('message_size_bytes', 'Size of messages received from publishers', 'histogram', () => {
      const h = stats().messageSizes;
      const cumulative = h.cumulative();
      const samples: Sample[] = [];
      for (let i = 0; i < cumulative.length; i++) {
        const le = i < h.bounds.length ? String(h.bounds[i]) : '+Inf';
        samples.push({ suffix: '_bucket', labels: labelPairs([['protocol', 'amqp091'], ['le', le]]), value: cumulative[i]! });
      }
      samples.push({ suffix: '_sum', labels: AMQP, value: h.sum });
      samples.push({ suffix: '_count', labels: AMQP, value: h.count });
      return samples;
    }),
  ];
}

/** /metrics: everything summed, no per-object labels. */
export function aggregatedFamilies(ctx: ScrapeContext, node: NodeReadings): Family[] {
  const objectTotals = OBJECT_FAMILIES.map(
    (f) => new ValueFamily(`rabbitmq_${f.name}`, f.help, f.type, () => (f.total === null ? null : f.total(ctx.snapshot()))),
  );
  return [...nodeAndGlobalFamilies(ctx, node), ...objectTotals, ...identity(node, 'aggregated')];
}

/** /metrics/per-object: the same families, one sample per queue, channel or connection. */
export function perObjectFamilies(ctx: ScrapeContext, node: NodeReadings): Family[] {
  const objects = OBJECT_FAMILIES.map(
    (f) => new RowFamily(`rabbitmq_${f.name}`, f.help, f.type, () => f.rows(ctx.snapshot()), f.value, f.skipNaN ?? false),
  );
  return [...nodeAndGlobalFamilies(ctx, node), ...objects, ...identity(node, 'per-object')];
}

/** /metrics/detailed: the rabbitmq_detailed_ families of the groups asked for, then identity. */
export function detailedFamilies(ctx: ScrapeContext, node: NodeReadings, groups: ReadonlySet<DetailedGroup>): Family[] {
  const chosen = OBJECT_FAMILIES.filter((f) => f.group !== 'none' && groups.has(f.group)).map(
    (f) => new RowFamily(`rabbitmq_detailed_${f.name}`, f.help, f.type, () => f.rows(ctx.snapshot()), f.value, f.skipNaN ?? false),
  );
  return [...chosen, ...identity(node, 'detailed')];
}

export { headPublishedAt };
