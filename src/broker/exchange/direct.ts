// Direct exchange: a message goes to the bindings whose key equals its routing key.

import type { Binding, Destination } from '../binding.js';
import type { Message } from '../message.js';
import { Exchange, removeFromArray } from './exchange.js';

export class DirectExchange extends Exchange {
  readonly type = 'direct';
  override readonly routesByKey = true;
  private readonly byKey = new Map<string, Destination[]>();

  protected indexBinding(binding: Binding): void {
    const list = this.byKey.get(binding.routingKey);
    if (list) list.push(binding.destination);
    else this.byKey.set(binding.routingKey, [binding.destination]);
  }

  protected unindexBinding(binding: Binding): void {
    const list = this.byKey.get(binding.routingKey);
    if (!list) return;
    removeFromArray(list, binding.destination);
    if (list.length === 0) this.byKey.delete(binding.routingKey);
  }

  route(routingKey: string, _message: Message, out: Destination[]): void {
    const list = this.byKey.get(routingKey);
    if (list === undefined) return;
    for (let i = 0; i < list.length; i++) out.push(list[i]!);
  }
}
