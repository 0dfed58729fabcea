// `warren`: parse flags and environment, start the broker, print where it listens, and shut down
// cleanly on SIGINT/SIGTERM. A bad flag or a busy port gives one line on stderr and exit code 1.

import { ConfigError, parseConfig, usage } from '../config.js';
import { startBroker } from '../index.js';

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
  let running;
  try {
    running = await startBroker(config);
  } catch (err) {
    process.stderr.write(`warren: ${(err as Error).message}\n`);
    process.exit(1);
  }
  process.stdout.write(
    `warren: listening on amqp://${config.bind.includes(':') ? `[${config.bind}]` : config.bind}:${running.port}/ (data in ${config.dataDir})\n`,
  );
  if (running.management !== null) {
    const host = config.managementBind.includes(':') ? `[${config.managementBind}]` : config.managementBind;
    process.stdout.write(`warren: management API on http://${host}:${running.management.port}/api/\n`);
  }
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
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}
