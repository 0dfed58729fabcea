// A quorum queue on one node: a classic queue's ordering, consumers, TTL and length limits, with
// the quorum queue's contract on top —
//   - every message is kept on disk, whatever its delivery mode (a quorum queue logs them all);
//   - poison-message handling: each return to the queue (nack/reject with requeue, recover, a
//     consumer's channel closing) counts; deliveries carry the count as x-delivery-count, and a
//     message returned more than x-delivery-limit times is dead-lettered (reason delivery_limit)
//     or dropped;
//   - at-least-once dead-lettering (quorum-dead-letter.ts): a dead-lettered message leaves this
//     queue only once every queue it was routed to has stored it.

import type { FieldTable } from '../../protocol/field-table.js';
import type { Exchange } from '../exchange/exchange.js';
import { withLongHeader } from '../message-headers.js';
import { Message } from '../message.js';
import type { Router } from '../routing.js';
import { EntryState, type QueueEntry } from './entry.js';
import { Queue, type DeadLetterReason, type QueueHost } from './queue.js';
import type { QueueType } from './queue-types.js';
import { parseQuorumArguments, type QuorumArguments } from './quorum-arguments.js';
import { AtLeastOnceDeadLetterer } from './quorum-dead-letter.js';

const DELIVERY_COUNT_HEADER = Buffer.from('x-delivery-count');

/** What a quorum queue needs from its virtual host beyond a classic queue: routing for dead-letters. */
export interface QuorumQueueHost extends QueueHost {
  readonly exchanges: ReadonlyMap<string, Exchange>;
  readonly router: Router;
}

/** The message as delivered again: the publisher's properties plus x-delivery-count. */
export function redeliveryMessage(entry: QueueEntry): Message {
  const m = entry.message;
  return new Message(m.exchange, m.routingKey, withLongHeader(m.rawProperties, DELIVERY_COUNT_HEADER, entry.deliveryCount), m.body, m.publishedAt);
}

export class QuorumQueue extends Queue {
  readonly quorumOptions: QuorumArguments;
  override readonly host: QuorumQueueHost;
  /** made when at-least-once dead-lettering first applies (argument or policy) */
  private atLeastOnceHandler: AtLeastOnceDeadLetterer | null = null;

  constructor(host: QuorumQueueHost, name: string, args: FieldTable, parsed: QuorumArguments) {
    super(host, name, { durable: true, exclusiveOwner: null, autoDelete: false, args, parsed });
    this.quorumOptions = parsed;
    this.host = host;
  }

  override get type(): QueueType {
    return 'quorum';
  }

  /**
   * Returns to the queue after which a message is dead-lettered; -1 = no limit. As RabbitMQ: the
   * lower of the x-delivery-limit argument and a policy's delivery-limit.
   */
  get deliveryLimit(): number {
    const own = this.quorumOptions.deliveryLimit;
    const policy = this.appliedPolicy.definition['delivery-limit'];
    if (typeof policy !== 'number' || this.args['x-delivery-limit'] === undefined) return typeof policy === 'number' ? policy : own;
    return own < 0 ? policy : Math.min(own, policy);
  }

  /**
   * at-least-once when the argument (or, without one, a policy) says so and it can apply: a
   * dead-letter exchange and overflow reject-publish, as RabbitMQ requires.
   */
  private get atLeastOnce(): AtLeastOnceDeadLetterer | null {
    if (this.atLeastOnceHandler !== null) return this.atLeastOnceHandler;
    const declared = this.args['x-dead-letter-strategy'];
    const strategy = typeof declared === 'string' ? declared : this.appliedPolicy.definition['dead-letter-strategy'];
    if (strategy !== 'at-least-once' || this.options.deadLetterExchange === undefined || this.options.overflow !== 'reject-publish') return null;
    return (this.atLeastOnceHandler = new AtLeastOnceDeadLetterer(this, this.host));
  }

  /** Dead-lettered messages waiting until their target queues have stored them (at-least-once). */
  get deadLetterPendingCount(): number {
    return this.atLeastOnceHandler?.pendingCount ?? 0;
  }

  override declaredOptions(): QuorumArguments {
    return parseQuorumArguments(this.args, this.name, this.host.name);
  }

  protected override keepsOnDisk(): boolean {
    return this.persistsMessages;
  }

  /** A return to the queue: counted, and past the delivery limit the message leaves (delivery_limit). */
  override requeue(entry: QueueEntry, now: number): void {
    if (entry.state !== EntryState.Unacked || this.deleted) return super.requeue(entry, now);
    entry.deliveryCount++;
    const limit = this.deliveryLimit;
    if (limit >= 0 && entry.deliveryCount > limit) {
      entry.state = EntryState.Done;
      this.unackedCount--;
      this.discard(entry, 'delivery_limit');
      // The consumer that returned it has room again.
      if (this.messageCount > 0) this.host.queueReady(this);
      return;
    }
    super.requeue(entry, now);
  }

  protected override discard(entry: QueueEntry, reason: DeadLetterReason): void {
    const atLeastOnce = this.atLeastOnce;
    if (atLeastOnce === null) return super.discard(entry, reason);
    atLeastOnce.deadLetter(entry, reason);
  }

  override destroy(): void {
    this.atLeastOnceHandler?.stop();
    super.destroy();
  }
}
