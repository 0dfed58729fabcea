// The admin façade's message operations, for the management API and warrenctl: publish a message,
// get messages from a queue (RabbitMQ's four ack modes), and look at or replay a dead-letter queue.
// Like every admin operation they validate with RabbitMQ's texts, change the model through the
// vhost and queue, and resolve once the store has committed what they changed.
//
// Dead-letter replay moves each message back to where it died from (the exchange and routing keys
// of its first death in x-death) or to a given exchange. A move stores the copy in its target
// queues and removes the original from the dead-letter queue in the same LMDB commit
// (persistence.moveEntry), so a crash at any moment leaves each message in exactly one place.
// Large replays go in batches, one commit each, so the broker keeps serving in between.

import { NotFound, PreconditionFailed, AccessRefused } from '../protocol/errors.js';
import { Decimal, Timestamp, TypedValue, type FieldTable, type FieldValue } from '../protocol/field-table.js';
import type { BasicProperties } from '../protocol/generated/amqp.js';
import { encodeBasicProperties } from '../protocol/frame-writer.js';
import type { Broker } from './broker.js';
import { parseExpirationProperty } from './expiration.js';
import { Message, routingHeaders } from './message.js';
import type { Queue } from './queue/queue.js';
import { QueueEntry } from './queue/entry.js';
import { PUBLISH_PENDING_COMMIT, PUBLISH_ROUTED, type VHost } from './vhost.js';

export type AckMode = 'ack_requeue_true' | 'ack_requeue_false' | 'reject_requeue_true' | 'reject_requeue_false';
export const ACK_MODES: readonly AckMode[] = ['ack_requeue_true', 'ack_requeue_false', 'reject_requeue_true', 'reject_requeue_false'];

/** A message taken by getMessages, with what basic.get-ok tells a client. */
export interface GotMessage {
  message: Message;
  redelivered: boolean;
  /** ready messages left in the queue after this one was taken */
  messageCount: number;
}

/** One death of a message, as its x-death header records it. */
export interface Death {
  queue: string;
  reason: string;
  exchange: string;
  routingKeys: string[];
  count: number;
  /** epoch seconds */
  time: number | null;
}

export interface InspectedMessage {
  message: Message;
  redelivered: boolean;
  /** most recent first, as x-death */
  deaths: Death[];
}

export interface ReplayOptions {
  /** at most this many messages (default: all) */
  count?: number;
  /** only messages whose most recent death had this reason (rejected, expired, maxlen, delivery_limit) */
  reason?: string;
  /** republish to this exchange ('' = default) instead of where each message died from */
  toExchange?: string;
  /** with toExchange: the routing key (default: the message's original routing key) */
  routingKey?: string;
  /** checked before anything moves: may the caller write to this exchange? */
  mayWrite?: (exchange: string) => void;
  /** told after each committed batch (for progress) */
  onProgress?: (replayed: number) => void;
}

export interface ReplayResult {
  /** messages moved out of the dead-letter queue */
  replayed: number;
  /** messages left in place: no x-death (never dead-lettered), another reason, or nowhere to go */
  skipped: number;
  /** messages left in place because their target exchange is gone or routed them nowhere */
  unroutable: number;
}

/** Messages moved per commit: big enough to be fast, small enough to keep the broker responsive. */
export const REPLAY_BATCH = 500;
/** With a reason filter, at most this many non-matching messages are stepped over per replay. */
export const REPLAY_SCAN_LIMIT = 100_000;

function commit(broker: Broker): Promise<void> {
  return new Promise((resolve, reject) => {
    broker.persistence.afterCommit({ onCommitted: resolve, onCommitFailed: () => reject(new Error('storage write failed')) });
  });
}

function isTable(v: FieldValue | undefined): v is FieldTable {
  return (
    typeof v === 'object' &&
    v !== null &&
    !Array.isArray(v) &&
    !Buffer.isBuffer(v) &&
    !(v instanceof Timestamp) &&
    !(v instanceof TypedValue) &&
    !(v instanceof Decimal)
  );
}

function num(v: FieldValue | undefined): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'bigint') return Number(v);
  if (v instanceof TypedValue && (typeof v.value === 'number' || typeof v.value === 'bigint')) return Number(v.value);
  return 0;
}

/** The x-death history of a message, most recent first (empty when it was never dead-lettered). */
export function deathsOf(message: Message): Death[] {
  const xDeath = message.headers?.['x-death'];
  if (!Array.isArray(xDeath)) return [];
  const out: Death[] = [];
  for (const d of xDeath) {
    if (!isTable(d)) continue;
    const keys = d['routing-keys'];
    const time = d['time'];
    out.push({
      queue: typeof d['queue'] === 'string' ? d['queue'] : '',
      reason: typeof d['reason'] === 'string' ? d['reason'] : '',
      exchange: typeof d['exchange'] === 'string' ? d['exchange'] : '',
      routingKeys: Array.isArray(keys) ? keys.filter((k): k is string => typeof k === 'string') : [],
      count: num(d['count']),
      time: time instanceof Timestamp ? time.seconds : null,
    });
  }
  return out;
}

/**
 * Where a dead-lettered message came from: its first death (x-first-death-queue/-reason pick the
 * entry; the oldest entry otherwise) — the exchange and routing keys it was published with.
 */
export function firstDeath(message: Message, deaths: Death[] = deathsOf(message)): Death | undefined {
  if (deaths.length === 0) return undefined;
  const headers = message.headers;
  const queue = headers?.['x-first-death-queue'];
  const reason = headers?.['x-first-death-reason'];
  return deaths.find((d) => d.queue === queue && d.reason === reason) ?? deaths[deaths.length - 1];
}

export class MessageAdmin {
  constructor(private readonly broker: Broker) {}

  private vhost(name: string): VHost {
    const vhost = this.broker.vhosts.get(name);
    if (vhost === undefined) throw new NotFound(`no vhost '${name}'`);
    return vhost;
  }

  private queue(vhost: VHost, name: string): Queue {
    const q = vhost.queues.get(name);
    if (q === undefined) throw new NotFound(`no queue '${name}' in vhost '${vhost.name}'`);
    return q;
  }

  /**
   * Publishes a message as basic.publish would (the exchange must exist and not be internal; CC/BCC
   * route too). Resolves with whether it reached a queue, once a persistent message is on disk.
   */
  async publish(
    vhostName: string,
    exchangeName: string,
    routingKey: string,
    properties: BasicProperties,
    body: Buffer,
    user: { name: string; tags: readonly string[] },
  ): Promise<{ routed: boolean }> {
    const vhost = this.vhost(vhostName);
    const exchange = vhost.exchanges.get(exchangeName);
    if (exchange === undefined) throw new NotFound(`no exchange '${exchangeName}' in vhost '${vhostName}'`);
    if (exchange.internal) throw new AccessRefused(`cannot publish to internal exchange '${exchangeName}' in vhost '${vhostName}'`);
    const maxSize = this.broker.config.maxMessageSizeBytes;
    if (body.length > maxSize) throw new PreconditionFailed(`message size ${body.length} is larger than configured max size ${maxSize}`);
    const now = Date.now();
    const message = new Message(exchangeName, routingKey, encodeBasicProperties(properties), body, now);
    // As RabbitMQ: users tagged impersonator may publish with another user_id.
    if (message.userId !== undefined && message.userId !== user.name && !user.tags.includes('impersonator')) {
      throw new PreconditionFailed(`user_id property set to '${message.userId}' but authenticated user was '${user.name}'`);
    }
    if (message.expiration !== undefined) {
      const parsed = parseExpirationProperty(message.expiration);
      if (!parsed.ok) throw new PreconditionFailed(`invalid expiration '${message.expiration}': ${parsed.reason}`);
    }
    const extraKeys = message.hasHeaders ? routingHeaders(message) : null;
    const flags = vhost.publish(exchange, message, extraKeys, now);
    if ((flags & PUBLISH_ROUTED) === 0) vhost.unroutableDropped++;
    if (flags & PUBLISH_PENDING_COMMIT) await commit(this.broker);
    this.broker.dispatcher.run();
    return { routed: (flags & PUBLISH_ROUTED) !== 0 };
  }

  /**
   * Takes up to `count` messages from a queue, as RabbitMQ's "get messages": each is fetched like
   * basic.get, then all are settled by the ack mode — requeued in place (marked redelivered),
   * acknowledged (removed), or rejected (dead-lettered when the queue has a DLX, else dropped).
   */
  async get(vhostName: string, queueName: string, count: number, ackMode: AckMode): Promise<GotMessage[]> {
    const vhost = this.vhost(vhostName);
    const queue = this.queue(vhost, queueName);
    const now = Date.now();
    const taken: QueueEntry[] = [];
    const out: GotMessage[] = [];
    for (let i = 0; i < count; i++) {
      const entry = queue.take(now);
      if (entry === undefined) break;
      taken.push(entry);
      out.push({ message: entry.message, redelivered: entry.redelivered, messageCount: queue.messageCount });
    }
    queue.touch();
    for (const entry of taken) {
      switch (ackMode) {
        case 'ack_requeue_true':
        case 'reject_requeue_true':
          queue.requeue(entry, now);
          break;
        case 'ack_requeue_false':
          queue.settle(entry);
          break;
        case 'reject_requeue_false':
          queue.rejectWithoutRequeue(entry);
          break;
      }
    }
    this.broker.dispatcher.run();
    // Removals and dead-letter copies are on disk before the answer, as for any admin change.
    if (taken.length > 0 && this.broker.persistence.durable) await commit(this.broker);
    return out;
  }

  /** The first `count` ready messages of a queue, left where they are, with their x-death history. */
  inspect(vhostName: string, queueName: string, count: number): InspectedMessage[] {
    const vhost = this.vhost(vhostName);
    const queue = this.queue(vhost, queueName);
    const out: InspectedMessage[] = [];
    for (const entry of queue.ready.entries()) {
      if (out.length >= count) break;
      out.push({ message: entry.message, redelivered: entry.redelivered, deaths: deathsOf(entry.message) });
    }
    return out;
  }

  /**
   * Replays dead-lettered messages (see the file header). Messages that cannot go anywhere — never
   * dead-lettered, another reason than asked, a target exchange that is gone or routes them
   * nowhere — stay in the queue in their place.
   */
  async replay(vhostName: string, queueName: string, options: ReplayOptions = {}): Promise<ReplayResult> {
    const vhost = this.vhost(vhostName);
    const queue = this.queue(vhost, queueName);
    if (options.toExchange !== undefined && !vhost.exchanges.has(options.toExchange)) {
      throw new NotFound(`no exchange '${options.toExchange}' in vhost '${vhostName}'`);
    }
    if (options.toExchange !== undefined) options.mayWrite?.(options.toExchange);
    // Never more than the queue held at the start: a copy routed back into this very queue is not
    // taken again.
    const limit = Math.min(options.count ?? Number.POSITIVE_INFINITY, queue.messageCount);
    const result: ReplayResult = { replayed: 0, skipped: 0, unroutable: 0 };
    const checked = new Set<string>();
    // Messages that stay are held out until the end, then put back in their places (so a batch
    // never meets them twice); they are still stored, so a crash meanwhile keeps them.
    const kept: QueueEntry[] = [];
    let waitsForPaging = 0;
    try {
      while (result.replayed < limit && kept.length < REPLAY_SCAN_LIMIT && !queue.deleted) {
        let moved = 0;
        const now = Date.now();
        while (moved < REPLAY_BATCH && result.replayed + moved < limit && kept.length < REPLAY_SCAN_LIMIT) {
          const entry = queue.takeForMove(now);
          if (entry === undefined) break;
          const outcome = this.moveOne(vhost, queue, entry, options, checked, now);
          if (outcome === 'moved') moved++;
          else {
            kept.push(entry);
            if (outcome === 'skipped') result.skipped++;
            else result.unroutable++;
          }
        }
        result.replayed += moved;
        this.broker.dispatcher.run();
        if (moved > 0) {
          await commit(this.broker);
          options.onProgress?.(result.replayed);
          continue;
        }
        // Nothing more in memory: paged messages may be waiting for a commit before they can be read.
        if (queue.refillPending && waitsForPaging++ < 100) {
          await commit(this.broker);
          continue;
        }
        break;
      }
    } finally {
      // In reverse, so each lands in front of the later ones.
      if (!queue.deleted) for (let i = kept.length - 1; i >= 0; i--) queue.returnUnmoved(kept[i]!);
    }
    return result;
  }

  /** Moves one taken entry; the entry is untouched unless it was moved. */
  private moveOne(vhost: VHost, queue: Queue, entry: QueueEntry, options: ReplayOptions, checked: Set<string>, now: number): 'moved' | 'skipped' | 'unroutable' {
    const original = entry.message;
    const deaths = deathsOf(original);
    let exchangeName: string;
    let keys: string[];
    if (options.toExchange !== undefined) {
      if (options.reason !== undefined && deaths[0]?.reason !== options.reason) return 'skipped';
      exchangeName = options.toExchange;
      keys = [options.routingKey ?? original.routingKey];
    } else {
      const first = firstDeath(original, deaths);
      if (first === undefined) return 'skipped';
      if (options.reason !== undefined && deaths[0]!.reason !== options.reason) return 'skipped';
      exchangeName = first.exchange;
      keys = first.routingKeys.length > 0 ? first.routingKeys : [original.routingKey];
    }
    const exchange = vhost.exchanges.get(exchangeName);
    if (exchange === undefined) return 'unroutable';
    if (!checked.has(exchangeName)) {
      options.mayWrite?.(exchangeName);
      checked.add(exchangeName);
    }
    const [first, ...rest] = keys;
    const copy = new Message(exchangeName, first ?? '', original.rawProperties, original.body, now);
    // Route first: a message that would reach no queue stays where it is.
    const targets = vhost.router.route(exchange, copy.routingKey, rest.length > 0 ? rest : null, copy);
    if (targets.size === 0 || (targets.size === 1 && targets.has(queue))) return 'unroutable';
    // A queue that would refuse the copy (x-overflow reject-publish, full): the message stays.
    for (const target of targets) if (target.refuses(copy.bodySize)) return 'unroutable';
    // The move: the copy is stored in its targets and the original removed in the same commit.
    this.broker.persistence.moveEntry(entry, () => {
      vhost.publish(exchange, copy, rest.length > 0 ? rest : null, now);
    });
    return 'moved';
  }
}
