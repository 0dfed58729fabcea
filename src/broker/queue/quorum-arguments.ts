// A quorum queue's declare arguments: RabbitMQ's value checks (known-arguments.ts), then the
// settings a quorum queue keeps — the classic ones it shares (TTL, length limits, overflow,
// dead-lettering, single active consumer) plus its own: the delivery limit for poison messages
// and the dead-letter strategy.

import type { Logger } from '../../log.js';
import type { FieldTable } from '../../protocol/field-table.js';
import type { OverflowMode, QueueArguments } from './arguments.js';
import { checkArgumentValues } from './known-arguments.js';

/**
 * Returns to the queue after which a message is dead-lettered (reason delivery_limit) or dropped.
 * 20 as RabbitMQ 4.x (3.10 has no limit unless one is set); a negative x-delivery-limit means none.
 */
export const DEFAULT_DELIVERY_LIMIT = 20;

/** The arguments RabbitMQ lets a quorum queue have (values checked); other known ones are refused. */
export const QUORUM_ARGUMENTS: ReadonlySet<string> = new Set([
  'x-expires',
  'x-message-ttl',
  'x-dead-letter-exchange',
  'x-dead-letter-routing-key',
  'x-max-length',
  'x-max-length-bytes',
  'x-max-in-memory-length',
  'x-max-in-memory-bytes',
  'x-overflow',
  'x-single-active-consumer',
  'x-quorum-initial-group-size',
  'x-queue-leader-locator',
  'x-dead-letter-strategy',
  'x-delivery-limit',
  'x-queue-type',
]);

export type DeadLetterStrategy = 'at-most-once' | 'at-least-once';

export interface QuorumArguments extends QueueArguments {
  /** -1 = unlimited */
  deliveryLimit: number;
  /** at-least-once only when it can apply (a DLX and overflow reject-publish), as RabbitMQ */
  deadLetterStrategy: DeadLetterStrategy;
}

export function parseQuorumArguments(args: FieldTable, queueName: string, vhost: string, log?: Logger): QuorumArguments {
  const check = checkArgumentValues(args, queueName, vhost, QUORUM_ARGUMENTS);
  // RabbitMQ 3.10 does not validate x-delivery-limit: anything but an integer is ignored.
  const limitRaw = args['x-delivery-limit'];
  const deliveryLimit =
    typeof limitRaw === 'number' && Number.isInteger(limitRaw)
      ? Math.max(-1, limitRaw)
      : typeof limitRaw === 'bigint'
        ? Math.max(-1, Number(limitRaw))
        : DEFAULT_DELIVERY_LIMIT;
  let overflow = (check.string('x-overflow') ?? 'drop-head') as OverflowMode;
  if (overflow === 'reject-publish-dlx') {
    // As RabbitMQ: not a quorum queue strategy; it falls back to the default, with a warning.
    log?.warn({ vhost, queue: queueName }, 'x-overflow reject-publish-dlx is not supported by quorum queues; using drop-head');
    overflow = 'drop-head';
  }
  const deadLetterExchange = check.exchangeName('x-dead-letter-exchange');
  let deadLetterStrategy = (check.string('x-dead-letter-strategy') ?? 'at-most-once') as DeadLetterStrategy;
  if (deadLetterStrategy === 'at-least-once' && deadLetterExchange !== undefined && overflow !== 'reject-publish') {
    log?.warn(
      { vhost, queue: queueName },
      'x-dead-letter-strategy at-least-once needs x-overflow reject-publish; dead-lettering at-most-once. Redeclare the queue with x-overflow reject-publish',
    );
    deadLetterStrategy = 'at-most-once';
  }
  return {
    messageTtlMs: check.expiry('x-message-ttl', true),
    expiresMs: check.expiry('x-expires', false),
    maxLength: check.nonNegInt('x-max-length'),
    maxLengthBytes: check.nonNegInt('x-max-length-bytes'),
    overflow,
    deadLetterExchange,
    deadLetterRoutingKey: check.exchangeName('x-dead-letter-routing-key'),
    maxPriority: 0,
    singleActiveConsumer: check.bool('x-single-active-consumer') ?? false,
    queueMode: 'default',
    deliveryLimit,
    deadLetterStrategy,
  };
}
