// Queue figures as RabbitMQ reports them, shared by the management API and the Prometheus families,
// where a queue type's own counters do not mean what RabbitMQ's fields mean.

import type { Queue } from './queue/queue.js';

/**
 * Messages delivered and not yet acknowledged, as RabbitMQ counts them: a stream keeps every
 * message whatever its readers do, so RabbitMQ shows 0 for streams (the whole log counts as
 * ready); classic and quorum queues count their unacked deliveries.
 */
export function unackedOf(queue: Queue): number {
  return queue.type === 'stream' ? 0 : queue.unackedCount;
}
