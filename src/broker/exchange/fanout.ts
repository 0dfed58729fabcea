// Fanout exchange: a message goes to every binding; routing keys are ignored.

import type { Binding, Destination } from '../binding.js';
import type { Message } from '../message.js';
import { Exchange, removeFromArray } from './exchange.js';

export class FanoutExchange extends Exchange {
  readonly type = 'fanout';
  override readonly routesByKey = true;
  private readonly destinations: Destination[] = [];

  protected indexBinding(binding: Binding): void {
    this.destinations.push(binding.destination);
  }

  protected unindexBinding(binding: Binding): void {
    removeFromArray(this.destinations, binding.destination);
  }

  route(_routingKey: string, _message: Message, out: Destination[]): void {
    const list = this.destinations;
    for (let i = 0; i < list.length; i++) out.push(list[i]!);
  }
}
