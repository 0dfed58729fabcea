// Typed broker configuration: defaults, command-line flags and WARREN_* environment variables
// (flags win), validated with messages that say what to change.

import { isIP } from 'node:net';
import { hostname } from 'node:os';
import { LOG_LEVELS } from './log.js';
import type { LevelWithSilent } from 'pino';
import { parseMemoryWatermark, parseSize, type MemoryWatermark } from './broker/resources.js';
import type { CertLoginFrom, TlsMinVersion, TlsVerify } from './tls/tls-settings.js';

export interface BrokerConfig {
  /** address to listen on */
  bind: string;
  /** AMQP port; 0 picks a free port (embedders, tests); null: no plain AMQP listener (`--port 0`) */
  port: number | null;
  /** folder for the LMDB environment */
  dataDir: string;
  logLevel: LevelWithSilent;
  /** user created on first start; guest may only connect from loopback, as on RabbitMQ */
  defaultUser: string;
  defaultPass: string;
  defaultVhost: string;
  /** users restricted to loopback connections */
  loopbackUsers: string[];
  channelMax: number;
  frameMax: number;
  /** heartbeat interval proposed to clients, seconds (0 = off) */
  heartbeatSec: number;
  handshakeTimeoutMs: number;
  maxMessageSizeBytes: number;
  /** bytes of message bodies kept in memory across all queues before paging to disk */
  memoryBudgetBytes: number;
  clusterName: string;
  /** management HTTP API port (0 = off) */
  managementPort: number;
  /** address the management HTTP API listens on */
  managementBind: string;
  /** RabbitMQ definitions JSON imported at every start ('' = none); on the first start it replaces the default user and vhost */
  loadDefinitions: string;
  /** memory alarm: process RSS above this fraction of total RAM, or above this many bytes */
  vmMemoryHighWatermark: MemoryWatermark;
  /** disk alarm: free space of the data folder's file system below this many bytes */
  diskFreeLimitBytes: number;
  /** a channel with a delivery unacked for longer is closed (406), as RabbitMQ's consumer_timeout; 0 = never */
  consumerTimeoutMs: number;
  /** client connections served at once; more wait to be accepted (0 = no limit) */
  maxConnections: number;
  /** AMQPS port, used when tlsCert is set; 0 picks a free port; null: no AMQPS listener */
  tlsPort: number | null;
  /** PEM files: server certificate (chain), its private key, CA certificates for client certificates */
  tlsCert: string | null;
  tlsKey: string | null;
  tlsCa: string | null;
  /** 'peer': ask clients for a certificate and check it against tlsCa */
  tlsVerify: TlsVerify;
  /** with tlsVerify 'peer': refuse clients that present no certificate */
  tlsFailIfNoPeerCert: boolean;
  tlsMinVersion: TlsMinVersion;
  /** OpenSSL cipher list; null keeps Node's defaults */
  tlsCiphers: string | null;
  /** where SASL EXTERNAL takes the user name from in a client certificate */
  tlsCertLoginFrom: CertLoginFrom;
  /** HTTPS port of the management API, used when tlsCert is set (0 = off) */
  managementTlsPort: number;
  /** Prometheus listener port; 0 = off (the embedded broker's default) */
  prometheusPort: number;
  /** address of the Prometheus listener; '' = the AMQP bind address */
  prometheusBind: string;
  /** HTTPS port of the Prometheus listener, used when tlsCert is set (0 = off) */
  prometheusTlsPort: number;
  /** run as a node of a replicated cluster coordinated through etcd */
  cluster: boolean;
  /** etcd client URLs (http://host:2379), any member of the etcd cluster */
  etcdEndpoints: string[];
  /** address[:port] other nodes reach this node at (default: --bind and --cluster-port) */
  clusterAdvertise: string | null;
  /** replication port (followers connect to the leader's) */
  clusterPort: number;
  /** prefix of Warren's keys in etcd (several clusters can share one etcd) */
  clusterPrefix: string;
  /** etcd lease TTL, seconds: how long a dead leader keeps the role */
  clusterLeaseTtlSec: number;
  /** an in-sync follower further behind than this is dropped from the in-sync set, ms */
  clusterMaxLagMs: number;
  /** shell command run when this node becomes the leader ('' = none) */
  onLeaderElected: string;
  /** bytes of replication log kept for followers that reconnect (further behind: a snapshot) */
  clusterLogRetainBytes: number;
}

export const DEFAULT_CONFIG: Readonly<BrokerConfig> = {
  bind: '127.0.0.1',
  port: 5672,
  dataDir: './data',
  logLevel: 'info',
  defaultUser: 'guest',
  defaultPass: 'guest',
  defaultVhost: '/',
  loopbackUsers: ['guest'],
  channelMax: 2047,
  frameMax: 131072,
  heartbeatSec: 60,
  handshakeTimeoutMs: 10_000,
  maxMessageSizeBytes: 134_217_728,
  memoryBudgetBytes: 256 * 1024 * 1024,
  clusterName: `warren@${hostname()}`,
  loadDefinitions: '',
  managementPort: 15672,
  managementBind: '127.0.0.1',
  vmMemoryHighWatermark: { fraction: 0.4 },
  diskFreeLimitBytes: 50_000_000,
  consumerTimeoutMs: 1_800_000,
  maxConnections: 0,
  tlsPort: 5671,
  tlsCert: null,
  tlsKey: null,
  tlsCa: null,
  tlsVerify: 'none',
  tlsFailIfNoPeerCert: false,
  tlsMinVersion: 'TLSv1.2',
  tlsCiphers: null,
  tlsCertLoginFrom: 'common_name',
  managementTlsPort: 15671,
  prometheusPort: 15692,
  prometheusBind: '',
  prometheusTlsPort: 15691,
  cluster: false,
  etcdEndpoints: ['http://127.0.0.1:2379'],
  clusterAdvertise: null,
  clusterPort: 5679,
  clusterPrefix: 'warren',
  clusterLeaseTtlSec: 10,
  clusterMaxLagMs: 5000,
  onLeaderElected: '',
  clusterLogRetainBytes: 64 * 1024 * 1024,
};

export class ConfigError extends Error {}

interface OptionSpec {
  key: keyof BrokerConfig;
  flag: string;
  env: string;
  /** port: a number where 0 turns the listener off; choice: one of `choices`; bool: flag alone means true */
  kind: 'string' | 'int' | 'level' | 'address' | 'list' | 'size' | 'watermark' | 'port' | 'choice' | 'bool';
  help: string;
  min?: number;
  max?: number;
  choices?: readonly string[];
}

export const OPTIONS: readonly OptionSpec[] = [
  { key: 'bind', flag: '--bind', env: 'WARREN_BIND', kind: 'address', help: 'address to listen on' },
  { key: 'port', flag: '--port', env: 'WARREN_PORT', kind: 'port', min: 0, max: 65535, help: 'AMQP port (0 = no plain AMQP listener)' },
  { key: 'dataDir', flag: '--data-dir', env: 'WARREN_DATA_DIR', kind: 'string', help: 'folder for durable data (LMDB)' },
  { key: 'logLevel', flag: '--log-level', env: 'WARREN_LOG_LEVEL', kind: 'level', help: LOG_LEVELS.join('|') },
  { key: 'defaultUser', flag: '--default-user', env: 'WARREN_DEFAULT_USER', kind: 'string', help: 'user created on first start' },
  { key: 'defaultPass', flag: '--default-pass', env: 'WARREN_DEFAULT_PASS', kind: 'string', help: "that user's password" },
  { key: 'defaultVhost', flag: '--default-vhost', env: 'WARREN_DEFAULT_VHOST', kind: 'string', help: 'virtual host created on first start' },
  {
    key: 'loopbackUsers',
    flag: '--loopback-users',
    env: 'WARREN_LOOPBACK_USERS',
    kind: 'list',
    help: 'comma-separated users allowed only from loopback ("" for none)',
  },
  { key: 'channelMax', flag: '--channel-max', env: 'WARREN_CHANNEL_MAX', kind: 'int', min: 0, max: 65535, help: 'channels per connection (0 = 65535)' },
  { key: 'frameMax', flag: '--frame-max', env: 'WARREN_FRAME_MAX', kind: 'int', min: 4096, max: 2 ** 31 - 1, help: 'largest frame in bytes' },
  { key: 'heartbeatSec', flag: '--heartbeat', env: 'WARREN_HEARTBEAT', kind: 'int', min: 0, max: 65535, help: 'heartbeat seconds proposed to clients (0 = off)' },
  {
    key: 'handshakeTimeoutMs',
    flag: '--handshake-timeout',
    env: 'WARREN_HANDSHAKE_TIMEOUT',
    kind: 'int',
    min: 100,
    max: 3_600_000,
    help: 'ms a client has to complete the handshake',
  },
  {
    key: 'maxMessageSizeBytes',
    flag: '--max-message-size',
    env: 'WARREN_MAX_MESSAGE_SIZE',
    kind: 'int',
    min: 1,
    max: 536_870_912,
    help: 'largest message body in bytes',
  },
  {
    key: 'memoryBudgetBytes',
    flag: '--memory-budget',
    env: 'WARREN_MEMORY_BUDGET',
    kind: 'int',
    min: 1_048_576,
    max: Number.MAX_SAFE_INTEGER,
    help: 'bytes of message bodies kept in memory before paging to disk',
  },
  { key: 'clusterName', flag: '--cluster-name', env: 'WARREN_CLUSTER_NAME', kind: 'string', help: 'name reported to clients' },
  {
    key: 'loadDefinitions',
    flag: '--load-definitions',
    env: 'WARREN_LOAD_DEFINITIONS',
    kind: 'string',
    help: 'RabbitMQ definitions file (JSON) imported at every start',
  },
  { key: 'managementPort', flag: '--management-port', env: 'WARREN_MANAGEMENT_PORT', kind: 'int', min: 0, max: 65535, help: 'management HTTP API port (0 = off)' },
  { key: 'managementBind', flag: '--management-bind', env: 'WARREN_MANAGEMENT_BIND', kind: 'address', help: 'address the management HTTP API listens on' },
  {
    key: 'vmMemoryHighWatermark',
    flag: '--vm-memory-high-watermark',
    env: 'WARREN_VM_MEMORY_HIGH_WATERMARK',
    kind: 'watermark',
    help: 'memory alarm above this RSS: a fraction of total RAM (0.4) or a size (512MB)',
  },
  {
    key: 'diskFreeLimitBytes',
    flag: '--disk-free-limit',
    env: 'WARREN_DISK_FREE_LIMIT',
    kind: 'size',
    help: 'disk alarm below this much free space for the data folder (bytes, or 50MB, 1GB, 2GiB)',
  },
  {
    key: 'consumerTimeoutMs',
    flag: '--consumer-timeout',
    env: 'WARREN_CONSUMER_TIMEOUT',
    kind: 'int',
    min: 0,
    max: 2 ** 31 - 1,
    help: 'ms a delivery may stay unacknowledged before its channel is closed (0 = no limit)',
  },
  {
    key: 'maxConnections',
    flag: '--max-connections',
    env: 'WARREN_MAX_CONNECTIONS',
    kind: 'int',
    min: 0,
    max: 10_000_000,
    help: 'client connections served at once; more wait to be accepted (0 = no limit)',
  },
  { key: 'tlsPort', flag: '--tls-port', env: 'WARREN_TLS_PORT', kind: 'port', min: 0, max: 65535, help: 'AMQPS port, used when --tls-cert is set (0 = none)' },
  { key: 'tlsCert', flag: '--tls-cert', env: 'WARREN_TLS_CERT', kind: 'string', help: 'PEM file: server certificate (and chain); turns TLS on' },
  { key: 'tlsKey', flag: '--tls-key', env: 'WARREN_TLS_KEY', kind: 'string', help: "PEM file: the server certificate's private key" },
  { key: 'tlsCa', flag: '--tls-ca', env: 'WARREN_TLS_CA', kind: 'string', help: 'PEM file: CA certificates client certificates must chain to' },
  {
    key: 'tlsVerify',
    flag: '--tls-verify',
    env: 'WARREN_TLS_VERIFY',
    kind: 'choice',
    choices: ['none', 'peer'],
    help: 'none|peer: ask clients for a certificate and verify it',
  },
  {
    key: 'tlsFailIfNoPeerCert',
    flag: '--tls-fail-if-no-peer-cert',
    env: 'WARREN_TLS_FAIL_IF_NO_PEER_CERT',
    kind: 'bool',
    help: 'with --tls-verify peer: refuse clients without a certificate',
  },
  {
    key: 'tlsMinVersion',
    flag: '--tls-min-version',
    env: 'WARREN_TLS_MIN_VERSION',
    kind: 'choice',
    choices: ['TLSv1.2', 'TLSv1.3'],
    help: 'oldest TLS version accepted',
  },
  { key: 'tlsCiphers', flag: '--tls-ciphers', env: 'WARREN_TLS_CIPHERS', kind: 'string', help: "OpenSSL cipher list (none: Node's defaults)" },
  {
    key: 'tlsCertLoginFrom',
    flag: '--tls-cert-login-from',
    env: 'WARREN_TLS_CERT_LOGIN_FROM',
    kind: 'choice',
    choices: ['common_name', 'distinguished_name'],
    help: 'SASL EXTERNAL user name: the certificate CN or its whole subject DN',
  },
  {
    key: 'managementTlsPort',
    flag: '--management-tls-port',
    env: 'WARREN_MANAGEMENT_TLS_PORT',
    kind: 'int',
    min: 0,
    max: 65535,
    help: 'management API over HTTPS, used when --tls-cert is set (0 = off)',
  },
  {
    key: 'prometheusPort',
    flag: '--prometheus-port',
    env: 'WARREN_PROMETHEUS_PORT',
    kind: 'int',
    min: 0,
    max: 65535,
    help: 'Prometheus metrics port: /metrics, /metrics/per-object, /metrics/detailed (0 = off)',
  },
  {
    key: 'prometheusTlsPort',
    flag: '--prometheus-tls-port',
    env: 'WARREN_PROMETHEUS_TLS_PORT',
    kind: 'int',
    min: 0,
    max: 65535,
    help: 'Prometheus metrics over HTTPS, used when --tls-cert is set (0 = off)',
  },
  { key: 'prometheusBind', flag: '--prometheus-bind', env: 'WARREN_PROMETHEUS_BIND', kind: 'address', help: 'address of the metrics listener ("" = the --bind address)' },
  { key: 'cluster', flag: '--cluster', env: 'WARREN_CLUSTER', kind: 'bool', help: 'run as a node of a replicated cluster (needs etcd)' },
  { key: 'etcdEndpoints', flag: '--etcd-endpoints', env: 'WARREN_ETCD_ENDPOINTS', kind: 'list', help: 'comma-separated etcd client URLs' },
  {
    key: 'clusterAdvertise',
    flag: '--cluster-advertise',
    env: 'WARREN_CLUSTER_ADVERTISE',
    kind: 'string',
    help: 'host[:port] other nodes reach this node at (default: --bind, --cluster-port)',
  },
  { key: 'clusterPort', flag: '--cluster-port', env: 'WARREN_CLUSTER_PORT', kind: 'int', min: 1, max: 65535, help: 'replication port' },
  { key: 'clusterPrefix', flag: '--cluster-prefix', env: 'WARREN_CLUSTER_PREFIX', kind: 'string', help: "prefix of the cluster's keys in etcd" },
  {
    key: 'clusterLeaseTtlSec',
    flag: '--cluster-lease-ttl',
    env: 'WARREN_CLUSTER_LEASE_TTL',
    kind: 'int',
    min: 2,
    max: 600,
    help: 'etcd lease TTL in seconds (how long a dead leader holds on)',
  },
  {
    key: 'clusterMaxLagMs',
    flag: '--cluster-max-lag',
    env: 'WARREN_CLUSTER_MAX_LAG',
    kind: 'int',
    min: 100,
    max: 600_000,
    help: 'ms an in-sync follower may lag before it is dropped from the in-sync set',
  },
  {
    key: 'onLeaderElected',
    flag: '--on-leader-elected',
    env: 'WARREN_ON_LEADER_ELECTED',
    kind: 'string',
    help: 'shell command run when this node becomes the leader',
  },
  {
    key: 'clusterLogRetainBytes',
    flag: '--cluster-log-retain',
    env: 'WARREN_CLUSTER_LOG_RETAIN',
    kind: 'size',
    help: 'replication log kept for followers that reconnect; one further behind gets a snapshot',
  },
];

function convert(spec: OptionSpec, raw: string, source: string): BrokerConfig[keyof BrokerConfig] {
  switch (spec.kind) {
    case 'string':
      if (raw === '') throw new ConfigError(`${source} must not be empty`);
      return raw;
    case 'list':
      return raw
        .split(',')
        .map((s) => s.trim())
        .filter((s) => s !== '');
    case 'address':
      if (isIP(raw) === 0 && raw !== 'localhost') {
        throw new ConfigError(`${source} must be an IP address such as 127.0.0.1, 0.0.0.0 or ::1 (got '${raw}')`);
      }
      return raw;
    case 'level':
      if (!(LOG_LEVELS as readonly string[]).includes(raw)) {
        throw new ConfigError(`${source} must be one of ${LOG_LEVELS.join(', ')} (got '${raw}')`);
      }
      return raw as LevelWithSilent;
    case 'size': {
      const bytes = parseSize(raw);
      if (bytes === undefined) {
        throw new ConfigError(`${source} must be a size in bytes, or with a unit such as 50MB, 1GB or 512MiB (got '${raw}')`);
      }
      return bytes;
    }
    case 'watermark': {
      const watermark = parseMemoryWatermark(raw);
      if (watermark === undefined) {
        throw new ConfigError(`${source} must be a fraction of total RAM above 0 and at most 1 (such as 0.4), or a size such as 512MB (got '${raw}')`);
      }
      return watermark;
    }
    case 'choice':
      if (!(spec.choices ?? []).includes(raw)) {
        throw new ConfigError(`${source} must be one of ${(spec.choices ?? []).join(', ')} (got '${raw}')`);
      }
      return raw as BrokerConfig[keyof BrokerConfig];
    case 'bool':
      if (raw === 'true' || raw === '1' || raw === 'yes') return true;
      if (raw === 'false' || raw === '0' || raw === 'no') return false;
      throw new ConfigError(`${source} must be true or false (got '${raw}')`);
    case 'port':
    case 'int': {
      if (!/^\d+$/.test(raw)) throw new ConfigError(`${source} must be a whole number (got '${raw}')`);
      const n = Number(raw);
      if (n < (spec.min ?? 0) || n > (spec.max ?? Number.MAX_SAFE_INTEGER)) {
        throw new ConfigError(`${source} must be between ${spec.min} and ${spec.max} (got ${raw})`);
      }
      // On the command line a port of 0 turns the listener off (embedders pass 0 for "any free port").
      return spec.kind === 'port' && n === 0 ? null : n;
    }
  }
}

/** Reads configuration from flags and environment. Throws ConfigError with a readable message. */
export function parseConfig(argv: readonly string[], env: NodeJS.ProcessEnv): BrokerConfig {
  const config: BrokerConfig = { ...DEFAULT_CONFIG, loopbackUsers: [...DEFAULT_CONFIG.loopbackUsers] };
  const set = (spec: OptionSpec, raw: string, source: string): void => {
    (config as unknown as Record<string, unknown>)[spec.key] = convert(spec, raw, source);
  };
  for (const spec of OPTIONS) {
    const raw = env[spec.env];
    if (raw !== undefined) set(spec, raw, `${spec.env}`);
  }
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const eq = arg.indexOf('=');
    const name = eq > 0 ? arg.slice(0, eq) : arg;
    const spec = OPTIONS.find((o) => o.flag === name);
    if (!spec) throw new ConfigError(`unknown option '${arg}' (see --help)`);
    let value: string | undefined;
    if (eq > 0) value = arg.slice(eq + 1);
    else if (spec.kind === 'bool') value = 'true';
    else value = argv[++i];
    if (value === undefined) throw new ConfigError(`option ${name} needs a value (see --help)`);
    set(spec, value, name);
  }
  return config;
}

export function usage(): string {
  const lines = [
    'Usage: warren [options]',
    '',
    'Starts the Warren AMQP 0-9-1 broker. Each option can also be set by its environment variable;',
    'a flag wins over the variable.',
    '',
  ];
  for (const o of OPTIONS) {
    const def = DEFAULT_CONFIG[o.key];
    const shown = Array.isArray(def)
      ? def.join(',')
      : def === null
        ? 'none'
        : typeof def === 'object'
          ? String('fraction' in def ? def.fraction : def.bytes)
          : String(def) || 'none';
    const name = o.kind === 'bool' ? o.flag : `${o.flag} <value>`;
    lines.push(`  ${name.padEnd(28)} ${o.env.padEnd(26)} ${o.help} (default: ${shown})`);
  }
  lines.push('  --help                       show this text');
  return lines.join('\n');
}
