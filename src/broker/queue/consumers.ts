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
  /** deliveries not yet acked (manual-ack consumers only) */
  unacked = 0;
  /** the tag as a wire short string, written into every delivery */
  readonly tagBytes: Buffer;

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

  /** Whether this consumer may receive one more message now. */
  canReceive(): boolean {
    if (!this.noAck && this.prefetchCount !== 0 && this.unacked >= this.prefetchCount) return false;
    return this.channel.canSend();
  }
}

interface PriorityGroup {
  readonly priority: number;
  readonly consumers: Consumer[];
  cursor: number;
}

export class ConsumerList {
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
      group = { priority: consumer.priority, consumers: [], cursor: 0 };
      this.groups.push(group);
      this.groups.sort((a, b) => b.priority - a.priority);
    }
    group.consumers.push(consumer);
  }

  remove(consumer: Consumer): boolean {
    const i = this.ordered.indexOf(consumer);
    if (i < 0) return false;
    this.ordered.splice(i, 1);
    const g = this.groups.findIndex((x) => x.priority === consumer.priority);
    const group = this.groups[g]!;
    const j = group.consumers.indexOf(consumer);
    group.consumers.splice(j, 1);
    if (group.cursor > j) group.cursor--;
    if (group.consumers.length === 0) this.groups.splice(g, 1);
    else if (group.cursor >= group.consumers.length) group.cursor = 0;
    return true;
  }

  /** The next consumer able to receive, or undefined when none can right now. */
  next(): Consumer | undefined {
    if (this.singleActive) {
      const active = this.ordered[0];
      return active !== undefined && active.canReceive() ? active : undefined;
    }
    for (let g = 0; g < this.groups.length; g++) {
      const group = this.groups[g]!;
      const list = group.consumers;
      const n = list.length;
      for (let k = 0; k < n; k++) {
        const idx = (group.cursor + k) % n;
        const c = list[idx]!;
        if (c.canReceive()) {
          group.cursor = idx + 1 === n ? 0 : idx + 1;
          return c;
        }
      }
    }
    return undefined;
  }
}
