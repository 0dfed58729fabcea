// Queue rows as RabbitMQ's API shows them (GET /api/queues …), from the counters each queue keeps.
// Fields RabbitMQ reports about Erlang internals (reductions, garbage_collection) are left out;
// counts Warren does not keep per queue (persistent messages, unacked bytes) are left out rather
// than guessed.

import { unackedOf } from '../../broker/queue-figures.js';
import { Channel } from '../../connection/channel.js';
import type { Queue } from '../../broker/queue/queue.js';
import type { ManagementContext } from '../context.js';
import { tableToJson } from '../json.js';
import type { Listed, Row } from '../listing.js';
import { channelDetails } from './connections.js';
import { propertyTimestamp } from '../../broker/message-timestamp.js';

export function queueMessageStats(ctx: ManagementContext, q: Queue): Row | undefined {
  if (q.publishedTotal === 0 && q.deliveredTotal === 0) return undefined;
  const r = ctx.rates;
  const stats: Row = {};
  if (q.publishedTotal > 0) {
    stats['publish'] = q.publishedTotal;
    stats['publish_details'] = r.details(q, 'publish');
  }
  if (q.deliveredTotal > 0) {
    stats['ack'] = q.ackedTotal;
    stats['ack_details'] = r.details(q, 'ack');
    stats['deliver_get'] = q.deliveredTotal;
    stats['deliver_get_details'] = r.details(q, 'deliver_get');
    stats['redeliver'] = q.redeliveredTotal;
    stats['redeliver_details'] = r.details(q, 'redeliver');
  }
  return stats;
}

/**
 * RabbitMQ's head_message_timestamp: the `timestamp` property (seconds) of the next message to be
 * delivered (the highest priority's head), null when none is ready or it has no timestamp.
 */
function headMessageTimestamp(q: Queue): number | null {
  const head = q.ready.count === 0 ? undefined : q.ready.peek();
  return head === undefined ? null : propertyTimestamp(head.message.rawProperties);
}

function headMessageAgeMs(q: Queue): number | null {
  const head = q.ready.count === 0 ? undefined : q.ready.peek();
  return head === undefined ? null : Math.max(0, Date.now() - head.message.publishedAt);
}

export function queueRow(ctx: ManagementContext, q: Queue): Row {
  const r = ctx.rates;
  const ready = q.messageCount;
  const unacked = unackedOf(q);
  const consumers = q.consumerCount;
  const exclusiveConsumer = q.consumers.all.find((c) => c.exclusive);
  const active = q.consumers.active;
  const row: Row = {
    arguments: tableToJson(q.args),
    auto_delete: q.autoDelete,
    backing_queue_status: {
      len: ready,
      mode: q.options.queueMode,
      next_seq_id: q.lastSeq,
      version: 1,
    },
    consumer_capacity: consumers > 0 ? 1.0 : 0,
    consumer_utilisation: consumers > 0 ? 1.0 : 0,
    consumers,
    durable: q.durable,
    effective_policy_definition: { ...q.appliedPolicy.definition },
    exclusive: q.exclusive,
    exclusive_consumer_tag: exclusiveConsumer?.tag ?? null,
    // Warren's own (not in RabbitMQ): how long the message at the head of the queue has waited
    // since it was published, in ms; null when none is ready. The web UI's "oldest message"
    // column, and a sort key to find the queues that are backing up.
    warren_head_message_age_ms: headMessageAgeMs(q),
    message_bytes: q.messageBytes,
    message_bytes_paged_out: q.messageBytes - q.ready.bytes,
    message_bytes_ram: q.ready.bytes,
    message_bytes_ready: q.messageBytes,
    messages: ready + unacked,
    messages_details: r.details(q, 'messages'),
    messages_paged_out: q.pagedOutCount,
    messages_ram: q.ready.count + unacked,
    messages_ready: ready,
    messages_ready_details: r.details(q, 'messages_ready'),
    messages_ready_ram: q.ready.count,
    messages_unacknowledged: unacked,
    messages_unacknowledged_details: r.details(q, 'messages_unacknowledged'),
    messages_unacknowledged_ram: unacked,
    name: q.name,
    node: ctx.nodeName,
    operator_policy: q.appliedPolicy.operatorPolicy,
    policy: q.appliedPolicy.policy,
    recoverable_slaves: null,
    single_active_consumer_tag: q.options.singleActiveConsumer ? (active?.tag ?? null) : null,
    state: 'running',
    type: q.type,
    vhost: q.host.name,
  };
  // RabbitMQ reports it for classic queues only (quorum queue and stream rows have no such field).
  if (q.type === 'classic') row['head_message_timestamp'] = headMessageTimestamp(q);
  const stats = queueMessageStats(ctx, q);
  if (stats !== undefined) row['message_stats'] = stats;
  if (q.exclusiveOwner !== null) {
    const owner = q.exclusiveOwner as { socket?: unknown };
    if (owner.socket !== undefined) row['owner_pid_details'] = ownerDetails(q);
  }
  return row;
}

function ownerDetails(q: Queue): Row {
  // The exclusive owner is a Connection; described as RabbitMQ does (name, peer).
  const c = q.exclusiveOwner as unknown as import('../../connection/connection.js').Connection;
  return { name: `${c.socket.remoteAddress ?? ''}:${c.socket.remotePort ?? 0} -> ${c.socket.localAddress ?? ''}:${c.socket.localPort ?? 0}`, peer_host: c.socket.remoteAddress ?? '', peer_port: c.socket.remotePort ?? 0 };
}

/** GET of one queue adds its consumers (as consumer_details) to the row. */
export function queueDetailRow(ctx: ManagementContext, q: Queue): Row {
  const row = queueRow(ctx, q);
  row['consumer_details'] = q.consumers.all.map((c) => ({
    arguments: tableToJson(c.args),
    ack_required: !c.noAck,
    active: q.consumers.active === undefined || q.consumers.active === c,
    activity_status: q.consumers.active === undefined ? 'up' : q.consumers.active === c ? 'single_active' : 'waiting',
    channel_details: c.channel instanceof Channel ? { ...channelDetails(c.channel), node: ctx.nodeName } : {},
    consumer_tag: c.tag,
    exclusive: c.exclusive,
    prefetch_count: c.prefetchCount,
    queue: { name: q.name, vhost: q.host.name },
  }));
  row['deliveries'] = [];
  row['incoming'] = [];
  return row;
}

export function queueListing(ctx: ManagementContext): Listed<Queue> {
  return {
    name: (q) => q.name,
    sortKeys: (q) => [q.host.name, q.name],
    row: (q) => queueRow(ctx, q),
  };
}

/** Every queue of the given vhosts. */
export function* queuesOf(vhosts: Iterable<{ queues: Map<string, Queue> }>): Iterable<Queue> {
  for (const v of vhosts) yield* v.queues.values();
}
