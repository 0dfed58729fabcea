// One embedded Warren for a test file (or a describe block) and the amqplib clients its tests open.
// useTestBroker() registers the vitest hooks every such file used to repeat: start the broker
// before the first test; after each test run its cleanups, then close the connections it opened;
// after the last test close what is still open, then the broker (removing its data folder).

import { afterAll, afterEach, beforeAll } from 'vitest';
import type { Broker } from '../../src/broker/broker.js';
import type { Connection as WarrenConnection } from '../../src/connection/connection.js';
import type { AmqpServer } from '../../src/connection/server.js';
import type { StartOptions } from '../../src/index.js';
import { Clients, type RecordedConnection } from './amqp.js';
import { startTestBroker, type TestBroker } from './broker.js';

export interface UsedTestBroker {
  /** amqp://guest:guest@127.0.0.1:PORT */
  readonly url: string;
  /** the AMQP port it listens on */
  readonly port: number;
  /** the broker model (vhosts, queues, admin, resources) */
  readonly broker: Broker;
  /** the AMQP listener and its live connections */
  readonly server: AmqpServer;
  readonly dataDir: string;
  /** the running broker itself */
  readonly running: TestBroker;
  /** amqplib connections to it, each recording its errors; closed after every test */
  readonly clients: Clients;
  /** Registers something to run after the current test, before its connections are closed. */
  cleanup(f: () => Promise<void> | void): void;
  /** The broker's side of an amqplib connection (matched by the client's local port). */
  serverSide(conn: RecordedConnection): WarrenConnection;
}

/**
 * Starts a Warren (startTestBroker(options): loopback, free port, temporary data folder) in
 * beforeAll and stops it in afterAll; the returned accessors read the running broker, so use them
 * inside tests and hooks only.
 */
export function useTestBroker(options: StartOptions = {}): UsedTestBroker {
  let running: TestBroker | undefined;
  const started = (): TestBroker => {
    if (running === undefined) throw new Error('the test broker is not running: use it inside a test or hook (useTestBroker starts it in beforeAll)');
    return running;
  };
  const clients = new Clients(() => started().url);
  const cleanups: (() => Promise<void> | void)[] = [];

  beforeAll(async () => {
    running = await startTestBroker(options);
  });
  afterEach(async () => {
    try {
      for (const f of cleanups.splice(0)) await f();
    } finally {
      await clients.closeAll();
    }
  });
  afterAll(async () => {
    await clients.closeAll();
    await running?.stop();
    running = undefined;
  });

  return {
    get url() {
      return started().url;
    },
    get port() {
      return started().port;
    },
    get broker() {
      return started().broker;
    },
    get server() {
      return started().server;
    },
    get dataDir() {
      return started().dataDir;
    },
    get running() {
      return started();
    },
    clients,
    cleanup(f) {
      cleanups.push(f);
    },
    serverSide(conn: RecordedConnection): WarrenConnection {
      const port = (conn.connection as unknown as { stream: { localPort: number } }).stream.localPort;
      const found = [...started().server.connections].find((c) => c.socket.remotePort === port);
      if (found === undefined) throw new Error(`no server connection for client port ${port}`);
      return found;
    },
  };
}
