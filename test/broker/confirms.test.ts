// The publisher-confirm tracker, table-driven: each case is a script of publishes (confirmed now,
// refused now, or waiting for a store batch), batch hand-overs, commits and failures, and flushes,
// and the exact basic.ack / basic.nack frames it must produce. The rule under test: `multiple`
// never covers a message that is not settled, and every sequence number is settled exactly once.

import { describe, expect, it } from 'vitest';
import { ConfirmTracker } from '../../src/broker/confirms.js';
import { BrokerStats } from '../../src/broker/stats.js';

/** Where confirmed messages are counted (the channel's per-exchange counter in the broker). */
const counter = { confirmed: 0 };

type Step =
  | 'now' // publish, safe at once
  | 'refuse' // publish, refused (nack now)
  | 'store' // publish, waits for the current store batch
  | 'batch' // hand the current batch to the store (named by its index: b0, b1, …)
  | `commit b${number}`
  | `fail b${number}`
  | 'flush';

interface Case {
  name: string;
  steps: Step[];
  frames: string[];
}

const CASES: Case[] = [
  { name: 'nothing published: nothing sent', steps: ['flush'], frames: [] },
  { name: 'one safe publish: a single ack', steps: ['now', 'flush'], frames: ['ack 1'] },
  { name: 'safe publishes coalesce into one multiple ack per flush', steps: ['now', 'now', 'now', 'flush', 'now', 'flush'], frames: ['ack 3 multiple', 'ack 4'] },
  { name: 'a flush with nothing new sends nothing', steps: ['now', 'flush', 'flush'], frames: ['ack 1'] },
  {
    name: 'a stored publish holds back later acks until its commit',
    steps: ['store', 'now', 'batch', 'flush', 'commit b0', 'flush'],
    frames: ['ack 2 multiple'],
  },
  {
    name: 'earlier safe publishes are acked before a stored one',
    steps: ['now', 'now', 'store', 'batch', 'flush', 'commit b0', 'flush'],
    frames: ['ack 2 multiple', 'ack 3'],
  },
  { name: 'a refused publish is nacked at once, singly', steps: ['refuse', 'flush'], frames: ['nack 1'] },
  {
    name: 'an ack with multiple may span a nacked sequence number',
    steps: ['store', 'refuse', 'now', 'batch', 'commit b0', 'flush'],
    frames: ['nack 2', 'ack 3 multiple'],
  },
  {
    name: 'a failed batch nacks each of its messages; later ones are still acked',
    steps: ['store', 'store', 'batch', 'store', 'batch', 'fail b0', 'commit b1', 'flush'],
    frames: ['nack 1', 'nack 2', 'ack 3 multiple'],
  },
  {
    name: 'batches committing out of order: acks wait for the earlier one',
    steps: ['store', 'batch', 'store', 'batch', 'commit b1', 'flush', 'commit b0', 'flush'],
    frames: ['ack 2 multiple'],
  },
  { name: 'a batch handed over with nothing in it is no batch', steps: ['now', 'batch', 'flush'], frames: ['ack 1'] },
];

function run(steps: Step[]): string[] {
  const frames: string[] = [];
  const tracker = new ConfirmTracker(
    {
      sendAck: (tag, multiple) => frames.push(`ack ${tag}${multiple ? ' multiple' : ''}`),
      sendNack: (tag, multiple) => frames.push(`nack ${tag}${multiple ? ' multiple' : ''}`),
    },
    new BrokerStats(),
  );
  const batches: ReturnType<ConfirmTracker['takeBatch']>[] = [];
  for (const step of steps) {
    if (step === 'now') tracker.confirmNow(tracker.next(), counter, Date.now());
    else if (step === 'refuse') tracker.nackNow(tracker.next(), counter, Date.now());
    else if (step === 'store') tracker.awaitCommit(tracker.next(), counter, Date.now());
    else if (step === 'batch') {
      const b = tracker.takeBatch();
      if (b !== null) batches.push(b);
    } else if (step === 'flush') tracker.flush();
    else {
      const [what, id] = step.split(' ') as ['commit' | 'fail', string];
      const batch = batches[Number(id.slice(1))];
      if (batch === undefined || batch === null) throw new Error(`no batch ${id}`);
      if (what === 'commit') tracker.committed(batch);
      else tracker.failed(batch);
    }
  }
  return frames;
}

describe('ConfirmTracker', () => {
  it.each(CASES)('$name', ({ steps, frames }) => {
    expect(run(steps)).toEqual(frames);
  });

  it('unconfirmedCount counts only what waits for the store', () => {
    const stats = new BrokerStats();
    const t = new ConfirmTracker({ sendAck: () => {}, sendNack: () => {} }, stats);
    t.confirmNow(t.next(), counter, Date.now());
    expect(t.unconfirmedCount).toBe(0);
    t.awaitCommit(t.next(), counter, Date.now());
    t.confirmNow(t.next(), counter, Date.now());
    expect(t.unconfirmedCount).toBe(2);
    t.committed(t.takeBatch()!);
    expect(t.unconfirmedCount).toBe(0);
    // Every confirmed message is counted once, with its latency.
    expect([stats.messagesConfirmed, stats.confirmLatency.count]).toEqual([3, 3]);
  });
});
