// The default exchange (empty name): routes to the queue named by the routing key. It cannot be
// bound, unbound or deleted; the vhost resolves the queue, so this type holds no bindings.

import type { Binding, Destination } from '../binding.js';
import type { Message } from '../message.js';
import type { Queue } from '../queue/queue.js';
import { Exchange } from './exchange.js';

export class DefaultExchange extends Exchange {
  readonly type = 'direct';

  constructor(
    vhost: string,
    private readonly queues: ReadonlyMap<string, Queue>,
  ) {
    super(vhost, '', { durable: true, autoDelete: false, internal: false, args: {} });
  }

  protected indexBinding(_binding: Binding): void {
    throw new Error('the default exchange holds no bindings');
  }

  protected unindexBinding(_binding: Binding): void {}

  route(routingKey: string, _message: Message, out: Destination[]): void {
    const queue = this.queues.get(routingKey);
    if (queue !== undefined) out.push(queue);
  }
}
