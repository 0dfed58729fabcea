// Read-only endpoints: overview, nodes, vhosts, users, exchanges, queues, bindings, connections,
// channels, consumers. Each handler picks what the caller may see, then hands rows to list().

import type { VHost } from '../../broker/vhost.js';
import type { Connection } from '../../connection/connection.js';
import { loginVhosts, vhostFor, visibleConnections, visibleVhosts } from '../access.js';
import type { ManagementContext } from '../context.js';
import { notFound } from '../http-error.js';
import { list, single, type Listed } from '../listing.js';
import type { ApiRequest, Router } from '../router.js';
import { channelName, channelRow, connectionName, connectionRow, consumerRow } from '../views/connections.js';
import {
  bindingListing,
  bindingRow,
  bindingsOf,
  exchangeListing,
  exchangeNameFromPath,
  exchangeRow,
  exchangesOf,
  matchesPropertiesKey,
  type BindingView,
} from '../views/exchanges.js';
import { nodeRow, overview, vhostRow } from '../views/overview.js';
import { queueDetailRow, queueListing, queuesOf } from '../views/queues.js';
import type { Channel } from '../../connection/channel.js';
import type { Consumer } from '../../broker/queue/consumers.js';
import type { BrokerTotals } from '../views/overview.js';

const byName = <T>(name: (t: T) => string, row: (t: T) => Record<string, unknown>, vhost?: (t: T) => string): Listed<T> => ({
  name,
  sortKeys: (t) => (vhost === undefined ? [name(t)] : [vhost(t), name(t)]),
  row,
});

export function findConnection(ctx: ManagementContext, req: ApiRequest, name: string): Connection {
  for (const c of visibleConnections(ctx, req.caller)) if (connectionName(c) === name) return c;
  throw notFound();
}

export function addReadRoutes(router: Router, ctx: ManagementContext, totals: BrokerTotals): void {
  const queues = queueListing(ctx);
  const exchanges = exchangeListing(ctx);
  const connections = byName<Connection>(connectionName, (c) => connectionRow(ctx, c), (c) => c.vhost?.name ?? '');
  const channels = byName<Channel>(channelName, (ch) => channelRow(ctx, ch), (ch) => ch.connection.vhost?.name ?? '');
  const consumers: Listed<Consumer> = { name: (c) => c.tag, sortKeys: () => null, row: (c) => consumerRow(ctx, c) };
  const vhosts = byName<VHost>((v) => v.name, (v) => vhostRow(ctx, v));

  const consumersOf = (vs: Iterable<VHost>): Consumer[] => {
    const out: Consumer[] = [];
    for (const q of queuesOf(vs)) out.push(...q.consumers.all);
    return out;
  };
  const channelsVisible = (req: ApiRequest): Channel[] => {
    const out: Channel[] = [];
    for (const c of visibleConnections(ctx, req.caller)) out.push(...c.channels.values());
    return out;
  };

  router
    .get('/api/overview', 'management', (req) =>
      overview(ctx, visibleVhosts(ctx, req.caller), req.caller.isMonitor, totals, req.caller.isMonitor),
    )
    .get('/api/cluster-name', 'management', () => ({ name: ctx.config.clusterName }))
    .get('/api/extensions', 'management', () => [])
    .get('/api/whoami', 'management', (req) => ({ name: req.caller.name, tags: [...req.caller.user.tags] }))
    .get('/api/nodes', 'monitoring', (req) => list([nodeRow(ctx)], byName((r) => String(r['name']), (r) => r), req.query))
    .get('/api/nodes/:node', 'monitoring', (req) => {
      if (req.params['node'] !== ctx.nodeName) throw notFound();
      return single(nodeRow(ctx), req.query);
    })
    .get('/api/vhosts', 'management', (req) => list(visibleVhosts(ctx, req.caller), vhosts, req.query))
    .get('/api/vhosts/:vhost', 'management', (req) => {
      const v = visibleVhosts(ctx, req.caller).find((x) => x.name === req.params['vhost']);
      if (v === undefined) throw notFound();
      return single(vhostRow(ctx, v), req.query);
    })
    .get('/api/vhosts/:vhost/connections', 'management', (req) => {
      const v = vhostFor(ctx, req.caller, req.params['vhost']!);
      return list(visibleConnections(ctx, req.caller).filter((c) => c.vhost === v), connections, req.query);
    })
    .get('/api/vhosts/:vhost/channels', 'management', (req) => {
      const v = vhostFor(ctx, req.caller, req.params['vhost']!);
      return list(channelsVisible(req).filter((ch) => ch.connection.vhost === v), channels, req.query);
    })
    .get('/api/users', 'administrator', (req) => list(ctx.broker.admin.listUsers(), byName((u) => u.name, (u) => ({ ...u })), req.query))
    .get('/api/users/:user', 'administrator', (req) => {
      const u = ctx.broker.admin.getUser(req.params['user']!);
      if (u === undefined) throw notFound();
      return single({ ...u }, req.query);
    })
    // Exchanges
    .get('/api/exchanges', 'management', (req) => list(exchangesOf(loginVhosts(ctx, req.caller)), exchanges, req.query))
    .get('/api/exchanges/:vhost', 'management', (req) =>
      list(exchangesOf([vhostFor(ctx, req.caller, req.params['vhost']!)]), exchanges, req.query),
    )
    .get('/api/exchanges/:vhost/:name', 'management', (req) => {
      const v = vhostFor(ctx, req.caller, req.params['vhost']!);
      const ex = v.exchanges.get(exchangeNameFromPath(req.params['name']!));
      if (ex === undefined) throw notFound();
      const row = exchangeRow(ctx, ex);
      row['incoming'] = [];
      row['outgoing'] = [];
      return single(row, req.query);
    })
    .get('/api/exchanges/:vhost/:name/bindings/source', 'management', (req) => exchangeBindings(ctx, req, 'source'))
    .get('/api/exchanges/:vhost/:name/bindings/destination', 'management', (req) => exchangeBindings(ctx, req, 'destination'))
    // Queues
    .get('/api/queues', 'management', (req) => list(queuesOf(loginVhosts(ctx, req.caller)), queues, req.query))
    .get('/api/queues/detailed', 'management', (req) => list(queuesOf(loginVhosts(ctx, req.caller)), queues, req.query))
    .get('/api/queues/:vhost', 'management', (req) => list(queuesOf([vhostFor(ctx, req.caller, req.params['vhost']!)]), queues, req.query))
    .get('/api/queues/:vhost/:name', 'management', (req) => {
      const v = vhostFor(ctx, req.caller, req.params['vhost']!);
      const q = v.queues.get(req.params['name']!);
      if (q === undefined) throw notFound();
      return single(queueDetailRow(ctx, q), req.query);
    })
    .get('/api/queues/:vhost/:name/bindings', 'management', (req) => {
      const v = vhostFor(ctx, req.caller, req.params['vhost']!);
      const name = req.params['name']!;
      if (!v.queues.has(name)) throw notFound();
      const rows = bindingsOf(v).filter((b) => b.destinationType === 'queue' && b.destination === name);
      return list(rows, bindingListing, req.query);
    })
    // Bindings
    .get('/api/bindings', 'management', (req) => list(loginVhosts(ctx, req.caller).flatMap(bindingsOf), bindingListing, req.query))
    .get('/api/bindings/:vhost', 'management', (req) => list(bindingsOf(vhostFor(ctx, req.caller, req.params['vhost']!)), bindingListing, req.query))
    .get('/api/bindings/:vhost/e/:source/q/:destination', 'management', (req) => bindingsBetween(ctx, req, 'queue'))
    .get('/api/bindings/:vhost/e/:source/e/:destination', 'management', (req) => bindingsBetween(ctx, req, 'exchange'))
    .get('/api/bindings/:vhost/e/:source/q/:destination/:props', 'management', (req) => oneBinding(ctx, req, 'queue'))
    .get('/api/bindings/:vhost/e/:source/e/:destination/:props', 'management', (req) => oneBinding(ctx, req, 'exchange'))
    // Connections, channels, consumers
    .get('/api/connections', 'management', (req) => list(visibleConnections(ctx, req.caller), connections, req.query))
    .get('/api/connections/:name', 'management', (req) => single(connectionRow(ctx, findConnection(ctx, req, req.params['name']!)), req.query))
    .get('/api/connections/:name/channels', 'management', (req) =>
      list([...findConnection(ctx, req, req.params['name']!).channels.values()], channels, req.query),
    )
    .get('/api/channels', 'management', (req) => list(channelsVisible(req), channels, req.query))
    .get('/api/channels/:name', 'management', (req) => {
      const ch = channelsVisible(req).find((c) => channelName(c) === req.params['name']);
      if (ch === undefined) throw notFound();
      return single(channelRow(ctx, ch), req.query);
    })
    .get('/api/consumers', 'management', (req) => list(consumersOf(loginVhosts(ctx, req.caller)), consumers, req.query))
    .get('/api/consumers/:vhost', 'management', (req) =>
      list(consumersOf([vhostFor(ctx, req.caller, req.params['vhost']!)]), consumers, req.query),
    );
}

function exchangeBindings(ctx: ManagementContext, req: ApiRequest, side: 'source' | 'destination'): unknown {
  const v = vhostFor(ctx, req.caller, req.params['vhost']!);
  const name = exchangeNameFromPath(req.params['name']!);
  if (!v.exchanges.has(name)) throw notFound();
  const rows = bindingsOf(v).filter((b) =>
    side === 'source' ? b.source === name : b.destinationType === 'exchange' && b.destination === name,
  );
  return list(rows, bindingListing, req.query);
}

function bindingsBetween(ctx: ManagementContext, req: ApiRequest, kind: 'queue' | 'exchange'): BindingView[] | unknown {
  const v = vhostFor(ctx, req.caller, req.params['vhost']!);
  const source = exchangeNameFromPath(req.params['source']!);
  const destination = kind === 'exchange' ? exchangeNameFromPath(req.params['destination']!) : req.params['destination']!;
  const rows = bindingsOf(v).filter((b) => b.source === source && b.destinationType === kind && b.destination === destination);
  return list(rows, bindingListing, req.query);
}

function oneBinding(ctx: ManagementContext, req: ApiRequest, kind: 'queue' | 'exchange'): unknown {
  const v = vhostFor(ctx, req.caller, req.params['vhost']!);
  const source = exchangeNameFromPath(req.params['source']!);
  const destination = kind === 'exchange' ? exchangeNameFromPath(req.params['destination']!) : req.params['destination']!;
  const props = req.params['props']!;
  const found = bindingsOf(v).find(
    (b) => b.source === source && b.destinationType === kind && b.destination === destination && matchesPropertiesKey(props, b),
  );
  if (found === undefined) throw notFound();
  return single(bindingRow(found), req.query);
}
