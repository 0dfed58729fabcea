// A stream's declare arguments (retention by size and age, segment size) and its consumers'
// arguments: where to start (x-stream-offset: first, last, next, an offset, a timestamp or an
// interval such as "30m"), filtering (x-stream-filter, x-stream-match-unfiltered, as RabbitMQ
// 3.13), and Warren's consumer groups (x-stream-consumer-name, x-single-active-consumer).

import { PreconditionFailed } from '../../protocol/errors.js';
import { Timestamp, fieldTypeOf, type FieldTable, type FieldValue } from '../../protocol/field-table.js';
import { amqpTypeName, type QueueArguments } from '../queue/arguments.js';
import { checkArgumentValues, parseAgeMs } from '../queue/known-arguments.js';
import { DEFAULT_SEGMENT_BYTES } from '../../store/stream-log.js';

/** RabbitMQ's upper bound for x-stream-max-segment-size-bytes. */
const MAX_SEGMENT_BYTES = 3_000_000_000;

/** The arguments RabbitMQ lets a stream have (values checked); other known ones are refused. */
export const STREAM_ARGUMENTS: ReadonlySet<string> = new Set([
  'x-max-length-bytes',
  'x-max-age',
  'x-stream-max-segment-size-bytes',
  'x-initial-cluster-size',
  'x-queue-leader-locator',
  'x-queue-type',
]);

export interface StreamArguments {
  maxLengthBytes: number | undefined;
  maxAgeMs: number | undefined;
  maxSegmentBytes: number;
}

export function parseStreamArguments(args: FieldTable, queueName: string, vhost: string): StreamArguments {
  const check = checkArgumentValues(args, queueName, vhost, STREAM_ARGUMENTS);
  const maxSegmentBytes = check.nonNegInt('x-stream-max-segment-size-bytes');
  if (maxSegmentBytes !== undefined && maxSegmentBytes > MAX_SEGMENT_BYTES) {
    throw new PreconditionFailed('Exceeded max value for x-stream-max-segment-size-bytes');
  }
  const age = check.string('x-max-age');
  return {
    maxLengthBytes: check.nonNegInt('x-max-length-bytes'),
    maxAgeMs: age === undefined ? undefined : parseAgeMs(age),
    maxSegmentBytes: maxSegmentBytes ?? DEFAULT_SEGMENT_BYTES,
  };
}

/** The classic settings a stream's base queue holds: none apply. */
export const STREAM_QUEUE_ARGUMENTS: QueueArguments = {
  messageTtlMs: undefined,
  expiresMs: undefined,
  maxLength: undefined,
  maxLengthBytes: undefined,
  overflow: 'drop-head',
  deadLetterExchange: undefined,
  deadLetterRoutingKey: undefined,
  maxPriority: 0,
  singleActiveConsumer: false,
  queueMode: 'default',
};

export type OffsetSpec =
  | { readonly kind: 'first' }
  | { readonly kind: 'last' }
  | { readonly kind: 'next' }
  | { readonly kind: 'offset'; readonly offset: number }
  | { readonly kind: 'timestamp'; readonly ms: number };

export interface StreamConsumeArguments {
  /** undefined: not given (a named consumer then resumes from its group's position) */
  offset: OffsetSpec | undefined;
  /** x-stream-filter values; null = no filter */
  filter: ReadonlySet<string> | null;
  matchUnfiltered: boolean;
  /** x-stream-consumer-name: the group this consumer belongs to */
  name: string | undefined;
  singleActive: boolean;
}

function describe(queueName: string, vhost: string): string {
  return `queue '${queueName}' in vhost '${vhost}'`;
}

/** RabbitMQ prints a refused offset as {invalid_stream_offset_arg,{Type,Value}}. */
function badOffset(args: FieldTable, value: FieldValue, queueName: string, vhost: string): never {
  const type = amqpTypeName(value, fieldTypeOf(args, 'x-stream-offset'));
  const printed = typeof value === 'string' ? `<<"${value}">>` : Buffer.isBuffer(value) ? `<<"${value.toString('latin1')}">>` : String(value);
  throw new PreconditionFailed(
    `invalid arg 'x-stream-offset' for ${describe(queueName, vhost)}: {invalid_stream_offset_arg,{${type},${printed}}}`,
  );
}

function parseOffset(args: FieldTable, queueName: string, vhost: string, now: number): OffsetSpec | undefined {
  const value = args['x-stream-offset'];
  if (value === undefined) return undefined;
  if (typeof value === 'number' && Number.isInteger(value)) return { kind: 'offset', offset: Math.max(0, value) };
  if (typeof value === 'bigint') return { kind: 'offset', offset: value < 0n ? 0 : Number(value) };
  if (value instanceof Timestamp) return { kind: 'timestamp', ms: value.seconds * 1000 };
  if (typeof value === 'string') {
    if (value === 'first' || value === 'last' || value === 'next') return { kind: value };
    const interval = parseAgeMs(value);
    if (interval !== undefined) return { kind: 'timestamp', ms: now - interval };
  }
  return badOffset(args, value, queueName, vhost);
}

function parseFilter(args: FieldTable, queueName: string, vhost: string): ReadonlySet<string> | null {
  const value = args['x-stream-filter'];
  if (value === undefined) return null;
  if (typeof value === 'string') return new Set([value]);
  if (Array.isArray(value) && value.every((v) => typeof v === 'string')) return new Set(value as string[]);
  throw new PreconditionFailed(
    `invalid arg 'x-stream-filter' for ${describe(queueName, vhost)}: expected a string or an array of strings`,
  );
}

/** Validates and reads a stream consumer's arguments; throws PreconditionFailed on a bad one. */
export function parseStreamConsumeArguments(args: FieldTable, queueName: string, vhost: string, now: number): StreamConsumeArguments {
  const offset = parseOffset(args, queueName, vhost, now);
  const filter = parseFilter(args, queueName, vhost);
  const unfiltered = args['x-stream-match-unfiltered'];
  if (unfiltered !== undefined && typeof unfiltered !== 'boolean') {
    throw new PreconditionFailed(`invalid arg 'x-stream-match-unfiltered' for ${describe(queueName, vhost)}: expected a boolean`);
  }
  const name = args['x-stream-consumer-name'];
  if (name !== undefined && (typeof name !== 'string' || name === '')) {
    throw new PreconditionFailed(`invalid arg 'x-stream-consumer-name' for ${describe(queueName, vhost)}: expected a non-empty string`);
  }
  const single = args['x-single-active-consumer'];
  if (single !== undefined && typeof single !== 'boolean') {
    throw new PreconditionFailed(`invalid arg 'x-single-active-consumer' for ${describe(queueName, vhost)}: expected a boolean`);
  }
  if (single === true && name === undefined) {
    throw new PreconditionFailed(
      `invalid arg 'x-single-active-consumer' for ${describe(queueName, vhost)}: a single active consumer needs a group name in x-stream-consumer-name`,
    );
  }
  return { offset, filter, matchUnfiltered: unfiltered === true, name, singleActive: single === true };
}
