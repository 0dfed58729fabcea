// The chaos checker's counting (test/chaos/history.ts), table-driven: what is lost, unexpected,
// duplicated (flagged or not), per fault type, from a recorded history.

import { describe, expect, it } from 'vitest';
import { bodyOf, DRAIN, History, valueOf } from '../chaos/history.js';

describe('chaos history: bodies', () => {
  it.each([1, 2, 63, 64, 1000, 123_456_789])('value %i survives bodyOf → valueOf, with and without padding', (v) => {
    expect(valueOf(bodyOf(v))).toBe(v);
    expect(valueOf(bodyOf(v, 8192))).toBe(v);
  });

  it.each([
    ['another prefix', Buffer.from('hello:1:')],
    ['a cut body', bodyOf(70).subarray(0, bodyOf(70).length - 1)],
    ['a damaged byte', Buffer.from(bodyOf(70).toString().replace(/.$/, 'Z'))],
    ['not a number', Buffer.from('chaos:x:')],
    ['zero', Buffer.from('chaos:0:')],
  ])('%s is not a value', (_name, body) => {
    expect(valueOf(body)).toBeNull();
  });
});

describe('chaos history: counting', () => {
  it('counts lost, unexpected, duplicated and unflagged per fault type and in all', () => {
    const h = new History('set-up');
    const setUp = h.publish(); // confirmed, received: fine
    h.settle(setUp, 'confirmed');
    h.deliver(bodyOf(setUp), false);

    h.startRound('kill');
    const lost = h.publish(); // confirmed, never received
    h.settle(lost, 'confirmed');
    const unknownMissing = h.publish(); // channel closed before the confirm, never received: fine
    h.settle(unknownMissing, 'unknown');
    const unknownReceived = h.publish(); // may arrive: fine
    h.settle(unknownReceived, 'unknown');
    h.deliver(bodyOf(unknownReceived), false);
    const dupFlagged = h.publish();
    h.settle(dupFlagged, 'confirmed');
    h.deliver(bodyOf(dupFlagged), false);
    h.deliver(bodyOf(dupFlagged), true);
    const dupFlaggedArrivedFirst = h.publish(); // the redelivery arrives before the original: fine
    h.settle(dupFlaggedArrivedFirst, 'confirmed');
    h.deliver(bodyOf(dupFlaggedArrivedFirst), true);
    h.deliver(bodyOf(dupFlaggedArrivedFirst), false);

    h.startRound('pause');
    const dupUnflagged = h.publish();
    h.settle(dupUnflagged, 'confirmed');
    h.deliver(bodyOf(dupUnflagged), false);
    h.deliver(bodyOf(dupUnflagged), false);
    const returned = h.publish(); // mandatory and unroutable: not a confirm, never received
    h.settle(returned, 'returned');
    h.settle(returned, 'confirmed'); // the ack after the return changes nothing
    const nacked = h.publish();
    h.settle(nacked, 'nacked');
    h.deliver(bodyOf(999_999), false); // never published
    h.deliver(Buffer.from('garbage'), false);

    h.startRound('kill');
    const late = h.publish();
    h.settle(late, 'confirmed');
    h.settle(late, 'unknown'); // a "channel closed" after the confirm changes nothing
    h.startRound(DRAIN);
    h.deliver(bodyOf(late), false);

    const c = h.count();
    expect([...c.keys()]).toEqual(['set-up', 'kill', 'pause', DRAIN, 'all']);
    expect(c.get('set-up')).toMatchObject({ rounds: 0, published: 1, confirmed: 1, lost: 0 });
    expect(c.get('kill')).toEqual({ rounds: 2, published: 6, confirmed: 4, nacked: 0, returned: 0, unknown: 2, lost: 1, unexpected: 0, duplicated: 2, unflagged: 0 });
    expect(c.get('pause')).toEqual({ rounds: 1, published: 3, confirmed: 1, nacked: 1, returned: 1, unknown: 0, lost: 0, unexpected: 2, duplicated: 1, unflagged: 1 });
    expect(c.get(DRAIN)).toMatchObject({ rounds: 0, published: 0 });
    expect(c.get('all')).toEqual({ rounds: 3, published: 10, confirmed: 6, nacked: 1, returned: 1, unknown: 2, lost: 1, unexpected: 2, duplicated: 3, unflagged: 1 });
    expect(h.lostSample(5)).toEqual([`${lost} (round 1, kill)`]);
  });

  it('a pending publish at the end counts as unknown, never as lost', () => {
    const h = new History('set-up');
    h.startRound('kill');
    h.publish();
    expect(h.pending).toBe(1);
    expect(h.count().get('all')).toMatchObject({ published: 1, unknown: 1, lost: 0 });
  });
});
