// The unacked ledger: table-driven cases for each way a delivery leaves (ack of one tag, multiple,
// everything, rollback) and the memory bound when acks come out of order.

import { describe, expect, it } from 'vitest';
import { UnackedDelivery, UnackedLedger } from '../../src/broker/unacked.js';
import type { QueueEntry } from '../../src/broker/queue/entry.js';

const entry = (tag: number): QueueEntry => ({ seq: tag }) as unknown as QueueEntry;
const delivery = (tag: number): UnackedDelivery => new UnackedDelivery(tag, entry(tag), null);

function ledgerWith(tags: number[]): { ledger: UnackedLedger; byTag: Map<number, UnackedDelivery> } {
  const ledger = new UnackedLedger();
  const byTag = new Map<number, UnackedDelivery>();
  for (const t of tags) {
    const d = delivery(t);
    byTag.set(t, d);
    ledger.add(d);
  }
  return { ledger, byTag };
}

const tags = (ds: Iterable<UnackedDelivery>): number[] => [...ds].map((d) => d.deliveryTag);

type Step =
  | { take: number; got: number | null }
  | { takeUpTo: number; got: number[] }
  | { takeAll: true; got: number[] }
  | { restore: number[] }
  | { has: number; is: boolean };

describe('UnackedLedger', () => {
  const cases: { name: string; tags: number[]; steps: Step[]; pending: number[] }[] = [
    { name: 'ack of the oldest', tags: [1, 2, 3], steps: [{ take: 1, got: 1 }], pending: [2, 3] },
    { name: 'ack from the middle', tags: [1, 2, 3], steps: [{ take: 2, got: 2 }, { has: 2, is: false }], pending: [1, 3] },
    { name: 'double ack is unknown', tags: [1, 2, 3], steps: [{ take: 2, got: 2 }, { take: 2, got: null }], pending: [1, 3] },
    { name: 'unknown tag', tags: [1, 2], steps: [{ take: 7, got: null }, { has: 7, is: false }], pending: [1, 2] },
    {
      name: 'multiple skips the ones already settled',
      tags: [1, 2, 3, 4],
      steps: [{ take: 2, got: 2 }, { takeUpTo: 3, got: [1, 3] }],
      pending: [4],
    },
    {
      name: 'settled tags at the head are dropped when the head goes',
      tags: [1, 2, 3],
      steps: [{ take: 2, got: 2 }, { take: 3, got: 3 }, { take: 1, got: 1 }],
      pending: [],
    },
    { name: 'everything, oldest first', tags: [5, 6, 7], steps: [{ take: 6, got: 6 }, { takeAll: true, got: [5, 7] }], pending: [] },
    {
      name: 'rollback of an ack from the middle revives it in place',
      tags: [1, 2, 3],
      steps: [{ take: 2, got: 2 }, { restore: [2] }, { has: 2, is: true }],
      pending: [1, 2, 3],
    },
    {
      name: 'rollback of acks taken from the head puts them back in order',
      tags: [1, 2, 3],
      steps: [{ takeUpTo: 2, got: [1, 2] }, { restore: [1, 2] }],
      pending: [1, 2, 3],
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const { ledger, byTag } = ledgerWith(c.tags);
      for (const s of c.steps) {
        if ('take' in s) {
          const d = ledger.take(s.take);
          expect(d === undefined ? null : d.deliveryTag).toBe(s.got);
          if (d !== undefined) expect(d).toBe(byTag.get(s.take));
        } else if ('takeUpTo' in s) expect(tags(ledger.takeUpTo(s.takeUpTo))).toEqual(s.got);
        else if ('takeAll' in s) expect(tags(ledger.takeAll())).toEqual(s.got);
        else if ('restore' in s) ledger.restore(s.restore.map((t) => byTag.get(t)!));
        else expect(ledger.has(s.has)).toBe(s.is);
      }
      expect(tags(ledger.pending())).toEqual(c.pending);
      expect(ledger.size).toBe(c.pending.length);
    });
  }

  it('acks out of order with the oldest never acked: slots stay O(live), and settled deliveries are not held', () => {
    const ledger = new UnackedLedger();
    ledger.add(delivery(1)); // never acked
    let tag = 2;
    for (let round = 0; round < 1000; round++) {
      for (let i = 0; i < 100; i++) ledger.add(delivery(tag++));
      // ack all but the oldest, newest first (out of order)
      let wrong = 0;
      for (let t = tag - 1; t >= tag - 100; t--) if (ledger.take(t)?.deliveryTag !== t) wrong++;
      expect(wrong).toBe(0);
    }
    expect(ledger.size).toBe(1);
    // 100,001 deliveries went through; a settled tag is a number, and there are few of them.
    expect(ledger.slotCount).toBeLessThanOrEqual(1 + 64 + 100);
    expect(tags(ledger.pending())).toEqual([1]);
    expect(ledger.take(1)?.deliveryTag).toBe(1);
    expect(ledger.slotCount).toBe(0);
  });

  it('a delivery acked out of order is no longer referenced by the ledger', async () => {
    const ledger = new UnackedLedger();
    ledger.add(delivery(1));
    let collected = false;
    const registry = new FinalizationRegistry<string>(() => {
      collected = true;
    });
    (() => {
      const d = delivery(2);
      registry.register(d, 'd2');
      ledger.add(d);
      ledger.add(delivery(3));
      expect(ledger.take(2)).toBe(d);
    })();
    const { setFlagsFromString } = await import('node:v8');
    const { runInNewContext } = await import('node:vm');
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    for (let i = 0; i < 20 && !collected; i++) {
      gc();
      await new Promise((r) => setTimeout(r, 10));
    }
    expect(collected).toBe(true);
    expect(ledger.size).toBe(2);
  });
});
