// basic.get: one message taken from a queue on request, counted for the channel's and the broker's
// metrics as RabbitMQ counts it (get with auto-ack, get with manual ack, get on an empty queue,
// redelivered). With no_ack the message leaves the queue at once; otherwise the channel keeps it
// unacked under its delivery tag. Refusals (streams) come from consume-rules.ts first.

import type { Message } from './message.js';
import { checkGet } from './queue/consume-rules.js';
import type { QueueEntry } from './queue/entry.js';
import type { Queue } from './queue/queue.js';
import { redeliveryMessage } from './queue/quorum-queue.js';
import type { ChannelQueueCounters } from './stats.js';

/** The queue's next message for basic.get-ok, or undefined for basic.get-empty. */
export function takeForGet(queue: Queue, noAck: boolean, counters: ChannelQueueCounters, nowMs: number): QueueEntry | undefined {
  checkGet(queue);
  queue.touch();
  const entry = queue.take(nowMs);
  if (entry === undefined) {
    counters.totals.getEmpty++;
    counters.getEmpty++;
    return undefined;
  }
  if (entry.redelivered) {
    counters.totals.redelivered++;
    counters.redelivered++;
  }
  if (noAck) {
    counters.totals.deliveredGetAutoAck++;
    counters.getAutoAck++;
    queue.settle(entry, false);
  } else {
    counters.totals.deliveredGetManualAck++;
    counters.getManualAck++;
  }
  return entry;
}

/** The message basic.get-ok carries: from a quorum queue always with x-delivery-count (0 the first time), as RabbitMQ. */
export function getOkMessage(queue: Queue, entry: QueueEntry): Message {
  return queue.type === 'quorum' ? redeliveryMessage(entry) : entry.message;
}
