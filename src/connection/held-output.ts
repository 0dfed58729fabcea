// A channel's replies held back behind durable writes. A reply must not go out before the durable
// change it confirms is on disk (a declare-ok for a durable queue that a crash then forgets): when
// a method wrote durable state (persistence.syncWrites moved), everything the channel writes from
// then on goes to a held output, in order, and is appended to the connection's output once every
// commit it waits for is done. Other channels are not delayed. Confirms (basic.ack/nack) written
// meanwhile are held with the rest, so a confirm never overtakes a reply sent before it.
//
// This object is its own commit waiter (registered once per hold), so holding allocates nothing
// beyond the first held output.

import type { Dispatcher } from '../broker/dispatch.js';
import type { CommitWaiter, Persistence } from '../broker/persistence.js';
import { Outbound } from './outbound.js';

/** Told after a commit, so output that waited for it is flushed. */
export interface FlushScheduler {
  scheduleFlush(): void;
}

export class HeldOutput implements CommitWaiter {
  private held: Outbound | null = null;
  /** commits still awaited before the held output goes out */
  private holds = 0;
  /** persistence.syncWrites when the current method started */
  private writesBefore = 0;

  constructor(
    private readonly output: Outbound,
    private readonly persistence: Persistence,
    private readonly dispatcher: Dispatcher,
    private readonly flusher: FlushScheduler,
  ) {}

  /** Where the channel writes now: the connection's output, or the held one while a commit is pending. */
  get out(): Outbound {
    return this.held ?? this.output;
  }

  /** A method starts: durable writes from here on hold its reply. */
  methodStarted(): void {
    this.writesBefore = this.persistence.syncWrites;
  }

  /** Where a synchronous reply goes: held until commit when the method wrote durable state. */
  replyOutput(): Outbound {
    const writes = this.persistence.syncWrites;
    if (writes !== this.writesBefore) {
      this.writesBefore = writes;
      this.hold();
    }
    return this.out;
  }

  /** Everything written from now on waits for the store's next commit. */
  private hold(): void {
    this.held ??= new Outbound(null, this.dispatcher);
    this.holds++;
    this.persistence.afterCommit(this);
  }

  // A failed commit releases too: the store's failure is reported on its own (blocked publishers,
  // nacked confirms); the replies must not be lost behind it.
  onCommitted(): void {
    this.release();
    this.flusher.scheduleFlush();
  }

  onCommitFailed(): void {
    this.release();
    this.flusher.scheduleFlush();
  }

  private release(): void {
    if (--this.holds > 0 || this.held === null) return;
    this.output.append(this.held);
    this.held = null;
  }
}
