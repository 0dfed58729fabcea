// The three queue types a client can declare (x-queue-type): classic, quorum and stream. This
// module decides which one a declare asks for, applies the rules a type adds to a declare — with
// RabbitMQ's checks, texts and order: argument values first, then arguments the type does not
// support (first one in the client's table order), then the durable / exclusive / auto-delete
// properties — and builds (or, at start-up, restores) a queue of the right class.

import { NotImplemented, PreconditionFailed } from '../../protocol/errors.js';
import type { Logger } from '../../log.js';
import type { FieldTable } from '../../protocol/field-table.js';
import { ArgumentChecker, parseQueueArguments, type QueueArguments } from './arguments.js';
import { Queue, type QueueOwner } from './queue.js';
import { QuorumQueue, type QuorumQueueHost } from './quorum-queue.js';
import { parseQuorumArguments, type QuorumArguments } from './quorum-arguments.js';
import { StreamQueue } from '../stream/stream-queue.js';
import { parseStreamArguments, type StreamArguments } from '../stream/stream-arguments.js';

export type QueueType = 'classic' | 'quorum' | 'stream';

/** RabbitMQ's module names, as its reply texts spell the queue type. */
export const QUEUE_TYPE_MODULE: Record<QueueType, string> = {
  classic: 'rabbit_classic_queue',
  quorum: 'rabbit_quorum_queue',
  stream: 'rabbit_stream_queue',
};

/** Everything RabbitMQ validates on any declare, in its order; a type refuses what it does not support. */
const UNSUPPORTED: Record<'quorum' | 'stream', ReadonlySet<string>> = {
  quorum: new Set([
    'x-max-priority',
    'x-queue-mode',
    'x-queue-version',
    'x-queue-master-locator',
    'x-max-age',
    'x-stream-max-segment-size-bytes',
    'x-initial-cluster-size',
  ]),
  stream: new Set([
    'x-expires',
    'x-message-ttl',
    'x-dead-letter-exchange',
    'x-dead-letter-routing-key',
    'x-max-length',
    'x-max-in-memory-length',
    'x-max-in-memory-bytes',
    'x-max-priority',
    'x-overflow',
    'x-queue-mode',
    'x-queue-version',
    'x-single-active-consumer',
    'x-quorum-initial-group-size',
    'x-delivery-limit',
    'x-dead-letter-strategy',
    'x-queue-master-locator',
  ]),
};

/** The queue type a declare's arguments ask for (validating x-queue-type itself). */
export function declaredQueueType(args: FieldTable, queueName: string, vhost: string): QueueType {
  const type = new ArgumentChecker(args, queueName, vhost).string('x-queue-type');
  if (type === undefined || type === 'classic' || type === 'quorum' || type === 'stream') return type ?? 'classic';
  throw new PreconditionFailed(`invalid arg 'x-queue-type' for queue '${queueName}' in vhost '${vhost}': "unsupported queue type '${type}'"`);
}

/** Quorum queues and streams need a name from the client (RabbitMQ's check, before anything else). */
export function refuseServerNamed(args: FieldTable, vhost: string): void {
  const type = declaredQueueType(args, '', vhost);
  if (type !== 'classic') throw new PreconditionFailed(`Cannot declare a server-named queue for type ${QUEUE_TYPE_MODULE[type]}`);
}

/** The first argument (in the client's order) that the type refuses. */
function refuseUnsupported(type: 'quorum' | 'stream', args: FieldTable, queueName: string, vhost: string): void {
  const unsupported = UNSUPPORTED[type];
  for (const key of Object.keys(args)) {
    if (unsupported.has(key)) {
      throw new PreconditionFailed(`invalid arg '${key}' for queue '${queueName}' in vhost '${vhost}' of queue type ${QUEUE_TYPE_MODULE[type]}`);
    }
  }
}

export interface QueueDeclareFlags {
  durable: boolean;
  exclusive: boolean;
  autoDelete: boolean;
  args: FieldTable;
}

/** Quorum queues and streams are durable, never exclusive or auto-delete (checked in RabbitMQ's order). */
function checkReplicatedProperties(d: QueueDeclareFlags, queueName: string, vhost: string): void {
  const refuse = (property: string): never => {
    throw new PreconditionFailed(`invalid property '${property}' for queue '${queueName}' in vhost '${vhost}'`);
  };
  if (d.autoDelete) refuse('auto-delete');
  if (d.exclusive) refuse('exclusive-owner');
  if (!d.durable) refuse('non-durable');
}

/** A declare that passed its type's checks: what to build. */
export type QueueSpec =
  | { readonly type: 'classic'; readonly parsed: QueueArguments }
  | { readonly type: 'quorum'; readonly parsed: QuorumArguments }
  | { readonly type: 'stream'; readonly parsed: StreamArguments };

/**
 * Checks a declare's arguments and properties for the type it asks for; throws PreconditionFailed
 * with RabbitMQ's text when refused. log: for the warnings RabbitMQ also logs (settings it ignores).
 */
export function validateDeclare(d: QueueDeclareFlags, name: string, vhost: string, log?: Logger): QueueSpec {
  const type = declaredQueueType(d.args, name, vhost);
  if (type === 'classic') return { type, parsed: parseQueueArguments(d.args, name, vhost) };
  if (type === 'quorum') {
    const parsed = parseQuorumArguments(d.args, name, vhost, log);
    refuseUnsupported(type, d.args, name, vhost);
    checkReplicatedProperties(d, name, vhost);
    return { type, parsed };
  }
  const parsed = parseStreamArguments(d.args, name, vhost);
  refuseUnsupported(type, d.args, name, vhost);
  checkReplicatedProperties(d, name, vhost);
  return { type, parsed };
}

/** Builds the queue a validated declare asks for. */
export function createQueue(host: QuorumQueueHost, name: string, d: QueueDeclareFlags, spec: QueueSpec, owner: QueueOwner, streamsDir: string): Queue {
  switch (spec.type) {
    case 'quorum':
      return new QuorumQueue(host, name, d.args, spec.parsed);
    case 'stream':
      return new StreamQueue(host, name, d.args, spec.parsed, streamsDir);
    default:
      return new Queue(host, name, { durable: d.durable, exclusiveOwner: d.exclusive ? owner : null, autoDelete: d.autoDelete, args: d.args, parsed: spec.parsed });
  }
}

/** A durable queue recorded in the store, rebuilt at start-up (its arguments were checked when declared). */
export function restoreQueue(host: QuorumQueueHost, name: string, args: FieldTable, autoDelete: boolean, streamsDir: string): Queue {
  // A stored queue whose arguments an earlier version accepted and this one refuses (e.g. a TTL
  // above today's limit) must not stop the broker from starting: the refused argument is ignored.
  for (;;) {
    try {
      return restoreQueueAs(host, name, args, autoDelete, streamsDir);
    } catch (err) {
      const key = err instanceof PreconditionFailed ? /invalid (?:arg|type '[^']*' for arg) '([^']+)'/.exec(err.detail)?.[1] : undefined;
      if (key === undefined || args[key] === undefined) throw err;
      host.log.error(
        { vhost: host.name, queue: name, argument: key, reason: err instanceof Error ? err.message : String(err) },
        `stored queue '${name}' has an argument this version refuses; restored without '${key}'. Delete and declare the queue again with a valid value`,
      );
      const rest: FieldTable = Object.create(null) as FieldTable;
      for (const k of Object.keys(args)) if (k !== key) rest[k] = args[k]!;
      args = rest;
    }
  }
}

function restoreQueueAs(host: QuorumQueueHost, name: string, args: FieldTable, autoDelete: boolean, streamsDir: string): Queue {
  const type = declaredQueueType(args, name, host.name);
  if (type === 'quorum') return new QuorumQueue(host, name, args, parseQuorumArguments(args, name, host.name, host.log));
  if (type === 'stream') return new StreamQueue(host, name, args, parseStreamArguments(args, name, host.name), streamsDir);
  const parsed = parseQueueArguments(args, name, host.name);
  return new Queue(host, name, { durable: true, exclusiveOwner: null, autoDelete, args, parsed });
}

/** queue.delete with if-unused / if-empty: quorum queues refuse both flags, as RabbitMQ does. */
export function checkConditionalDelete(queue: Queue, ifUnused: boolean, ifEmpty: boolean, vhost: string): void {
  if (queue.type !== 'quorum') return;
  const flag = ifUnused ? 'if-unused' : ifEmpty ? 'if-empty' : null;
  if (flag === null) return;
  throw new NotImplemented(
    `cannot delete queue '${queue.name}' in vhost '${vhost}'. queue.delete operations with ${flag} flag set are not supported by quorum queues`,
  );
}
