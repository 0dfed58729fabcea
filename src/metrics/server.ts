// The Prometheus endpoint: a second HTTP listener (--prometheus-port, default 15692; over HTTPS
// --prometheus-tls-port, default 15691 when --tls-cert is set, as RabbitMQ's prometheus.ssl.port)
// answering RabbitMQ's paths — /metrics (aggregated), /metrics/per-object, /metrics/detailed?family=…&vhost=…
// — from families held in prom-client registries and read at scrape time. Scrapes run one at a time
// (each reads one snapshot of the model), and the text is streamed in slices so that a scrape of
// tens of thousands of queues never holds the event loop for more than a couple of milliseconds.

import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { hostname } from 'node:os';
import { Registry } from 'prom-client';
import type { Broker } from '../broker/broker.js';
import { DurablePersistence } from '../broker/persistence.js';
import { HttpListener, sendText } from '../http/listener.js';
import type { Logger } from '../log.js';
import type { TlsSettings } from '../tls/tls-settings.js';
import { WARREN_VERSION } from '../version.js';
import { ExpositionWriter, writeFamilies, type Family } from './exposition.js';
import { diskFreeBytes, maxFds, openFds, residentMemoryBytes } from './process-stats.js';
import {
  DETAILED_GROUPS,
  aggregatedFamilies,
  detailedFamilies,
  perObjectFamilies,
  type DetailedGroup,
  type NodeReadings,
  type ScrapeContext,
} from './rabbitmq-families.js';
import { Snapshot, type ConnectionSource } from './snapshot.js';
import { warrenAggregatedFamilies, warrenPerObjectFamilies } from './warren-families.js';

const CONTENT_TYPE = Registry.PROMETHEUS_CONTENT_TYPE;
const PROM_CLIENT_VERSION = '15';

export type Endpoint = 'aggregated' | 'per-object' | 'detailed';

export interface MetricsOptions {
  broker: Broker;
  connections: ConnectionSource;
  log: Logger;
}

/** The alarm figures, as the resource module (broker/resources.ts) keeps them. */
export interface ResourceReadings {
  readonly memoryLimitBytes: number;
  readonly diskFreeLimitBytes: number;
  readonly memoryAlarm: boolean;
  readonly diskAlarm: boolean;
}

/** A stable id for this data folder: derived from when its store was created and where it is. */
function clusterPermanentId(broker: Broker): string {
  const persistence = broker.persistence;
  const seed = persistence instanceof DurablePersistence ? `${persistence.store.path}|${persistence.store.createdAt}` : broker.config.dataDir;
  return `warren-cluster-id-${createHash('sha256').update(seed).digest('base64url').slice(0, 22)}`;
}

/** Everything /metrics* can report, independent of HTTP (tests and the scrape benchmark use it). */
export class MetricsCollector implements ScrapeContext {
  private current: Snapshot | null = null;
  private readonly aggregated = new Registry();
  private readonly perObject = new Registry();
  private readonly node: NodeReadings;
  /** scrapes run one after another: each reads its own snapshot through this.current */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly options: MetricsOptions,
    resources: ResourceReadings,
  ) {
    const { broker } = options;
    const dataDir = broker.config.dataDir;
    const startedAt = broker.stats.startedAt;
    this.node = {
      nodeName: `warren@${hostname()}`,
      clusterName: broker.config.clusterName,
      clusterId: clusterPermanentId(broker),
      buildLabels: [
        ['rabbitmq_version', WARREN_VERSION],
        ['prometheus_plugin_version', WARREN_VERSION],
        ['prometheus_client_version', PROM_CLIENT_VERSION],
        ['erlang_version', process.versions.node],
        ['product_name', 'Warren'],
        ['product_version', WARREN_VERSION],
      ],
      residentMemoryBytes,
      openFds,
      maxFds,
      diskFreeBytes: () => diskFreeBytes(dataDir),
      memoryLimitBytes: () => resources.memoryLimitBytes,
      diskFreeLimitBytes: () => resources.diskFreeLimitBytes,
      memoryAlarm: () => resources.memoryAlarm,
      diskAlarm: () => resources.diskAlarm,
      uptimeSeconds: () => (Date.now() - startedAt) / 1000,
      startTimeSeconds: () => Math.floor(startedAt / 1000),
    };
    for (const f of [...aggregatedFamilies(this, this.node), ...warrenAggregatedFamilies(this)]) this.aggregated.registerMetric(f as never);
    for (const f of [...perObjectFamilies(this, this.node), ...warrenPerObjectFamilies(this)]) this.perObject.registerMetric(f as never);
  }

  /** More /metrics families from outside the broker (a cluster node's roles and replication). */
  addAggregated(families: readonly Family[]): void {
    for (const f of families) this.aggregated.registerMetric(f as never);
  }

  snapshot(): Snapshot {
    if (this.current === null) throw new Error('metrics read outside a scrape');
    return this.current;
  }

  /**
   * Renders one endpoint into the response (or, with out = null, into the returned text). Resolves
   * with the text (when collected) and the longest synchronous slice, in ms.
   */
  render(endpoint: Endpoint, query: URLSearchParams, out: ServerResponse | null): Promise<{ text: string; longestSliceMs: number; bytes: number }> {
    const run = async (): Promise<{ text: string; longestSliceMs: number; bytes: number }> => {
      const vhosts = query.getAll('vhost');
      this.current = new Snapshot(this.options.broker, this.options.connections, endpoint === 'detailed' && vhosts.length > 0 ? new Set(vhosts) : null);
      try {
        const w = new ExpositionWriter(out);
        if (endpoint !== 'aggregated') await this.current.prepareQueueRows(w);
        await writeFamilies(this.families(endpoint, query), w);
        const text = w.finish();
        return { text, longestSliceMs: w.longestSliceMs, bytes: w.bytes };
      } finally {
        this.current = null;
      }
    };
    const result = this.queue.then(run, run);
    this.queue = result.catch(() => undefined);
    return result;
  }

  private families(endpoint: Endpoint, query: URLSearchParams): Family[] {
    if (endpoint === 'aggregated') return this.aggregated.getMetricsAsArray() as unknown as Family[];
    if (endpoint === 'per-object') return this.perObject.getMetricsAsArray() as unknown as Family[];
    const asked = new Set<DetailedGroup>();
    for (const f of query.getAll('family')) if ((DETAILED_GROUPS as readonly string[]).includes(f)) asked.add(f as DetailedGroup);
    return detailedFamilies(this, this.node, asked);
  }
}

const PATHS: Readonly<Record<string, Endpoint>> = {
  '/metrics': 'aggregated',
  '/metrics/': 'aggregated',
  '/metrics/per-object': 'per-object',
  '/metrics/detailed': 'detailed',
};

/** Where the metrics listeners listen; a port of null is off, 0 picks a free port. */
export interface MetricsListen {
  host: string;
  /** plain HTTP (--prometheus-port) */
  port: number | null;
  /** HTTPS (--prometheus-tls-port), on the broker's certificates; needs tls */
  tlsPort: number | null;
  tls: TlsSettings | null;
}

/** The HTTP side: routes RabbitMQ's paths to the collector, over HTTP, HTTPS or both. */
export class MetricsServer {
  private constructor(
    private readonly http: HttpListener | null,
    private readonly https: HttpListener | null,
    readonly collector: MetricsCollector,
  ) {}

  /** the HTTP port, 0 when plain HTTP is off */
  get port(): number {
    return this.http?.port ?? 0;
  }

  /** the HTTPS port, 0 when HTTPS is off */
  get tlsPort(): number {
    return this.https?.port ?? 0;
  }

  /** The listening socket (a cluster leader accepts PROXY headers on it from its followers): the
   * plain one, or the HTTPS one when plain HTTP is off. */
  get netServer(): import('node:net').Server {
    return (this.http ?? this.https)!.netServer;
  }

  static async start(listen: MetricsListen, options: MetricsOptions, resources: ResourceReadings): Promise<MetricsServer> {
    const collector = new MetricsCollector(options, resources);
    const handler = (req: IncomingMessage, res: ServerResponse): Promise<void> => serve(collector, req, res);
    let http: HttpListener | null = null;
    let https: HttpListener | null = null;
    try {
      if (listen.port !== null) {
        http = await HttpListener.listen(listen.host, listen.port, {
          name: 'Prometheus metrics',
          portFlag: '--prometheus-port',
          bindFlag: '--prometheus-bind',
          log: options.log,
          handler,
        });
      }
      if (listen.tlsPort !== null && listen.tls !== null) {
        https = await HttpListener.listen(listen.host, listen.tlsPort, {
          name: 'prometheus https',
          portFlag: '--prometheus-tls-port',
          bindFlag: '--prometheus-bind',
          log: options.log,
          handler,
          tls: listen.tls,
        });
      }
    } catch (err) {
      await http?.close();
      throw err;
    }
    if (http === null && https === null) throw new Error('Prometheus metrics: no listener asked for (--prometheus-port and --prometheus-tls-port are 0)');
    return new MetricsServer(http, https, collector);
  }

  async close(): Promise<void> {
    await Promise.all([this.http?.close(), this.https?.close()]);
  }
}

/** The metrics listeners as the management overview lists them (RabbitMQ's protocol names). */
export function prometheusListeners(metrics: MetricsServer, bind: string): { protocol: string; ip_address: string; port: number }[] {
  const out: { protocol: string; ip_address: string; port: number }[] = [];
  if (metrics.port !== 0) out.push({ protocol: 'http/prometheus', ip_address: bind, port: metrics.port });
  if (metrics.tlsPort !== 0) out.push({ protocol: 'https/prometheus', ip_address: bind, port: metrics.tlsPort });
  return out;
}

async function serve(collector: MetricsCollector, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://localhost');
  const endpoint = PATHS[url.pathname];
  if (endpoint === undefined) {
    sendText(res, 404, 'Not found: the metrics are at /metrics, /metrics/per-object and /metrics/detailed?family=…\n');
    return;
  }
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    sendText(res, 405, 'Method not allowed: use GET\n', { Allow: 'GET, HEAD' });
    return;
  }
  if (req.method === 'HEAD') {
    res.writeHead(200, { 'Content-Type': CONTENT_TYPE });
    res.end();
    return;
  }
  res.writeHead(200, { 'Content-Type': CONTENT_TYPE });
  await collector.render(endpoint, url.searchParams, res);
  res.end();
}
