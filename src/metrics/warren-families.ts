// Warren-only metric families (named warren_*), for what RabbitMQ's users have long asked for and
// its plugin does not export: the age of the oldest ready message per queue, per-queue counts of
// dead-lettered messages by reason, publisher-confirm latency, and the store's commit time and
// batch size. Read at scrape time from the same counters as the RabbitMQ families.

import type { Queue } from '../broker/queue/queue.js';
import type { PlainHistogram } from '../broker/stats.js';
import { Family, RowFamily, ValueFamily, labelPairs, type Sample } from './exposition.js';
import type { ScrapeContext } from './rabbitmq-families.js';
import { headPublishedAt, type Snapshot } from './snapshot.js';

const REASONS = ['expired', 'rejected', 'maxlen', 'delivery_limit'] as const;

function histogramSamples(h: PlainHistogram): Sample[] {
  const cumulative = h.cumulative();
  const samples: Sample[] = [];
  for (let i = 0; i < cumulative.length; i++) {
    const le = i < h.bounds.length ? String(h.bounds[i]) : '+Inf';
    samples.push({ suffix: '_bucket', labels: labelPairs([['le', le]]), value: cumulative[i]! });
  }
  samples.push({ suffix: '_sum', labels: '', value: h.sum });
  samples.push({ suffix: '_count', labels: '', value: h.count });
  return samples;
}

function headAgeSeconds(s: Snapshot, q: Queue): number {
  const at = headPublishedAt(q);
  return at === Infinity ? 0 : Math.max(0, s.now - at) / 1000;
}

/** Dead-lettered counts of one queue, one sample per reason and strategy; nothing if none yet. */
class QueueDeadLetterFamily extends Family {
  constructor(private readonly ctx: ScrapeContext) {
    super('warren_queue_messages_dead_lettered_total', 'Messages that left a queue without an ack (expired, rejected, over its length limit), by reason; dead_letter_strategy="disabled" when the queue has no dead-letter exchange', 'counter');
  }

  async write(w: Parameters<Family['write']>[0]): Promise<void> {
    w.header(this);
    const rows = this.ctx.snapshot().queueRows();
    for (let i = 0; i < rows.length; i++) {
      const { labels, item } = rows[i]!;
      const counts = item.deadLettered;
      if (counts !== null) {
        for (const reason of REASONS) {
          w.sample(this.name, `${labels},reason="${reason}",dead_letter_strategy="at_most_once"`, counts.toExchange[reason]);
          w.sample(this.name, `${labels},reason="${reason}",dead_letter_strategy="disabled"`, counts.dropped[reason]);
        }
      }
      if ((i & 63) === 63 && w.sliceUsed) {
        await w.yield();
        if (w.aborted) return;
      }
    }
  }
}

/** Families shared by every endpoint except detailed. */
function common(ctx: ScrapeContext): Family[] {
  const stats = (): Snapshot['broker']['stats'] => ctx.snapshot().broker.stats;
  return [
    new ValueFamily('warren_publish_confirm_latency_seconds', 'Time from a publish arriving to its publisher confirm (basic.ack) being sent', 'histogram', () => histogramSamples(stats().confirmLatency)),
    new ValueFamily('warren_store_commit_seconds', 'Time for a batch of store writes to be committed to disk (LMDB, fsync included)', 'histogram', () => histogramSamples(stats().storeCommitSeconds)),
    new ValueFamily('warren_store_commit_entries', 'Queue entries written per store commit', 'histogram', () => histogramSamples(stats().storeCommitEntries)),
    new ValueFamily('warren_memory_message_bytes', 'Bytes of message bodies held in memory by queues', 'gauge', () => ctx.snapshot().broker.memory.bytes),
    new ValueFamily('warren_memory_budget_bytes', 'Bytes of message bodies kept in memory before transient messages are paged to disk (--memory-budget)', 'gauge', () => ctx.snapshot().broker.memory.budgetBytes),
  ];
}

export function warrenAggregatedFamilies(ctx: ScrapeContext): Family[] {
  return [
    ...common(ctx),
    new ValueFamily('warren_queue_head_message_age_seconds', 'Age of the oldest ready message (at the head of its queue), seconds; on /metrics the oldest across all queues, 0 when none is waiting', 'gauge', () => {
      const age = ctx.snapshot().queueTotals().oldestHeadAgeSec;
      return Number.isNaN(age) ? 0 : age;
    }),
    new ValueFamily('warren_queue_messages_dead_lettered_total', 'Messages that left a queue without an ack (expired, rejected, over its length limit), by reason; dead_letter_strategy="disabled" when the queue has no dead-letter exchange', 'counter', () => {
      const dl = ctx.snapshot().broker.stats.deadLettered;
      const samples: Sample[] = [];
      for (const reason of REASONS) {
        samples.push({ labels: `reason="${reason}",dead_letter_strategy="at_most_once"`, value: dl.toExchange[reason] });
        samples.push({ labels: `reason="${reason}",dead_letter_strategy="disabled"`, value: dl.dropped[reason] });
      }
      return samples;
    }),
  ];
}

export function warrenPerObjectFamilies(ctx: ScrapeContext): Family[] {
  return [
    ...common(ctx),
    new RowFamily('warren_queue_head_message_age_seconds', 'Age of the oldest ready message (at the head of its queue), seconds; 0 when none is waiting', 'gauge', () => ctx.snapshot().queueRows(), (q: Queue) => headAgeSeconds(ctx.snapshot(), q)),
    new QueueDeadLetterFamily(ctx),
  ];
}
