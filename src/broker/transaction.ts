// AMQP transactions (tx.select, tx.commit, tx.rollback) on one channel. In a transaction nothing a
// client publishes or settles takes effect until tx.commit: publishes and acks/rejects are buffered
// here, in order, and carried out by the channel at commit (publishes first, then settlements, as
// RabbitMQ). tx.rollback, or the channel closing, undoes the buffered acks: those deliveries are
// unacked again. tx.commit-ok waits for the store when a buffered publish was persistent.
// The rules live here; the channel routes, settles and writes the replies (TransactionSink).

import type { Exchange } from './exchange/exchange.js';
import type { Message } from './message.js';
import type { CommitWaiter } from './persistence.js';
import type { UnackedDelivery, UnackedLedger } from './unacked.js';

/** A publish held back until tx.commit. */
export interface BufferedPublish {
  readonly exchange: Exchange;
  readonly message: Message;
  readonly extraKeys: string[] | null;
  readonly mandatory: boolean;
}

/** A basic.ack, or a basic.reject / basic.nack (with its requeue flag), held back until tx.commit. */
interface BufferedSettlement {
  readonly deliveries: UnackedDelivery[];
  readonly ack: boolean;
  readonly requeue: boolean;
}

/** What a commit asks of the channel. */
export interface TransactionSink {
  /** Routes a buffered publish; true when it waits for a store commit. */
  publishBuffered(publish: BufferedPublish, nowMs: number): boolean;
  settle(deliveries: UnackedDelivery[]): void;
  reject(deliveries: UnackedDelivery[], requeue: boolean): void;
  /** The store wrote (ok) or failed to write the commit's persistent messages. */
  transactionWritten(ok: boolean): void;
}

export class Transaction {
  private publishes: BufferedPublish[] = [];
  private settlements: BufferedSettlement[] = [];

  /** messages published and not yet committed */
  get messageCount(): number {
    return this.publishes.length;
  }

  /** basic.ack / nack / reject methods not yet committed */
  get settlementCount(): number {
    return this.settlements.length;
  }

  /** deliveries acknowledged or rejected and not yet committed (the management API's uncommitted acks) */
  get deliveryCount(): number {
    let n = 0;
    for (const s of this.settlements) n += s.deliveries.length;
    return n;
  }

  publish(publish: BufferedPublish): void {
    this.publishes.push(publish);
  }

  ack(deliveries: UnackedDelivery[]): void {
    this.settlements.push({ deliveries, ack: true, requeue: false });
  }

  reject(deliveries: UnackedDelivery[], requeue: boolean): void {
    this.settlements.push({ deliveries, ack: false, requeue });
  }

  /**
   * Carries out everything buffered, publishes first, and starts a new transaction (work the commit
   * itself causes is not buffered into it). Returns true when a publish waits for the store: then
   * commit-ok must wait for it too (TransactionCommitWaiter).
   */
  commit(sink: TransactionSink, nowMs: number): boolean {
    const publishes = this.publishes;
    const settlements = this.settlements;
    this.publishes = [];
    this.settlements = [];
    let pendingCommit = false;
    for (const p of publishes) {
      if (sink.publishBuffered(p, nowMs)) pendingCommit = true;
    }
    for (const s of settlements) {
      if (s.ack) sink.settle(s.deliveries);
      else sink.reject(s.deliveries, s.requeue);
    }
    return pendingCommit;
  }

  /** tx.rollback, or the channel closing: buffered publishes are dropped, buffered acks undone. */
  rollback(unacked: UnackedLedger): void {
    for (const s of this.settlements) unacked.restore(s.deliveries);
    this.publishes = [];
    this.settlements = [];
  }
}

/** Waits for the store commit behind a tx.commit and tells the channel. */
export class TransactionCommitWaiter implements CommitWaiter {
  constructor(private readonly sink: TransactionSink) {}
  onCommitted(): void {
    this.sink.transactionWritten(true);
  }
  onCommitFailed(): void {
    this.sink.transactionWritten(false);
  }
}
