// Choosing the consumer for the next delivery: round-robin within a priority, higher priorities
// first, consumers at their prefetch limit skipped without being looked at again until they ack.

import { describe, expect, it } from 'vitest';
import { Consumer, ConsumerList, type ConsumerChannel } from '../../src/broker/queue/consumers.js';
import type { Queue } from '../../src/broker/queue/queue.js';

class FakeChannel implements ConsumerChannel {
  open = true;
  canSendCalls = 0;
  canSend(): boolean {
    this.canSendCalls++;
    return this.open;
  }
  deliver(): void {}
  consumerCancelledByServer(): void {}
}

function setup(singleActive = false): { list: ConsumerList; make: (tag: string, opts?: { priority?: number; prefetch?: number; channel?: FakeChannel }) => Consumer } {
  const list = new ConsumerList(singleActive);
  const queue = { consumers: list } as unknown as Queue;
  const shared = new FakeChannel();
  const make = (tag: string, opts: { priority?: number; prefetch?: number; channel?: FakeChannel } = {}): Consumer => {
    const c = new Consumer(tag, opts.channel ?? shared, queue, false, false, opts.priority ?? 0, opts.prefetch ?? 0, {});
    list.add(c);
    return c;
  };
  return { list, make };
}

/** Picks n times, counting a delivery for each pick (as the dispatcher does). */
function pick(list: ConsumerList, n: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const c = list.next();
    if (c === undefined) {
      out.push('-');
      continue;
    }
    c.unacked++;
    out.push(c.tag);
  }
  return out;
}

describe('ConsumerList', () => {
  const cases: { name: string; consumers: { tag: string; priority?: number; prefetch?: number }[]; picks: number; expected: string[] }[] = [
    { name: 'round-robin', consumers: [{ tag: 'a' }, { tag: 'b' }, { tag: 'c' }], picks: 6, expected: ['a', 'b', 'c', 'a', 'b', 'c'] },
    { name: 'higher priority first', consumers: [{ tag: 'lo' }, { tag: 'hi', priority: 5 }], picks: 3, expected: ['hi', 'hi', 'hi'] },
    {
      name: 'a full higher-priority consumer lets the next priority in',
      consumers: [{ tag: 'lo' }, { tag: 'hi', priority: 5, prefetch: 2 }],
      picks: 4,
      expected: ['hi', 'hi', 'lo', 'lo'],
    },
    {
      name: 'full consumers are skipped, the others keep their turn',
      consumers: [{ tag: 'a', prefetch: 1 }, { tag: 'b' }, { tag: 'c', prefetch: 2 }],
      picks: 6,
      expected: ['a', 'b', 'c', 'b', 'c', 'b'],
    },
    { name: 'nobody with room', consumers: [{ tag: 'a', prefetch: 1 }, { tag: 'b', prefetch: 1 }], picks: 3, expected: ['a', 'b', '-'] },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const { list, make } = setup();
      for (const x of c.consumers) make(x.tag, x);
      expect(pick(list, c.picks)).toEqual(c.expected);
    });
  }

  it('an ack brings a full consumer back, at the end of the rotation', () => {
    const { list, make } = setup();
    const a = make('a', { prefetch: 1 });
    make('b');
    make('c');
    expect(pick(list, 4)).toEqual(['a', 'b', 'c', 'b']);
    a.unacked--; // acked
    expect(pick(list, 4)).toEqual(['c', 'b', 'a', 'c']);
  });

  it('a consumer whose channel cannot send is skipped but keeps its place', () => {
    const { list, make } = setup();
    const blocked = new FakeChannel();
    make('a');
    make('b', { channel: blocked });
    make('c');
    blocked.open = false;
    expect(pick(list, 4)).toEqual(['a', 'c', 'a', 'c']);
    blocked.open = true;
    expect(pick(list, 3)).toEqual(['a', 'b', 'c']);
  });

  it('removal keeps the rotation going, parked or not', () => {
    const { list, make } = setup();
    const a = make('a', { prefetch: 1 });
    const b = make('b');
    make('c');
    expect(pick(list, 2)).toEqual(['a', 'b']);
    expect(pick(list, 1)).toEqual(['c']); // a is parked now
    expect(list.remove(a)).toBe(true);
    a.unacked--; // an ack after the cancel must not bring it back
    expect(list.remove(b)).toBe(true);
    expect(pick(list, 2)).toEqual(['c', 'c']);
    expect(list.size).toBe(1);
    expect(list.remove(b)).toBe(false);
  });

  it('single active consumer: only the oldest receives; the next takes over when it goes', () => {
    const { list, make } = setup(true);
    const a = make('a');
    make('b');
    expect(pick(list, 2)).toEqual(['a', 'a']);
    list.remove(a);
    expect(pick(list, 2)).toEqual(['b', 'b']);
  });

  it('10,000 consumers of which 9,999 are at their limit: each choice looks at O(1) consumers', () => {
    const { list, make } = setup();
    const channels: FakeChannel[] = [];
    const consumers: Consumer[] = [];
    for (let i = 0; i < 10_000; i++) {
      const ch = new FakeChannel();
      channels.push(ch);
      consumers.push(make(`c${i}`, { prefetch: 1, channel: ch }));
    }
    const free = make('free', { channel: new FakeChannel() });
    // Fill everyone once (each is looked at once and parked as it fills).
    expect(new Set(pick(list, 10_000)).size).toBe(10_000);
    const checks = (): number => channels.reduce((n, ch) => n + ch.canSendCalls, 0);
    const before = checks();
    const got = pick(list, 10_000);
    expect(got.every((t) => t === 'free')).toBe(true);
    // The full ones were parked on first sight and are not looked at again.
    expect(checks() - before).toBe(0);
    // One ack brings exactly that consumer back.
    consumers[1234]!.unacked--;
    expect(pick(list, 2).sort()).toEqual(['c1234', 'free']);
    expect(free.unacked).toBeGreaterThan(0);
  });
});
