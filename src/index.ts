// Warren's programmatic API: start a broker inside any Node process (tests embed it this way).
//
//   const broker = await startBroker({ port: 0, dataDir: tmp });
//   ... amqp://guest:guest@127.0.0.1:${broker.port}/ ...
//   await broker.close();

import { mkdirSync, readFileSync } from 'node:fs';
import { lockDataFolder } from './data-lock.js';
import { AdminError } from './broker/admin.js';
import { Broker } from './broker/broker.js';
import { ConfigError, DEFAULT_CONFIG, type BrokerConfig } from './config.js';
import { AmqpServer } from './connection/server.js';
import { createLogger, type Logger } from './log.js';
import { DurablePersistence } from './broker/persistence.js';
import { recover, warmUpQueues } from './broker/recovery.js';
import { removeOrphanStreamFolders } from './broker/stream/stream-folders.js';
import { LmdbStore, type StoreReplication } from './store/lmdb-store.js';
import { MappedDataFilePages } from './broker/mapped-pages.js';
import { ModelStore } from './store/model-store.js';
import { MetricsServer, prometheusListeners } from './metrics/server.js';
import { WARREN_VERSION } from './version.js';
import { join } from 'node:path';
import { startManagement, type ManagementHandle } from './management/index.js';
import { checkTlsConfig, TlsSettings } from './tls/tls-settings.js';

export type { BrokerConfig } from './config.js';
export { DEFAULT_CONFIG } from './config.js';

export interface StartOptions extends Partial<BrokerConfig> {
  /** a logger to use instead of one built from logLevel */
  logger?: Logger;
  /** open the Prometheus listener on a free port (read it back from `metrics.port`); for tests */
  metricsOnFreePort?: boolean;
  /** with TLS: the Prometheus HTTPS listener on a free port (`metrics.tlsPort`); for tests */
  metricsTlsOnFreePort?: boolean;
  /**
   * open the management API on a free port (read it back from `management.port`); for tests, which
   * must not pick a port themselves: another process may take it before the broker binds it
   */
  managementOnFreePort?: boolean;
  /** with TLS: the management API's HTTPS listener on a free port (`management.tlsPort`); for tests */
  managementTlsOnFreePort?: boolean;
  /** a cluster leader's replication of the store (src/cluster); none on a single node */
  replication?: StoreReplication;
}

export interface RunningBroker {
  /** the plain AMQP port actually listened on (useful with port 0); 0 when that listener is off */
  readonly port: number;
  /** the AMQPS port actually listened on; 0 when there is no AMQPS listener */
  readonly tlsPort: number;
  readonly config: BrokerConfig;
  /** the broker model, for tests and tooling */
  readonly broker: Broker;
  /** the AMQP listeners (plain and TLS) and their connections */
  readonly server: AmqpServer;
  /** the management HTTP API, or null when --management-port is 0 */
  readonly management: ManagementHandle | null;
  /** the Prometheus listener, when one was asked for (prometheusPort ≠ 0) */
  readonly metrics: MetricsServer | null;
  /** certificate, key and CA files in use; null without TLS */
  readonly tls: TlsSettings | null;
  /**
   * Re-reads the TLS certificate, key and CA files (bin/warren does it on SIGHUP); established
   * connections are untouched. Throws (keeping the previous files) when the new ones are unusable.
   */
  reloadTls(): void;
  /** stop accepting, close clients with 320 CONNECTION_FORCED, flush and close storage */
  close(): Promise<void>;
}

/** Reads and parses a definitions file, with an error that says what to fix. */
function readDefinitionsFile(path: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new Error(`cannot read definitions file ${path}: ${(err as Error).message} — check --load-definitions`);
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new Error(`definitions file ${path} is not valid JSON: ${(err as Error).message}`);
  }
}

export async function startBroker(options: StartOptions = {}): Promise<RunningBroker> {
  const { logger, metricsOnFreePort, metricsTlsOnFreePort, managementOnFreePort, managementTlsOnFreePort, replication, ...overrides } = options;
  // Embedded, Warren logs nothing and opens no management or Prometheus port unless asked (logLevel
  // or logger, managementPort, managementTlsPort, prometheusPort, prometheusTlsPort or one of the
  // *OnFreePort options); the warren command passes its flags (defaults: info, 15672, 15692, and with
  // TLS configured 15671 and 15691).
  const config: BrokerConfig = {
    ...DEFAULT_CONFIG,
    logLevel: 'silent',
    managementPort: 0,
    managementTlsPort: 0,
    prometheusPort: 0,
    prometheusTlsPort: 0,
    ...overrides,
  };
  // TLS files are read before anything else starts, so a wrong path fails fast with its reason.
  const tls = checkTlsConfig(config) ? new TlsSettings(config) : null;
  if (config.port === null && (tls === null || config.tlsPort === null)) {
    throw new ConfigError('no listener: --port 0 turns the plain AMQP listener off, so give --tls-cert and --tls-key for AMQPS');
  }
  const log = logger ?? createLogger(config.logLevel);
  const definitions = config.loadDefinitions === '' ? null : readDefinitionsFile(config.loadDefinitions);
  mkdirSync(config.dataDir, { recursive: true });
  // One broker per data folder: refused here, before anything in the folder is touched.
  const lock = lockDataFolder(config.dataDir);
  let started = false;
  try {
    const store = new LmdbStore(join(config.dataDir, 'lmdb'), log, `warren ${WARREN_VERSION}`, replication ?? null);
    const persistence = new DurablePersistence(store, log);
    const broker = new Broker(config, persistence, log, new ModelStore(store));
    // Reading a deep backlog back maps the data file's pages into the process: unmap them as they
    // pile up (mapped-pages.ts), on the memory alarm's samples.
    const mappedPages = new MappedDataFilePages(join(config.dataDir, 'lmdb', 'data.mdb'), (action) => store.whileWriterWaits(action));
    const onMemorySample = broker.resources.onMemorySample;
    broker.resources.onMemorySample = () => {
      onMemorySample?.();
      mappedPages.sampled();
    };
    store.onBodiesRead = (bytes) => mappedPages.bodiesRead(bytes);
    persistence.commitStats = broker.stats;
    persistence.onFailure = (error) => broker.storageFailed(error);
    broker.admin.load();
    const recovered = recover(broker, persistence, log);
    log.info(recovered, 'recovered durable state');
    removeOrphanStreamFolders(broker, join(config.dataDir, 'streams'), log);
    try {
      // As RabbitMQ: when definitions are loaded at boot, the first start creates no default user or vhost.
      await broker.admin.initialise(config, definitions);
    } catch (err) {
      await persistence.close();
      if (definitions !== null && err instanceof AdminError) {
        throw new Error(`cannot import definitions from ${config.loadDefinitions}: ${err.reason.trim()} — fix the file or drop --load-definitions`);
      }
      throw err;
    }
    broker.resources.start();
    const server = new AmqpServer(broker);
    const startedAt = Date.now();
    let port = 0;
    let tlsPort = 0;
    let management: ManagementHandle | null = null;
    let metrics: MetricsServer | null = null;
    try {
      if (config.port !== null) port = await server.listen(config.bind, config.port);
      if (tls !== null && config.tlsPort !== null) tlsPort = await server.listenTls(config.bind, config.tlsPort, tls);
      log.info({ bind: config.bind, port: port || null, tlsPort: tlsPort || null, dataDir: config.dataDir }, 'listening');
      warmUpQueues(broker, log);
      // Each HTTP listener's port: null when it is off, 0 for a free one (the *OnFreePort options).
      const managementPorts = {
        http: config.managementPort !== 0 || managementOnFreePort === true ? config.managementPort : null,
        https: tls !== null && (config.managementTlsPort !== 0 || managementTlsOnFreePort === true) ? config.managementTlsPort : null,
      };
      if (managementPorts.http !== null || managementPorts.https !== null) {
        management = await startManagement({
          ports: managementPorts,
          broker,
          amqp: server,
          config,
          log,
          amqpPort: port,
          amqpTlsPort: tlsPort,
          tls,
          startedAt,
          otherListeners: () => (metrics === null ? [] : prometheusListeners(metrics, config.prometheusBind || config.bind)),
        });
        log.info({ bind: config.managementBind, port: management.port || null, tlsPort: management.tlsPort || null }, 'management API listening');
      }
      const metricsPort = config.prometheusPort !== 0 || metricsOnFreePort === true ? config.prometheusPort : null;
      const metricsTlsPort = tls !== null && (config.prometheusTlsPort !== 0 || metricsTlsOnFreePort === true) ? config.prometheusTlsPort : null;
      if (metricsPort !== null || metricsTlsPort !== null) {
        const metricsBind = config.prometheusBind || config.bind;
        metrics = await MetricsServer.start(
          { host: metricsBind, port: metricsPort, tlsPort: metricsTlsPort, tls },
          { broker, connections: server, log },
          broker.resources,
        );
        log.info({ bind: metricsBind, port: metrics.port || null, tlsPort: metrics.tlsPort || null }, 'Prometheus metrics listening');
      }
    } catch (err) {
      await management?.close();
      await server.close();
      broker.resources.stop();
      await persistence.close();
      throw err;
    }
    let closing: Promise<void> | null = null;
    started = true;
    return {
      port,
      tlsPort,
      config,
      broker,
      server,
      management,
      metrics,
      tls,
      reloadTls() {
        if (tls === null) throw new ConfigError('TLS is not configured (no --tls-cert): nothing to reload');
        tls.reload();
        log.info({ cert: config.tlsCert, key: config.tlsKey, ca: config.tlsCa }, 'TLS certificates reloaded');
      },
      close() {
        closing ??= (async () => {
          await metrics?.close();
          await management?.close();
          await server.close();
          broker.resources.stop();
          await persistence.close();
          lock.release();
          log.info('stopped');
        })();
        return closing;
      },
    };
  } finally {
    if (!started) lock.release();
  }
}
