// A channel's delivered-but-unacknowledged messages, ordered by delivery tag. Tags only grow, so
// the ledger is a deque: an ack of the oldest tag is O(1), any other tag is found by binary search;
// `multiple` takes a prefix.
//
// A delivery settled out of order leaves only its bare tag (a number) in its slot, so the delivery
// — and the message body it holds — is released at once, whatever the ack order. The tags left
// behind are dropped when they reach the head, and the deque is compacted when they outnumber the
// live deliveries, so a channel that never acks its oldest delivery holds O(live) slots, not one
// per delivery ever made.

import { Deque } from '../util/deque.js';
import type { Consumer } from './queue/consumers.js';
import type { QueueEntry } from './queue/entry.js';

export class UnackedDelivery {
  /** when it was delivered (epoch ms, coarse: the consumer timeout needs no more) */
  deliveredAt = 0;

  constructor(
    readonly deliveryTag: number,
    readonly entry: QueueEntry,
    /** the consumer it went to; null for basic.get */
    readonly consumer: Consumer | null,
  ) {}
}

/** A slot: a live delivery, or the tag of one settled out of order. */
type Slot = UnackedDelivery | number;

const tagOf = (slot: Slot): number => (typeof slot === 'number' ? slot : slot.deliveryTag);

/** Settled tags tolerated before compaction is considered (keeps small ledgers from churning). */
const COMPACT_MIN = 64;

export class UnackedLedger {
  private readonly slots = new Deque<Slot>();
  private live = 0;
  /** settled tags still in the deque */
  private settled = 0;
  /** deliveries up to this tag have been given their own bytes (unpinDeliveredBefore) */
  private unpinnedThroughTag = 0;
  /** on the memory gauge's list of ledgers to unpin (memory.ts) */
  unpinQueued = false;

  get size(): number {
    return this.live;
  }

  /** Slots held, live or settled (for tests of the bound). */
  get slotCount(): number {
    return this.slots.length;
  }

  add(delivery: UnackedDelivery): void {
    this.slots.push(delivery);
    this.live++;
  }

  /** Removes one delivery by tag; undefined when unknown or already settled. */
  take(deliveryTag: number): UnackedDelivery | undefined {
    const head = this.slots.peek();
    if (head !== undefined && typeof head !== 'number' && head.deliveryTag === deliveryTag) {
      this.slots.shift();
      this.live--;
      this.dropSettledHead();
      return head;
    }
    const i = this.indexOf(deliveryTag);
    if (i < 0) return undefined;
    const d = this.slots.at(i)!;
    if (typeof d === 'number') return undefined;
    this.slots.set(i, deliveryTag);
    this.live--;
    this.settled++;
    if (this.settled > COMPACT_MIN && this.settled > this.live) this.compact();
    return d;
  }

  /** Removes every delivery with a tag ≤ deliveryTag (basic.ack/nack with multiple). */
  takeUpTo(deliveryTag: number): UnackedDelivery[] {
    const out: UnackedDelivery[] = [];
    for (;;) {
      const head = this.slots.peek();
      if (head === undefined || tagOf(head) > deliveryTag) break;
      this.slots.shift();
      if (typeof head === 'number') this.settled--;
      else {
        out.push(head);
        this.live--;
      }
    }
    return out;
  }

  /** Removes and returns everything, oldest first (channel close, basic.recover). */
  takeAll(): UnackedDelivery[] {
    const out: UnackedDelivery[] = [];
    for (const d of this.slots) if (typeof d !== 'number') out.push(d);
    this.slots.clear();
    this.live = 0;
    this.settled = 0;
    return out;
  }

  /** Whether this tag is delivered and not yet settled. */
  has(deliveryTag: number): boolean {
    const i = this.indexOf(deliveryTag);
    return i >= 0 && typeof this.slots.at(i) !== 'number';
  }

  /** Puts deliveries back (tx.rollback undoes acks), each at its place by tag. */
  restore(deliveries: UnackedDelivery[]): void {
    for (const d of deliveries) {
      const i = this.indexOf(d.deliveryTag);
      if (i >= 0) {
        // Its settled tag is still in its slot: the delivery takes the slot back.
        if (typeof this.slots.at(i) !== 'number') continue; // already outstanding
        this.slots.set(i, d);
        this.settled--;
      } else {
        this.slots.insertSorted(d, tagOf);
      }
      this.live++;
    }
  }

  /** The oldest delivery still unacked (lowest tag), for the consumer timeout; O(1) in practice. */
  oldest(): UnackedDelivery | undefined {
    for (const d of this.slots) if (typeof d !== 'number') return d;
    return undefined;
  }

  /** Deliveries still unacked, for inspection. */
  *pending(): IterableIterator<UnackedDelivery> {
    for (const d of this.slots) if (typeof d !== 'number') yield d;
  }

  private dropSettledHead(): void {
    for (;;) {
      const head = this.slots.peek();
      if (head === undefined || typeof head !== 'number') return;
      this.slots.shift();
      this.settled--;
    }
  }

  /**
   * Gives each live delivery made at or before `cutoff` (epoch ms) its own copy of its bytes
   * (Message.unpin), going on from where the last call stopped: a delivery held unacknowledged for
   * long must not keep the whole socket read chunk it arrived in alive. Returns how many were copied.
   */
  unpinDeliveredBefore(cutoff: number): number {
    let copied = 0;
    for (let i = this.firstAfter(this.unpinnedThroughTag); i < this.slots.length; i++) {
      const slot = this.slots.at(i)!;
      if (typeof slot !== 'number') {
        if (slot.deliveredAt > cutoff) break;
        if (slot.entry.message.unpin()) copied++;
      }
      this.unpinnedThroughTag = tagOf(slot);
    }
    return copied;
  }

  /** The live deliveries, oldest first (for inspection; the ledger must not change meanwhile). */
  *deliveries(): IterableIterator<UnackedDelivery> {
    for (let i = 0; i < this.slots.length; i++) {
      const slot = this.slots.at(i)!;
      if (typeof slot !== 'number') yield slot;
    }
  }

  /** Whether deliveries remain that unpinDeliveredBefore has not reached yet. */
  get unpinPending(): boolean {
    const last = this.slots.peekLast();
    return last !== undefined && tagOf(last) > this.unpinnedThroughTag;
  }

  /** Index of the first slot whose tag is above `tag`. */
  private firstAfter(tag: number): number {
    let lo = 0;
    let hi = this.slots.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (tagOf(this.slots.at(mid)!) <= tag) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  private compact(): void {
    this.slots.removeWhere((slot) => typeof slot === 'number');
    this.settled = 0;
  }

  private indexOf(deliveryTag: number): number {
    let lo = 0;
    let hi = this.slots.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const tag = tagOf(this.slots.at(mid)!);
      if (tag === deliveryTag) return mid;
      if (tag < deliveryTag) lo = mid + 1;
      else hi = mid - 1;
    }
    return -1;
  }
}
