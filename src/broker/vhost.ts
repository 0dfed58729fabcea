// A virtual host: its exchanges, queues and bindings, and the operations clients perform on them
// (declare, delete, bind, unbind, publish). Deep checks throw typed AMQP errors with RabbitMQ's
// reply texts; the channel turns them into channel.close. Normal outcomes are return values.

import { randomBytes } from 'node:crypto';
import {
  AccessRefused,
  CommandInvalid,
  NotFound,
  PreconditionFailed,
  ResourceLocked,
} from '../protocol/errors.js';
import { TypedValue, copyTable, type FieldTable } from '../protocol/field-table.js';
import type { Logger } from '../log.js';
import type { Persistence } from './persistence.js';
import type { MemoryGauge } from './memory.js';
import { Binding, type Destination } from './binding.js';
import { deadLetterCopy, findDeadLetterCycles } from './dead-letter.js';
import { createExchange, isKnownExchangeType } from './exchange/types.js';
import { DefaultExchange } from './exchange/default.js';
import { DelayedMessageExchange, requestedDelay, type DelayedMessage } from './exchange/delayed.js';
import type { Exchange } from './exchange/exchange.js';
import type { Message } from './message.js';
import {
  EXCHANGE_COMPARED_ARGS,
  QUEUE_COMPARED_ARGS,
  assertEquivalentArguments,
  parseQueueArguments,
} from './queue/arguments.js';
import { EnqueueResult, Queue, type DeadLetterReason, type QueueHost, type QueueOwner } from './queue/queue.js';
import { Router } from './routing.js';
import { queueOptionsWithPolicy, type Policies } from './policies.js';

/** What the vhost needs from the broker around it. */
export interface VHostServices {
  readonly persistence: Persistence;
  readonly memory: MemoryGauge;
  readonly log: Logger;
  readonly policies: Policies;
  /** a queue has work for the dispatcher */
  queueReady(queue: Queue): void;
  /** deliver from this queue right now (as of time now) */
  deliverNow(queue: Queue, now: number): void;
}

/** The pseudo-queue clients consume from for direct reply-to (RPC without a reply queue). */
export const REPLY_TO_QUEUE = 'amq.rabbitmq.reply-to';

/** A channel consuming from amq.rabbitmq.reply-to: replies go straight to it. */
export interface ReplyTarget {
  deliverReply(message: Message): void;
}

/** Bit flags returned by publish (a number, so the hot path allocates nothing). */
export const PUBLISH_ROUTED = 1;
export const PUBLISH_PENDING_COMMIT = 2;
export const PUBLISH_REJECTED = 4;

export const PREDECLARED_EXCHANGES: readonly [string, string][] = [
  ['amq.direct', 'direct'],
  ['amq.fanout', 'fanout'],
  ['amq.topic', 'topic'],
  ['amq.headers', 'headers'],
  ['amq.match', 'headers'],
];

export interface ExchangeDeclare {
  name: string;
  type: string;
  passive: boolean;
  durable: boolean;
  autoDelete: boolean;
  internal: boolean;
  args: FieldTable;
}

export interface QueueDeclare {
  name: string;
  passive: boolean;
  durable: boolean;
  exclusive: boolean;
  autoDelete: boolean;
  args: FieldTable;
}

/**
 * As the delayed-message plugin: a message that was held comes out with its x-delay header negated
 * (a 64-bit integer), so consumers can tell it was delayed.
 */
function markDelayed(message: Message): void {
  const props = message.properties;
  const headers = copyTable(props.headers);
  headers['x-delay'] = new TypedValue('l', -requestedDelay(message));
  message.replaceProperties({ ...props, headers });
}

/** Redeclare check of one flag or the type, with RabbitMQ's text. */
function assertSame(field: string, received: string | boolean, current: string | boolean, what: string): void {
  if (received === current) return;
  throw new PreconditionFailed(`inequivalent arg '${field}' for ${what}: received '${String(received)}' but current is '${String(current)}'`);
}

function isExclusiveQueue(d: Destination): boolean {
  return d.kind === 'queue' && d.exclusive;
}

/** RabbitMQ's vhost limits (the vhost-limits parameter); absent or negative = no limit. */
export interface VHostLimits {
  'max-connections'?: number;
  'max-queues'?: number;
}

/** A connection as its vhost counts it (limits, closing on vhost deletion). */
export interface VHostConnection {
  forceClose(reason: string): void;
}

/** Server-generated names: prefix + 22 url-safe base64 characters, as RabbitMQ. */
export function generateName(prefix: string): string {
  return prefix + randomBytes(16).toString('base64url');
}

export class VHost implements QueueHost {
  readonly exchanges = new Map<string, Exchange>();
  readonly queues = new Map<string, Queue>();
  readonly router: Router;
  readonly defaultExchange: DefaultExchange;
  /** direct reply-to: reply routing key → the consuming channel */
  readonly replyTargets = new Map<string, ReplyTarget>();
  private readonly targetScratch: Queue[][] = [];
  private routeDepth = 0;
  /** counters for metrics */
  unroutableDropped = 0;
  unroutableReturned = 0;
  /** metadata shown by the management API and kept in definitions */
  description = '';
  tags: string[] = [];
  defaultQueueType: string | null = null;
  limits: VHostLimits = {};
  /** open connections to this vhost (counted for max-connections, closed when it is deleted) */
  readonly connections = new Set<VHostConnection>();
  /** set once the vhost is being deleted: nothing new may be created in it */
  deleted = false;

  constructor(
    readonly name: string,
    private readonly services: VHostServices,
  ) {
    this.defaultExchange = new DefaultExchange(name, this.queues);
    this.exchanges.set('', this.defaultExchange);
    for (const [exName, type] of PREDECLARED_EXCHANGES) {
      this.exchanges.set(exName, createExchange(type, name, exName, { durable: true, autoDelete: false, internal: false, args: {} }));
    }
    this.router = new Router((n) => this.exchanges.get(n));
  }

  get persistence(): Persistence {
    return this.services.persistence;
  }

  get memory(): MemoryGauge {
    return this.services.memory;
  }

  get log(): Logger {
    return this.services.log;
  }

  private describeExchange(name: string): string {
    return `exchange '${name}' in vhost '${this.name}'`;
  }

  private describeQueue(name: string): string {
    return `queue '${name}' in vhost '${this.name}'`;
  }

  // ---- Lookups ------------------------------------------------------------------------------------

  getExchange(name: string): Exchange {
    const ex = this.exchanges.get(name);
    if (ex === undefined) throw new NotFound(`no ${this.describeExchange(name)}`);
    return ex;
  }

  /** A queue the caller may use: exists, and not another connection's exclusive queue. */
  getQueue(name: string, owner: QueueOwner): Queue {
    const q = this.queues.get(name);
    if (q === undefined) throw new NotFound(`no ${this.describeQueue(name)}`);
    this.checkExclusiveAccess(q, owner);
    return q;
  }

  checkExclusiveAccess(queue: Queue, owner: QueueOwner): void {
    if (queue.exclusiveOwner !== null && queue.exclusiveOwner !== owner) {
      throw new ResourceLocked(
        `cannot obtain exclusive access to locked ${this.describeQueue(queue.name)}. It could be originally declared on another connection or the exclusive property value does not match that of the original declaration.`,
      );
    }
  }

  // ---- Exchanges ----------------------------------------------------------------------------------

  declareExchange(d: ExchangeDeclare): Exchange {
    if (d.name === '') throw new AccessRefused(`operation not permitted on the default exchange`);
    if (d.passive) return this.getExchange(d.name);
    const existing = this.exchanges.get(d.name);
    if (existing === undefined && d.name.startsWith('amq.')) {
      throw new AccessRefused(`exchange name '${d.name}' contains reserved prefix 'amq.*'`);
    }
    if (!isKnownExchangeType(d.type)) throw new CommandInvalid(`unknown exchange type '${d.type}'`);
    if (existing !== undefined) {
      this.assertExchangeEquivalent(existing, d);
      return existing;
    }
    const ex = createExchange(d.type, this.name, d.name, d);
    ex.applyPolicy(this.services.policies.match(this.name, 'exchange', ex.name));
    this.addExchange(ex);
    if (ex.durable) this.persistence.saveExchange(ex);
    return ex;
  }

  /** Puts a new (or recovered) exchange in place. */
  addExchange(ex: Exchange): void {
    this.exchanges.set(ex.name, ex);
    if (ex instanceof DelayedMessageExchange) ex.onDue = this.releaseDelayed;
  }

  /** A delayed message's time has come: route it as if it were published now. */
  private readonly releaseDelayed = (ex: DelayedMessageExchange, due: DelayedMessage): void => {
    if (ex.deleted) return;
    try {
      const now = Date.now();
      markDelayed(due.message);
      due.message.publishedAt = now;
      this.route(ex, due.message, null, now);
      if (due.storeId !== 0) this.persistence.deleteDelayed(ex, due.dueAt, due.storeId);
    } catch (err) {
      this.log.error({ err, vhost: this.name, exchange: ex.name }, 'releasing a delayed message failed');
    }
  };

  private assertExchangeEquivalent(ex: Exchange, d: ExchangeDeclare): void {
    const what = this.describeExchange(ex.name);
    assertSame('type', d.type, ex.type, what);
    assertSame('durable', d.durable, ex.durable, what);
    assertSame('auto_delete', d.autoDelete, ex.autoDelete, what);
    assertSame('internal', d.internal, ex.internal, what);
    assertEquivalentArguments(ex.args, d.args, EXCHANGE_COMPARED_ARGS, what);
  }

  deleteExchange(name: string, ifUnused: boolean): void {
    if (name === '') throw new AccessRefused(`operation not permitted on the default exchange`);
    if (name.startsWith('amq.')) {
      throw new AccessRefused(`deletion of system exchange '${name}' in vhost '${this.name}' not allowed`);
    }
    const ex = this.exchanges.get(name);
    if (ex === undefined) return; // RabbitMQ: deleting a missing exchange succeeds
    if (ifUnused && ex.bindings.size > 0) throw new PreconditionFailed(`${this.describeExchange(name)} in use`);
    this.removeExchange(ex);
  }

  private removeExchange(ex: Exchange): void {
    ex.deleted = true;
    if (ex instanceof DelayedMessageExchange) {
      for (const d of ex.drop()) if (d.storeId !== 0) this.persistence.deleteDelayed(ex, d.dueAt, d.storeId);
    }
    this.exchanges.delete(ex.name);
    for (const b of [...ex.bindings.values()]) this.dropBinding(b);
    for (const b of [...ex.incoming]) this.dropBinding(b);
    if (ex.durable) this.persistence.deleteExchange(ex);
  }

  // ---- Bindings -----------------------------------------------------------------------------------

  /** The default exchange takes no bindings in either direction. */
  private checkBindable(ex: Exchange): void {
    if (ex.name === '') throw new AccessRefused(`operation not permitted on the default exchange`);
  }

  bind(sourceName: string, destination: Destination, routingKey: string, args: FieldTable): void {
    const source = this.getExchange(sourceName);
    this.checkBindable(source);
    if (destination.kind === 'exchange') this.checkBindable(destination);
    source.validateBindingArgs(args);
    const binding = new Binding(source, destination, routingKey, args);
    if (!source.addBinding(binding)) return;
    if (destination.kind === 'queue') destination.bindings.add(binding);
    else destination.incoming.add(binding);
    if (source.durable && destination.durable && !isExclusiveQueue(destination)) this.persistence.saveBinding(binding);
  }

  /**
   * Removes a binding. As RabbitMQ: unbinding what is not bound — even from or to something that
   * does not exist — succeeds; another connection's exclusive queue is only locked when the binding
   * exists.
   */
  unbind(sourceName: string, destinationKind: 'queue' | 'exchange', destinationName: string, routingKey: string, args: FieldTable, owner: QueueOwner): void {
    if (sourceName === '') throw new AccessRefused(`operation not permitted on the default exchange`);
    const source = this.exchanges.get(sourceName);
    const destination = destinationKind === 'queue' ? this.queues.get(destinationName) : this.exchanges.get(destinationName);
    if (source === undefined || destination === undefined) return;
    const binding = source.bindings.get(Binding.keyOf(destination, routingKey, args));
    if (binding === undefined) return;
    if (destination.kind === 'queue') this.checkExclusiveAccess(destination, owner);
    this.dropBinding(binding);
  }

  /** Removes a binding everywhere; auto-deletes the source exchange when it was its last. */
  private dropBinding(binding: Binding): void {
    const { source, destination } = binding;
    source.removeBinding(binding.key);
    if (destination.kind === 'queue') destination.bindings.delete(binding);
    else destination.incoming.delete(binding);
    if (binding.storeId !== 0) this.persistence.deleteBinding(binding);
    if (source.autoDelete && source.bindings.size === 0 && !source.deleted) this.removeExchange(source);
  }

  // ---- Queues -------------------------------------------------------------------------------------

  /** Declares (or checks) a queue. Returns it; the caller reports its counts. */
  declareQueue(d: QueueDeclare, owner: QueueOwner): Queue {
    let name = d.name;
    if (d.passive) {
      if (name === '') throw new NotFound(`no ${this.describeQueue(name)}`);
      const q = this.getQueue(name, owner);
      q.touch();
      return q;
    }
    if (name === '') name = generateName('amq.gen-');
    else if (name.startsWith('amq.')) {
      throw new AccessRefused(`queue name '${name}' contains reserved prefix 'amq.*'`);
    }
    const existing = this.queues.get(name);
    if (existing !== undefined) {
      this.checkExclusiveAccess(existing, owner);
      this.assertQueueEquivalent(existing, d);
      existing.touch();
      return existing;
    }
    const parsed = parseQueueArguments(d.args, name, this.name);
    this.checkQueueLimit(name);
    const applied = this.services.policies.match(this.name, 'queue', name);
    const queue = new Queue(this, name, {
      durable: d.durable,
      exclusiveOwner: d.exclusive ? owner : null,
      autoDelete: d.autoDelete,
      args: d.args,
      parsed: queueOptionsWithPolicy(parsed, d.args, applied.definition),
    });
    queue.appliedPolicy = applied;
    this.queues.set(name, queue);
    if (queue.durable && !queue.exclusive) this.persistence.saveQueue(queue);
    return queue;
  }

  /** max-queues: a new queue is refused once the vhost holds that many, with RabbitMQ's text. */
  private checkQueueLimit(name: string): void {
    const max = this.limits['max-queues'];
    if (max === undefined || max < 0 || this.queues.size < max) return;
    throw new PreconditionFailed(`cannot declare queue '${name}': queue limit in vhost '${this.name}' (${max}) is reached`);
  }

  /** max-connections: whether one more connection may open. */
  get connectionLimitReached(): boolean {
    const max = this.limits['max-connections'];
    return max !== undefined && max >= 0 && this.connections.size >= max;
  }

  /**
   * The vhost is being deleted: every queue goes (consumers cancelled, messages dropped and
   * deleted from disk), then every exchange and binding. Connections are closed by the caller.
   */
  removeEverything(): void {
    this.deleted = true;
    for (const q of [...this.queues.values()]) this.removeQueue(q);
    for (const ex of [...this.exchanges.values()]) {
      if (ex !== this.defaultExchange && !ex.deleted) this.removeExchange(ex);
    }
    this.replyTargets.clear();
  }

  private assertQueueEquivalent(q: Queue, d: QueueDeclare): void {
    const what = this.describeQueue(q.name);
    assertSame('durable', d.durable, q.durable, what);
    assertSame('auto_delete', d.autoDelete, q.autoDelete, what);
    if (q.exclusive !== d.exclusive) {
      throw new ResourceLocked(
        `cannot obtain exclusive access to locked ${what}. It could be originally declared on another connection or the exclusive property value does not match that of the original declaration.`,
      );
    }
    assertEquivalentArguments(q.args, d.args, QUEUE_COMPARED_ARGS, what);
  }

  /** queue.delete: returns the number of ready messages it held. */
  deleteQueue(name: string, owner: QueueOwner, ifUnused: boolean, ifEmpty: boolean): number {
    const q = this.queues.get(name);
    if (q === undefined) return 0; // RabbitMQ: deleting a missing queue succeeds with count 0
    this.checkExclusiveAccess(q, owner);
    if (ifUnused && q.consumerCount > 0) throw new PreconditionFailed(`${this.describeQueue(name)} in use`);
    if (ifEmpty && q.messageCount > 0) throw new PreconditionFailed(`${this.describeQueue(name)} not empty`);
    return this.removeQueue(q);
  }

  /** Deletes a queue: bindings go, consumers are cancelled, messages are dropped. */
  removeQueue(q: Queue): number {
    if (q.deleted) return 0;
    const count = q.messageCount;
    this.queues.delete(q.name);
    for (const b of [...q.bindings]) this.dropBinding(b);
    for (const c of [...q.consumers.all]) {
      q.consumers.remove(c);
      c.channel.consumerCancelledByServer(c);
    }
    q.destroy();
    if (q.durable && !q.exclusive) this.persistence.deleteQueue(q);
    return count;
  }

  // ---- Publishing ---------------------------------------------------------------------------------

  /**
   * Routes a message and enqueues it. Returns PUBLISH_* flags. The caller has already checked the
   * exchange exists and may be published to.
   */
  publish(exchange: Exchange, message: Message, extraKeys: readonly string[] | null, now: number): number {
    if (exchange instanceof DelayedMessageExchange) {
      const delay = requestedDelay(message);
      if (delay > 0) return this.holdDelayed(exchange, message, now + delay);
    } else if (exchange === this.defaultExchange && message.routingKey.startsWith(REPLY_TO_QUEUE)) {
      const target = this.replyTargets.get(message.routingKey);
      if (target === undefined) return 0;
      target.deliverReply(message);
      return PUBLISH_ROUTED;
    }
    return this.route(exchange, message, extraKeys, now);
  }

  /** Holds a message in a delayed exchange (stored when the exchange is durable). */
  private holdDelayed(exchange: DelayedMessageExchange, message: Message, dueAt: number): number {
    const storeId = exchange.durable ? this.persistence.saveDelayed(exchange, message, dueAt) : 0;
    exchange.hold({ message, dueAt, storeId });
    return storeId !== 0 ? PUBLISH_ROUTED | PUBLISH_PENDING_COMMIT : PUBLISH_ROUTED;
  }

  private route(exchange: Exchange, message: Message, extraKeys: readonly string[] | null, now: number): number {
    const queues = this.router.route(exchange, message.routingKey, extraKeys, message);
    if (queues.size === 0) return 0;
    // Enqueueing can dead-letter (drop-head), which routes again and reuses the router's set:
    // take the targets out first, into scratch kept per nesting depth.
    const depth = this.routeDepth++;
    const targets = (this.targetScratch[depth] ??= []);
    for (const q of queues) targets.push(q);
    let flags = PUBLISH_ROUTED;
    try {
      for (let i = 0; i < targets.length; i++) {
        const r = targets[i]!.enqueue(message, now);
        if (r === EnqueueResult.AcceptedPendingCommit) flags |= PUBLISH_PENDING_COMMIT;
        else if (r === EnqueueResult.Rejected) flags |= PUBLISH_REJECTED;
      }
    } finally {
      targets.length = 0;
      this.routeDepth--;
    }
    return flags;
  }

  // ---- QueueHost ----------------------------------------------------------------------------------

  queueReady(queue: Queue): void {
    this.services.queueReady(queue);
  }

  deliverNow(queue: Queue, now: number): void {
    this.services.deliverNow(queue, now);
  }

  queueExpired(queue: Queue): void {
    this.log.info({ vhost: this.name, queue: queue.name }, 'queue expired (x-expires)');
    this.removeQueue(queue);
  }

  deadLetter(queue: Queue, message: Message, reason: DeadLetterReason): void {
    const dlxName = queue.options.deadLetterExchange;
    if (dlxName === undefined) return;
    const dlx = this.exchanges.get(dlxName);
    if (dlx === undefined) {
      this.log.warn({ vhost: this.name, queue: queue.name, exchange: dlxName }, 'dead-letter exchange missing; message dropped');
      return;
    }
    const now = Date.now();
    const { copy, routingKeys, deaths } = deadLetterCopy(queue, message, reason, now);
    const [first, ...rest] = routingKeys;
    const targets = this.router.route(dlx, first ?? '', rest.length > 0 ? rest : null, copy);
    if (targets.size === 0) return;
    const list = [...targets];
    const cycling = findDeadLetterCycles(reason, deaths, list);
    for (const q of list) {
      if (cycling.has(q)) {
        this.log.warn({ vhost: this.name, queue: q.name }, 'dead-letter cycle detected; message dropped');
        continue;
      }
      q.enqueue(copy, now);
    }
  }
}
