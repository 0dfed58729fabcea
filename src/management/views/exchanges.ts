// Exchange and binding rows as RabbitMQ's API shows them. The default exchange is "" in rows and
// "amq.default" in paths; properties_key identifies a binding among equal (source, destination)
// pairs, as RabbitMQ's: the routing key URL-quoted, then "~" and a short hash of the arguments.

import { createHash } from 'node:crypto';
import type { Binding } from '../../broker/binding.js';
import type { Exchange } from '../../broker/exchange/exchange.js';
import { canonicalFieldKey } from '../../broker/field-equality.js';
import type { VHost } from '../../broker/vhost.js';
import type { ManagementContext } from '../context.js';
import { tableToJson } from '../json.js';
import type { Listed, Row } from '../listing.js';

/** The exchange a path names ("amq.default" is the default exchange). */
export function exchangeNameFromPath(name: string): string {
  return name === 'amq.default' ? '' : name;
}

export function exchangeRow(_ctx: ManagementContext, ex: Exchange): Row {
  const row: Row = {
    arguments: tableToJson(ex.args),
    auto_delete: ex.autoDelete,
    durable: ex.durable,
    internal: ex.internal,
    name: ex.name,
    type: ex.type,
    vhost: ex.vhost,
  };
  if (ex.appliedPolicy.policy !== null) row['policy'] = ex.appliedPolicy.policy;
  // Who declared an exchange is not recorded; only the predeclared ones are known to be the broker's.
  if (ex.name === '' || ex.name.startsWith('amq.')) row['user_who_performed_action'] = 'rmq-internal';
  return row;
}

export function exchangeListing(ctx: ManagementContext): Listed<Exchange> {
  return {
    name: (e) => e.name,
    sortKeys: (e) => [e.vhost, e.name],
    row: (e) => exchangeRow(ctx, e),
  };
}

export function* exchangesOf(vhosts: Iterable<VHost>): Iterable<Exchange> {
  for (const v of vhosts) yield* v.exchanges.values();
}

/** RabbitMQ's quote_plus: unreserved characters kept, space as '+', the rest %XX; '~' always %7E. */
function quotePlus(s: string): string {
  let out = '';
  for (const byte of Buffer.from(s, 'utf8')) {
    const ch = String.fromCharCode(byte);
    if (/[A-Za-z0-9._-]/.test(ch)) out += ch;
    else if (ch === ' ') out += '+';
    else out += '%' + byte.toString(16).toUpperCase().padStart(2, '0');
  }
  return out;
}

export function propertiesKey(routingKey: string, args: Binding['args']): string {
  const hasArgs = Object.keys(args).length > 0;
  if (!hasArgs) return routingKey === '' ? '~' : quotePlus(routingKey);
  return `${quotePlus(routingKey)}~${quotePlus(argsHash(args))}`;
}

function argsHash(args: Binding['args']): string {
  return createHash('sha256').update(canonicalFieldKey(args)).digest().subarray(0, 4).toString('base64url');
}

function unquote(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/**
 * Whether a properties key taken from a path names this binding. Clients send the key quoted once
 * more (a.%2523~…, decoded by the router to a.%23~…) or as listed (a.%23, decoded to a.#); as
 * RabbitMQ does, the key is also unquoted into routing key and argument hash and compared so.
 */
export function matchesPropertiesKey(props: string, b: { routingKey: string; args: Binding['args'] }): boolean {
  if (props === propertiesKey(b.routingKey, b.args)) return true;
  const hasArgs = Object.keys(b.args).length > 0;
  const cut = props.lastIndexOf('~');
  const keyPart = cut < 0 ? props : props.slice(0, cut);
  const hashPart = cut < 0 ? '' : props.slice(cut + 1);
  if (hasArgs ? unquote(hashPart) !== argsHash(b.args) : hashPart !== '') return false;
  return unquote(keyPart) === b.routingKey || unquote(keyPart.replace(/\+/g, ' ')) === b.routingKey;
}

export interface BindingView {
  vhost: string;
  source: string;
  destination: string;
  destinationType: 'queue' | 'exchange';
  routingKey: string;
  args: Binding['args'];
}

export function bindingRow(b: BindingView): Row {
  return {
    source: b.source,
    vhost: b.vhost,
    destination: b.destination,
    destination_type: b.destinationType,
    routing_key: b.routingKey,
    arguments: tableToJson(b.args),
    properties_key: propertiesKey(b.routingKey, b.args),
  };
}

export function bindingView(b: Binding): BindingView {
  return {
    vhost: b.source.vhost,
    source: b.source.name,
    destination: b.destination.name,
    destinationType: b.destination.kind,
    routingKey: b.routingKey,
    args: b.args,
  };
}

/**
 * Every binding of a vhost as RabbitMQ lists them: the default exchange's implicit bindings (one
 * per queue, keyed by the queue's name) first, then the others by source, destination type and
 * name, routing key.
 */
export function bindingsOf(vhost: VHost): BindingView[] {
  const out: BindingView[] = [];
  const sorted = [...vhost.queues.keys()].sort();
  for (const q of sorted) out.push({ vhost: vhost.name, source: '', destination: q, destinationType: 'queue', routingKey: q, args: {} });
  const explicit: BindingView[] = [];
  for (const ex of vhost.exchanges.values()) {
    if (ex.name === '') continue;
    for (const b of ex.bindings.values()) explicit.push(bindingView(b));
  }
  explicit.sort(compareBindings);
  return out.concat(explicit);
}

export function compareBindings(a: BindingView, b: BindingView): number {
  return (
    cmp(a.source, b.source) ||
    cmp(a.destinationType, b.destinationType) ||
    cmp(a.destination, b.destination) ||
    cmp(a.routingKey, b.routingKey) ||
    cmp(canonicalFieldKey(a.args), canonicalFieldKey(b.args))
  );
}

function cmp(a: string, b: string): number {
  return a === b ? 0 : a < b ? -1 : 1;
}

export const bindingListing: Listed<BindingView> = {
  name: (b) => b.routingKey,
  sortKeys: () => null,
  row: bindingRow,
};
