// Routing one message from an exchange to the set of queues it reaches: the exchange's own match,
// exchange-to-exchange bindings followed through a worklist with a seen-set (so cycles end and each
// queue is reached once), an exchange's alternate exchange when it matched nothing, and the extra
// routing keys of the CC and BCC headers. Scratch collections are reused between messages.

import type { Destination } from './binding.js';
import type { Exchange } from './exchange/exchange.js';
import type { Message } from './message.js';
import type { Queue } from './queue/queue.js';

export class Router {
  private readonly queues = new Set<Queue>();
  private readonly seen = new Set<Exchange>();
  private readonly work: Exchange[] = [];
  private readonly scratch: Destination[] = [];

  constructor(private readonly findExchange: (name: string) => Exchange | undefined) {}

  /**
   * Queues the message reaches. The returned set is reused by the next call: consume it first.
   * extraKeys are the CC/BCC routing keys (or null).
   */
  route(exchange: Exchange, routingKey: string, extraKeys: readonly string[] | null, message: Message): Set<Queue> {
    const { queues, seen, work, scratch } = this;
    queues.clear();
    seen.clear();
    work.length = 0;
    seen.add(exchange);
    work.push(exchange);
    while (work.length > 0) {
      const ex = work.pop()!;
      scratch.length = 0;
      ex.route(routingKey, message, scratch);
      if (extraKeys !== null) for (const key of extraKeys) ex.route(key, message, scratch);
      if (scratch.length === 0) {
        const aeName = ex.alternateExchange;
        if (aeName !== undefined) {
          const ae = this.findExchange(aeName);
          if (ae !== undefined && !seen.has(ae)) {
            seen.add(ae);
            work.push(ae);
          }
        }
        continue;
      }
      for (let i = 0; i < scratch.length; i++) {
        const d = scratch[i]!;
        if (d.kind === 'queue') queues.add(d);
        else if (!seen.has(d)) {
          seen.add(d);
          work.push(d);
        }
      }
    }
    return queues;
  }
}
