// Shapes of the API's JSON the pages read (RabbitMQ's field names), and small helpers on them.
import { api, seg } from './api.js';
import { usePoll } from './hooks.js';

export interface QueueRow {
  name: string;
  vhost: string;
  type?: string;
  durable?: boolean;
  auto_delete?: boolean;
  exclusive?: boolean;
  arguments?: Record<string, unknown>;
  policy?: string | null;
  operator_policy?: string | null;
  effective_policy_definition?: Record<string, unknown>;
  state?: string;
  messages?: number;
  messages_ready?: number;
  messages_unacknowledged?: number;
  message_bytes?: number;
  consumers?: number;
  consumer_utilisation?: number | null;
  head_message_timestamp?: number | null;
  /** Warren's own: ms the head message has waited since it was published (null: none ready). */
  warren_head_message_age_ms?: number | null;
  message_stats?: Record<string, unknown>;
  idle_since?: string;
  memory?: number;
  node?: string;
}

export interface ExchangeRow {
  name: string;
  vhost: string;
  type: string;
  durable?: boolean;
  auto_delete?: boolean;
  internal?: boolean;
  arguments?: Record<string, unknown>;
  policy?: string | null;
  message_stats?: Record<string, unknown>;
}

export interface BindingRow {
  source: string;
  vhost: string;
  destination: string;
  destination_type: 'queue' | 'exchange';
  routing_key: string;
  arguments?: Record<string, unknown>;
  properties_key: string;
}

export interface VhostRow {
  name: string;
  description?: string;
  tags?: string[] | string;
  tracing?: boolean;
  messages?: number;
  messages_ready?: number;
  messages_unacknowledged?: number;
}

/** The vhosts this user can see (for vhost pickers); refreshed rarely. */
export function useVhostNames(): string[] {
  const { data } = usePoll(() => api<VhostRow[]>('/vhosts?columns=name'), [], false);
  return (data ?? []).map((v) => v.name);
}

/** The API names the default exchange "amq.default" in paths. */
export function exchangePathName(name: string): string {
  return name === '' ? 'amq.default' : name;
}

export function exchangePath(vhost: string, name: string): string {
  return `/exchanges/${seg(vhost)}/${seg(exchangePathName(name))}`;
}

export function queuePath(vhost: string, name: string): string {
  return `/queues/${seg(vhost)}/${seg(name)}`;
}

const ARG_ABBREVIATIONS: [string, string][] = [
  ['x-message-ttl', 'TTL'],
  ['x-expires', 'Exp'],
  ['x-max-length', 'Lim'],
  ['x-max-length-bytes', 'Lim B'],
  ['x-overflow', 'Ovfl'],
  ['x-dead-letter-exchange', 'DLX'],
  ['x-dead-letter-routing-key', 'DLK'],
  ['x-max-priority', 'Pri'],
  ['x-single-active-consumer', 'SAC'],
  ['x-queue-mode', 'Mode'],
];

/** RabbitMQ's short feature labels: D (durable), AD (auto-delete), Excl, plus argument abbreviations. */
export function queueFeatures(q: QueueRow): [string, string][] {
  const out: [string, string][] = [];
  if (q.durable === true) out.push(['D', 'durable']);
  if (q.auto_delete === true) out.push(['AD', 'auto-delete']);
  if (q.exclusive === true) out.push(['Excl', 'exclusive']);
  for (const [arg, short] of ARG_ABBREVIATIONS) {
    const v = q.arguments?.[arg];
    if (v !== undefined) out.push([short, `${arg}: ${JSON.stringify(v)}`]);
  }
  return out;
}

/** Parses "key = value" lines (RabbitMQ's UI argument rows) into a table; numbers and booleans typed. */
export function parseArguments(text: string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '') continue;
    const eq = line.indexOf('=');
    if (eq <= 0) throw new Error(`Argument line “${line}” is not “name = value”.`);
    const key = line.slice(0, eq).trim();
    const value = line.slice(eq + 1).trim();
    out[key] = typedValue(value);
  }
  return out;
}

export function typedValue(value: string): unknown {
  if (/^-?\d+(\.\d+)?$/.test(value)) return Number(value);
  if (value === 'true' || value === 'false') return value === 'true';
  if ((value.startsWith('{') && value.endsWith('}')) || (value.startsWith('[') && value.endsWith(']'))) {
    try {
      return JSON.parse(value) as unknown;
    } catch {
      return value;
    }
  }
  return value;
}
