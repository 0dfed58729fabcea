// Routing one message from an exchange to the set of queues it reaches: the exchange's own match,
// exchange-to-exchange bindings followed through a worklist with a seen-set (so cycles end and each
// queue is reached once), an exchange's alternate exchange when it matched nothing, and the extra
// routing keys of the CC and BCC headers. Scratch collections are reused between messages.

import type { Destination } from './binding.js';
import type { Exchange } from './exchange/exchange.js';
import type { Message } from './message.js';
import type { Queue } from './queue/queue.js';
import type { RouteMemo } from './exchange/route-memo.js';

export class Router {
  private readonly queues = new Set<Queue>();
  private readonly seen = new Set<Exchange>();
  private readonly work: Exchange[] = [];
  private readonly scratch: Destination[] = [];

  constructor(private readonly findExchange: (name: string) => Exchange | undefined) {}

  /** The answer of routeList(), reused by the next call. */
  private readonly list: Queue[] = [];

  /**
   * Queues the message reaches. The returned set is reused by the next call: consume it first.
   * extraKeys are the CC/BCC routing keys (or null).
   */
  route(exchange: Exchange, routingKey: string, extraKeys: readonly string[] | null, message: Message): Set<Queue> {
    this.scratch.length = 0;
    exchange.route(routingKey, message, this.scratch);
    return this.routeFrom(exchange, routingKey, extraKeys, message);
  }

  /**
   * The publish hot path's route(): the same queues in the same order, as a list that the next
   * call reuses (consume it first, and never change it: it may be the memo's own list). memo is
   * the publish decoder's memo for this exchange and routing key, or null.
   */
  routeList(exchange: Exchange, routingKey: string, extraKeys: readonly string[] | null, message: Message, memo: RouteMemo | null = null): readonly Queue[] {
    if (memo !== null && extraKeys === null) {
      // The queues this key reached last time, when nothing they depend on changed (RouteMemo).
      const remembered = memo.queuesFor(exchange);
      if (remembered !== null) return remembered;
    }
    const { scratch, list } = this;
    // pop() instead of length = 0: these lists hold a few entries, and a length store is slower.
    while (scratch.length > 0) scratch.pop();
    while (list.length > 0) list.pop();
    exchange.route(routingKey, message, scratch);
    if (extraKeys === null) {
      if (scratch.length === 0 ? exchange.alternateExchange === undefined : this.queuesOnly(scratch)) {
        if (memo !== null) memo.remember(exchange, list);
        return list;
      }
    }
    for (const q of this.routeFrom(exchange, routingKey, extraKeys, message)) list.push(q);
    return list;
  }

  /**
   * Fast path of routeList(): when the exchange matched only queues, a few of them, and there are
   * no CC/BCC keys, the answer is those queues without repeats — no exchange bindings to follow,
   * and no alternate exchange (it applies only when nothing matched). The worklist, seen-set and
   * result set of routeFrom() are skipped; repeats (a queue bound twice) are dropped by a scan of
   * the short list, keeping the first, as the set does. Returns false to take the general path.
   * (Its sibling in routeList(): a message the exchange matched nothing for, with no CC/BCC keys
   * and no alternate exchange, reaches nothing — the empty list at once, without routeFrom()'s
   * sets; a topic exchange can leave a share of the routing keys it sees unmatched.)
   */
  private queuesOnly(scratch: readonly Destination[]): boolean {
    const n = scratch.length;
    if (n === 0 || n > 16) return false;
    const list = this.list;
    for (let i = 0; i < n; i++) {
      const d = scratch[i]!;
      if (d.kind !== 'queue') {
        list.length = 0;
        return false;
      }
      let repeat = false;
      for (let j = 0; j < list.length; j++) {
        if (list[j] === d) {
          repeat = true;
          break;
        }
      }
      if (!repeat) list.push(d);
    }
    return true;
  }

  /** route() once the exchange's own match for routingKey is in scratch. */
  private routeFrom(exchange: Exchange, routingKey: string, extraKeys: readonly string[] | null, message: Message): Set<Queue> {
    const { queues, seen, work, scratch } = this;
    queues.clear();
    seen.clear();
    work.length = 0;
    seen.add(exchange);
    let ex: Exchange | undefined = exchange;
    for (let first = true; ex !== undefined; first = false, ex = work.pop()) {
      if (!first) {
        scratch.length = 0;
        ex.route(routingKey, message, scratch);
      }
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
