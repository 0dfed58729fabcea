// One message's place in one queue. A message fanned out to several queues has one entry in each;
// the entry carries what is per-queue: position, redelivered flag, expiry, and state.

import type { Message } from '../message.js';
import type { Queue } from './queue.js';

export const enum EntryState {
  /** waiting in the queue */
  Ready = 0,
  /** delivered, waiting for ack/nack/reject */
  Unacked = 1,
  /** acked, expired, dropped or purged: gone from the queue */
  Done = 2,
}

export class QueueEntry {
  state: EntryState = EntryState.Ready;
  redelivered = false;
  /** held by the store (written, or waiting in the store's write buffer) */
  stored = false;
  /** handed to LMDB; false while still in the write buffer (removal then costs nothing) */
  written = false;
  /** written only to save memory (spill range: a transient message, or a non-durable queue) */
  transient = false;
  /** its message is a shared record (stored once for several queues), not inline */
  shared = false;
  /** position in the queue's expiry heap (out-of-order deadline); -1 when not in it */
  heapIndex = -1;
  /** quorum queues: times the message came back (nack/reject with requeue, consumer gone); sent as x-delivery-count */
  deliveryCount = 0;
  /** position among its level's requeued entries; -1 when not requeued and ready */
  returnIndex = -1;
  /** its deadline follows queue order: expired from the head, not watched in the heap */
  expiresInOrder = false;

  constructor(
    readonly queue: Queue,
    readonly message: Message,
    /** position in the queue; ascending in arrival order, kept across requeue and restart */
    readonly seq: number,
    /** epoch ms after which the entry is expired; 0 = never */
    readonly expiresAt: number,
    /** priority level within the queue (0 when the queue has no priorities) */
    readonly level: number,
  ) {}
}

export const entrySeq = (e: QueueEntry): number => e.seq;
