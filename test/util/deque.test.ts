// The ring buffer under the ready lists and ledgers: table-driven cases for each operation, and a
// property test against a plain array doing the same operations.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Deque } from '../../src/util/deque.js';

type Op =
  | { op: 'push' | 'unshift'; value: number }
  | { op: 'shift' | 'pop' }
  | { op: 'insertAt'; index: number; value: number }
  | { op: 'set'; index: number; value: number }
  | { op: 'removeWhere'; odd: boolean };

/** Applies ops to a Deque and to an array; returns both contents and every value returned. */
function run(ops: Op[], initial: number[] = []): { deque: number[]; array: number[]; dequeOut: unknown[]; arrayOut: unknown[] } {
  const d = new Deque<number>();
  const a: number[] = [];
  for (const v of initial) {
    d.push(v);
    a.push(v);
  }
  const dequeOut: unknown[] = [];
  const arrayOut: unknown[] = [];
  for (const o of ops) {
    switch (o.op) {
      case 'push':
        d.push(o.value);
        a.push(o.value);
        break;
      case 'unshift':
        d.unshift(o.value);
        a.unshift(o.value);
        break;
      case 'shift':
        dequeOut.push(d.shift());
        arrayOut.push(a.shift());
        break;
      case 'pop':
        dequeOut.push(d.pop());
        arrayOut.push(a.pop());
        break;
      case 'insertAt': {
        const i = Math.max(0, Math.min(o.index, a.length));
        d.insertAt(o.index, o.value);
        a.splice(i, 0, o.value);
        break;
      }
      case 'set':
        if (a.length === 0) break;
        d.set(o.index % a.length, o.value);
        a[o.index % a.length] = o.value;
        break;
      case 'removeWhere': {
        const drop = (x: number): boolean => (x % 2 !== 0) === o.odd;
        dequeOut.push(d.removeWhere(drop));
        const before = a.length;
        const kept = a.filter((x) => !drop(x));
        a.length = 0;
        a.push(...kept);
        arrayOut.push(before - kept.length);
        break;
      }
    }
    expect(d.length).toBe(a.length);
  }
  return { deque: d.toArray(), array: a, dequeOut, arrayOut };
}

const range = (n: number, from = 0): number[] => Array.from({ length: n }, (_, i) => from + i);

describe('Deque', () => {
  const cases: { name: string; initial?: number[]; ops: Op[]; expected: number[]; out?: unknown[] }[] = [
    { name: 'push then shift is FIFO', ops: [{ op: 'push', value: 1 }, { op: 'push', value: 2 }, { op: 'shift' }], expected: [2], out: [1] },
    { name: 'unshift puts in front', ops: [{ op: 'push', value: 2 }, { op: 'unshift', value: 1 }], expected: [1, 2] },
    { name: 'shift and pop of empty give undefined', ops: [{ op: 'shift' }, { op: 'pop' }], expected: [], out: [undefined, undefined] },
    { name: 'grows past its initial 16 keeping order', ops: range(40).map((v) => ({ op: 'push' as const, value: v })), expected: range(40) },
    {
      name: 'grows while wrapped around (head not at 0)',
      initial: range(16),
      ops: [{ op: 'shift' }, { op: 'shift' }, { op: 'push', value: 16 }, { op: 'push', value: 17 }, { op: 'push', value: 18 }],
      expected: range(17, 2),
      out: [0, 1],
    },
    { name: 'insertAt near the front moves the front part', initial: range(10), ops: [{ op: 'insertAt', index: 2, value: 99 }], expected: [0, 1, 99, ...range(8, 2)] },
    { name: 'insertAt near the back moves the back part', initial: range(10), ops: [{ op: 'insertAt', index: 8, value: 99 }], expected: [...range(8), 99, 8, 9] },
    { name: 'insertAt beyond the end appends', initial: [1], ops: [{ op: 'insertAt', index: 5, value: 2 }], expected: [1, 2] },
    { name: 'insertAt into a full deque grows it', initial: range(16), ops: [{ op: 'insertAt', index: 3, value: 99 }], expected: [0, 1, 2, 99, ...range(13, 3)] },
    { name: 'set replaces in place', initial: [1, 2, 3], ops: [{ op: 'set', index: 1, value: 9 }], expected: [1, 9, 3] },
    { name: 'removeWhere keeps order of the rest', initial: range(10), ops: [{ op: 'removeWhere', odd: true }], expected: [0, 2, 4, 6, 8], out: [5] },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const r = run(c.ops, c.initial);
      expect(r.deque).toEqual(c.expected);
      expect(r.array).toEqual(c.expected);
      if (c.out !== undefined) expect(r.dequeOut).toEqual(c.out);
    });
  }

  it('set outside the deque throws', () => {
    const d = new Deque<number>();
    d.push(1);
    expect(() => d.set(1, 2)).toThrow(RangeError);
  });

  it('insertSorted keeps ascending order', () => {
    const d = new Deque<number>();
    for (const v of [10, 20, 30, 40]) d.push(v);
    for (const v of [25, 5, 45, 10]) d.insertSorted(v, (x) => x);
    expect(d.toArray()).toEqual([5, 10, 10, 20, 25, 30, 40, 45]);
  });

  it('behaves as an array under any sequence of operations (property)', () => {
    const op: fc.Arbitrary<Op> = fc.oneof(
      fc.record({ op: fc.constantFrom('push' as const, 'unshift' as const), value: fc.integer() }),
      fc.record({ op: fc.constantFrom('shift' as const, 'pop' as const) }),
      fc.record({ op: fc.constant('insertAt' as const), index: fc.nat(60), value: fc.integer() }),
      fc.record({ op: fc.constant('set' as const), index: fc.nat(60), value: fc.integer() }),
      fc.record({ op: fc.constant('removeWhere' as const), odd: fc.boolean() }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 200 }), (ops) => {
        const r = run(ops);
        expect(r.deque).toEqual(r.array);
        expect(r.dequeOut).toEqual(r.arrayOut);
      }),
      { numRuns: 300 },
    );
  });
});
