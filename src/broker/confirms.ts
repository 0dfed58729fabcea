// Publisher confirms for one channel. Sequence numbers count from 1. A message is confirmed when
// every queue that took it has it safe (at once in memory; after the store commit for persistent
// messages in durable queues). Acks go out with `multiple` covering the longest confirmed prefix,
// coalesced per flush; nacks go out at once, singly. A sequence number still waiting for a commit
// holds back acks for later ones, so `multiple` never covers an unconfirmed message.

import { Deque } from '../util/deque.js';
import type { PlainHistogram } from './stats.js';

/** Where a confirmed message is counted (the publishing channel's counters for its exchange). */
export interface ConfirmCounter {
  confirmed: number;
}

class PendingConfirm {
  constructor(
    readonly seq: number,
    /** commits still awaited */
    public waits: number,
    readonly counter: ConfirmCounter,
    /** epoch ms the publish arrived, for the confirm-latency histogram */
    readonly publishedAt: number,
  ) {}
  nacked = false;
}

/** Broker-wide total of confirmed messages (never goes backwards). */
export interface ConfirmTotals {
  messagesConfirmed: number;
  readonly confirmLatency: PlainHistogram;
}

export interface ConfirmSink {
  sendAck(deliveryTag: number, multiple: boolean): void;
  sendNack(deliveryTag: number, multiple: boolean): void;
}

export class ConfirmTracker {
  private nextSeq = 1;
  /** seqs not yet acked, in order; only created while something waits for a commit */
  private readonly pending = new Deque<PendingConfirm>();
  /** highest seq confirmed and not yet sent */
  private ackUpTo = 0;
  /** highest seq already acked on the wire */
  private lastSent = 0;
  /** seqs waiting for the current store batch */
  private batch: PendingConfirm[] = [];

  constructor(
    private readonly sink: ConfirmSink,
    private readonly totals: ConfirmTotals,
  ) {}

  /** Next publish sequence number. */
  next(): number {
    return this.nextSeq++;
  }

  get unconfirmedCount(): number {
    return this.pending.length;
  }

  /** The message is safe now. */
  confirmNow(seq: number, counter: ConfirmCounter, publishedAt: number): void {
    if (this.pending.length === 0) {
      this.ackUpTo = seq;
      counter.confirmed++;
      this.totals.messagesConfirmed++;
      // Acked in this turn of the event loop: the fastest bucket.
      this.totals.confirmLatency.observe(0);
    } else this.pending.push(new PendingConfirm(seq, 0, counter, publishedAt));
  }

  /** The message is refused: nack it now. Later acks with `multiple` may cover it harmlessly. */
  nackNow(seq: number, counter: ConfirmCounter, publishedAt: number): void {
    this.sink.sendNack(seq, false);
    if (this.pending.length > 0) {
      const p = new PendingConfirm(seq, 0, counter, publishedAt);
      p.nacked = true;
      this.pending.push(p);
    }
  }

  /** The message is safe once the current store batch commits. */
  awaitCommit(seq: number, counter: ConfirmCounter, publishedAt: number): void {
    const p = new PendingConfirm(seq, 1, counter, publishedAt);
    this.pending.push(p);
    this.batch.push(p);
  }

  /** Hands over the confirms waiting on the batch being written now. */
  takeBatch(): PendingConfirm[] | null {
    if (this.batch.length === 0) return null;
    const b = this.batch;
    this.batch = [];
    return b;
  }

  /** A store batch committed. */
  committed(batch: PendingConfirm[]): void {
    for (const p of batch) p.waits--;
    this.advance();
  }

  /** A store batch failed: those messages are nacked. */
  failed(batch: PendingConfirm[]): void {
    for (const p of batch) {
      if (p.waits > 0 && !p.nacked) {
        p.nacked = true;
        p.waits = 0;
        this.sink.sendNack(p.seq, false);
      }
    }
    this.advance();
  }

  /** Writes the coalesced ack, if any. */
  flush(): void {
    if (this.ackUpTo > this.lastSent) {
      this.sink.sendAck(this.ackUpTo, this.ackUpTo - this.lastSent > 1);
      this.lastSent = this.ackUpTo;
    }
  }

  private advance(): void {
    let now = 0;
    for (;;) {
      const head = this.pending.peek();
      if (head === undefined || head.waits > 0) break;
      this.pending.shift();
      // Never ack a nacked seq by itself; a later ack with `multiple` may span it, which is fine
      // because the client no longer counts it as outstanding.
      if (!head.nacked) {
        this.ackUpTo = head.seq;
        head.counter.confirmed++;
        this.totals.messagesConfirmed++;
        if (now === 0) now = Date.now();
        this.totals.confirmLatency.observe((now - head.publishedAt) / 1000);
      }
    }
  }
}
