// Which vhosts, connections and objects a caller may see, as RabbitMQ's API decides:
// administrators see everything; monitoring users see every vhost and connection but list queues,
// exchanges and bindings only where they have permissions; other users see the vhosts they have
// permissions in and their own connections.

import type { VHost } from '../broker/vhost.js';
import type { Connection } from '../connection/connection.js';
import type { Caller } from './auth.js';
import type { ManagementContext } from './context.js';
import { notAuthorised, notFound } from './http-error.js';

/** Vhosts whose queues, exchanges and bindings the caller may list. */
export function loginVhosts(ctx: ManagementContext, caller: Caller): VHost[] {
  const all = [...ctx.broker.vhosts.values()];
  if (caller.isAdministrator) return all;
  return all.filter((v) => ctx.hasVhostAccess(caller.name, v.name));
}

/** Vhosts the caller may see in /api/vhosts and the overview. */
export function visibleVhosts(ctx: ManagementContext, caller: Caller): VHost[] {
  if (caller.isMonitor) return [...ctx.broker.vhosts.values()];
  return loginVhosts(ctx, caller);
}

/** The vhost a path names: 404 when it does not exist, 401 when the caller may not use it. */
export function vhostFor(ctx: ManagementContext, caller: Caller, name: string, refusal = 'User not authorised to access virtual host'): VHost {
  const vhost = ctx.broker.vhosts.get(name);
  if (vhost === undefined) throw notFound();
  if (!caller.isAdministrator && !ctx.hasVhostAccess(caller.name, name)) throw notAuthorised(refusal);
  return vhost;
}

/** Connections the caller may see: all for monitoring users, their own otherwise. */
export function visibleConnections(ctx: ManagementContext, caller: Caller): Connection[] {
  const out: Connection[] = [];
  for (const c of ctx.connections()) {
    if (!c.isOpen && c.vhost === null) continue; // still in the handshake
    if (caller.isMonitor || c.userName === caller.name) out.push(c);
  }
  return out;
}
