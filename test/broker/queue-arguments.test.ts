// Queue-argument parsing, table-driven: each row is a declare's arguments and either the typed
// settings they give or RabbitMQ's exact 406 text (the texts are the ones the end-to-end tests
// check against RabbitMQ 3.10). Plus the redeclare equivalence rules.

import { describe, expect, it } from 'vitest';
import { assertEquivalentArguments, parseQueueArguments, QUEUE_COMPARED_ARGS, type QueueArguments } from '../../src/broker/queue/arguments.js';
import type { FieldTable } from '../../src/protocol/field-table.js';

const Q = "queue 'q' in vhost '/'";
const invalid = (key: string, detail: string): string => `PRECONDITION_FAILED - invalid arg '${key}' for ${Q}: ${detail}`;

const DEFAULTS: QueueArguments = {
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

const ACCEPTED: [string, FieldTable, Partial<QueueArguments>][] = [
  ['no arguments', {}, {}],
  ['x-message-ttl 0 (deliver now or expire)', { 'x-message-ttl': 0 }, { messageTtlMs: 0 }],
  ['x-message-ttl as a long', { 'x-message-ttl': 60_000n }, { messageTtlMs: 60_000 }],
  ['x-expires', { 'x-expires': 1000 }, { expiresMs: 1000 }],
  ['x-max-length 0', { 'x-max-length': 0 }, { maxLength: 0 }],
  ['x-max-length-bytes', { 'x-max-length-bytes': 1024 }, { maxLengthBytes: 1024 }],
  ['x-overflow reject-publish', { 'x-overflow': 'reject-publish' }, { overflow: 'reject-publish' }],
  ['x-overflow reject-publish-dlx', { 'x-overflow': 'reject-publish-dlx' }, { overflow: 'reject-publish-dlx' }],
  ['dead-letter exchange and key', { 'x-dead-letter-exchange': 'dlx', 'x-dead-letter-routing-key': 'k' }, { deadLetterExchange: 'dlx', deadLetterRoutingKey: 'k' }],
  ['dead-letter to the default exchange', { 'x-dead-letter-exchange': '' }, { deadLetterExchange: '' }],
  ['x-max-priority 255', { 'x-max-priority': 255 }, { maxPriority: 255 }],
  ['x-single-active-consumer', { 'x-single-active-consumer': true }, { singleActiveConsumer: true }],
  ['x-queue-mode lazy', { 'x-queue-mode': 'lazy' }, { queueMode: 'lazy' }],
  ['x-queue-type classic', { 'x-queue-type': 'classic' }, {}],
  ['x-queue-version 2', { 'x-queue-version': 2 }, {}],
  ['x-consumer-timeout', { 'x-consumer-timeout': 60_000 }, { consumerTimeoutMs: 60_000 }],
  ['unknown arguments are kept and ignored', { 'x-whatever': 'x', foo: 1 }, {}],
];

const REFUSED: [string, FieldTable, string][] = [
  ['x-message-ttl negative', { 'x-message-ttl': -1 }, invalid('x-message-ttl', '{value_negative,-1}')],
  ['x-message-ttl as a string', { 'x-message-ttl': '1000' }, invalid('x-message-ttl', '"expected integer, got longstr"')],
  ['x-message-ttl as a double', { 'x-message-ttl': 1.5 }, invalid('x-message-ttl', '"expected integer, got double"')],
  ['x-expires 0', { 'x-expires': 0 }, invalid('x-expires', '{value_zero,0}')],
  ['x-expires too large', { 'x-expires': 315_360_000_001 }, invalid('x-expires', '{value_too_large,315360000001}')],
  ['x-max-length negative', { 'x-max-length': -1 }, invalid('x-max-length', '{value_negative,-1}')],
  ['x-max-priority above 255', { 'x-max-priority': 256 }, invalid('x-max-priority', '{max_value_exceeded,256}')],
  ['x-overflow unknown', { 'x-overflow': 'drop-tail' }, invalid('x-overflow', 'invalid_overflow')],
  ['x-overflow not a string', { 'x-overflow': 1 }, invalid('x-overflow', '{unacceptable_type,signedint}')],
  ['a routing key without an exchange', { 'x-dead-letter-routing-key': 'k' }, invalid('x-dead-letter-routing-key', 'routing_key_but_no_dlx_defined')],
  ['a dead-letter exchange that is not a string', { 'x-dead-letter-exchange': 1 }, `PRECONDITION_FAILED - invalid type 'signedint' for arg 'x-dead-letter-exchange' in ${Q}`],
  ['x-queue-mode unknown', { 'x-queue-mode': 'eager' }, invalid('x-queue-mode', `"unsupported queue mode 'eager'"`)],
  ['x-queue-type unknown', { 'x-queue-type': 'bogus' }, invalid('x-queue-type', `"unsupported queue type 'bogus'"`)],
  ['x-single-active-consumer not a bool', { 'x-single-active-consumer': 1 }, invalid('x-single-active-consumer', '{unacceptable_type,signedint}')],
  ['x-queue-version 3', { 'x-queue-version': 3 }, invalid('x-queue-version', '{invalid_queue_version,3}')],
  ['x-consumer-timeout negative', { 'x-consumer-timeout': -1 }, invalid('x-consumer-timeout', '{value_negative,-1}')],
  ['a quorum-queue argument on a classic queue', { 'x-delivery-limit': 5 }, `PRECONDITION_FAILED - invalid arg 'x-delivery-limit' for ${Q} of queue type rabbit_classic_queue`],
];

describe('parseQueueArguments', () => {
  it.each(ACCEPTED)('%s', (_name, args, expected) => {
    expect(parseQueueArguments(args, 'q', '/')).toEqual({ ...DEFAULTS, ...expected });
  });

  it.each(REFUSED)('%s → 406', (_name, args, text) => {
    let thrown: unknown;
    try {
      parseQueueArguments(args, 'q', '/');
    } catch (err) {
      thrown = err;
    }
    expect(thrown, 'a 406').toMatchObject({ replyCode: 406, replyText: text });
  });
});

describe('assertEquivalentArguments (redeclare)', () => {
  const check = (current: FieldTable, received: FieldTable): string | null => {
    try {
      assertEquivalentArguments(current, received, QUEUE_COMPARED_ARGS, Q);
      return null;
    } catch (err) {
      return (err as { replyText: string }).replyText;
    }
  };

  it.each([
    ['same arguments', { 'x-max-length': 10 }, { 'x-max-length': 10 }, null],
    ['integer widths do not matter', { 'x-max-length': 10n }, { 'x-max-length': 10 }, null],
    ['arguments not compared by RabbitMQ are ignored', { foo: 1 }, { foo: 2 }, null],
    ["'classic' equals none", {}, { 'x-queue-type': 'classic' }, null],
    ["none equals 'classic'", { 'x-queue-type': 'classic' }, {}, null],
    ['different values', { 'x-message-ttl': 60_000 }, { 'x-message-ttl': 30_000 }, `PRECONDITION_FAILED - inequivalent arg 'x-message-ttl' for ${Q}: received '30000' but current is '60000'`],
    ['missing now', { 'x-message-ttl': 60_000 }, {}, `PRECONDITION_FAILED - inequivalent arg 'x-message-ttl' for ${Q}: received none but current is the value '60000' of type 'signedint'`],
    ["'classic' against another type", { 'x-queue-type': 'quorum' }, { 'x-queue-type': 'classic' }, `PRECONDITION_FAILED - inequivalent arg 'x-queue-type' for ${Q}: received 'classic' but current is 'quorum'`],
  ] as [string, FieldTable, FieldTable, string | null][])('%s', (_name, current, received, text) => {
    expect(check(current, received)).toBe(text);
  });
});
