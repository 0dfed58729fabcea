// Queue arguments (x-message-ttl, x-expires, x-max-length, …): validated at declare time with
// RabbitMQ's checks and reply texts, then held as plain typed fields so the hot path never looks
// into the table again. Also the redeclare equivalence check over the same set of keys.

import { PreconditionFailed } from '../../protocol/errors.js';
import { Decimal, Timestamp, type FieldTable, type FieldValue } from '../../protocol/field-table.js';
import { fieldValuesEqual } from '../field-equality.js';

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
}

/** RabbitMQ's largest accepted TTL/expiry: (2^32 - 1) * 1000 ms... capped to what timers can hold. */
const MAX_EXPIRY_MS = 4_294_967_295 * 1000;
const MAX_PRIORITY = 255;

/** The keys RabbitMQ validates and compares on redeclare. Others are stored and ignored. */
export const VALIDATED_KEYS = [
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
] as const;

/** Erlang-style term for an argument value, as RabbitMQ prints it in reply texts. */
export function erlangTerm(value: FieldValue): string {
  if (typeof value === 'string') return `<<"${value}">>`;
  if (typeof value === 'bigint' || typeof value === 'number') return String(value);
  if (typeof value === 'boolean') return String(value);
  if (value === null) return 'undefined';
  if (Buffer.isBuffer(value)) return `<<"${value.toString('latin1')}">>`;
  if (Array.isArray(value)) return `[${value.map(erlangTerm).join(',')}]`;
  return String(value);
}

/** AMQP type name as RabbitMQ reports it ('long', 'longstr', 'bool', …), inferred from the value. */
export function amqpTypeName(value: FieldValue): string {
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

const isInt = (v: FieldValue | undefined): v is number | bigint =>
  (typeof v === 'number' && Number.isInteger(v)) || typeof v === 'bigint';

class ArgumentChecker {
  constructor(
    private readonly args: FieldTable,
    private readonly resource: string,
  ) {}

  fail(key: string, error: string): never {
    throw new PreconditionFailed(`invalid arg '${key}' for ${this.resource}: ${error}`);
  }

  private unacceptable(key: string, value: FieldValue): never {
    return this.fail(key, `{unacceptable_type,${amqpTypeName(value)}}`);
  }

  int(key: string): number | undefined {
    const v = this.args[key];
    if (v === undefined) return undefined;
    if (!isInt(v)) return this.unacceptable(key, v);
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
    if (n > MAX_EXPIRY_MS) this.fail(key, `{value_too_large,${n},${MAX_EXPIRY_MS}}`);
    return n;
  }

  string(key: string): string | undefined {
    const v = this.args[key];
    if (v === undefined) return undefined;
    if (typeof v === 'string') return v;
    if (Buffer.isBuffer(v)) return v.toString('utf8');
    return this.unacceptable(key, v);
  }

  bool(key: string): boolean | undefined {
    const v = this.args[key];
    if (v === undefined) return undefined;
    if (typeof v !== 'boolean') return this.unacceptable(key, v);
    return v;
  }
}

/** Validates a declare's arguments; throws PreconditionFailed with RabbitMQ's text on the first problem. */
export function parseQueueArguments(args: FieldTable, queueName: string, vhost: string): QueueArguments {
  const check = new ArgumentChecker(args, `queue '${queueName}' in vhost '${vhost}'`);
  const expiresMs = check.expiry('x-expires', false);
  const messageTtlMs = check.expiry('x-message-ttl', true);
  const deadLetterExchange = check.string('x-dead-letter-exchange');
  const deadLetterRoutingKey = check.string('x-dead-letter-routing-key');
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
      check.fail('x-overflow', `{invalid_overflow_value,${erlangTerm(overflowRaw)}}`);
    }
    overflow = overflowRaw as OverflowMode;
  }

  const modeRaw = check.string('x-queue-mode');
  if (modeRaw !== undefined && modeRaw !== 'default' && modeRaw !== 'lazy') {
    check.fail('x-queue-mode', `{invalid_queue_mode,${erlangTerm(modeRaw)}}`);
  }
  const singleActiveConsumer = check.bool('x-single-active-consumer') ?? false;

  const queueType = check.string('x-queue-type');
  if (queueType !== undefined && queueType !== 'classic') {
    if (queueType === 'quorum' || queueType === 'stream') {
      check.fail('x-queue-type', `{not_supported,${erlangTerm(queueType)}}: Warren supports classic queues only`);
    }
    check.fail('x-queue-type', `{unsupported_queue_type,${erlangTerm(queueType)}}`);
  }
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
  };
}

/** Redeclare check over RabbitMQ's validated keys: throws 406 "inequivalent arg …" on a difference. */
export function assertEquivalentArguments(current: FieldTable, received: FieldTable, resource: string): void {
  for (const key of VALIDATED_KEYS) {
    const a = received[key];
    const b = current[key];
    if (a === undefined && b === undefined) continue;
    if (a !== undefined && b !== undefined && fieldValuesEqual(a, b)) continue;
    const describe = (v: FieldValue | undefined): string =>
      v === undefined ? 'none' : `the value '${erlangPrint(v)}' of type '${amqpTypeName(v)}'`;
    throw new PreconditionFailed(
      `inequivalent arg '${key}' for ${resource}: received ${describe(a)} but current is ${describe(b)}`,
    );
  }
}

function erlangPrint(v: FieldValue): string {
  return typeof v === 'string' ? v : erlangTerm(v);
}
