// What every exchange type shares: identity, flags, arguments, its bindings as a source and as a
// destination, and the routing contract. Each type keeps its own index of bindings (one file per
// type) and pushes the destinations a message reaches into a caller's reused array.

import type { FieldTable } from '../../protocol/field-table.js';
import type { Binding, Destination } from '../binding.js';
import type { Message } from '../message.js';
import type { LevelCounts } from '../../store/records.js';
import { NO_POLICY, policyAlternateExchange, type AppliedPolicy } from '../policies.js';

export interface ExchangeOptions {
  durable: boolean;
  autoDelete: boolean;
  internal: boolean;
  args: FieldTable;
}

export abstract class Exchange {
  readonly kind = 'exchange' as const;
  abstract readonly type: string;
  readonly durable: boolean;
  readonly autoDelete: boolean;
  readonly internal: boolean;
  readonly args: FieldTable;
  /** bindings with this exchange as source, by binding key */
  readonly bindings = new Map<string, Binding>();
  /** bindings with this exchange as destination (exchange-to-exchange) */
  readonly incoming = new Set<Binding>();
  deleted = false;
  /** id in the store while durable (0 = not stored) */
  storeId = 0;
  /** held messages the store keeps for this exchange (delayed exchanges; persistence.ts) */
  readonly storedCounts: LevelCounts = { count: 0, bytes: 0, headSeq: 0 };
  /** the policy and operator policy in force (policies.ts) */
  appliedPolicy: AppliedPolicy = NO_POLICY;
  /**
   * Changes whenever what route() answers for a routing key may change: on every binding added or
   * removed (RouteMemo compares it). Only meaningful where routesByKey.
   */
  routeVersion = 0;
  /**
   * route() depends on the routing key and this exchange's bindings alone (not on the message, nor
   * on anything outside the exchange), so its answer may be remembered per key (RouteMemo).
   */
  readonly routesByKey: boolean = false;
  /** alternate-exchange from the policy; the argument wins over it */
  private policyAlternate: string | undefined = undefined;

  constructor(
    readonly vhost: string,
    readonly name: string,
    options: ExchangeOptions,
  ) {
    this.durable = options.durable;
    this.autoDelete = options.autoDelete;
    this.internal = options.internal;
    this.args = options.args;
  }

  /** The alternate exchange: the argument if set to a string, else the policy's (as RabbitMQ). */
  get alternateExchange(): string | undefined {
    const ae = this.args['alternate-exchange'];
    return typeof ae === 'string' ? ae : this.policyAlternate;
  }

  /** A policy now applies (or none does): its alternate-exchange takes effect at once. */
  applyPolicy(applied: AppliedPolicy): void {
    this.appliedPolicy = applied;
    this.policyAlternate = policyAlternateExchange(applied.definition);
  }

  /** Adds a binding; false if an identical one exists. */
  addBinding(binding: Binding): boolean {
    if (this.bindings.has(binding.key)) return false;
    this.bindings.set(binding.key, binding);
    this.indexBinding(binding);
    this.routeVersion++;
    return true;
  }

  /** Removes a binding by identity; returns the removed binding or undefined. */
  removeBinding(key: string): Binding | undefined {
    const binding = this.bindings.get(key);
    if (!binding) return undefined;
    this.bindings.delete(key);
    this.unindexBinding(binding);
    this.routeVersion++;
    return binding;
  }

  /** Checks binding arguments at bind time; throws a typed AMQP error when they are invalid. */
  validateBindingArgs(_args: FieldTable): void {}

  protected abstract indexBinding(binding: Binding): void;
  protected abstract unindexBinding(binding: Binding): void;

  /** Pushes every destination the message reaches with this routing key into out. */
  abstract route(routingKey: string, message: Message, out: Destination[]): void;
}

/** Removes one element from an array by identity (order kept; bindings lists are short). */
export function removeFromArray<T>(list: T[], item: T): void {
  const i = list.indexOf(item);
  if (i >= 0) list.splice(i, 1);
}
