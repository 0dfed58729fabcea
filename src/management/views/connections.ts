// Rows for connections, channels and consumers as RabbitMQ's API shows them, built from what the
// connection and channel objects already hold (nothing is counted for the API's sake).

import { Channel } from '../../connection/channel.js';
import type { Connection } from '../../connection/connection.js';
import type { Consumer } from '../../broker/queue/consumers.js';
import type { ManagementContext } from '../context.js';
import { tableToJson } from '../json.js';
import type { Row } from '../listing.js';
import { rabbitTlsFields } from '../../tls/connection-info.js';

function hostOf(address: string | undefined): string {
  if (address === undefined) return '';
  return address.startsWith('::ffff:') ? address.slice(7) : address;
}

function endpoint(host: string, port: number | undefined): string {
  return `${host.includes(':') ? `[${host}]` : host}:${port ?? 0}`;
}

/** RabbitMQ's connection name: "peer_host:peer_port -> host:port". */
export function connectionName(c: Connection): string {
  const s = c.socket;
  return `${endpoint(hostOf(s.remoteAddress), s.remotePort)} -> ${endpoint(hostOf(s.localAddress), s.localPort)}`;
}

export function channelName(ch: Channel): string {
  return `${connectionName(ch.connection)} (${ch.id})`;
}

export function connectionRow(ctx: ManagementContext, c: Connection): Row {
  const s = c.socket;
  const props = tableToJson(c.clientProperties);
  const userProvided = props['connection_name'];
  const rates = ctx.rates;
  const tls = rabbitTlsFields(c.tls);
  const row: Row = {
    auth_mechanism: c.authMechanism,
    channel_max: c.channelMax,
    channels: c.channels.size,
    client_properties: props,
    connected_at: c.connectedAt,
    frame_max: c.frameMax,
    host: hostOf(s.localAddress),
    name: connectionName(c),
    node: ctx.nodeName,
    peer_cert_issuer: tls.peer_cert_issuer,
    peer_cert_subject: tls.peer_cert_subject,
    peer_cert_validity: tls.peer_cert_validity,
    peer_host: hostOf(s.remoteAddress),
    peer_port: s.remotePort ?? 0,
    port: s.localPort ?? 0,
    protocol: 'AMQP 0-9-1',
    recv_oct: c.bytesRead,
    recv_oct_details: rates.details(c, 'recv_oct'),
    send_oct: c.outbound.bytesWritten,
    send_oct_details: rates.details(c, 'send_oct'),
    send_pend: 0,
    ssl: tls.ssl,
    ssl_cipher: tls.ssl_cipher,
    ssl_hash: tls.ssl_hash,
    ssl_key_exchange: tls.ssl_key_exchange,
    ssl_protocol: tls.ssl_protocol,
    state: c.managementState,
    timeout: c.heartbeatSec,
    type: 'network',
    user: c.userName,
    user_who_performed_action: c.userName,
    vhost: c.vhost?.name ?? '',
  };
  if (typeof userProvided === 'string') row['user_provided_name'] = userProvided;
  return row;
}

export function channelRow(ctx: ManagementContext, ch: Channel): Row {
  const c = ch.connection;
  const info = ch.info;
  const connName = connectionName(c);
  const row: Row = {
    acks_uncommitted: info.uncommittedAcks,
    confirm: info.confirm,
    connection_details: { name: connName, peer_host: hostOf(c.socket.remoteAddress), peer_port: c.socket.remotePort ?? 0 },
    consumer_count: ch.consumers.size,
    global_prefetch_count: info.globalPrefetchCount,
    messages_unacknowledged: ch.unacked.size,
    messages_uncommitted: info.uncommittedMessages,
    messages_unconfirmed: info.unconfirmed,
    name: `${connName} (${ch.id})`,
    node: ctx.nodeName,
    number: ch.id,
    pending_raft_commands: 0,
    prefetch_count: info.prefetchCount,
    state: info.flowActive ? 'running' : 'flow',
    transactional: info.transactional,
    user: c.userName,
    user_who_performed_action: c.userName,
    vhost: c.vhost?.name ?? '',
  };
  if (ch.publishedTotal > 0) {
    row['message_stats'] = {
      publish: ch.publishedTotal,
      publish_details: ctx.rates.details(ch, 'publish'),
    };
  }
  return row;
}

/** channel_details as consumers and queues show them. */
export function channelDetails(ch: Channel): Row {
  const c = ch.connection;
  return {
    connection_name: connectionName(c),
    name: channelName(ch),
    number: ch.id,
    peer_host: hostOf(c.socket.remoteAddress),
    peer_port: c.socket.remotePort ?? 0,
    user: c.userName,
  };
}

export function consumerRow(ctx: ManagementContext, consumer: Consumer): Row {
  const queue = consumer.queue;
  const active = queue.consumers.active;
  const isActive = active === undefined || active === consumer;
  const row: Row = {
    arguments: tableToJson(consumer.args),
    ack_required: !consumer.noAck,
    active: isActive,
    activity_status: isActive ? (queue.options.singleActiveConsumer ? 'single_active' : 'up') : 'waiting',
    channel_details: consumer.channel instanceof Channel ? { ...channelDetails(consumer.channel), node: ctx.nodeName } : {},
    consumer_tag: consumer.tag,
    exclusive: consumer.exclusive,
    prefetch_count: consumer.prefetchCount,
    queue: { name: queue.name, vhost: queue.host.name },
  };
  return row;
}

/** All channels of all open connections. */
export function* allChannels(ctx: ManagementContext): Iterable<Channel> {
  for (const c of ctx.connections()) yield* c.channels.values();
}
