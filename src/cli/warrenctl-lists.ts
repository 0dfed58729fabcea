// warrenctl's list_* verbs: rabbitmqctl's columns (and default columns), filled from the
// management API's JSON. Columns about Erlang processes print the object's name instead of a pid.

import { seg, type ManagementClient } from './warrenctl-client.js';
import { wordList, type Row } from './warrenctl-format.js';

type ApiRow = Record<string, any>;

export interface ListVerb {
  /** rabbitmqctl's banner, given the vhost */
  banner(vhost: string): string;
  columns: readonly string[];
  defaults: readonly string[];
  /** whether -p applies */
  vhostScoped: boolean;
  fetch(client: ManagementClient, vhost: string): Promise<Row[]>;
  render?: Partial<Record<string, (v: unknown) => string>>;
}

const get = (r: ApiRow, path: string): unknown => path.split('.').reduce<any>((v, k) => (v === null || v === undefined ? undefined : v[k]), r);

/** Maps API rows to rabbitmqctl columns: same name unless mapped. */
function mapper(map: Record<string, (r: ApiRow) => unknown>): (r: ApiRow) => Row {
  return (r) => new Proxy({} as Row, { get: (_t, key: string) => (key in map ? map[key]!(r) : get(r, key)) });
}

const json = (v: unknown): string => (v === undefined || v === null ? '' : JSON.stringify(v));

export const LIST_VERBS: Record<string, ListVerb> = {
  list_queues: {
    banner: (v) => `Timeout: 60.0 seconds ...\nListing queues for vhost ${v} ...`,
    columns: [
      'arguments', 'auto_delete', 'consumer_capacity', 'consumer_utilisation', 'consumers', 'disk_reads', 'disk_writes', 'durable',
      'exclusive', 'exclusive_consumer_pid', 'exclusive_consumer_tag', 'head_message_timestamp', 'leader', 'members', 'memory',
      'message_bytes', 'message_bytes_persistent', 'message_bytes_ram', 'message_bytes_ready', 'message_bytes_unacknowledged',
      'messages', 'messages_persistent', 'messages_ram', 'messages_ready', 'messages_ready_ram', 'messages_unacknowledged',
      'messages_unacknowledged_ram', 'name', 'online', 'owner_pid', 'pid', 'policy', 'slave_pids', 'state',
      'synchronised_slave_pids', 'type',
    ],
    defaults: ['name', 'messages'],
    vhostScoped: true,
    fetch: async (client, vhost) => {
      const rows = await client.get<ApiRow[]>(`/api/queues/${seg(vhost)}`);
      const map = mapper({
        pid: (r) => `<${r['node']}.${r['name']}>`,
        leader: (r) => r['node'],
        members: (r) => [r['node']],
        online: (r) => [r['node']],
        owner_pid: (r) => get(r, 'owner_pid_details.name') ?? '',
        exclusive_consumer_pid: () => '',
        slave_pids: () => '',
        synchronised_slave_pids: () => '',
        disk_reads: () => 0,
        disk_writes: () => 0,
        memory: (r) => r['memory'] ?? r['message_bytes_ram'] ?? 0,
        messages_persistent: (r) => r['messages_persistent'] ?? '',
        message_bytes_persistent: (r) => r['message_bytes_persistent'] ?? '',
        message_bytes_unacknowledged: (r) => r['message_bytes_unacknowledged'] ?? '',
      });
      return rows.map(map);
    },
  },
  list_exchanges: {
    banner: (v) => `Listing exchanges for vhost ${v} ...`,
    columns: ['name', 'type', 'durable', 'auto_delete', 'internal', 'arguments', 'policy'],
    defaults: ['name', 'type'],
    vhostScoped: true,
    fetch: async (client, vhost) => (await client.get<ApiRow[]>(`/api/exchanges/${seg(vhost)}`)).map(mapper({})),
  },
  list_bindings: {
    banner: (v) => `Listing bindings for vhost ${v}...`,
    columns: ['source_name', 'source_kind', 'destination_name', 'destination_kind', 'routing_key', 'arguments'],
    defaults: ['source_name', 'source_kind', 'destination_name', 'destination_kind', 'routing_key', 'arguments'],
    vhostScoped: true,
    fetch: async (client, vhost) =>
      (await client.get<ApiRow[]>(`/api/bindings/${seg(vhost)}`)).map(
        mapper({
          source_name: (r) => r['source'],
          source_kind: () => 'exchange',
          destination_name: (r) => r['destination'],
          destination_kind: (r) => r['destination_type'],
        }),
      ),
  },
  list_connections: {
    banner: () => 'Listing connections ...',
    columns: [
      'auth_mechanism', 'channel_max', 'channels', 'client_properties', 'connected_at', 'frame_max', 'host', 'name', 'node',
      'peer_cert_issuer', 'peer_cert_subject', 'peer_cert_validity', 'peer_host', 'peer_port', 'pid', 'port', 'protocol',
      'recv_cnt', 'recv_oct', 'send_cnt', 'send_oct', 'send_pend', 'ssl', 'ssl_cipher', 'ssl_hash', 'ssl_key_exchange',
      'ssl_protocol', 'state', 'timeout', 'type', 'user', 'user_who_performed_action', 'vhost',
    ],
    defaults: ['user', 'peer_host', 'peer_port', 'state'],
    vhostScoped: false,
    fetch: async (client) =>
      (await client.get<ApiRow[]>('/api/connections')).map(
        mapper({ pid: (r) => `<${r['name']}>`, protocol: (r) => (r['protocol'] === 'AMQP 0-9-1' ? '{0,9,1}' : r['protocol']), recv_cnt: () => '', send_cnt: () => '' }),
      ),
    render: { peer_cert_issuer: (v) => (v === null ? '' : String(v)), peer_cert_subject: (v) => (v === null ? '' : String(v)) },
  },
  list_channels: {
    banner: () => 'Listing channels ...',
    columns: [
      'pid', 'connection', 'name', 'number', 'user', 'vhost', 'transactional', 'confirm', 'consumer_count',
      'messages_unacknowledged', 'messages_uncommitted', 'acks_uncommitted', 'messages_unconfirmed', 'prefetch_count',
      'global_prefetch_count',
    ],
    defaults: ['pid', 'user', 'consumer_count', 'messages_unacknowledged'],
    vhostScoped: false,
    fetch: async (client) =>
      (await client.get<ApiRow[]>('/api/channels')).map(
        mapper({ pid: (r) => `<${r['name']}>`, connection: (r) => `<${get(r, 'connection_details.name')}>` }),
      ),
  },
  list_consumers: {
    banner: (v) => `Listing consumers in vhost ${v} ...`,
    columns: ['queue_name', 'channel_pid', 'consumer_tag', 'ack_required', 'prefetch_count', 'active', 'activity_status', 'arguments'],
    defaults: ['queue_name', 'channel_pid', 'consumer_tag', 'ack_required', 'prefetch_count', 'active', 'arguments'],
    vhostScoped: true,
    fetch: async (client, vhost) =>
      (await client.get<ApiRow[]>(`/api/consumers/${seg(vhost)}`)).map(
        mapper({ queue_name: (r) => get(r, 'queue.name'), channel_pid: (r) => `<${get(r, 'channel_details.name')}>` }),
      ),
  },
  list_users: {
    banner: () => 'Listing users ...',
    columns: ['user', 'tags'],
    defaults: ['user', 'tags'],
    vhostScoped: false,
    fetch: async (client) => (await client.get<ApiRow[]>('/api/users')).map(mapper({ user: (r) => r['name'] })),
    render: { tags: wordList },
  },
  list_vhosts: {
    banner: () => 'Listing vhosts ...',
    columns: ['name', 'description', 'tags', 'tracing', 'cluster_state', 'default_queue_type'],
    defaults: ['name'],
    vhostScoped: false,
    fetch: async (client) => (await client.get<ApiRow[]>('/api/vhosts')).map(mapper({})),
    render: { tags: wordList },
  },
  list_permissions: {
    banner: (v) => `Listing permissions for vhost "${v}" ...`,
    columns: ['user', 'configure', 'write', 'read'],
    defaults: ['user', 'configure', 'write', 'read'],
    vhostScoped: true,
    fetch: async (client, vhost) => (await client.get<ApiRow[]>(`/api/vhosts/${seg(vhost)}/permissions`)).map(mapper({})),
  },
  list_policies: {
    banner: (v) => `Listing policies for vhost "${v}" ...`,
    columns: ['vhost', 'name', 'pattern', 'apply-to', 'definition', 'priority'],
    defaults: ['vhost', 'name', 'pattern', 'apply-to', 'definition', 'priority'],
    vhostScoped: true,
    fetch: async (client, vhost) => (await client.get<ApiRow[]>(`/api/policies/${seg(vhost)}`)).map(mapper({})),
    render: { definition: json },
  },
};
