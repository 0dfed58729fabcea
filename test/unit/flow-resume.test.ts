// Flow control's resume step (Resources.afterDispatch in src/broker/resources.ts) on its own: it
// walks the set of held publishers without copying it, while each recheck() takes its own gate out
// of that set. The test holds several publishers on one queue and checks that a single dispatcher
// run's afterDispatch() lets every one of them read again (none skipped by the deletions made
// during the walk), that a publisher still behind stays held, and that nothing stays registered.

import { afterEach, describe, expect, it } from 'vitest';
import { FLOW_QUEUE_HIGH, FLOW_QUEUE_LOW, Resources, type GatedConnection, type ReadGate } from '../../src/broker/resources.js';
import type { Persistence } from '../../src/broker/persistence.js';
import type { Queue } from '../../src/broker/queue/queue.js';
import { createLogger } from '../../src/log.js';

/** A connection as the gate sees it: counts the pauses and resumes it is asked for. */
class CountingConnection implements GatedConnection {
  readonly wantsBlockedNotices = false;
  pauses = 0;
  resumes = 0;
  sendBlocked(): void {}
  sendUnblocked(): void {}
  checkConsumerTimeouts(): void {}
  pauseReading(): void {
    this.pauses++;
  }
  resumeReading(): void {
    this.resumes++;
  }
}

/** The few queue fields flow control reads (a consumed queue with a backlog). */
function backlogQueue(backlog: number): Queue {
  return { deleted: false, consumerCount: 1, flowBacklog: backlog, deliveredTotal: 0 } as unknown as Queue;
}

let resources: Resources | null = null;
afterEach(() => {
  resources?.stop();
  resources = null;
});

function setUp(): Resources {
  const persistence = { uncommittedBytes: 0 } as unknown as Persistence;
  resources = new Resources({ memoryHighWatermark: { fraction: 0.4 }, diskFreeLimitBytes: 0 }, persistence, '/nonexistent', createLogger('silent'));
  return resources;
}

/** A publisher whose current input just put a message in `queue`. */
function publishTo(res: Resources, gate: ReadGate, queue: Queue): void {
  res.reader = gate;
  res.afterEnqueue(queue);
  res.reader = null;
}

describe('flow control resume (afterDispatch)', () => {
  it('one run resumes every publisher held on a queue that caught up, and keeps the others held', () => {
    const res = setUp();
    const busy = backlogQueue(FLOW_QUEUE_HIGH + 1);
    const other = backlogQueue(FLOW_QUEUE_HIGH + 1);
    const connections = Array.from({ length: 5 }, () => new CountingConnection());
    const gates = connections.map((c) => res.gate(c));
    // Publishers 0–3 wait for `busy`; publisher 4 waits for `other`.
    for (let i = 0; i < 4; i++) publishTo(res, gates[i]!, busy);
    publishTo(res, gates[4]!, other);
    expect(connections.map((c) => c.pauses)).toEqual([1, 1, 1, 1, 1]);
    expect(gates.map((g) => g.state)).toEqual(['flow', 'flow', 'flow', 'flow', 'flow']);

    res.afterDispatch(); // nothing caught up yet
    expect(connections.map((c) => c.resumes)).toEqual([0, 0, 0, 0, 0]);

    (busy as { flowBacklog: number }).flowBacklog = FLOW_QUEUE_LOW;
    res.afterDispatch();
    expect(connections.map((c) => c.resumes)).toEqual([1, 1, 1, 1, 0]);
    expect(gates.map((g) => g.state)).toEqual(['running', 'running', 'running', 'running', 'flow']);

    (other as { flowBacklog: number }).flowBacklog = 0;
    res.afterDispatch();
    expect(connections.map((c) => c.resumes)).toEqual([1, 1, 1, 1, 1]);
    expect(res.countStates()).toEqual({ running: 5, flow: 0, blocking: 0, blocked: 0 });

    // Nothing is left registered: a further run resumes nobody twice.
    res.afterDispatch();
    expect(connections.map((c) => c.resumes)).toEqual([1, 1, 1, 1, 1]);
  });
});
