// The broker model as a whole: virtual hosts, users, the store and the dispatcher, free of sockets.
// The connection layer talks to this; tests can drive it directly.

import type { Logger } from '../log.js';
import type { BrokerConfig } from '../config.js';
import type { Persistence } from './persistence.js';
import { MemoryGauge } from './memory.js';
import { Dispatcher } from './dispatch.js';
import type { Queue } from './queue/queue.js';
import { UserStore } from './users.js';
import { Permissions } from './permissions.js';
import { Policies } from './policies.js';
import { Admin } from './admin.js';
import { NotAllowed } from '../protocol/errors.js';
import type { ModelStore } from '../store/model-store.js';
import { BrokerStats } from './stats.js';
import { VHost, type VHostServices } from './vhost.js';
import { Resources } from './resources.js';

/** A client connection as the admin façade sees it (closing a deleted user's connections). */
export interface BrokerConnection {
  readonly userName: string;
  forceClose(reason: string): void;
}

export class Broker implements VHostServices {
  readonly vhosts = new Map<string, VHost>();
  readonly users = new UserStore();
  readonly permissions = new Permissions();
  readonly policies = new Policies();
  /** every administrative change goes through here (admin.ts) */
  readonly admin: Admin;
  readonly dispatcher: Dispatcher;
  readonly memory: MemoryGauge;
  /** open client connections (the admin façade closes a deleted user's) */
  readonly connections = new Set<BrokerConnection>();
  /** alarms, flow control and each connection's reading state */
  readonly resources: Resources;
  /** totals that never go backwards, read by the metrics collectors */
  readonly stats = new BrokerStats();

  constructor(
    readonly config: BrokerConfig,
    readonly persistence: Persistence,
    readonly log: Logger,
    /** where users, vhosts, permissions and policies are kept (null: nowhere) */
    modelStore: ModelStore | null = null,
  ) {
    this.admin = new Admin(this, modelStore);
    this.memory = new MemoryGauge(config.memoryBudgetBytes, log);
    this.resources = new Resources(
      {
        memoryHighWatermark: config.vmMemoryHighWatermark,
        diskFreeLimitBytes: config.diskFreeLimitBytes,
        consumerTimeoutMs: config.consumerTimeoutMs,
        maxConnections: config.maxConnections,
      },
      persistence,
      config.dataDir,
      log,
    );
    this.dispatcher = new Dispatcher(log, this.resources);
    // Queues page to disk as memory nears the high watermark (memory.ts), before the alarm blocks.
    this.memory.memoryLimitBytes = () => this.resources.memoryLimitBytes;
    this.memory.memoryUsedBytes = () => this.resources.memoryUsedBytes;
    this.resources.onMemorySample = () => this.memory.sampled(this.resources.memoryUsedBytes);
  }

  /**
   * Storage could not write: confirms already waiting are nacked by the persistence layer; here
   * the storage alarm blocks publishers (connection.blocked, and their sockets stop being read) so
   * nothing more is accepted that cannot be kept. Consumers carry on.
   */
  storageFailed(error: Error): void {
    if (this.resources.alarms.has('storage')) return;
    this.log.error(
      { err: error, dataDir: this.config.dataDir },
      'storage write failed: publishers are blocked. Free disk space (or fix the I/O error) for the data folder, then restart Warren; nothing confirmed has been lost',
    );
    this.resources.setAlarm('storage', true);
  }

  addVHost(name: string): VHost {
    let vhost = this.vhosts.get(name);
    if (vhost === undefined) {
      vhost = new VHost(name, this);
      this.vhosts.set(name, vhost);
    }
    return vhost;
  }

  /**
   * connection.open: the vhost a user may open, or 530 NOT_ALLOWED with RabbitMQ's texts (in its
   * order: the vhost's connection limit, the vhost's existence, the user's permission there).
   */
  openVhost(userName: string, vhostName: string): VHost {
    const vhost = this.vhosts.get(vhostName);
    if (vhost !== undefined && vhost.connectionLimitReached) {
      throw new NotAllowed(
        `access to vhost '${vhostName}' refused for user '${userName}': connection limit (${vhost.limits['max-connections']}) is reached`,
      );
    }
    if (vhost === undefined || vhost.deleted) throw new NotAllowed(`vhost ${vhostName} not found`);
    if (!this.permissions.mayAccessVhost(userName, vhostName)) {
      throw new NotAllowed(`access to vhost '${vhostName}' refused for user '${userName}'`);
    }
    return vhost;
  }

  queueReady(queue: Queue): void {
    this.dispatcher.markQueue(queue);
  }

  deliverNow(queue: Queue, now: number): void {
    this.dispatcher.deliverNow(queue, now);
  }
}
