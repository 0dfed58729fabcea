// What the management API reads from and acts on: the broker model, the live AMQP connections,
// and facts about this node. Built once by startBroker and handed to every route module.

import { hostname } from 'node:os';
import type { Broker } from '../broker/broker.js';
import type { User } from '../broker/users.js';
import type { BrokerConfig } from '../config.js';
import type { Connection } from '../connection/connection.js';
import type { RateSampler } from './rates.js';
import type { Access } from '../broker/permissions.js';
import type { MessageAdmin } from '../broker/admin-messages.js';

/** Who may sign in (the broker's users). */
export interface UserDirectory {
  authenticate(name: string, password: string): User | undefined;
  /** users allowed to sign in from loopback only (guest, by default) */
  isLoopbackOnly(name: string): boolean;
}

/** One listening socket, as overview.listeners shows it. */
export interface ListenerInfo {
  protocol: string;
  ip_address: string;
  port: number;
}

export interface ManagementContext {
  readonly broker: Broker;
  readonly config: BrokerConfig;
  /** this node's name, as RabbitMQ's "rabbit@host" */
  readonly nodeName: string;
  /** epoch ms when the broker started */
  readonly startedAt: number;
  readonly rates: RateSampler;
  /** open AMQP connections */
  connections(): Iterable<Connection>;
  /** the sockets this node listens on */
  listeners(): ListenerInfo[];
  /** whether a user has permissions in a vhost (any entry at all: what "may log in" means) */
  hasVhostAccess(user: string, vhost: string): boolean;
  /** throws 403 ACCESS_REFUSED (an AMQP error) unless the user may do this */
  checkPermission(user: string, vhost: string, access: Access, kind: 'exchange' | 'queue', name: string): void;
  /** publish, get, dead-letter inspection and replay */
  readonly messages: MessageAdmin;
}

export function defaultNodeName(): string {
  return `warren@${hostname()}`;
}
