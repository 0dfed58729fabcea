// Publisher confirms for one channel. Sequence numbers count from 1. A message is confirmed when
// every queue that took it has it safe (at once in memory; after the store commit for persistent
// messages in durable queues). Acks go out with `multiple` covering the longest confirmed prefix,
// coalesced per flush; nacks go out at once, singly. A sequence number still waiting for a commit
// holds back acks for later ones, so `multiple` never covers an unconfirmed message.
//
// Publishes waiting to be settled are kept as runs: consecutive sequence numbers that arrived in
// the same millisecond, are counted for the same exchange and are settled together (they wait for
// the same store batch, or were safe at once behind a waiting one). A publisher with confirms sends
// hundreds of messages per store commit; one object per run instead of one per message keeps the
// tracker's work and garbage per message to a comparison and an increment.

import { Deque } from '../util/deque.js';
import type { PlainHistogram } from './stats.js';

/** Where a confirmed message is counted (the publishing channel's counters for its exchange). */
export interface ConfirmCounter {
  confirmed: number;
}

/** Sequence numbers firstSeq..lastSeq, settled together. */
export class PendingRun {
  constructor(
    readonly firstSeq: number,
    public lastSeq: number,
    /** commits still awaited (0 or 1) */
    public waits: number,
    readonly counter: ConfirmCounter,
    /** epoch ms the publishes arrived, for the confirm-latency histogram */
    readonly publishedAt: number,
    /** refused: nacked, never acked on its own */
    public nacked: boolean,
  ) {}

  /** True when seq, published at `publishedAt` for `counter`, can join this run. */
  extendsWith(seq: number, counter: ConfirmCounter, publishedAt: number): boolean {
    return seq === this.lastSeq + 1 && counter === this.counter && publishedAt === this.publishedAt && !this.nacked;
  }
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
  /** runs of seqs not yet acked, in order; only created while something waits for a commit */
  private readonly pending = new Deque<PendingRun>();
  /** seqs in `pending` */
  private pendingCount = 0;
  /** highest seq confirmed and not yet sent */
  private ackUpTo = 0;
  /** highest seq already acked on the wire */
  private lastSent = 0;
  /** runs waiting for the current store batch */
  private batch: PendingRun[] = [];

  constructor(
    private readonly sink: ConfirmSink,
    private readonly totals: ConfirmTotals,
  ) {}

  /** Next publish sequence number. */
  next(): number {
    return this.nextSeq++;
  }

  get unconfirmedCount(): number {
    return this.pendingCount;
  }

  /** The message is safe now. */
  confirmNow(seq: number, counter: ConfirmCounter, publishedAt: number): void {
    const tail = this.pending.peekLast();
    if (tail === undefined) {
      this.ackUpTo = seq;
      counter.confirmed++;
      this.totals.messagesConfirmed++;
      // Acked in this turn of the event loop: the fastest bucket.
      this.totals.confirmLatency.observe(0);
      return;
    }
    this.pendingCount++;
    // Safe, but held behind a publish that waits: joins the last run if that one is safe too.
    if (tail.waits === 0 && tail.extendsWith(seq, counter, publishedAt)) tail.lastSeq = seq;
    else this.pending.push(new PendingRun(seq, seq, 0, counter, publishedAt, false));
  }

  /** The message is refused: nack it now. Later acks with `multiple` may cover it harmlessly. */
  nackNow(seq: number, counter: ConfirmCounter, publishedAt: number): void {
    this.sink.sendNack(seq, false);
    if (this.pending.length > 0) {
      this.pendingCount++;
      this.pending.push(new PendingRun(seq, seq, 0, counter, publishedAt, true));
    }
  }

  /** The message is safe once the current store batch commits. */
  awaitCommit(seq: number, counter: ConfirmCounter, publishedAt: number): void {
    this.pendingCount++;
    const batch = this.batch;
    const tail = batch.length > 0 ? batch[batch.length - 1]! : undefined;
    // The batch's last run ends at seq - 1: it is also the last run of `pending`.
    if (tail !== undefined && tail.extendsWith(seq, counter, publishedAt)) {
      tail.lastSeq = seq;
      return;
    }
    const run = new PendingRun(seq, seq, 1, counter, publishedAt, false);
    this.pending.push(run);
    batch.push(run);
  }

  /** Hands over the confirms waiting on the batch being written now. */
  takeBatch(): PendingRun[] | null {
    if (this.batch.length === 0) return null;
    const b = this.batch;
    this.batch = [];
    return b;
  }

  /** A store batch committed. */
  committed(batch: PendingRun[]): void {
    for (let i = 0; i < batch.length; i++) batch[i]!.waits--;
    this.advance();
  }

  /** A store batch failed: those messages are nacked, each singly. */
  failed(batch: PendingRun[]): void {
    for (const run of batch) {
      if (run.waits > 0 && !run.nacked) {
        run.nacked = true;
        run.waits = 0;
        for (let seq = run.firstSeq; seq <= run.lastSeq; seq++) this.sink.sendNack(seq, false);
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
      const n = head.lastSeq - head.firstSeq + 1;
      this.pendingCount -= n;
      // Never ack a nacked seq by itself; a later ack with `multiple` may span it, which is fine
      // because the client no longer counts it as outstanding.
      if (!head.nacked) {
        this.ackUpTo = head.lastSeq;
        head.counter.confirmed += n;
        this.totals.messagesConfirmed += n;
        if (now === 0) now = Date.now();
        this.totals.confirmLatency.observe((now - head.publishedAt) / 1000, n);
      }
    }
  }
}
