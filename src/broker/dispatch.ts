// The delivery scheduler. Queues that gained messages or consumer capacity are marked dirty; after
// the current input chunk has been processed (or on the next turn, for work triggered by timers
// and store commits) dirty queues hand messages to their consumers round-robin while prefetch and
// socket capacity allow, and then every connection with pending output is flushed once.
//
// A run comes after every socket read, so what it costs when it has little to do is paid per read:
// the lists of marked queues and outputs are arrays (a queue's dispatchPending flag and an
// output's own flag keep each listed once), emptied by pop() — a Set's clear() allocates a new table
// and an array's length store is a runtime call, each per run.

import type { Logger } from '../log.js';
import type { Queue } from './queue/queue.js';
import type { StreamQueue } from './stream/stream-queue.js';

/** Anything that buffers output and writes it in one go. */
export interface Flushable {
  flush(): void;
}

/** Deliveries one queue may make per run before yielding to other queues and to I/O. */
const QUEUE_BUDGET = 512;

export class Dispatcher {
  /** queues to serve, each once (Queue.dispatchPending) */
  private dirtyQueues: Queue[] = [];
  /** the list being served by run(), swapped with dirtyQueues (marks during a run wait for the next) */
  private serving: Queue[] = [];
  /** outputs to flush; each marks itself once until flushed (see Outbound.mark) */
  private readonly dirtyOutputs: Flushable[] = [];
  private readonly beforeFlush = new Set<Flushable>();
  private scheduled = false;
  private running = false;
  /** inside beginInput()/endInput(): the run at the end does the work, no setImmediate needed */
  private inputDepth = 0;

  constructor(
    private readonly log: Logger,
    /** told after every run, so publishers held by flow control resume once queues catch up */
    private readonly afterRun: { afterDispatch(): void } | null = null,
  ) {}

  markQueue(queue: Queue): void {
    if (!queue.dispatchPending) {
      queue.dispatchPending = true;
      this.dirtyQueues.push(queue);
    }
    this.schedule();
  }

  /** The output has something to write. Callers mark an output once until its flush(). */
  markOutput(output: Flushable): void {
    this.dirtyOutputs.push(output);
    this.schedule();
  }

  /** Runs before outputs flush on every run (channels write coalesced confirms here). */
  markBeforeFlush(hook: Flushable): void {
    this.beforeFlush.add(hook);
    this.schedule();
  }

  /**
   * A connection starts parsing input. Until endInput(), marks do not schedule a run of their own:
   * endInput() runs the dispatcher anyway, and a setImmediate per input chunk would only find
   * nothing left to do.
   */
  beginInput(): void {
    this.inputDepth++;
  }

  /** The input is parsed: runs now, or on the next turn when soon (see Connection.processInput). */
  endInput(soon: boolean): void {
    this.inputDepth--;
    if (soon) this.runSoon();
    else this.run();
  }

  /** Runs on the next turn even when nothing is marked yet (input that may still grow, see Connection). */
  runSoon(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(this.runScheduled);
  }

  private schedule(): void {
    if (this.scheduled || this.running || this.inputDepth > 0) return;
    this.scheduled = true;
    setImmediate(this.runScheduled);
  }

  private readonly runScheduled = (): void => {
    this.scheduled = false;
    this.run();
  };

  /** Delivers what can be delivered now, then flushes output. Safe to call at any time. */
  run(): void {
    if (this.running) return;
    this.running = true;
    try {
      // One pass over the queues dirty now; queues marked during the pass wait for the next run.
      const batch = this.dirtyQueues;
      this.dirtyQueues = this.serving;
      this.serving = batch;
      const now = batch.length > 0 ? Date.now() : 0;
      for (let i = 0; i < batch.length; i++) {
        const queue = batch[i]!;
        queue.dispatchPending = false;
        try {
          if (!queue.deleted && this.deliverFrom(queue, now)) this.markQueue(queue);
        } catch (err) {
          // A bug must not take the broker down with it: log, and let other queues go on.
          this.log.error({ err, queue: queue.name, vhost: queue.host.name }, 'delivery failed');
        }
      }
      while (batch.length > 0) batch.pop();
      if (this.beforeFlush.size > 0) {
        for (const hook of this.beforeFlush) this.flushSafely(hook);
        this.beforeFlush.clear();
      }
      // Outputs marked while flushing (none expected) are flushed in this pass too, as a Set's
      // iteration would.
      const outputs = this.dirtyOutputs;
      for (let i = 0; i < outputs.length; i++) this.flushSafely(outputs[i]!);
      while (outputs.length > 0) outputs.pop();
    } finally {
      this.running = false;
    }
    if (this.afterRun !== null) {
      try {
        this.afterRun.afterDispatch();
      } catch (err) {
        this.log.error({ err }, 'flow control check failed');
      }
    }
    if (this.dirtyQueues.length > 0) this.schedule();
  }

  private flushSafely(f: Flushable): void {
    try {
      f.flush();
    } catch (err) {
      this.log.error({ err }, 'flush failed');
    }
  }

  /** Delivers from one queue immediately (TTL-0 messages must go now or never). */
  deliverNow(queue: Queue, now: number): void {
    if (this.deliverFrom(queue, now)) this.markQueue(queue);
  }

  /** Returns true when the queue still has work it could do (budget ran out). */
  private deliverFrom(queue: Queue, now: number): boolean {
    // A stream's consumers each read from their own position: the stream hands out its deliveries.
    if (queue.type === 'stream') return (queue as StreamQueue).deliverToReaders(QUEUE_BUDGET);
    let budget = QUEUE_BUDGET;
    while (queue.messageCount > 0) {
      const consumer = queue.consumers.next();
      if (consumer === undefined) return false;
      const entry = queue.take(now);
      if (entry === undefined) return false;
      consumer.channel.deliver(consumer, entry);
      if (--budget === 0) return queue.messageCount > 0;
    }
    return false;
  }
}
