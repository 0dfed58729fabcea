// Transactions as a unit: what tx.commit carries out and in which order (publishes first, then
// acks and rejects as they were made), what it reports about waiting for the store, and what
// tx.rollback undoes (buffered acks come back to the unacked ledger, buffered publishes are
// dropped). Also the tag rules basic.ack/nack/reject use to find their deliveries.

import { describe, expect, it } from 'vitest';
import type { Exchange } from '../../src/broker/exchange/exchange.js';
import type { Message } from '../../src/broker/message.js';
import type { QueueEntry } from '../../src/broker/queue/entry.js';
import { takeDeliveries } from '../../src/broker/settlement.js';
import { Transaction, type BufferedPublish, type TransactionSink } from '../../src/broker/transaction.js';
import { UnackedDelivery, UnackedLedger } from '../../src/broker/unacked.js';
import { AmqpException } from '../../src/protocol/errors.js';

const delivery = (tag: number): UnackedDelivery => new UnackedDelivery(tag, { seq: tag } as unknown as QueueEntry, null);
const publish = (name: string, persistent = false): BufferedPublish => ({
  exchange: { name } as unknown as Exchange,
  message: { routingKey: name, persistent } as unknown as Message,
  extraKeys: null,
  mandatory: false,
});

/** Writes down what a commit asked for, in order. */
class RecordingSink implements TransactionSink {
  readonly log: string[] = [];
  publishBuffered(p: BufferedPublish): boolean {
    this.log.push(`publish ${p.exchange.name}`);
    return (p.message as unknown as { persistent: boolean }).persistent;
  }
  settle(deliveries: UnackedDelivery[]): void {
    this.log.push(`ack ${deliveries.map((d) => d.deliveryTag).join(',')}`);
  }
  reject(deliveries: UnackedDelivery[], requeue: boolean): void {
    this.log.push(`reject ${deliveries.map((d) => d.deliveryTag).join(',')} requeue=${requeue}`);
  }
  transactionWritten(ok: boolean): void {
    this.log.push(`written ${ok}`);
  }
}

describe('Transaction.commit', () => {
  const cases: { name: string; work: (tx: Transaction) => void; log: string[]; waits: boolean }[] = [
    { name: 'nothing buffered', work: () => {}, log: [], waits: false },
    {
      name: 'publishes first, then settlements in the order made',
      work: (tx) => {
        tx.reject([delivery(3)], true);
        tx.publish(publish('a'));
        tx.ack([delivery(1), delivery(2)]);
        tx.publish(publish('b'));
        tx.reject([delivery(4)], false);
      },
      log: ['publish a', 'publish b', 'reject 3 requeue=true', 'ack 1,2', 'reject 4 requeue=false'],
      waits: false,
    },
    {
      name: 'one publish waiting for the store makes commit-ok wait',
      work: (tx) => {
        tx.publish(publish('a'));
        tx.publish(publish('b', true));
        tx.publish(publish('c'));
      },
      log: ['publish a', 'publish b', 'publish c'],
      waits: true,
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const tx = new Transaction();
      const sink = new RecordingSink();
      c.work(tx);
      expect(tx.commit(sink, 0)).toBe(c.waits);
      expect(sink.log).toEqual(c.log);
      // The commit starts a new, empty transaction: a second commit does nothing.
      expect([tx.messageCount, tx.settlementCount, tx.deliveryCount]).toEqual([0, 0, 0]);
      const again = new RecordingSink();
      expect(tx.commit(again, 0)).toBe(false);
      expect(again.log).toEqual([]);
    });
  }

  it('counts buffered messages, settlement methods and their deliveries', () => {
    const tx = new Transaction();
    tx.publish(publish('a'));
    tx.ack([delivery(1), delivery(2), delivery(3)]);
    tx.reject([delivery(4)], true);
    expect([tx.messageCount, tx.settlementCount, tx.deliveryCount]).toEqual([1, 2, 4]);
  });
});

describe('Transaction.rollback', () => {
  it('gives buffered acks and rejects back to the ledger and drops buffered publishes', () => {
    const ledger = new UnackedLedger();
    for (const tag of [1, 2, 3, 4, 5]) ledger.add(delivery(tag));
    const tx = new Transaction();
    tx.ack(takeDeliveries(ledger, 2, true));
    tx.reject(takeDeliveries(ledger, 4, false), false);
    tx.publish(publish('a'));
    expect(ledger.size).toBe(2);
    tx.rollback(ledger);
    expect(ledger.size).toBe(5);
    expect(ledger.takeAll().map((d) => d.deliveryTag)).toEqual([1, 2, 3, 4, 5]);
    const sink = new RecordingSink();
    expect(tx.commit(sink, 0)).toBe(false);
    expect(sink.log).toEqual([]);
  });
});

describe('takeDeliveries', () => {
  const cases: { name: string; tag: number; multiple: boolean; got?: number[]; error?: string; left: number[] }[] = [
    { name: 'one tag', tag: 2, multiple: false, got: [2], left: [1, 3] },
    { name: 'multiple up to a tag', tag: 2, multiple: true, got: [1, 2], left: [3] },
    { name: 'multiple with tag 0: everything', tag: 0, multiple: true, got: [1, 2, 3], left: [] },
    { name: 'unknown tag', tag: 9, multiple: false, error: 'PRECONDITION_FAILED - unknown delivery tag 9', left: [1, 2, 3] },
    { name: 'multiple up to an unknown tag takes nothing', tag: 9, multiple: true, error: 'PRECONDITION_FAILED - unknown delivery tag 9', left: [1, 2, 3] },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const ledger = new UnackedLedger();
      for (const tag of [1, 2, 3]) ledger.add(delivery(tag));
      if (c.error !== undefined) {
        let thrown: unknown;
        try {
          takeDeliveries(ledger, c.tag, c.multiple);
        } catch (err) {
          thrown = err;
        }
        expect(thrown).toBeInstanceOf(AmqpException);
        expect([(thrown as AmqpException).replyCode, (thrown as AmqpException).replyText]).toEqual([406, c.error]);
      } else {
        expect(takeDeliveries(ledger, c.tag, c.multiple).map((d) => d.deliveryTag)).toEqual(c.got);
      }
      expect(ledger.takeAll().map((d) => d.deliveryTag)).toEqual(c.left);
    });
  }
});
