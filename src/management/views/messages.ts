// Messages as the API shows them (GET messages, dead-letter inspection) and message properties
// from JSON (publish): RabbitMQ's property names, payload as a string when it is valid UTF-8
// ("auto") or base64.

import type { Message } from '../../broker/message.js';
import type { BasicProperties } from '../../protocol/generated/amqp.js';
import { badRequest } from '../http-error.js';
import { jsonToTable, tableToJson } from '../json.js';
import type { Row } from '../listing.js';

/** BasicProperties field ↔ JSON key, in RabbitMQ's order of output. */
const PROPERTY_KEYS: [keyof BasicProperties, string][] = [
  ['appId', 'app_id'],
  ['clusterId', 'cluster_id'],
  ['userId', 'user_id'],
  ['type', 'type'],
  ['timestamp', 'timestamp'],
  ['messageId', 'message_id'],
  ['expiration', 'expiration'],
  ['replyTo', 'reply_to'],
  ['correlationId', 'correlation_id'],
  ['priority', 'priority'],
  ['deliveryMode', 'delivery_mode'],
  ['headers', 'headers'],
  ['contentEncoding', 'content_encoding'],
  ['contentType', 'content_type'],
];

const INT_PROPERTIES = new Set(['priority', 'delivery_mode', 'timestamp']);

/** Properties as JSON; RabbitMQ sends an empty list (not {}) for a message without any. */
export function propertiesToJson(message: Message): Row | [] {
  const p = message.properties;
  const out: Row = {};
  for (const [field, key] of PROPERTY_KEYS) {
    const v = p[field];
    if (v === undefined) continue;
    out[key] = field === 'headers' ? tableToJson(v as BasicProperties['headers']) : v;
  }
  return Object.keys(out).length === 0 ? [] : out;
}

export function propertiesFromJson(json: unknown): BasicProperties {
  const props: BasicProperties = {};
  if (json === undefined || json === null || (Array.isArray(json) && json.length === 0)) return props;
  if (typeof json !== 'object' || Array.isArray(json)) throw badRequest('properties must be a JSON object');
  const byKey = new Map(PROPERTY_KEYS.map(([f, k]) => [k, f]));
  for (const [key, value] of Object.entries(json as Row)) {
    const field = byKey.get(key);
    if (field === undefined) continue; // RabbitMQ ignores properties it does not know
    if (field === 'headers') {
      props.headers = jsonToTable(value, 'headers');
    } else if (INT_PROPERTIES.has(key)) {
      if (typeof value !== 'number' || !Number.isInteger(value)) throw badRequest(['not_int', key]);
      (props as Record<string, unknown>)[field] = value;
    } else {
      (props as Record<string, unknown>)[field] = typeof value === 'string' ? value : String(value);
    }
  }
  return props;
}

function isUtf8(buf: Buffer): boolean {
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(buf);
    return true;
  } catch {
    return false;
  }
}

/** payload and payload_encoding for a body, truncated to `truncate` bytes when given. */
export function payloadJson(body: Buffer, encoding: 'auto' | 'base64', truncate?: number): { payload: string; payload_encoding: string } {
  const shown = truncate !== undefined && body.length > truncate ? body.subarray(0, truncate) : body;
  if (encoding === 'auto' && isUtf8(shown)) return { payload: shown.toString('utf8'), payload_encoding: 'string' };
  return { payload: shown.toString('base64'), payload_encoding: 'base64' };
}

export function gotMessageRow(message: Message, redelivered: boolean, messageCount: number, encoding: 'auto' | 'base64', truncate?: number): Row {
  return {
    payload_bytes: message.bodySize,
    redelivered,
    exchange: message.exchange,
    routing_key: message.routingKey,
    message_count: messageCount,
    properties: propertiesToJson(message),
    ...payloadJson(message.body, encoding, truncate),
  };
}
