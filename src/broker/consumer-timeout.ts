// RabbitMQ's consumer timeout: a channel whose oldest unacknowledged delivery has waited longer
// than its queue's x-consumer-timeout (or the broker's --consumer-timeout; 0 = no limit) is closed
// with 406 and RabbitMQ's text. The connection checks its channels once a second (LIMITS_CHECK_MS);
// the rule lives here, the channel only asks and closes.

import { PreconditionFailed } from '../protocol/errors.js';
import { LIMITS_CHECK_MS } from './resources.js';
import type { UnackedDelivery } from './unacked.js';

/**
 * The timeout (ms) the oldest unacked delivery has exceeded at nowMs, or 0 when it has not (or
 * there is no limit). deliveredAt comes from a coarse clock up to one tick early, so one tick of
 * grace keeps a delivery from timing out before its due.
 */
export function exceededConsumerTimeout(oldest: UnackedDelivery, nowMs: number, brokerTimeoutMs: number): number {
  const timeoutMs = oldest.entry.queue.options.consumerTimeoutMs ?? brokerTimeoutMs;
  if (timeoutMs === 0) return 0;
  return nowMs - oldest.deliveredAt > timeoutMs + LIMITS_CHECK_MS ? timeoutMs : 0;
}

/** RabbitMQ's channel error for a timed-out delivery. */
export function consumerTimeoutError(channelId: number, timeoutMs: number): PreconditionFailed {
  return new PreconditionFailed(
    `delivery acknowledgement on channel ${channelId} timed out. Timeout value used: ${timeoutMs} ms. This timeout value can be configured, see consumers doc guide to learn more`,
  );
}
