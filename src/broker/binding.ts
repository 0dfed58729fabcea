// A binding from a source exchange to a destination queue or exchange. Its identity is
// (source, destination, routing key, arguments), as on RabbitMQ: binding twice is a no-op and the
// same destination may be bound with several keys or argument tables.

import type { FieldTable } from '../protocol/field-table.js';
import { canonicalFieldKey } from './field-equality.js';
import type { Exchange } from './exchange/exchange.js';
import type { Queue } from './queue/queue.js';

export type Destination = Queue | Exchange;

export class Binding {
  /** identity among the source exchange's bindings */
  readonly key: string;
  /** id in the store while durable (0 = not stored) */
  storeId = 0;

  constructor(
    readonly source: Exchange,
    readonly destination: Destination,
    readonly routingKey: string,
    readonly args: FieldTable,
  ) {
    this.key = Binding.keyOf(destination, routingKey, args);
  }

  static keyOf(destination: Destination, routingKey: string, args: FieldTable): string {
    return `${destination.kind}\u0000${destination.name}\u0000${routingKey}\u0000${canonicalFieldKey(args)}`;
  }
}
