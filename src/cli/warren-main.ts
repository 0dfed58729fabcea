// `warren`: parse flags and environment, start the broker, print where it listens, re-read TLS
// certificates on SIGHUP, and shut down cleanly on SIGINT/SIGTERM. A bad flag or a busy port
// gives one line on stderr and exit code 1.

import { ConfigError, parseConfig, usage } from '../config.js';
import { startBroker } from '../index.js';
import { allocatorTrimAvailable } from '../broker/allocator.js';
import { runClusterNode } from './warren-cluster.js';

export async function main(argv: string[]): Promise<void> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(usage() + '\n');
    return;
  }
  let config;
  try {
    config = parseConfig(argv, process.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`warren: ${err.message}\n`);
      process.exit(1);
    }
    throw err;
  }
  if (config.cluster) {
    await runClusterNode(config);
    return;
  }
  let running;
  try {
    running = await startBroker(config);
  } catch (err) {
    process.stderr.write(`warren: ${(err as Error).message}\n`);
    process.exit(1);
  }
  // Signal handlers come before the line saying where Warren listens: a supervisor (or a test)
  // that sends SIGTERM as soon as it reads that line gets a clean shutdown, not a kill.
  // A library promise rejected with nobody listening (seen from the storage layer after an I/O
  // error): log it and keep serving; the broker has already blocked publishers if it matters.
  process.on('unhandledRejection', (reason) => {
    running.broker.log.error({ err: reason }, 'unhandled promise rejection');
  });
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    running.broker.log.info({ signal }, 'shutting down');
    running.close().then(
      () => process.exit(0),
      (err: unknown) => {
        process.stderr.write(`warren: shutdown failed: ${(err as Error).message}\n`);
        process.exit(1);
      },
    );
  };
  // SIGHUP re-reads the TLS certificate, key and CA files (renewed certificates) without dropping
  // anyone; unusable new files are reported and the previous ones stay in use.
  process.on('SIGHUP', () => {
    if (running.tls === null) {
      running.broker.log.info('SIGHUP: no TLS configured, nothing to reload');
      return;
    }
    try {
      running.reloadTls();
    } catch (err) {
      running.broker.log.error({ reason: (err as Error).message }, 'TLS reload failed; the previous certificates stay in use');
    }
  });
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
  const host = config.bind.includes(':') ? `[${config.bind}]` : config.bind;
  const urls: string[] = [];
  if (running.port !== 0) urls.push(`amqp://${host}:${running.port}/`);
  if (running.tlsPort !== 0) urls.push(`amqps://${host}:${running.tlsPort}/`);
  process.stdout.write(`warren: listening on ${urls.join(' and ')} (data in ${config.dataDir})\n`);
  if (running.management !== null) {
    const mhost = config.managementBind.includes(':') ? `[${config.managementBind}]` : config.managementBind;
    const apis: string[] = [];
    if (running.management.port !== 0) apis.push(`http://${mhost}:${running.management.port}/api/`);
    if (running.management.tlsPort !== 0) apis.push(`https://${mhost}:${running.management.tlsPort}/api/`);
    process.stdout.write(`warren: management API on ${apis.join(' and ')}\n`);
  }
  if (running.metrics !== null) {
    const bind = config.prometheusBind || config.bind;
    const host = bind.includes(':') ? `[${bind}]` : bind;
    const endpoints: string[] = [];
    if (running.metrics.port !== 0) endpoints.push(`http://${host}:${running.metrics.port}/metrics`);
    if (running.metrics.tlsPort !== 0) endpoints.push(`https://${host}:${running.metrics.tlsPort}/metrics`);
    process.stdout.write(`warren: Prometheus metrics on ${endpoints.join(' and ')}\n`);
  }
  if (!allocatorTrimAvailable && process.platform === 'linux') {
    running.broker.log.warn(
      { addon: 'dist/native/malloc-trim.node' },
      'optional malloc-trim addon not built (npm ci builds it where a C compiler and node headers are installed): memory freed after a flood may stay resident',
    );
  }
}
