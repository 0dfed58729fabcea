// What quorum queues and streams refuse on the consuming side, with RabbitMQ's codes and texts.
// The channel calls these before acting, so a refused method changes nothing:
//   - a global (channel-wide) prefetch: neither type supports it (540, closes the connection);
//   - streams: a consumer needs a prefetch (406) and manual acknowledgements (540); no basic.get
//     (540), no basic.nack / basic.reject (540); their consume arguments are checked here too.

import { NotImplemented, PreconditionFailed, type AmqpException } from '../../protocol/errors.js';
import type { FieldTable } from '../../protocol/field-table.js';
import { parseStreamConsumeArguments } from '../stream/stream-arguments.js';
import type { UnackedDelivery } from '../unacked.js';
import type { Queue } from './queue.js';

function describe(queue: Queue): string {
  return `queue '${queue.name}' in vhost '${queue.host.name}'`;
}

/** basic.consume on a quorum queue or stream (classic queues have no extra rules). */
export function checkConsume(queue: Queue, noAck: boolean, consumerPrefetch: number, channelPrefetch: number, args: FieldTable): void {
  const type = queue.type;
  if (type === 'classic') return;
  if (type === 'stream') {
    if (consumerPrefetch === 0) throw new PreconditionFailed(`consumer prefetch count is not set for '${describe(queue)}'`);
    if (noAck) throw new NotImplemented(`automatic acknowledgement not supported by stream queues ${describe(queue)}`);
  }
  if (channelPrefetch !== 0) throw new NotImplemented(`${describe(queue)} does not support global qos`);
  if (type === 'stream') parseStreamConsumeArguments(args, queue.name, queue.host.name, Date.now());
}

/** basic.get: streams have nothing to take. */
export function checkGet(queue: Queue): void {
  if (queue.type === 'stream') throw new NotImplemented(`basic.get not supported by stream queues ${describe(queue)}`);
}

/** basic.nack / basic.reject: refused when any of the deliveries came from a stream. */
export function rejectRefusal(deliveries: readonly UnackedDelivery[]): AmqpException | null {
  for (const d of deliveries) {
    const queue = d.entry.queue;
    if (queue.type === 'stream') return new NotImplemented(`basic.nack and basic.reject not supported by stream queues ${describe(queue)}`);
  }
  return null;
}
