// The child brokers (bin/warren processes) of one restart or crash test file, and the amqplib
// clients connected to them, cleaned up after the file whatever happened: clients closed, every
// broker still running killed (by pid), every data folder removed. A test adds what it starts to
// `live` (start() does) and takes out what it has stopped itself.

import { rmSync } from 'node:fs';
import type { ChannelModel } from 'amqplib';
import { afterAll } from 'vitest';
import { Clients } from './amqp.js';
import { ChildBroker } from './child-broker.js';

export function useChildBrokers() {
  const live = new Set<ChildBroker>();
  const folders: string[] = [];
  const clients = new Clients(() => {
    throw new Error('connect to a ChildBroker: clients.connect(broker.url)');
  });

  afterAll(async () => {
    await clients.closeAll();
    for (const b of [...live]) await b.kill();
    for (const dir of folders) rmSync(dir, { recursive: true, force: true });
  });

  return {
    live,
    /** data folders removed after the file */
    folders,
    clients,
    /** Starts bin/warren on dataDir (a free port), killed after the file if still running. */
    async start(dataDir: string): Promise<ChildBroker> {
      const broker = await ChildBroker.start(dataDir);
      live.add(broker);
      return broker;
    },
    /** An amqplib connection to broker, closed after the file. */
    connect(broker: ChildBroker): Promise<ChannelModel> {
      return clients.connect(broker.url);
    },
  };
}
