// Publisher confirms waiting for the store: the persistent messages a channel published in one
// event-loop turn form a batch (ConfirmTracker.takeBatch); when the store commit that holds them
// is done (or failed) the tracker confirms (or nacks) them, and the channel is flushed so the
// basic.ack/nack goes out. A class, not a closure: one object per batch and nothing per message.

import type { ConfirmTracker } from '../broker/confirms.js';
import type { CommitWaiter } from '../broker/persistence.js';
import type { FlushScheduler } from './held-output.js';

type ConfirmBatch = NonNullable<ReturnType<ConfirmTracker['takeBatch']>>;

export class ConfirmBatchWaiter implements CommitWaiter {
  constructor(
    private readonly confirms: ConfirmTracker,
    private readonly batch: ConfirmBatch,
    private readonly flusher: FlushScheduler,
  ) {}
  onCommitted(): void {
    this.confirms.committed(this.batch);
    this.flusher.scheduleFlush();
  }
  onCommitFailed(): void {
    this.confirms.failed(this.batch);
    this.flusher.scheduleFlush();
  }
}
