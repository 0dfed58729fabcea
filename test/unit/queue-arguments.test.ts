// queue.declare argument validation (src/broker/queue/arguments.ts) with the wire types a client
// sends: every row's outcome — accepted with these settings, or refused with this exact 406 text —
// was measured on RabbitMQ 3.10 with amqplib (which sends small integers as byte/short, fractions as
// double, strings as longstr). x-consumer-timeout is Warren's own check: RabbitMQ 3.10 ignores
// that argument whatever its value.

import { describe, expect, it } from 'vitest';
import { parseQueueArguments, type QueueArguments } from '../../src/broker/queue/arguments.js';
import { PreconditionFailed } from '../../src/protocol/errors.js';
import { encodeTable, readTable, TypedValue, type FieldTable } from '../../src/protocol/field-table.js';

/** A table as the broker gets it off the wire: encoded with these type letters, decoded with types recorded. */
function wire(fields: Record<string, TypedValue | string | boolean>): FieldTable {
  const buf = encodeTable(fields as FieldTable);
  return readTable(buf, 0, buf.length, true)[0];
}
const byte = (n: number) => new TypedValue('b', n);
const short = (n: number) => new TypedValue('s', n);
const int = (n: number) => new TypedValue('I', n);
const long = (n: number) => new TypedValue('l', n);
const double = (n: number) => new TypedValue('d', n);

const Q = "queue 'q' in vhost '/'";
const invalid = (key: string, detail: string): string => `PRECONDITION_FAILED - invalid arg '${key}' for ${Q}: ${detail}`;

function refusal(args: FieldTable): { code: number; text: string } | 'accepted' {
  try {
    parseQueueArguments(args, 'q', '/');
    return 'accepted';
  } catch (err) {
    if (!(err instanceof PreconditionFailed)) throw err;
    return { code: err.replyCode, text: err.replyText };
  }
}

const ACCEPTED: [string, FieldTable, Partial<QueueArguments>][] = [
  ['x-message-ttl 0', wire({ 'x-message-ttl': byte(0) }), { messageTtlMs: 0 }],
  ['x-message-ttl 1000', wire({ 'x-message-ttl': short(1000) }), { messageTtlMs: 1000 }],
  ['x-message-ttl at the limit (ten years)', wire({ 'x-message-ttl': long(315_360_000_000) }), { messageTtlMs: 315_360_000_000 }],
  ['x-expires 1000', wire({ 'x-expires': short(1000) }), { expiresMs: 1000 }],
  ['x-expires 2^32', wire({ 'x-expires': long(4_294_967_296) }), { expiresMs: 4_294_967_296 }],
  ['x-max-length 0', wire({ 'x-max-length': byte(0) }), { maxLength: 0 }],
  ['x-max-length 10', wire({ 'x-max-length': byte(10) }), { maxLength: 10 }],
  ['x-max-length-bytes 1024', wire({ 'x-max-length-bytes': short(1024) }), { maxLengthBytes: 1024 }],
  ['x-overflow drop-head', wire({ 'x-overflow': 'drop-head' }), { overflow: 'drop-head' }],
  ['x-overflow reject-publish', wire({ 'x-overflow': 'reject-publish' }), { overflow: 'reject-publish' }],
  ['x-overflow reject-publish-dlx', wire({ 'x-overflow': 'reject-publish-dlx' }), { overflow: 'reject-publish-dlx' }],
  ['x-dead-letter-exchange dlx', wire({ 'x-dead-letter-exchange': 'dlx' }), { deadLetterExchange: 'dlx' }],
  ['x-dead-letter-exchange "" (the default exchange)', wire({ 'x-dead-letter-exchange': '' }), { deadLetterExchange: '' }],
  [
    'dead-letter exchange and routing key',
    wire({ 'x-dead-letter-exchange': 'dlx', 'x-dead-letter-routing-key': 'rk' }),
    { deadLetterExchange: 'dlx', deadLetterRoutingKey: 'rk' },
  ],
  ['x-max-priority 0', wire({ 'x-max-priority': byte(0) }), { maxPriority: 0 }],
  ['x-max-priority 10', wire({ 'x-max-priority': byte(10) }), { maxPriority: 10 }],
  ['x-max-priority 255', wire({ 'x-max-priority': short(255) }), { maxPriority: 255 }],
  ['x-queue-type classic', wire({ 'x-queue-type': 'classic' }), {}],
  ['x-consumer-timeout 60000 (Warren)', wire({ 'x-consumer-timeout': int(60_000) }), { consumerTimeoutMs: 60_000 }],
  ['x-consumer-timeout 0 (Warren: no limit for this queue)', wire({ 'x-consumer-timeout': byte(0) }), { consumerTimeoutMs: 0 }],
];

const REFUSED: [string, FieldTable, string][] = [
  ['x-message-ttl a string', wire({ 'x-message-ttl': 'abc' }), invalid('x-message-ttl', '"expected integer, got longstr"')],
  ['x-message-ttl a double', wire({ 'x-message-ttl': double(1.5) }), invalid('x-message-ttl', '"expected integer, got double"')],
  ['x-message-ttl a bool', wire({ 'x-message-ttl': true }), invalid('x-message-ttl', '"expected integer, got bool"')],
  ['x-message-ttl negative', wire({ 'x-message-ttl': byte(-1) }), invalid('x-message-ttl', '{value_negative,-1}')],
  ['x-message-ttl over ten years', wire({ 'x-message-ttl': long(315_360_000_001) }), invalid('x-message-ttl', '{value_too_large,315360000001}')],
  ['x-message-ttl 2^32 seconds', wire({ 'x-message-ttl': long(4_294_967_296_000) }), invalid('x-message-ttl', '{value_too_large,4294967296000}')],
  ['x-expires 0', wire({ 'x-expires': byte(0) }), invalid('x-expires', '{value_zero,0}')],
  ['x-expires negative', wire({ 'x-expires': byte(-5) }), invalid('x-expires', '{value_negative,-5}')],
  ['x-expires a string', wire({ 'x-expires': 'x' }), invalid('x-expires', '"expected integer, got longstr"')],
  ['x-expires a double', wire({ 'x-expires': double(1.5) }), invalid('x-expires', '"expected integer, got double"')],
  ['x-expires over ten years', wire({ 'x-expires': long(315_360_000_001) }), invalid('x-expires', '{value_too_large,315360000001}')],
  ['x-max-length negative', wire({ 'x-max-length': byte(-1) }), invalid('x-max-length', '{value_negative,-1}')],
  ['x-max-length a string', wire({ 'x-max-length': 'x' }), invalid('x-max-length', '"expected integer, got longstr"')],
  ['x-max-length a double', wire({ 'x-max-length': double(2.5) }), invalid('x-max-length', '"expected integer, got double"')],
  ['x-max-length-bytes negative', wire({ 'x-max-length-bytes': byte(-1) }), invalid('x-max-length-bytes', '{value_negative,-1}')],
  ['x-max-length-bytes a bool', wire({ 'x-max-length-bytes': true }), invalid('x-max-length-bytes', '"expected integer, got bool"')],
  ['x-overflow unknown', wire({ 'x-overflow': 'nope' }), invalid('x-overflow', 'invalid_overflow')],
  ['x-overflow a number', wire({ 'x-overflow': byte(5) }), invalid('x-overflow', '{unacceptable_type,byte}')],
  ['x-dead-letter-exchange a number', wire({ 'x-dead-letter-exchange': byte(5) }), `PRECONDITION_FAILED - invalid type 'byte' for arg 'x-dead-letter-exchange' in ${Q}`],
  ['x-dead-letter-routing-key without an exchange', wire({ 'x-dead-letter-routing-key': 'rk' }), invalid('x-dead-letter-routing-key', 'routing_key_but_no_dlx_defined')],
  ['x-dead-letter-routing-key a number', wire({ 'x-dead-letter-routing-key': byte(7) }), invalid('x-dead-letter-routing-key', '{unacceptable_type,byte}')],
  [
    'x-dead-letter-routing-key a number, with an exchange',
    wire({ 'x-dead-letter-exchange': 'dlx', 'x-dead-letter-routing-key': byte(7) }),
    invalid('x-dead-letter-routing-key', '{unacceptable_type,byte}'),
  ],
  ['x-max-priority 256', wire({ 'x-max-priority': short(256) }), invalid('x-max-priority', '{max_value_exceeded,256}')],
  ['x-max-priority negative', wire({ 'x-max-priority': byte(-1) }), invalid('x-max-priority', '{value_negative,-1}')],
  ['x-max-priority a string', wire({ 'x-max-priority': 'x' }), invalid('x-max-priority', '"expected integer, got longstr"')],
  ['x-queue-type unknown', wire({ 'x-queue-type': 'nope' }), invalid('x-queue-type', `"unsupported queue type 'nope'"`)],
  ['x-queue-type a number', wire({ 'x-queue-type': byte(5) }), invalid('x-queue-type', '{unacceptable_type,byte}')],
  // Two bad arguments: RabbitMQ names x-max-length before x-max-priority.
  ['x-max-length and x-max-priority both bad', wire({ 'x-max-priority': short(300), 'x-max-length': 'x' }), invalid('x-max-length', '"expected integer, got longstr"')],
  ['x-max-priority and x-max-length both bad', wire({ 'x-max-priority': short(300), 'x-max-length': byte(-1) }), invalid('x-max-length', '{value_negative,-1}')],
  // Warren only (RabbitMQ 3.10 ignores x-consumer-timeout):
  ['x-consumer-timeout negative (Warren)', wire({ 'x-consumer-timeout': byte(-1) }), invalid('x-consumer-timeout', '{value_negative,-1}')],
  ['x-consumer-timeout a string (Warren)', wire({ 'x-consumer-timeout': 'x' }), invalid('x-consumer-timeout', '"expected integer, got longstr"')],
];

describe('queue arguments as RabbitMQ 3.10 checks them', () => {
  it.each(ACCEPTED)('%s: accepted', (_name, args, settings) => {
    expect(refusal(args)).toBe('accepted');
    expect(parseQueueArguments(args, 'q', '/')).toMatchObject(settings);
  });

  it.each(REFUSED)('%s: 406 with RabbitMQ\'s text', (_name, args, text) => {
    expect(refusal(args)).toEqual({ code: 406, text });
  });
});
