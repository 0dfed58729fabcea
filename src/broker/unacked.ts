// A channel's delivered-but-unacknowledged messages, ordered by delivery tag. Tags only grow, so
// the ledger is a deque: an ack of the oldest tag is O(1), any other tag is found by binary search
// and left as a tombstone until it reaches the head; `multiple` takes a prefix.

import { Deque } from '../util/deque.js';
import type { Consumer } from './queue/consumers.js';
import type { QueueEntry } from './queue/entry.js';

export class UnackedDelivery {
  constructor(
    readonly deliveryTag: number,
    readonly entry: QueueEntry,
    /** the consumer it went to; null for basic.get */
    readonly consumer: Consumer | null,
  ) {}
  settled = false;
}

export class UnackedLedger {
  private readonly deliveries = new Deque<UnackedDelivery>();
  private live = 0;

  get size(): number {
    return this.live;
  }

  add(delivery: UnackedDelivery): void {
    this.deliveries.push(delivery);
    this.live++;
  }

  /** Removes one delivery by tag; undefined when unknown or already settled. */
  take(deliveryTag: number): UnackedDelivery | undefined {
    const head = this.deliveries.peek();
    if (head !== undefined && head.deliveryTag === deliveryTag) {
      this.deliveries.shift();
      this.live--;
      this.dropSettledHead();
      return head;
    }
    const i = this.indexOf(deliveryTag);
    if (i < 0) return undefined;
    const d = this.deliveries.at(i)!;
    if (d.settled) return undefined;
    d.settled = true;
    this.live--;
    return d;
  }

  /** Removes every delivery with a tag ≤ deliveryTag (basic.ack/nack with multiple). */
  takeUpTo(deliveryTag: number): UnackedDelivery[] {
    const out: UnackedDelivery[] = [];
    for (;;) {
      const head = this.deliveries.peek();
      if (head === undefined || head.deliveryTag > deliveryTag) break;
      this.deliveries.shift();
      if (!head.settled) {
        out.push(head);
        this.live--;
      }
    }
    return out;
  }

  /** Removes and returns everything, oldest first (channel close, basic.recover). */
  takeAll(): UnackedDelivery[] {
    const out: UnackedDelivery[] = [];
    for (const d of this.deliveries) if (!d.settled) out.push(d);
    this.deliveries.clear();
    this.live = 0;
    return out;
  }

  /** Whether this tag is delivered and not yet settled. */
  has(deliveryTag: number): boolean {
    const i = this.indexOf(deliveryTag);
    return i >= 0 && !this.deliveries.at(i)!.settled;
  }

  /** Puts deliveries back (tx.rollback undoes acks), each at its place by tag. */
  restore(deliveries: UnackedDelivery[]): void {
    for (const d of deliveries) {
      // A delivery taken from the middle is still in the deque as a tombstone: reviving it is
      // enough. One taken from the head is gone and goes back at its place by tag.
      d.settled = false;
      if (this.indexOf(d.deliveryTag) < 0) this.deliveries.insertSorted(d, (x) => x.deliveryTag);
      this.live++;
    }
  }

  /** Deliveries still unacked, for inspection. */
  *pending(): IterableIterator<UnackedDelivery> {
    for (const d of this.deliveries) if (!d.settled) yield d;
  }

  private dropSettledHead(): void {
    for (;;) {
      const head = this.deliveries.peek();
      if (head === undefined || !head.settled) return;
      this.deliveries.shift();
    }
  }

  private indexOf(deliveryTag: number): number {
    let lo = 0;
    let hi = this.deliveries.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const tag = this.deliveries.at(mid)!.deliveryTag;
      if (tag === deliveryTag) return mid;
      if (tag < deliveryTag) lo = mid + 1;
      else hi = mid - 1;
    }
    return -1;
  }
}
