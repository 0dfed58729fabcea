// Starts the management HTTP API for a running broker: builds the context the routes read, the
// route table, the rate sampler, and the listener (--management-port, --management-bind).

import { unackedOf } from '../broker/queue-figures.js';
import type { Broker } from '../broker/broker.js';
import type { BrokerConfig } from '../config.js';
import type { AmqpServer } from '../connection/server.js';
import type { Logger } from '../log.js';
import type { TlsSettings } from '../tls/tls-settings.js';
import type { ListenerInfo, ManagementContext } from './context.js';
import { defaultNodeName } from './context.js';
import { RateSampler, type Visit } from './rates.js';
import { Router } from './router.js';
import { addHealthRoutes } from './routes/health.js';
import { addMessageRoutes } from './routes/messages.js';
import { addConnectionRoutes } from './routes/connections.js';
import { addModelRoutes } from './routes/model.js';
import { MessageAdmin } from '../broker/admin-messages.js';
import { addReadRoutes } from './routes/read.js';
import { ManagementServer } from './server.js';
import { serveUi } from './static.js';
import { brokerMessageTotals, churnTotals, queueTotals, vhostMessageTotals, vhostOctets, type BrokerTotals } from './views/overview.js';

export { ManagementServer } from './server.js';

export interface ManagementHandle {
  /** the HTTP port, 0 when only HTTPS is on */
  readonly port: number;
  /** the HTTPS port, 0 when off */
  readonly tlsPort: number;
  readonly server: ManagementServer;
  readonly context: ManagementContext;
  /** the route table (a cluster node adds its /api/cluster routes) */
  readonly router: Router;
  close(): Promise<void>;
}

export interface ManagementDeps {
  broker: Broker;
  amqp: AmqpServer;
  config: BrokerConfig;
  /** the ports to listen on (0: a free one), null for a listener that stays off */
  ports: { http: number | null; https: number | null };
  log: Logger;
  amqpPort: number;
  /** the AMQPS port, 0 when there is none */
  amqpTlsPort: number;
  /** certificates for the HTTPS listener (--management-tls-port); null without TLS */
  tls: TlsSettings | null;
  /** listeners started after the API (the Prometheus ones), listed in the overview as RabbitMQ does */
  otherListeners?: () => ListenerInfo[];
  startedAt: number;
}

export async function startManagement(deps: ManagementDeps): Promise<ManagementHandle> {
  const { broker, amqp, config, log } = deps;
  let httpPort = 0;
  let httpsPort = 0;
  let context: ManagementContext;
  const totals: BrokerTotals = { owner: {}, messages: () => brokerMessageTotals(broker), churn: () => churnTotals(broker) };
  const rates = new RateSampler((visit: Visit) => {
    visit(totals.owner, { ...totals.messages(), ...totals.churn(), ...queueTotals(broker.vhosts.values()) });
    for (const v of broker.vhosts.values()) {
      visit(v, { ...queueTotals([v]), ...vhostOctets(context, v), ...vhostMessageTotals(context, v) });
      for (const q of v.queues.values()) {
        visit(q, {
          publish: q.publishedTotal,
          deliver_get: q.deliveredTotal,
          ack: q.ackedTotal,
          redeliver: q.redeliveredTotal,
          messages: q.messageCount + unackedOf(q),
          messages_ready: q.messageCount,
          messages_unacknowledged: unackedOf(q),
        });
      }
    }
    for (const c of amqp.connections) {
      visit(c, { recv_oct: c.bytesRead, send_oct: c.outbound.bytesWritten });
      for (const ch of c.channels.values()) visit(ch, { publish: ch.publishedTotal });
    }
  });
  context = {
    broker,
    config,
    nodeName: defaultNodeName(),
    startedAt: deps.startedAt,
    rates,
    connections: () => amqp.connections,
    listeners(): ListenerInfo[] {
      const amqpListeners: ListenerInfo[] = [];
      if (deps.amqpPort !== 0) amqpListeners.push({ protocol: 'amqp', ip_address: config.bind, port: deps.amqpPort });
      if (deps.amqpTlsPort !== 0) amqpListeners.push({ protocol: 'amqp/ssl', ip_address: config.bind, port: deps.amqpTlsPort });
      const httpListeners: ListenerInfo[] = [];
      if (httpPort !== 0) httpListeners.push({ protocol: 'http', ip_address: config.managementBind, port: httpPort });
      if (httpsPort !== 0) httpListeners.push({ protocol: 'https', ip_address: config.managementBind, port: httpsPort });
      return [...amqpListeners, ...httpListeners, ...(deps.otherListeners?.() ?? [])];
    },
    hasVhostAccess: (user, vhost) => broker.permissions.mayAccessVhost(user, vhost),
    checkPermission: (user, vhost, access, kind, name) => broker.permissions.check(user, vhost, access, kind, name),
    messages: new MessageAdmin(broker),
  };
  const router = new Router();
  addReadRoutes(router, context, totals);
  addHealthRoutes(router, context);
  addMessageRoutes(router, context);
  addConnectionRoutes(router, context);
  addModelRoutes(router, context);
  const server = new ManagementServer(
    router,
    {
      authenticate: (name, password) => broker.admin.authenticate(name, password),
      isLoopbackOnly: (name) => config.loopbackUsers.includes(name),
    },
    log,
  );
  server.staticHandler = serveUi;
  try {
    if (deps.ports.http !== null) httpPort = await server.listen(config.managementBind, deps.ports.http);
    if (deps.tls !== null && deps.ports.https !== null) httpsPort = await server.listenTls(config.managementBind, deps.ports.https, deps.tls);
  } catch (err) {
    await server.close();
    throw err;
  }
  rates.start();
  return {
    port: httpPort,
    tlsPort: httpsPort,
    server,
    context,
    router,
    async close() {
      rates.stop();
      await server.close();
    },
  };
}
