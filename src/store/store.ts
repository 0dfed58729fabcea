// Persistence behind one interface. The broker calls these on its hot path; implementations batch
// everything written in one event-loop turn into one transaction and report durability per batch
// through CommitWaiters (one per channel per batch, never one per message).

import type { Binding } from '../broker/binding.js';
import type { Exchange } from '../broker/exchange/exchange.js';
import type { QueueEntry } from '../broker/queue/entry.js';
import type { Queue } from '../broker/queue/queue.js';

/** Told when the writes made before it was registered are on disk, or could not be written. */
export interface CommitWaiter {
  onCommitted(): void;
  onCommitFailed(error: Error): void;
}

export interface Store {
  /** True when this store keeps anything across restarts. */
  readonly durable: boolean;

  saveExchange(exchange: Exchange): void;
  deleteExchange(exchange: Exchange): void;
  saveQueue(queue: Queue): void;
  deleteQueue(queue: Queue): void;
  saveBinding(binding: Binding): void;
  deleteBinding(binding: Binding): void;

  /** Stores the entry (and the message body, once for all queues). Returns true if a commit is now pending. */
  addEntry(entry: QueueEntry): boolean;
  /** Forgets the entry; the body goes when no queue holds it. */
  removeEntry(entry: QueueEntry): void;
  /** Notes that entries up to this seq of the queue may have been delivered (redelivered on recovery). */
  markDelivered(queue: Queue, seq: number): void;

  /** Calls the waiter once everything written so far is committed. */
  afterCommit(waiter: CommitWaiter): void;
  /** Writes everything pending and closes. */
  close(): Promise<void>;
}

/** A store that keeps nothing: every write is "committed" at once. */
export class TransientStore implements Store {
  readonly durable = false;
  saveExchange(): void {}
  deleteExchange(): void {}
  saveQueue(): void {}
  deleteQueue(): void {}
  saveBinding(): void {}
  deleteBinding(): void {}
  addEntry(): boolean {
    return false;
  }
  removeEntry(): void {}
  markDelivered(): void {}
  afterCommit(waiter: CommitWaiter): void {
    queueMicrotask(() => waiter.onCommitted());
  }
  async close(): Promise<void> {}
}
