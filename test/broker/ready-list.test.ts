// The in-memory ready list of a queue: arrivals in a FIFO per priority level, requeued entries in
// a per-level heap, and the next entry always the lowest seq of the highest level.

import { describe, expect, it } from 'vitest';
import { MemoryGauge } from '../../src/broker/memory.js';
import { EntryState, QueueEntry } from '../../src/broker/queue/entry.js';
import { ReadyList } from '../../src/broker/queue/ready-list.js';
import type { Message } from '../../src/broker/message.js';
import type { Queue } from '../../src/broker/queue/queue.js';

const message = { bodySize: 10 } as unknown as Message;
const entry = (seq: number, level = 0): QueueEntry => new QueueEntry({} as Queue, message, seq, 0, level);

type Step = { push: number; level?: number } | { take: number[] } | { requeue: number } | { expire: number };

describe('ReadyList', () => {
  const cases: { name: string; levels: number; steps: Step[]; rest: number[] }[] = [
    { name: 'FIFO', levels: 0, steps: [{ push: 1 }, { push: 2 }, { push: 3 }, { take: [1, 2] }], rest: [3] },
    {
      name: 'a requeued entry goes back to its place',
      levels: 0,
      steps: [{ push: 1 }, { push: 2 }, { push: 3 }, { push: 4 }, { take: [1, 2, 3] }, { requeue: 2 }],
      rest: [2, 4],
    },
    {
      name: 'requeued entries in any order come back in seq order, before later arrivals',
      levels: 0,
      steps: [{ push: 1 }, { push: 2 }, { push: 3 }, { push: 4 }, { take: [1, 2, 3] }, { requeue: 3 }, { requeue: 1 }, { push: 5 }, { requeue: 2 }],
      rest: [1, 2, 3, 4, 5],
    },
    {
      name: 'higher levels first, each in seq order',
      levels: 2,
      steps: [{ push: 1, level: 0 }, { push: 2, level: 2 }, { push: 3, level: 1 }, { push: 4, level: 2 }],
      rest: [2, 4, 3, 1],
    },
    {
      name: 'an entry expired in the middle is skipped',
      levels: 0,
      steps: [{ push: 1 }, { push: 2 }, { push: 3 }, { expire: 2 }],
      rest: [1, 3],
    },
    {
      name: 'a requeued entry can expire from the heap',
      levels: 0,
      steps: [{ push: 1 }, { push: 2 }, { take: [1] }, { requeue: 1 }, { expire: 1 }],
      rest: [2],
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const memory = new MemoryGauge(1 << 30);
      const list = new ReadyList(c.levels, memory);
      const all = new Map<number, QueueEntry>();
      for (const s of c.steps) {
        if ('push' in s) {
          const e = entry(s.push, s.level ?? 0);
          all.set(s.push, e);
          list.push(e);
        } else if ('take' in s) {
          const got = s.take.map(() => {
            const e = list.shift()!;
            e.state = EntryState.Unacked;
            return e.seq;
          });
          expect(got).toEqual(s.take);
        } else if ('requeue' in s) {
          const e = all.get(s.requeue)!;
          e.state = EntryState.Ready;
          list.putBack(e);
        } else {
          const e = all.get(s.expire)!;
          e.state = EntryState.Done;
          list.markRemoved(e);
        }
      }
      expect([...list.entries()].map((e) => e.seq)).toEqual(c.rest);
      expect(list.count).toBe(c.rest.length);
      expect(list.bytes).toBe(10 * c.rest.length);
      expect(memory.bytes).toBe(10 * c.rest.length);
      const drained: number[] = [];
      for (let e = list.shift(); e !== undefined; e = list.shift()) drained.push(e.seq);
      expect(drained).toEqual(c.rest);
      expect(memory.bytes).toBe(0);
    });
  }
});
