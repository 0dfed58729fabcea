// What settling a delivery does, whichever method asked for it: basic.ack, basic.nack and
// basic.reject, basic.recover, a tx.commit carrying out buffered acks, a channel closing with
// deliveries outstanding. The channel owns the unacked ledger and says which deliveries; these
// functions move them between the ledger, their queues and their consumers' counts. Kept apart
// from the channel so the rules read in one place, free of frames. Plain functions called directly:
// the single-ack path (Channel.ackFast) allocates nothing here.

import { NotImplemented, PreconditionFailed } from '../protocol/errors.js';
import type { ChannelQueueCounters } from './stats.js';
import type { UnackedDelivery, UnackedLedger } from './unacked.js';
import type { VHost } from './vhost.js';

/**
 * Takes the deliveries a basic.ack / nack / reject names out of the ledger. As RabbitMQ: with
 * `multiple`, tag 0 means everything outstanding and any other tag must itself be outstanding;
 * an unknown tag is 406 and nothing is taken.
 */
export function takeDeliveries(unacked: UnackedLedger, deliveryTag: number, multiple: boolean): UnackedDelivery[] {
  if (multiple) {
    if (deliveryTag === 0) return unacked.takeAll();
    if (!unacked.has(deliveryTag)) throw new PreconditionFailed(`unknown delivery tag ${deliveryTag}`);
    return unacked.takeUpTo(deliveryTag);
  }
  const one = unacked.take(deliveryTag);
  if (one === undefined) throw new PreconditionFailed(`unknown delivery tag ${deliveryTag}`);
  return [one];
}

/** One acknowledged delivery leaves its queue; its consumer may take another. */
export function settleDelivery(d: UnackedDelivery, counters: ChannelQueueCounters, vhost: VHost): void {
  counters.acked++;
  counters.totals.acknowledged++;
  d.entry.queue.settle(d.entry);
  if (d.consumer !== null) {
    d.consumer.unacked--;
    if (d.consumer.queue.messageCount > 0) vhost.queueReady(d.consumer.queue);
  }
}

/**
 * Puts deliveries back in their queues at their original positions (marked redelivered).
 * Newest first: the order comes out the same either way, but each insertion is then at the head.
 */
export function requeueDeliveries(deliveries: UnackedDelivery[], nowMs: number): void {
  for (let i = deliveries.length - 1; i >= 0; i--) {
    const d = deliveries[i]!;
    if (d.consumer !== null) d.consumer.unacked--;
    d.entry.queue.requeue(d.entry, nowMs);
  }
}

/** Rejected without requeue: each queue dead-letters or drops its message. */
export function discardDeliveries(deliveries: UnackedDelivery[]): void {
  for (const d of deliveries) {
    if (d.consumer !== null) d.consumer.unacked--;
    d.entry.queue.rejectWithoutRequeue(d.entry);
  }
}

/**
 * basic.recover: every outstanding delivery goes back to its queue. As RabbitMQ, redelivering to
 * the original consumer (requeue=false) is not supported (540).
 */
export function recoverDeliveries(unacked: UnackedLedger, requeue: boolean): void {
  if (!requeue) throw new NotImplemented('requeue=false');
  const deliveries = unacked.takeAll();
  if (deliveries.length > 0) requeueDeliveries(deliveries, Date.now());
}
