// The node-wide views: overview, nodes, vhosts, whoami and users, shaped as RabbitMQ's API.

import { unackedOf } from '../../broker/queue-figures.js';
import { statfsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import type { Broker } from '../../broker/broker.js';
import type { VHost } from '../../broker/vhost.js';
import { WARREN_VERSION } from '../../version.js';
import { RABBITMQ_COMPATIBLE_VERSION } from '../../broker/definitions.js';
import type { ManagementContext } from '../context.js';
import type { Row } from '../listing.js';
import { allChannels } from './connections.js';

/** The RabbitMQ API version this API follows (tools pick features by it); definitions say the same. */
export const API_COMPATIBLE_VERSION = RABBITMQ_COMPATIBLE_VERSION;

export const EXCHANGE_TYPES = [
  { name: 'direct', description: 'AMQP direct exchange, as per the AMQP specification', enabled: true },
  { name: 'fanout', description: 'AMQP fanout exchange, as per the AMQP specification', enabled: true },
  { name: 'headers', description: 'AMQP headers exchange, as per the AMQP specification', enabled: true },
  { name: 'topic', description: 'AMQP topic exchange, as per the AMQP specification', enabled: true },
  { name: 'x-delayed-message', description: 'Delayed Message Exchange', enabled: true },
];

/** Message counters by RabbitMQ's message_stats key (publish, ack, …); rates are sampled on them. */
export type Totals = Readonly<Record<string, number>>;

/**
 * The overview's message_stats, RabbitMQ's keys in its order, from the broker-level totals
 * (src/broker/stats.ts): they never go backwards when the queues, channels or connections that
 * counted them are gone, as RabbitMQ's overview does not.
 */
export function brokerMessageTotals(broker: Broker): Totals {
  const s = broker.stats;
  let diskReads = s.deletedQueuesDiskReads;
  let diskWrites = s.deletedQueuesDiskWrites;
  for (const v of broker.vhosts.values()) {
    for (const q of v.queues.values()) {
      diskReads += q.diskReadsTotal;
      diskWrites += q.diskWritesTotal;
    }
  }
  return {
    ack: s.acknowledged,
    confirm: s.messagesConfirmed,
    deliver: s.deliveredConsumeManualAck,
    deliver_get: s.messagesDelivered,
    deliver_no_ack: s.deliveredConsumeAutoAck,
    disk_reads: diskReads,
    disk_writes: diskWrites,
    drop_unroutable: s.unroutableDropped,
    get: s.deliveredGetManualAck,
    get_empty: s.getEmpty,
    get_no_ack: s.deliveredGetAutoAck,
    publish: s.messagesReceived,
    redeliver: s.redelivered,
    return_unroutable: s.unroutableReturned,
  };
}

/** The overview's churn_rates: objects created and closed since start, as RabbitMQ counts them. */
export function churnTotals(broker: Broker): Totals {
  const s = broker.stats;
  return {
    channel_closed: s.channelsClosed,
    channel_created: s.channelsOpened,
    connection_closed: s.connectionsClosed,
    connection_created: s.connectionsOpened,
    queue_created: s.queuesCreated,
    queue_declared: s.queuesDeclared,
    queue_deleted: s.queuesDeleted,
  };
}

/** Sums per-vhost totals (the overview of a user who sees only some vhosts). */
export function sumTotals(all: readonly Totals[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const t of all) for (const [key, value] of Object.entries(t)) out[key] = (out[key] ?? 0) + value;
  return out;
}

export function messageStats(ctx: ManagementContext, owner: object, totals: Totals): Row {
  const out: Row = {};
  for (const [key, value] of Object.entries(totals)) {
    out[key] = value;
    out[`${key}_details`] = ctx.rates.details(owner, key);
  }
  return out;
}

export interface QueueTotals {
  messages: number;
  messages_ready: number;
  messages_unacknowledged: number;
}

export function queueTotals(vhosts: Iterable<VHost>): QueueTotals {
  let ready = 0;
  let unacked = 0;
  for (const v of vhosts) {
    for (const q of v.queues.values()) {
      ready += q.messageCount;
      unacked += unackedOf(q);
    }
  }
  return { messages: ready + unacked, messages_ready: ready, messages_unacknowledged: unacked };
}

function queueTotalsRow(ctx: ManagementContext, owner: object, t: QueueTotals): Row {
  return {
    messages: t.messages,
    messages_details: ctx.rates.details(owner, 'messages'),
    messages_ready: t.messages_ready,
    messages_ready_details: ctx.rates.details(owner, 'messages_ready'),
    messages_unacknowledged: t.messages_unacknowledged,
    messages_unacknowledged_details: ctx.rates.details(owner, 'messages_unacknowledged'),
  };
}

/** Where the overview's broker-wide counters come from (the sampler rates them on `owner`). */
export interface BrokerTotals {
  readonly owner: object;
  messages(): Totals;
  churn(): Totals;
}

/** Rate details summed over several owners (a user's vhosts). */
function summedStats(ctx: ManagementContext, owners: readonly object[], totals: Record<string, number>): Row {
  const out: Row = {};
  for (const [key, value] of Object.entries(totals)) {
    out[key] = value;
    let rate = 0;
    for (const owner of owners) rate += ctx.rates.rate(owner, key);
    out[`${key}_details`] = { rate: Math.round(rate * 10) / 10 };
  }
  return out;
}

/**
 * GET /api/overview. A user who sees every vhost (monitoring, administrator) gets the broker-level
 * totals, which survive deleted queues and closed channels; a user limited to some vhosts gets the
 * sum of those vhosts' figures, as RabbitMQ does.
 */
export function overview(ctx: ManagementContext, vhosts: VHost[], wholeBroker: boolean, totals: BrokerTotals, showListeners: boolean): Row {
  const names = new Set(vhosts.map((v) => v.name));
  let connections = 0;
  for (const c of ctx.connections()) if (c.vhost !== null && names.has(c.vhost.name)) connections++;
  let channels = 0;
  for (const ch of allChannels(ctx)) if (ch.connection.vhost !== null && names.has(ch.connection.vhost.name)) channels++;
  let queues = 0;
  let exchanges = 0;
  let consumers = 0;
  for (const v of vhosts) {
    queues += v.queues.size;
    exchanges += v.exchanges.size;
    for (const q of v.queues.values()) consumers += q.consumerCount;
  }
  const messageStatsRow = wholeBroker
    ? messageStats(ctx, totals.owner, totals.messages())
    : summedStats(ctx, vhosts, sumTotals(vhosts.map((v) => vhostMessageTotals(ctx, v))));
  const queueTotalsRowValue = wholeBroker
    ? queueTotalsRow(ctx, totals.owner, queueTotals(vhosts))
    : summedStats(ctx, vhosts, { ...queueTotals(vhosts) });
  const row: Row = {
    management_version: API_COMPATIBLE_VERSION,
    rates_mode: 'basic',
    sample_retention_policies: { global: [600, 3600, 28800, 86400], basic: [600, 3600], detailed: [600] },
    exchange_types: EXCHANGE_TYPES,
    product_version: WARREN_VERSION,
    product_name: 'Warren',
    rabbitmq_version: API_COMPATIBLE_VERSION,
    cluster_name: ctx.config.clusterName,
    erlang_version: `Node.js ${process.version}`,
    erlang_full_version: `Node.js ${process.version} (${process.platform} ${process.arch})`,
    release_series_support_status: 'supported',
    disable_stats: false,
    enable_queue_totals: false,
    message_stats: messageStatsRow,
    // RabbitMQ shows churn to every user; it is node-wide.
    churn_rates: messageStats(ctx, totals.owner, totals.churn()),
    queue_totals: queueTotalsRowValue,
    object_totals: { channels, connections, consumers, exchanges, queues },
    statistics_db_event_queue: 0,
    node: ctx.nodeName,
  };
  if (showListeners) {
    row['listeners'] = ctx.listeners().map((l) => ({ node: ctx.nodeName, ...l, socket_opts: {} }));
    row['contexts'] = contexts(ctx);
  } else {
    row['listeners'] = [];
    row['contexts'] = [];
  }
  return row;
}

function contexts(ctx: ManagementContext): Row[] {
  const out: Row[] = [];
  for (const l of ctx.listeners()) {
    const base = { node: ctx.nodeName, path: '/', ip: l.ip_address, port: String(l.port) };
    if (l.protocol === 'http' || l.protocol === 'https') out.push({ ...base, description: 'RabbitMQ Management' });
    // RabbitMQ quotes the protocol of its Prometheus contexts this way.
    else if (l.protocol.endsWith('/prometheus')) out.push({ ...base, description: 'RabbitMQ Prometheus', protocol: `'${l.protocol}'` });
  }
  return out;
}

function diskFree(dir: string): number {
  try {
    const s = statfsSync(dir);
    return s.bavail * s.bsize;
  } catch {
    return 0;
  }
}

export function nodeRow(ctx: ManagementContext): Row {
  let sockets = 0;
  for (const _ of ctx.connections()) sockets++;
  return {
    name: ctx.nodeName,
    type: 'disc',
    running: true,
    os_pid: String(process.pid),
    mem_used: ctx.broker.resources.memoryUsedBytes, // the memory alarm's figure, as RabbitMQ's mem_used
    mem_limit: ctx.broker.resources.memoryLimitBytes,
    mem_alarm: ctx.broker.resources.memoryAlarm,
    disk_free: diskFree(ctx.config.dataDir),
    disk_free_limit: ctx.broker.resources.diskFreeLimitBytes,
    disk_free_alarm: ctx.broker.resources.diskAlarm || ctx.broker.resources.alarms.has('storage'),
    sockets_used: sockets,
    uptime: Date.now() - ctx.startedAt,
    processors: availableParallelism(),
    rates_mode: 'basic',
    db_dir: ctx.config.dataDir,
    exchange_types: EXCHANGE_TYPES,
    auth_mechanisms: [
      { name: 'PLAIN', description: 'SASL PLAIN authentication mechanism', enabled: true },
      { name: 'AMQPLAIN', description: 'QPid AMQPLAIN mechanism', enabled: true },
      {
        name: 'EXTERNAL',
        description: 'TLS peer verification-based authentication plugin. Used in combination with the EXTERNAL SASL mechanism.',
        enabled: ctx.config.tlsCert !== null && ctx.config.tlsVerify === 'peer',
      },
    ],
    applications: [{ name: 'warren', description: 'Warren AMQP 0-9-1 broker', version: WARREN_VERSION }],
    contexts: contexts(ctx),
    partitions: [],
    cluster_links: [],
    enabled_plugins: ['rabbitmq_management'],
    being_drained: false,
  };
}

/**
 * A vhost's message counters: its live channels and queues plus what closed channels and deleted
 * queues had counted (VHost.retired), so they never drop, as RabbitMQ's vhost statistics.
 */
export function vhostMessageTotals(ctx: ManagementContext, v: VHost): Totals {
  let publish = v.retired.publish;
  for (const c of ctx.connections()) {
    if (c.vhost !== v) continue;
    for (const ch of c.channels.values()) if (!ch.isReleased) publish += ch.publishedTotal;
  }
  let deliver = v.retired.deliverGet;
  let ack = v.retired.ack;
  let redeliver = v.retired.redeliver;
  for (const q of v.queues.values()) {
    deliver += q.deliveredTotal;
    ack += q.ackedTotal;
    redeliver += q.redeliveredTotal;
  }
  return {
    publish,
    deliver_get: deliver,
    ack,
    redeliver,
    drop_unroutable: v.unroutableDropped,
    return_unroutable: v.unroutableReturned,
  };
}

/** Bytes received and sent on a vhost's connections, closed ones included. */
export function vhostOctets(ctx: ManagementContext, v: VHost): { recv_oct: number; send_oct: number } {
  let recv = v.retired.recvOct;
  let send = v.retired.sendOct;
  for (const c of ctx.connections()) {
    if (c.vhost !== v) continue;
    recv += c.bytesRead;
    send += c.outbound.bytesWritten;
  }
  return { recv_oct: recv, send_oct: send };
}

export function vhostRow(ctx: ManagementContext, v: VHost): Row {
  const t = queueTotals([v]);
  const description = v.description;
  const tags = [...v.tags];
  const { recv_oct: recv, send_oct: send } = vhostOctets(ctx, v);
  const totals = vhostMessageTotals(ctx, v);
  return {
    cluster_state: { [ctx.nodeName]: 'running' },
    default_queue_type: v.defaultQueueType ?? 'undefined',
    description,
    message_stats: messageStats(ctx, v, totals),
    ...queueTotalsRow(ctx, v, t),
    metadata: { description, tags },
    name: v.name,
    recv_oct: recv,
    recv_oct_details: ctx.rates.details(v, 'recv_oct'),
    send_oct: send,
    send_oct_details: ctx.rates.details(v, 'send_oct'),
    tags,
    tracing: false,
  };
}
