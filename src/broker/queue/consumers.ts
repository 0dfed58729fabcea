// A queue's consumers: grouped by consumer priority (x-priority), highest first; round-robin within
// a group among those able to take a message now. With single-active-consumer only the oldest
// consumer receives; when it goes, the next oldest takes over.

import type { FieldTable } from '../../protocol/field-table.js';
import { encodeShortStr } from '../../protocol/frame-writer.js';
import type { QueueEntry } from './entry.js';
import type { Queue } from './queue.js';

/** What a queue needs from the channel that owns a consumer. */
export interface ConsumerChannel {
  /** channel-level room: flow active, global prefetch, connection not backed up */
  canSend(): boolean;
  /** hands one entry (already taken from the queue) to the consumer */
  deliver(consumer: Consumer, entry: QueueEntry): void;
  /** the queue went away: tell the client (basic.cancel) and forget the consumer */
  consumerCancelledByServer(consumer: Consumer): void;
}

export class Consumer {
  /** deliveries not yet acked (manual-ack consumers only); see the `unacked` accessors */
  private unackedCount = 0;
  /** the tag as a wire short string, written into every delivery */
  readonly tagBytes: Buffer;
  /** ConsumerList bookkeeping: neighbours in its group's rotation, and whether it sits out */
  rotationPrev: Consumer | null = null;
  rotationNext: Consumer | null = null;
  /** at its own prefetch limit: out of the rotation until an ack makes room */
  parked = false;
  /** removed from its queue */
  detached = false;

  constructor(
    readonly tag: string,
    readonly channel: ConsumerChannel,
    readonly queue: Queue,
    readonly noAck: boolean,
    readonly exclusive: boolean,
    readonly priority: number,
    /** per-consumer prefetch limit taken from basic.qos(global=false) at consume time; 0 = none */
    readonly prefetchCount: number,
    readonly args: FieldTable,
  ) {
    this.tagBytes = encodeShortStr(tag);
  }

  get unacked(): number {
    return this.unackedCount;
  }

  /** The channel counts deliveries and acks here; room below the limit brings it back in rotation. */
  set unacked(n: number) {
    this.unackedCount = n;
    if (this.parked && n < this.prefetchCount && !this.detached) this.queue.consumers.unpark(this);
  }

  /** At its own prefetch limit (manual acks only). */
  get atPrefetchLimit(): boolean {
    return !this.noAck && this.prefetchCount !== 0 && this.unackedCount >= this.prefetchCount;
  }

  /** Whether this consumer may receive one more message now. */
  canReceive(): boolean {
    if (this.atPrefetchLimit) return false;
    return this.channel.canSend();
  }
}

/**
 * Consumers of one priority, served round-robin. Only those with room under their own prefetch
 * limit are in the rotation (a circular list); one that reaches its limit is parked, and its next
 * ack puts it back at the end of the rotation. So choosing a consumer never walks past consumers
 * that are full, however many there are. Consumers whose channel cannot send (flow, channel-wide
 * prefetch, a backed-up socket) stay in the rotation and are skipped.
 */
class PriorityGroup {
  /** the consumer to try first; null when the rotation is empty */
  cursor: Consumer | null = null;
  /** consumers in the group, parked or not */
  members = 0;

  constructor(readonly priority: number) {}

  /** Adds at the end of the rotation (just before the cursor). */
  enter(c: Consumer): void {
    c.parked = false;
    const cur = this.cursor;
    if (cur === null) {
      c.rotationPrev = c;
      c.rotationNext = c;
      this.cursor = c;
      return;
    }
    const last = cur.rotationPrev!;
    last.rotationNext = c;
    c.rotationPrev = last;
    c.rotationNext = cur;
    cur.rotationPrev = c;
  }

  /** Takes a consumer out of the rotation. */
  leave(c: Consumer): void {
    const next = c.rotationNext;
    if (next === null) return; // not in the rotation
    if (next === c) this.cursor = null;
    else {
      const prev = c.rotationPrev!;
      prev.rotationNext = next;
      next.rotationPrev = prev;
      if (this.cursor === c) this.cursor = next;
    }
    c.rotationNext = null;
    c.rotationPrev = null;
  }

  /** The next consumer in rotation able to receive now, parking full ones on the way. */
  next(): Consumer | undefined {
    let c = this.cursor;
    if (c === null) return undefined;
    // Each consumer is looked at once at most: the rotation only shrinks during the walk.
    const stop = c.rotationPrev!;
    for (;;) {
      const after: Consumer = c.rotationNext!;
      const last = c === stop;
      if (c.atPrefetchLimit) {
        this.leave(c);
        c.parked = true;
      } else if (c.channel.canSend()) {
        this.cursor = after === c ? c : after;
        return c;
      }
      if (last || this.cursor === null) return undefined;
      c = after;
    }
  }
}

export class ConsumerList {
  /** by priority, highest first */
  private readonly groups: PriorityGroup[] = [];
  /** registration order, for single-active-consumer */
  private readonly ordered: Consumer[] = [];

  constructor(private readonly singleActive: boolean) {}

  get size(): number {
    return this.ordered.length;
  }

  get all(): readonly Consumer[] {
    return this.ordered;
  }

  /** The consumer that receives when single-active-consumer is on. */
  get active(): Consumer | undefined {
    return this.singleActive ? this.ordered[0] : undefined;
  }

  hasExclusive(): boolean {
    return this.ordered.some((c) => c.exclusive);
  }

  add(consumer: Consumer): void {
    this.ordered.push(consumer);
    let group = this.groups.find((g) => g.priority === consumer.priority);
    if (!group) {
      group = new PriorityGroup(consumer.priority);
      this.groups.push(group);
      this.groups.sort((a, b) => b.priority - a.priority);
    }
    group.members++;
    group.enter(consumer);
  }

  remove(consumer: Consumer): boolean {
    const i = this.ordered.indexOf(consumer);
    if (i < 0) return false;
    this.ordered.splice(i, 1);
    consumer.detached = true;
    const g = this.groups.findIndex((x) => x.priority === consumer.priority);
    const group = this.groups[g]!;
    group.leave(consumer);
    consumer.parked = false;
    if (--group.members === 0) this.groups.splice(g, 1);
    return true;
  }

  /** A parked consumer has room again (called from Consumer's unacked setter). */
  unpark(consumer: Consumer): void {
    const group = this.groups.find((g) => g.priority === consumer.priority);
    if (group === undefined) return;
    group.enter(consumer);
  }

  /** The next consumer able to receive, or undefined when none can right now. */
  next(): Consumer | undefined {
    if (this.singleActive) {
      const active = this.ordered[0];
      return active !== undefined && active.canReceive() ? active : undefined;
    }
    const groups = this.groups;
    for (let g = 0; g < groups.length; g++) {
      const c = groups[g]!.next();
      if (c !== undefined) return c;
    }
    return undefined;
  }
}
