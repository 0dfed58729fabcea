// The exchange types Warren knows, by the name clients declare them with.

import { DirectExchange } from './direct.js';
import type { Exchange, ExchangeOptions } from './exchange.js';
import { FanoutExchange } from './fanout.js';
import { HeadersExchange } from './headers.js';
import { TopicExchange } from './topic.js';
import { DELAYED_TYPE, DelayedMessageExchange } from './delayed.js';

type ExchangeConstructor = new (vhost: string, name: string, options: ExchangeOptions) => Exchange;

const TYPES = new Map<string, ExchangeConstructor>([
  ['direct', DirectExchange],
  ['fanout', FanoutExchange],
  ['topic', TopicExchange],
  ['headers', HeadersExchange],
]);

const ROUTING_TYPES: ReadonlySet<string> = new Set(TYPES.keys());

export function isKnownExchangeType(type: string): boolean {
  return TYPES.has(type) || type === DELAYED_TYPE;
}

export function createExchange(type: string, vhost: string, name: string, options: ExchangeOptions): Exchange {
  if (type === DELAYED_TYPE) return new DelayedMessageExchange(vhost, name, options, createExchange, ROUTING_TYPES);
  const ctor = TYPES.get(type);
  if (ctor === undefined) throw new Error(`unknown exchange type ${type}`);
  return new ctor(vhost, name, options);
}
