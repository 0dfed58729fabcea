// The publisher-confirm tracker (src/broker/confirms.ts) on its own: exactly which basic.ack /
// basic.nack frames a channel sends for a sequence of publishes settled in memory, after store
// commits (in any order) or by a failed commit, how acks coalesce into `multiple`, and that nothing
// stays tracked once every publish is settled.

import { describe, expect, it } from 'vitest';
import { ConfirmTracker, type ConfirmCounter, type ConfirmSink, type PendingRun } from '../../src/broker/confirms.js';
import { PlainHistogram } from '../../src/broker/stats.js';

type Sent = ['ack' | 'nack', number, boolean];

/** The sequence numbers a batch holds, run by run. */
function seqs(batch: PendingRun[]): number[] {
  const out: number[] = [];
  for (const run of batch) for (let s = run.firstSeq; s <= run.lastSeq; s++) out.push(s);
  return out;
}

function tracker() {
  const sent: Sent[] = [];
  const sink: ConfirmSink = {
    sendAck: (tag, multiple) => void sent.push(['ack', tag, multiple]),
    sendNack: (tag, multiple) => void sent.push(['nack', tag, multiple]),
  };
  const totals = { messagesConfirmed: 0, confirmLatency: new PlainHistogram([0.001, 0.01, 0.1, 1]) };
  const counter: ConfirmCounter = { confirmed: 0 };
  const t = new ConfirmTracker(sink, totals);
  /** takes the frames sent since the last call */
  const drain = (): Sent[] => sent.splice(0);
  return { t, totals, counter, drain };
}

describe('confirm tracker', () => {
  it('numbers publishes from 1', () => {
    const { t } = tracker();
    expect([t.next(), t.next(), t.next()]).toEqual([1, 2, 3]);
  });

  it('one message safe at once: a single ack, not multiple', () => {
    const { t, counter, totals, drain } = tracker();
    t.confirmNow(t.next(), counter, Date.now());
    t.flush();
    expect(drain()).toEqual([['ack', 1, false]]);
    expect([counter.confirmed, totals.messagesConfirmed, totals.confirmLatency.count]).toEqual([1, 1, 1]);
  });

  it('several safe before a flush: one ack with multiple for the highest', () => {
    const { t, counter, drain } = tracker();
    for (let i = 0; i < 5; i++) t.confirmNow(t.next(), counter, Date.now());
    t.flush();
    expect(drain()).toEqual([['ack', 5, true]]);
    t.flush();
    expect(drain()).toEqual([]);
    t.confirmNow(t.next(), counter, Date.now());
    t.flush();
    expect(drain()).toEqual([['ack', 6, false]]);
    expect(counter.confirmed).toBe(6);
  });

  it('a publish waiting for a commit holds back acks for later ones, then one multiple ack covers them', () => {
    const { t, counter, drain } = tracker();
    t.awaitCommit(t.next(), counter, Date.now());
    const batch = t.takeBatch()!;
    t.confirmNow(t.next(), counter, Date.now());
    t.confirmNow(t.next(), counter, Date.now());
    t.flush();
    expect(drain()).toEqual([]);
    expect(t.unconfirmedCount).toBe(3);
    t.committed(batch);
    t.flush();
    expect(drain()).toEqual([['ack', 3, true]]);
    expect(t.unconfirmedCount).toBe(0);
    expect(counter.confirmed).toBe(3);
  });

  it('commits arriving out of order: nothing is acked until the oldest is safe', () => {
    const { t, counter, drain } = tracker();
    t.awaitCommit(t.next(), counter, Date.now());
    const first = t.takeBatch()!;
    t.awaitCommit(t.next(), counter, Date.now());
    t.awaitCommit(t.next(), counter, Date.now());
    const second = t.takeBatch()!;
    expect(seqs(second)).toEqual([2, 3]);
    t.committed(second);
    t.flush();
    expect(drain()).toEqual([]);
    t.committed(first);
    t.flush();
    expect(drain()).toEqual([['ack', 3, true]]);
  });

  it('acks already sent are not repeated: multiple only spans what is new since the last flush', () => {
    const { t, counter, drain } = tracker();
    t.awaitCommit(t.next(), counter, Date.now());
    const a = t.takeBatch()!;
    t.committed(a);
    t.flush();
    expect(drain()).toEqual([['ack', 1, false]]);
    t.awaitCommit(t.next(), counter, Date.now());
    t.awaitCommit(t.next(), counter, Date.now());
    t.committed(t.takeBatch()!);
    t.flush();
    expect(drain()).toEqual([['ack', 3, true]]);
  });

  it('a failed commit nacks each of its publishes at once, singly; later safe ones are still acked', () => {
    const { t, counter, totals, drain } = tracker();
    t.awaitCommit(t.next(), counter, Date.now());
    t.awaitCommit(t.next(), counter, Date.now());
    const failing = t.takeBatch()!;
    t.awaitCommit(t.next(), counter, Date.now());
    const good = t.takeBatch()!;
    t.failed(failing);
    expect(drain()).toEqual([
      ['nack', 1, false],
      ['nack', 2, false],
    ]);
    t.committed(good);
    t.flush();
    // The client no longer counts 1 and 2 as outstanding, so an ack with multiple may span them.
    expect(drain()).toEqual([['ack', 3, true]]);
    expect([counter.confirmed, totals.messagesConfirmed]).toEqual([1, 1]);
    expect(t.unconfirmedCount).toBe(0);
  });

  it('a refused publish (nackNow) is nacked at once and never acked on its own', () => {
    const { t, counter, drain } = tracker();
    t.nackNow(t.next(), counter, Date.now());
    expect(drain()).toEqual([['nack', 1, false]]);
    t.flush();
    expect(drain()).toEqual([]);
    expect(counter.confirmed).toBe(0);
  });

  it('a refused publish behind one waiting for a commit: nacked at once, skipped by the ack', () => {
    const { t, counter, drain } = tracker();
    t.awaitCommit(t.next(), counter, Date.now());
    const batch = t.takeBatch()!;
    t.nackNow(t.next(), counter, Date.now());
    t.confirmNow(t.next(), counter, Date.now());
    expect(drain()).toEqual([['nack', 2, false]]);
    t.committed(batch);
    t.flush();
    expect(drain()).toEqual([['ack', 3, true]]);
    expect(counter.confirmed).toBe(2);
  });

  it('a batch is handed over once: takeBatch is null until something new waits', () => {
    const { t, counter } = tracker();
    expect(t.takeBatch()).toBe(null);
    t.awaitCommit(t.next(), counter, Date.now());
    expect(seqs(t.takeBatch()!)).toEqual([1]);
    expect(t.takeBatch()).toBe(null);
  });

  it('publishes of one millisecond, one exchange and one batch are one run; each is still counted', () => {
    const { t, counter, totals, drain } = tracker();
    const other: ConfirmCounter = { confirmed: 0 };
    const at = 1_000_000;
    for (let i = 0; i < 500; i++) t.awaitCommit(t.next(), counter, at); // 1..500
    for (let i = 0; i < 300; i++) t.awaitCommit(t.next(), counter, at + 1); // 501..800: next ms
    t.awaitCommit(t.next(), other, at + 1); // 801: another exchange
    t.nackNow(t.next(), counter, at + 1); // 802: refused, on its own
    t.awaitCommit(t.next(), counter, at + 1); // 803
    const batch = t.takeBatch()!;
    expect(batch.map((r) => [r.firstSeq, r.lastSeq])).toEqual([[1, 500], [501, 800], [801, 801], [803, 803]]);
    expect(t.unconfirmedCount).toBe(803);
    drain();
    t.committed(batch);
    t.flush();
    expect(drain()).toEqual([['ack', 803, true]]);
    expect([counter.confirmed, other.confirmed, totals.messagesConfirmed, totals.confirmLatency.count]).toEqual([801, 1, 802, 802]);
    expect(t.unconfirmedCount).toBe(0);
  });

  it('publishes safe at once behind a waiting one join one run and are acked with it', () => {
    const { t, counter, totals, drain } = tracker();
    t.awaitCommit(t.next(), counter, 5);
    const batch = t.takeBatch()!;
    for (let i = 0; i < 100; i++) t.confirmNow(t.next(), counter, 5);
    expect(t.unconfirmedCount).toBe(101);
    t.committed(batch);
    t.flush();
    expect(drain()).toEqual([['ack', 101, true]]);
    expect([counter.confirmed, totals.confirmLatency.count]).toEqual([101, 101]);
  });

  it('a failed run nacks every publish in it, singly', () => {
    const { t, counter, drain } = tracker();
    for (let i = 0; i < 3; i++) t.awaitCommit(t.next(), counter, 7);
    const batch = t.takeBatch()!;
    expect(batch).toHaveLength(1);
    t.failed(batch);
    expect(drain()).toEqual([
      ['nack', 1, false],
      ['nack', 2, false],
      ['nack', 3, false],
    ]);
    expect([counter.confirmed, t.unconfirmedCount]).toEqual([0, 0]);
  });

  it('window: 10,000 publishes behind one slow commit are all released when it lands', () => {
    const { t, counter, drain } = tracker();
    t.awaitCommit(t.next(), counter, Date.now());
    const slow = t.takeBatch()!;
    const batches = [];
    for (let i = 0; i < 9_999; i++) {
      t.awaitCommit(t.next(), counter, Date.now());
      if (i % 100 === 99) batches.push(t.takeBatch()!);
    }
    batches.push(t.takeBatch()!);
    for (const b of batches) t.committed(b);
    t.flush();
    expect(drain()).toEqual([]);
    expect(t.unconfirmedCount).toBe(10_000);
    t.committed(slow);
    t.flush();
    expect(drain()).toEqual([['ack', 10_000, true]]);
    expect(t.unconfirmedCount).toBe(0);
    expect(counter.confirmed).toBe(10_000);
  });
});
