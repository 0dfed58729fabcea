// The broker model as a whole: virtual hosts, users, the store and the dispatcher, free of sockets.
// The connection layer talks to this; tests can drive it directly.

import type { Logger } from '../log.js';
import type { BrokerConfig } from '../config.js';
import type { Persistence } from './persistence.js';
import { MemoryGauge } from './memory.js';
import { Dispatcher } from './dispatch.js';
import type { Queue } from './queue/queue.js';
import { UserStore } from './users.js';
import { VHost, type VHostServices } from './vhost.js';

export class Broker implements VHostServices {
  readonly vhosts = new Map<string, VHost>();
  readonly users = new UserStore();
  readonly dispatcher = new Dispatcher();
  readonly memory: MemoryGauge;

  constructor(
    readonly config: BrokerConfig,
    readonly persistence: Persistence,
    readonly log: Logger,
  ) {
    this.memory = new MemoryGauge(config.memoryBudgetBytes);
  }

  addVHost(name: string): VHost {
    let vhost = this.vhosts.get(name);
    if (vhost === undefined) {
      vhost = new VHost(name, this);
      this.vhosts.set(name, vhost);
    }
    return vhost;
  }

  queueReady(queue: Queue): void {
    this.dispatcher.markQueue(queue);
  }
}
