// Queue arguments (x-message-ttl, x-expires, x-max-length, …): validated at declare time with
// RabbitMQ's checks and reply texts, then held as plain typed fields so the hot path never looks
// into the table again. Also the redeclare equivalence check over the same set of keys.

import { PreconditionFailed } from '../../protocol/errors.js';
import { Decimal, Timestamp, fieldTypeOf, type FieldTable, type FieldValue } from '../../protocol/field-table.js';
import { fieldValuesEqual } from '../field-equality.js';
import { MAX_EXPIRY_MS } from '../expiration.js';

export type OverflowMode = 'drop-head' | 'reject-publish' | 'reject-publish-dlx';

export interface QueueArguments {
  messageTtlMs: number | undefined;
  expiresMs: number | undefined;
  maxLength: number | undefined;
  maxLengthBytes: number | undefined;
  overflow: OverflowMode;
  deadLetterExchange: string | undefined;
  deadLetterRoutingKey: string | undefined;
  /** 0 = no priorities */
  maxPriority: number;
  singleActiveConsumer: boolean;
  queueMode: 'default' | 'lazy';
  /** x-consumer-timeout: ms a delivery from this queue may stay unacked (undefined: the broker's) */
  consumerTimeoutMs?: number | undefined;
}

const MAX_PRIORITY = 255;

/** Queue arguments RabbitMQ compares on redeclare (others are stored and ignored). */
export const QUEUE_COMPARED_ARGS = [
  'x-expires',
  'x-message-ttl',
  'x-dead-letter-exchange',
  'x-dead-letter-routing-key',
  'x-max-length',
  'x-max-length-bytes',
  'x-max-priority',
  'x-overflow',
  'x-queue-mode',
  'x-queue-type',
  'x-single-active-consumer',
  'x-queue-master-locator',
  'x-queue-version',
  // quorum queues and streams
  'x-delivery-limit',
  'x-dead-letter-strategy',
  'x-quorum-initial-group-size',
  'x-max-in-memory-length',
  'x-max-in-memory-bytes',
  'x-max-age',
  'x-stream-max-segment-size-bytes',
  'x-initial-cluster-size',
  'x-queue-leader-locator',
] as const;

/** Exchange arguments RabbitMQ compares on redeclare. */
export const EXCHANGE_COMPARED_ARGS = ['alternate-exchange'] as const;

/** Arguments of other queue types, refused on classic queues as RabbitMQ refuses them. */
const OTHER_QUEUE_TYPE_ARGS = [
  'x-delivery-limit',
  'x-max-in-memory-length',
  'x-max-in-memory-bytes',
  'x-quorum-initial-group-size',
  'x-max-age',
  'x-stream-max-segment-size-bytes',
  'x-dead-letter-strategy',
  'x-queue-leader-locator',
  'x-initial-cluster-size',
];

const TYPE_NAMES: Record<string, string> = {
  t: 'bool',
  b: 'byte',
  B: 'unsignedbyte',
  s: 'short',
  u: 'unsignedshort',
  I: 'signedint',
  i: 'unsignedint',
  l: 'long',
  f: 'float',
  d: 'double',
  D: 'decimal',
  S: 'longstr',
  A: 'array',
  T: 'timestamp',
  F: 'table',
  V: 'void',
  x: 'binary',
};

/** AMQP type name as RabbitMQ reports it: from the wire type when recorded, else from the value. */
export function amqpTypeName(value: FieldValue, typeLetter?: string): string {
  if (typeLetter !== undefined && TYPE_NAMES[typeLetter] !== undefined) return TYPE_NAMES[typeLetter];
  switch (typeof value) {
    case 'boolean':
      return 'bool';
    case 'number':
      return Number.isInteger(value) ? (value >= -2147483648 && value <= 2147483647 ? 'signedint' : 'long') : 'double';
    case 'bigint':
      return 'long';
    case 'string':
      return 'longstr';
    default:
      break;
  }
  if (value === null) return 'void';
  if (Buffer.isBuffer(value)) return 'binary';
  if (Array.isArray(value)) return 'array';
  if (value instanceof Timestamp) return 'timestamp';
  if (value instanceof Decimal) return 'decimal';
  return 'table';
}

/** A value as RabbitMQ prints it inside quotes in reply texts. */
function printValue(value: FieldValue): string {
  if (typeof value === 'string') return value;
  if (Buffer.isBuffer(value)) return value.toString('latin1');
  return String(value);
}

const isInt = (v: FieldValue | undefined): v is number | bigint =>
  (typeof v === 'number' && Number.isInteger(v)) || typeof v === 'bigint';

/** RabbitMQ's argument checks with its reply texts (used by every queue type's parser). */
export class ArgumentChecker {
  private readonly resource: string;

  constructor(
    private readonly args: FieldTable,
    queueName: string,
    vhost: string,
  ) {
    this.resource = `queue '${queueName}' in vhost '${vhost}'`;
  }

  fail(key: string, error: string): never {
    throw new PreconditionFailed(`invalid arg '${key}' for ${this.resource}: ${error}`);
  }

  private typeName(key: string, value: FieldValue): string {
    return amqpTypeName(value, fieldTypeOf(this.args, key));
  }

  int(key: string): number | undefined {
    const v = this.args[key];
    if (v === undefined) return undefined;
    if (!isInt(v)) return this.fail(key, `"expected integer, got ${this.typeName(key, v)}"`);
    return Number(v);
  }

  nonNegInt(key: string): number | undefined {
    const n = this.int(key);
    if (n !== undefined && n < 0) this.fail(key, `{value_negative,${n}}`);
    return n;
  }

  expiry(key: string, zeroAllowed: boolean): number | undefined {
    const n = this.int(key);
    if (n === undefined) return undefined;
    if (n === 0 && !zeroAllowed) this.fail(key, `{value_zero,0}`);
    if (n < 0) this.fail(key, `{value_negative,${n}}`);
    if (n > MAX_EXPIRY_MS) this.fail(key, `{value_too_large,${n}}`);
    return n;
  }

  /** Dead-letter names: RabbitMQ words a type error differently for these. */
  exchangeName(key: string): string | undefined {
    const v = this.args[key];
    if (v === undefined) return undefined;
    if (typeof v === 'string') {
      // It becomes an exchange name or routing key on the wire: a short string.
      if (Buffer.byteLength(v) > 255) this.fail(key, '{too_long,"at most 255 bytes"}');
      return v;
    }
    throw new PreconditionFailed(`invalid type '${this.typeName(key, v)}' for arg '${key}' in ${this.resource}`);
  }

  /** The dead-letter routing key: a type error is worded like other arguments' (unlike the exchange's). */
  routingKey(key: string): string | undefined {
    const v = this.args[key];
    if (v === undefined) return undefined;
    if (typeof v !== 'string') return this.fail(key, `{unacceptable_type,${this.typeName(key, v)}}`);
    return this.exchangeName(key);
  }

  string(key: string): string | undefined {
    const v = this.args[key];
    if (v === undefined) return undefined;
    if (typeof v === 'string') return v;
    return this.fail(key, `{unacceptable_type,${this.typeName(key, v)}}`);
  }

  bool(key: string): boolean | undefined {
    const v = this.args[key];
    if (v === undefined) return undefined;
    if (typeof v !== 'boolean') return this.fail(key, `{unacceptable_type,${this.typeName(key, v)}}`);
    return v;
  }

  refuseForeign(): void {
    for (const key of OTHER_QUEUE_TYPE_ARGS) {
      if (this.args[key] !== undefined) {
        throw new PreconditionFailed(`invalid arg '${key}' for ${this.resource} of queue type rabbit_classic_queue`);
      }
    }
  }
}

/** Validates a declare's arguments; throws PreconditionFailed with RabbitMQ's text on the first problem. */
export function parseQueueArguments(args: FieldTable, queueName: string, vhost: string): QueueArguments {
  const check = new ArgumentChecker(args, queueName, vhost);
  const queueType = check.string('x-queue-type');
  // Quorum queues and streams are parsed by their own modules (queue-types.ts dispatches).
  if (queueType !== undefined && queueType !== 'classic') check.fail('x-queue-type', `"unsupported queue type '${queueType}'"`);
  check.refuseForeign();
  const expiresMs = check.expiry('x-expires', false);
  const messageTtlMs = check.expiry('x-message-ttl', true);
  const deadLetterExchange = check.exchangeName('x-dead-letter-exchange');
  const deadLetterRoutingKey = check.routingKey('x-dead-letter-routing-key');
  if (deadLetterRoutingKey !== undefined && deadLetterExchange === undefined) {
    check.fail('x-dead-letter-routing-key', 'routing_key_but_no_dlx_defined');
  }
  const maxLength = check.nonNegInt('x-max-length');
  const maxLengthBytes = check.nonNegInt('x-max-length-bytes');
  const maxPriority = check.nonNegInt('x-max-priority') ?? 0;
  if (maxPriority > MAX_PRIORITY) check.fail('x-max-priority', `{max_value_exceeded,${maxPriority}}`);

  const overflowRaw = check.string('x-overflow');
  let overflow: OverflowMode = 'drop-head';
  if (overflowRaw !== undefined) {
    if (overflowRaw !== 'drop-head' && overflowRaw !== 'reject-publish' && overflowRaw !== 'reject-publish-dlx') {
      check.fail('x-overflow', 'invalid_overflow');
    }
    overflow = overflowRaw as OverflowMode;
  }

  const modeRaw = check.string('x-queue-mode');
  if (modeRaw !== undefined && modeRaw !== 'default' && modeRaw !== 'lazy') {
    check.fail('x-queue-mode', `"unsupported queue mode '${modeRaw}'"`);
  }
  const singleActiveConsumer = check.bool('x-single-active-consumer') ?? false;
  const consumerTimeoutMs = check.nonNegInt('x-consumer-timeout');
  const version = check.int('x-queue-version');
  if (version !== undefined && version !== 1 && version !== 2) check.fail('x-queue-version', `{invalid_queue_version,${version}}`);

  return {
    messageTtlMs,
    expiresMs,
    maxLength,
    maxLengthBytes,
    overflow,
    deadLetterExchange,
    deadLetterRoutingKey,
    maxPriority,
    singleActiveConsumer,
    queueMode: modeRaw === 'lazy' ? 'lazy' : 'default',
    ...(consumerTimeoutMs === undefined ? {} : { consumerTimeoutMs }),
  };
}

/**
 * As RabbitMQ, which fills in the default queue type: an explicit x-queue-type 'classic' equals
 * none. (Against another type, the values are reported as sent: "received 'classic' but current
 * is 'quorum'".)
 */
function bothClassic(key: string, a: FieldValue | undefined, b: FieldValue | undefined): boolean {
  const classic = (v: FieldValue | undefined): boolean => v === undefined || String(v) === 'classic';
  return key === 'x-queue-type' && classic(a) && classic(b);
}

/**
 * Redeclare check over the compared keys, with RabbitMQ's texts: "received '2000' but current is
 * '1000'" when both are set, "received the value '10' of type 'byte' but current is none" when one
 * is missing. Integer types are equivalent to each other.
 */
export function assertEquivalentArguments(
  current: FieldTable,
  received: FieldTable,
  keys: readonly string[],
  resource: string,
): void {
  for (const key of keys) {
    const a = received[key];
    const b = current[key];
    if (a === undefined && b === undefined) continue;
    if (bothClassic(key, a, b)) continue;
    if (a !== undefined && b !== undefined && fieldValuesEqual(a, b)) continue;
    let detail: string;
    if (a !== undefined && b !== undefined) detail = `received '${printValue(a)}' but current is '${printValue(b)}'`;
    else {
      const describe = (v: FieldValue | undefined, table: FieldTable): string =>
        v === undefined ? 'none' : `the value '${printValue(v)}' of type '${amqpTypeName(v, fieldTypeOf(table, key))}'`;
      detail = `received ${describe(a, received)} but current is ${describe(b, current)}`;
    }
    throw new PreconditionFailed(`inequivalent arg '${key}' for ${resource}: ${detail}`);
  }
}
