// The heaps behind TTL and delayed delivery: table-driven cases, and a property test of the
// indexed heap (push, pop, remove anywhere) against a sorted array.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { IndexedMinHeap, MinHeap } from '../../src/util/min-heap.js';

interface Item {
  key: number;
  id: number;
  heapIndex: number;
}

const before = (a: Item, b: Item): boolean => a.key < b.key || (a.key === b.key && a.id < b.id);
const item = (key: number, id: number): Item => ({ key, id, heapIndex: -1 });

function drain<T>(h: { pop(): T | undefined }): T[] {
  const out: T[] = [];
  for (let x = h.pop(); x !== undefined; x = h.pop()) out.push(x);
  return out;
}

describe('MinHeap', () => {
  const cases: { name: string; keys: number[]; expected: number[] }[] = [
    { name: 'empty', keys: [], expected: [] },
    { name: 'ascending input', keys: [1, 2, 3, 4], expected: [1, 2, 3, 4] },
    { name: 'descending input', keys: [4, 3, 2, 1], expected: [1, 2, 3, 4] },
    { name: 'duplicates', keys: [2, 1, 2, 1], expected: [1, 1, 2, 2] },
  ];
  for (const c of cases) {
    it(`pops in order: ${c.name}`, () => {
      const h = new MinHeap<number>((a, b) => a < b);
      for (const k of c.keys) h.push(k);
      expect(h.size).toBe(c.keys.length);
      expect(drain(h)).toEqual(c.expected);
    });
  }

  it('ties come out in the order the comparison breaks them (arrival order)', () => {
    const h = new MinHeap<Item>(before);
    const items = [item(5, 0), item(5, 1), item(1, 2), item(5, 3)];
    for (const i of items) h.push(i);
    expect(drain(h).map((i) => i.id)).toEqual([2, 0, 1, 3]);
  });
});

describe('IndexedMinHeap', () => {
  const cases: { name: string; keys: number[]; remove: number[]; expected: number[] }[] = [
    { name: 'remove the top', keys: [1, 2, 3], remove: [0], expected: [2, 3] },
    { name: 'remove the last pushed', keys: [1, 2, 3], remove: [2], expected: [1, 2] },
    { name: 'remove from the middle', keys: [5, 1, 4, 2, 3], remove: [2, 3], expected: [1, 3, 5] },
    { name: 'remove everything', keys: [3, 1, 2], remove: [0, 1, 2], expected: [] },
    // The filler taken from the end must sift up when it is smaller than the hole's parent.
    { name: 'removal where the filler sifts up', keys: [1, 10, 2, 11, 12, 3, 4], remove: [3], expected: [1, 2, 3, 4, 10, 12] },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const h = new IndexedMinHeap<Item>(before, 'heapIndex');
      const items = c.keys.map((k, i) => item(k, i));
      for (const i of items) h.push(i);
      for (const r of c.remove) expect(h.remove(items[r]!)).toBe(true);
      for (const r of c.remove) expect(items[r]!.heapIndex).toBe(-1);
      expect(h.size).toBe(c.expected.length);
      expect(drain(h).map((i) => i.key)).toEqual(c.expected);
      for (const i of items) expect(i.heapIndex).toBe(-1);
    });
  }

  it('removing an item that is not in the heap does nothing', () => {
    const h = new IndexedMinHeap<Item>(before, 'heapIndex');
    const a = item(1, 0);
    const stranger = item(1, 1);
    h.push(a);
    expect(h.remove(stranger)).toBe(false);
    stranger.heapIndex = 0; // a stale index pointing at someone else's slot
    expect(h.remove(stranger)).toBe(false);
    expect(h.size).toBe(1);
    expect(h.pop()).toBe(a);
  });

  it('clear forgets every position', () => {
    const h = new IndexedMinHeap<Item>(before, 'heapIndex');
    const items = [item(2, 0), item(1, 1)];
    for (const i of items) h.push(i);
    h.clear();
    expect(h.size).toBe(0);
    expect(items.map((i) => i.heapIndex)).toEqual([-1, -1]);
  });

  it('matches a sorted array under random pushes, pops and removals (property)', () => {
    type Op = { op: 'push'; key: number } | { op: 'pop' } | { op: 'remove'; pick: number };
    const op: fc.Arbitrary<Op> = fc.oneof(
      fc.record({ op: fc.constant('push' as const), key: fc.integer({ min: 0, max: 20 }) }),
      fc.record({ op: fc.constant('pop' as const) }),
      fc.record({ op: fc.constant('remove' as const), pick: fc.nat() }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 300 }), (ops) => {
        const h = new IndexedMinHeap<Item>(before, 'heapIndex');
        let model: Item[] = [];
        let id = 0;
        for (const o of ops) {
          if (o.op === 'push') {
            const it = item(o.key, id++);
            h.push(it);
            model.push(it);
            model.sort((a, b) => (before(a, b) ? -1 : 1));
          } else if (o.op === 'pop') {
            expect(h.pop()).toBe(model.shift());
          } else if (model.length > 0) {
            const victim = model[o.pick % model.length]!;
            expect(h.remove(victim)).toBe(true);
            model = model.filter((x) => x !== victim);
          }
          expect(h.size).toBe(model.length);
          expect(h.peek()).toBe(model[0]);
        }
      }),
      { numRuns: 300 },
    );
  });
});
