// `warren --cluster`: runs this process as a node of a replicated cluster (src/cluster/node.ts)
// instead of a single broker: prints where it serves clients (as leader, or forwarding to the
// leader as follower), and on SIGINT/SIGTERM hands leadership over before it exits.

import type { BrokerConfig } from '../config.js';
import { ClusterNode } from '../cluster/node.js';
import { createLogger } from '../log.js';

export async function runClusterNode(config: BrokerConfig): Promise<void> {
  const log = createLogger(config.logLevel);
  let node: ClusterNode;
  try {
    node = new ClusterNode(config, log);
  } catch (err) {
    process.stderr.write(`warren: ${(err as Error).message}\n`);
    process.exit(1);
  }
  node.onFatal = (err) => {
    log.fatal({ err: err.message }, 'cluster node cannot go on; exiting (a supervisor should restart it)');
    process.stderr.write(`warren: ${err.message}\n`);
    setTimeout(() => process.exit(1), 100);
  };
  node.onLeft = () => {
    process.stdout.write(`warren: node ${node.id} left the cluster\n`);
    process.exit(0);
  };
  process.on('unhandledRejection', (reason) => {
    log.error({ err: reason }, 'unhandled promise rejection');
  });
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    node.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        process.stderr.write(`warren: shutdown failed: ${(err as Error).message}\n`);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
  try {
    await node.start();
  } catch (err) {
    process.stderr.write(`warren: ${(err as Error).message}\n`);
    process.exit(1);
  }
  const host = config.bind.includes(':') ? `[${config.bind}]` : config.bind;
  const info = node.nodeInfo;
  process.stdout.write(
    `warren: cluster node ${node.id} listening on amqp://${host}:${info.amqpPort}/ (replication on ${info.host}:${info.clusterPort}, data in ${config.dataDir}); clients are served by the leader\n`,
  );
}
