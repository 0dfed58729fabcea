// RabbitMQ's definitions JSON (what `rabbitmqctl export_definitions` and GET /api/definitions
// produce): its shape, the conversions between its JSON argument objects and AMQP field tables,
// and reading an untrusted document into typed parts with readable errors. The admin façade
// (admin.ts) does the exporting and importing; this file only knows the format.

import type { FieldTable, FieldValue } from '../protocol/field-table.js';
import { Decimal, Timestamp, TypedValue } from '../protocol/field-table.js';

/** The RabbitMQ version whose behaviour and formats Warren follows (reported as rabbit_version). */
export const RABBITMQ_COMPATIBLE_VERSION = '3.10.8';

export interface DefinitionsUser {
  name: string;
  password_hash: string;
  hashing_algorithm: string;
  tags: string[];
  limits: Record<string, number>;
}

export interface DefinitionsVhost {
  name: string;
  description?: string;
  tags?: string[];
  default_queue_type?: string;
}

export interface DefinitionsPermission {
  user: string;
  vhost: string;
  configure: string;
  write: string;
  read: string;
}

export interface DefinitionsTopicPermission {
  user: string;
  vhost: string;
  exchange: string;
  write: string;
  read: string;
}

export interface DefinitionsPolicy {
  vhost?: string;
  name: string;
  pattern: string;
  'apply-to': string;
  definition: Record<string, unknown>;
  priority: number;
}

export interface DefinitionsParameter {
  value: unknown;
  vhost?: string;
  component: string;
  name: string;
}

export interface DefinitionsGlobalParameter {
  name: string;
  value: unknown;
}

export interface DefinitionsQueue {
  name: string;
  vhost?: string;
  durable: boolean;
  auto_delete: boolean;
  arguments: Record<string, unknown>;
}

export interface DefinitionsExchange {
  name: string;
  vhost?: string;
  type: string;
  durable: boolean;
  auto_delete: boolean;
  internal: boolean;
  arguments: Record<string, unknown>;
}

export interface DefinitionsBinding {
  source: string;
  vhost?: string;
  destination: string;
  destination_type: 'queue' | 'exchange';
  routing_key: string;
  arguments: Record<string, unknown>;
}

/** A whole-broker export; a per-vhost export has only the vhost-level sections. */
export interface Definitions {
  rabbit_version?: string;
  rabbitmq_version?: string;
  product_name?: string;
  product_version?: string;
  users?: DefinitionsUser[];
  vhosts?: DefinitionsVhost[];
  permissions?: DefinitionsPermission[];
  topic_permissions?: DefinitionsTopicPermission[];
  parameters?: DefinitionsParameter[];
  global_parameters?: DefinitionsGlobalParameter[];
  policies?: DefinitionsPolicy[];
  queues?: DefinitionsQueue[];
  exchanges?: DefinitionsExchange[];
  bindings?: DefinitionsBinding[];
}

export class DefinitionsFormatError extends Error {}

// ---- Arguments: JSON ⇄ AMQP tables ------------------------------------------------------------------

/** A JSON value as an AMQP field value (integers, floats, strings, booleans, lists, objects). */
export function fieldValueFromJson(value: unknown): FieldValue {
  if (value === null || value === undefined) return null;
  if (typeof value === 'string' || typeof value === 'boolean' || typeof value === 'number') return value;
  if (Array.isArray(value)) return value.map(fieldValueFromJson);
  if (typeof value === 'object') return tableFromJson(value as Record<string, unknown>);
  throw new DefinitionsFormatError(`cannot use ${typeof value} as an argument value`);
}

/** A JSON object (arguments in definitions and the HTTP API) as an AMQP field table. */
export function tableFromJson(obj: Record<string, unknown> | undefined | null): FieldTable {
  const table = Object.create(null) as FieldTable;
  if (obj === undefined || obj === null) return table;
  for (const [key, value] of Object.entries(obj)) table[key] = fieldValueFromJson(value);
  return table;
}

/** An AMQP field value as JSON, as RabbitMQ's management API shows it. */
export function fieldValueToJson(value: FieldValue): unknown {
  if (value === null || typeof value === 'string' || typeof value === 'boolean' || typeof value === 'number') return value;
  if (typeof value === 'bigint') return Number.isSafeInteger(Number(value)) ? Number(value) : value.toString();
  if (Buffer.isBuffer(value)) return value.toString('utf8');
  if (Array.isArray(value)) return value.map(fieldValueToJson);
  if (value instanceof Timestamp) return value.seconds;
  if (value instanceof Decimal) return value.value / 10 ** value.scale;
  if (value instanceof TypedValue) return fieldValueToJson(value.value as FieldValue);
  return tableToJson(value);
}

export function tableToJson(table: FieldTable): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(table)) out[key] = fieldValueToJson(table[key]!);
  return out;
}

// ---- Reading an untrusted document ------------------------------------------------------------------

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The list under key, or [] when absent; each item must be an object. */
function section(doc: Record<string, unknown>, key: string): Record<string, unknown>[] {
  const list = doc[key];
  if (list === undefined || list === null) return [];
  if (!Array.isArray(list)) throw new DefinitionsFormatError(`'${key}' must be a list`);
  list.forEach((item, i) => {
    if (!isObject(item)) throw new DefinitionsFormatError(`${key}[${i}] must be an object`);
  });
  return list as Record<string, unknown>[];
}

function str(item: Record<string, unknown>, key: string, where: string, fallback?: string): string {
  const v = item[key];
  if (v === undefined && fallback !== undefined) return fallback;
  if (typeof v !== 'string') throw new DefinitionsFormatError(`${where}: '${key}' must be a string`);
  return v;
}

function bool(item: Record<string, unknown>, key: string, where: string, fallback: boolean): boolean {
  const v = item[key];
  if (v === undefined) return fallback;
  if (typeof v === 'boolean') return v;
  if (v === 'true' || v === 'false') return v === 'true';
  throw new DefinitionsFormatError(`${where}: '${key}' must be true or false`);
}

function args(item: Record<string, unknown>, where: string): Record<string, unknown> {
  const v = item['arguments'];
  if (v === undefined || v === null) return {};
  if (!isObject(v)) throw new DefinitionsFormatError(`${where}: 'arguments' must be an object`);
  return v;
}

/** RabbitMQ writes tags as a list; older files and the HTTP API use a comma-separated string. */
function tags(v: unknown, where: string): string[] {
  if (v === undefined || v === null) return [];
  if (typeof v === 'string') return v.split(',').map((t) => t.trim()).filter((t) => t !== '');
  if (Array.isArray(v) && v.every((t) => typeof t === 'string')) return v as string[];
  throw new DefinitionsFormatError(`${where}: 'tags' must be a list of strings`);
}

/** A user as found in a definitions file: a password hash, or (as RabbitMQ also accepts) a password. */
export interface ImportedUser {
  name: string;
  passwordHash?: string;
  password?: string;
  hashingAlgorithm: string;
  tags: string[];
}

/** The parts of a definitions document, checked for shape (values are validated on import). */
export interface ParsedDefinitions {
  users: ImportedUser[];
  vhosts: { name: string; description: string; tags: string[]; defaultQueueType: string | null }[];
  permissions: DefinitionsPermission[];
  topicPermissions: DefinitionsTopicPermission[];
  parameters: { vhost: string; component: string; name: string; value: unknown }[];
  globalParameters: DefinitionsGlobalParameter[];
  policies: { vhost: string; name: string; input: Record<string, unknown> }[];
  queues: { vhost: string; name: string; durable: boolean; autoDelete: boolean; arguments: Record<string, unknown> }[];
  exchanges: {
    vhost: string;
    name: string;
    type: string;
    durable: boolean;
    autoDelete: boolean;
    internal: boolean;
    arguments: Record<string, unknown>;
  }[];
  bindings: {
    vhost: string;
    source: string;
    destination: string;
    destinationType: 'queue' | 'exchange';
    routingKey: string;
    arguments: Record<string, unknown>;
  }[];
}

/**
 * Checks a parsed JSON document's shape. With `vhost`, it is a per-vhost document: entries need no
 * vhost field and all go to that vhost (users, vhosts and permissions are ignored, as RabbitMQ).
 */
export function parseDefinitions(doc: unknown, vhost?: string): ParsedDefinitions {
  if (!isObject(doc)) throw new DefinitionsFormatError('definitions must be a JSON object');
  const vh = (item: Record<string, unknown>, where: string): string => vhost ?? str(item, 'vhost', where);
  const whole = vhost === undefined;
  return {
    users: whole
      ? section(doc, 'users').map((u, i) => {
          const where = `users[${i}]`;
          const user: ImportedUser = {
            name: str(u, 'name', where),
            hashingAlgorithm: str(u, 'hashing_algorithm', where, 'rabbit_password_hashing_sha256'),
            tags: tags(u['tags'], where),
          };
          if (u['password_hash'] !== undefined) user.passwordHash = str(u, 'password_hash', where);
          else if (u['password'] !== undefined) user.password = str(u, 'password', where);
          return user;
        })
      : [],
    vhosts: whole
      ? section(doc, 'vhosts').map((v, i) => {
          const where = `vhosts[${i}]`;
          const metadata = isObject(v['metadata']) ? v['metadata'] : {};
          const dqt = v['default_queue_type'] ?? metadata['default_queue_type'];
          return {
            name: str(v, 'name', where),
            description: typeof v['description'] === 'string' ? v['description'] : typeof metadata['description'] === 'string' ? metadata['description'] : '',
            tags: tags(v['tags'] ?? metadata['tags'], where),
            defaultQueueType: typeof dqt === 'string' ? dqt : null,
          };
        })
      : [],
    permissions: whole
      ? section(doc, 'permissions').map((p, i) => {
          const where = `permissions[${i}]`;
          return {
            user: str(p, 'user', where),
            vhost: str(p, 'vhost', where),
            configure: str(p, 'configure', where),
            write: str(p, 'write', where),
            read: str(p, 'read', where),
          };
        })
      : [],
    topicPermissions: whole
      ? section(doc, 'topic_permissions').map((p, i) => {
          const where = `topic_permissions[${i}]`;
          return {
            user: str(p, 'user', where),
            vhost: str(p, 'vhost', where),
            exchange: str(p, 'exchange', where),
            write: str(p, 'write', where),
            read: str(p, 'read', where),
          };
        })
      : [],
    parameters: section(doc, 'parameters').map((p, i) => {
      const where = `parameters[${i}]`;
      return { vhost: vh(p, where), component: str(p, 'component', where), name: str(p, 'name', where), value: p['value'] };
    }),
    globalParameters: whole
      ? section(doc, 'global_parameters').map((p, i) => ({ name: str(p, 'name', `global_parameters[${i}]`), value: p['value'] }))
      : [],
    policies: section(doc, 'policies').map((p, i) => {
      const where = `policies[${i}]`;
      return { vhost: vh(p, where), name: str(p, 'name', where), input: p };
    }),
    queues: section(doc, 'queues').map((q, i) => {
      const where = `queues[${i}]`;
      return {
        vhost: vh(q, where),
        name: str(q, 'name', where),
        durable: bool(q, 'durable', where, true),
        autoDelete: bool(q, 'auto_delete', where, false),
        arguments: args(q, where),
      };
    }),
    exchanges: section(doc, 'exchanges').map((x, i) => {
      const where = `exchanges[${i}]`;
      return {
        vhost: vh(x, where),
        name: str(x, 'name', where),
        type: str(x, 'type', where),
        durable: bool(x, 'durable', where, true),
        autoDelete: bool(x, 'auto_delete', where, false),
        internal: bool(x, 'internal', where, false),
        arguments: args(x, where),
      };
    }),
    bindings: section(doc, 'bindings').map((b, i) => {
      const where = `bindings[${i}]`;
      const destinationType = str(b, 'destination_type', where);
      if (destinationType !== 'queue' && destinationType !== 'exchange') {
        throw new DefinitionsFormatError(`${where}: 'destination_type' must be 'queue' or 'exchange'`);
      }
      return {
        vhost: vh(b, where),
        source: str(b, 'source', where),
        destination: str(b, 'destination', where),
        destinationType,
        routingKey: str(b, 'routing_key', where, ''),
        arguments: args(b, where),
      };
    }),
  };
}
