// The value checks RabbitMQ applies on queue.declare, in its order (rabbit_amqqueue's declare
// argument list), for the arguments a quorum queue or stream supports: a declare is refused for a
// bad value of a supported argument before it is refused for an argument its type does not support.
// Classic queues have their own parser (arguments.ts) with the same checks.

import type { FieldTable } from '../../protocol/field-table.js';
import { ArgumentChecker } from './arguments.js';

const MAX_PRIORITY = 255;
const OVERFLOW_MODES = new Set(['drop-head', 'reject-publish', 'reject-publish-dlx']);
const LEADER_LOCATORS = new Set(['client-local', 'balanced', 'random', 'least-leaders']);
const DEAD_LETTER_STRATEGIES = new Set(['at-most-once', 'at-least-once']);

/** x-max-age and interval offsets: a positive integer and one unit letter (Y M D h m s), as RabbitMQ. */
const AGE_UNIT_MS: Record<string, number> = {
  Y: 365 * 24 * 3600_000,
  M: 30 * 24 * 3600_000,
  D: 24 * 3600_000,
  h: 3600_000,
  m: 60_000,
  s: 1000,
};

/** Milliseconds of a RabbitMQ age string ("7D", "1h", "30m"), or undefined when it is not one. */
export function parseAgeMs(text: string): number | undefined {
  const m = /^([0-9]+)([YMDhms])$/.exec(text);
  if (m === null) return undefined;
  const n = Number(m[1]);
  if (n <= 0 || !Number.isSafeInteger(n)) return undefined;
  return n * AGE_UNIT_MS[m[2]!]!;
}

/** One value check per argument, in RabbitMQ's order. */
const VALUE_CHECKS: readonly [string, (check: ArgumentChecker, key: string) => void][] = [
  ['x-expires', (c, k) => c.expiry(k, false)],
  ['x-message-ttl', (c, k) => c.expiry(k, true)],
  ['x-dead-letter-exchange', (c, k) => c.exchangeName(k)],
  [
    'x-dead-letter-routing-key',
    (c, k) => {
      if (c.routingKey(k) !== undefined && c.exchangeName('x-dead-letter-exchange') === undefined) c.fail(k, 'routing_key_but_no_dlx_defined');
    },
  ],
  ['x-max-length', (c, k) => c.nonNegInt(k)],
  ['x-max-length-bytes', (c, k) => c.nonNegInt(k)],
  ['x-max-in-memory-length', (c, k) => c.nonNegInt(k)],
  ['x-max-in-memory-bytes', (c, k) => c.nonNegInt(k)],
  [
    'x-max-priority',
    (c, k) => {
      const priority = c.nonNegInt(k);
      if (priority !== undefined && priority > MAX_PRIORITY) c.fail(k, `{max_value_exceeded,${priority}}`);
    },
  ],
  [
    'x-overflow',
    (c, k) => {
      const overflow = c.string(k);
      if (overflow !== undefined && !OVERFLOW_MODES.has(overflow)) c.fail(k, 'invalid_overflow');
    },
  ],
  ['x-single-active-consumer', (c, k) => c.bool(k)],
  ['x-quorum-initial-group-size', positiveSize],
  [
    'x-max-age',
    (c, k) => {
      const age = c.string(k);
      if (age !== undefined && parseAgeMs(age) === undefined) c.fail(k, 'invalid_max_age');
    },
  ],
  ['x-stream-max-segment-size-bytes', (c, k) => c.nonNegInt(k)],
  ['x-initial-cluster-size', positiveSize],
  [
    'x-queue-leader-locator',
    (c, k) => {
      const locator = c.string(k);
      if (locator !== undefined && !LEADER_LOCATORS.has(locator)) c.fail(k, 'invalid_queue_locator_arg');
    },
  ],
  [
    'x-dead-letter-strategy',
    (c, k) => {
      const strategy = c.string(k);
      if (strategy !== undefined && !DEAD_LETTER_STRATEGIES.has(strategy)) c.fail(k, 'invalid_dlx_strategy');
    },
  ],
];

/**
 * Checks the values of the arguments a queue type supports (others are refused afterwards, by
 * name, without looking at their value — RabbitMQ's order). Returns the checker for reading them.
 */
export function checkArgumentValues(args: FieldTable, queueName: string, vhost: string, supported: ReadonlySet<string>): ArgumentChecker {
  const check = new ArgumentChecker(args, queueName, vhost);
  for (const [key, run] of VALUE_CHECKS) if (supported.has(key) && args[key] !== undefined) run(check, key);
  return check;
}

/** Cluster sizes: a non-negative integer that is not zero. */
function positiveSize(check: ArgumentChecker, key: string): void {
  const n = check.nonNegInt(key);
  if (n === 0) check.fail(key, '{value_zero,0}');
}
