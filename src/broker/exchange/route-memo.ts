// The queues one routing key reached through one exchange, remembered where the publish path already
// is: on the publish decoder's entry for the exchange and routing-key bytes (protocol/publish-decoder.ts).
// A topic publisher cycling through many keys finds that entry with one hash lookup per message;
// without the memo, the exchange then looked the key up again in its own route cache. With it, the
// exchange's match, its cache and the router's repeat scan are skipped for a key seen before.
//
// Safe because the memo is used only when all of these hold, checked on every use:
// - the exchange is the very object it was made for (a deleted exchange declared again with the
//   same name is a new object; the same name in another vhost is another object);
// - the exchange's routeVersion is the one it was made at: the exchange bumps it on every bind and
//   unbind, which includes the unbinds of a deleted queue and of a deleted exchange;
// - the exchange routes by routing key and bindings alone (routesByKey: direct, fanout, topic — not
//   headers, whose answer depends on the message, nor the default exchange, which looks queues up
//   by name);
// - there are no CC/BCC keys (the caller passes none then), and the exchange's own match held only
//   queues (no exchange-to-exchange bindings to follow, whose bindings this version does not cover);
// - an empty answer is used only while the exchange has no alternate exchange (a policy can set
//   one without any binding changing).

import type { Queue } from '../queue/queue.js';
import type { Exchange } from './exchange.js';

const NO_QUEUES: readonly Queue[] = [];

export class RouteMemo {
  private exchange: Exchange | null = null;
  private version = 0;
  private queues: readonly Queue[] = NO_QUEUES;

  /** The queues remembered for this exchange, or null when they may have changed (route again). */
  queuesFor(exchange: Exchange): readonly Queue[] | null {
    if (this.exchange !== exchange || this.version !== exchange.routeVersion) return null;
    const queues = this.queues;
    if (queues.length === 0 && exchange.alternateExchange !== undefined) return null;
    return queues;
  }

  /**
   * Remembers what routing through exchange answered (queues only, repeats dropped, no CC/BCC).
   * Takes its own copy: the caller's list is reused by the next message.
   */
  remember(exchange: Exchange, queues: readonly Queue[]): void {
    if (!exchange.routesByKey) return;
    this.exchange = exchange;
    this.version = exchange.routeVersion;
    this.queues = queues.length === 0 ? NO_QUEUES : queues.slice();
  }
}

/**
 * The route memo kept on a publish's decoded names (protocol/publish-decoder.ts), made on first
 * use. Only this function writes the slot, so what it holds is a RouteMemo.
 */
export function routeMemoOf(names: { routeMemo: unknown }): RouteMemo {
  return (names.routeMemo ??= new RouteMemo()) as RouteMemo;
}
