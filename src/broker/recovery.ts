// Start-up: rebuild durable exchanges, queues and bindings from the store, then each durable
// queue's messages in order. Messages that may have been delivered before the stop come back
// marked redelivered. Only the first PAGE_WINDOW entries of a queue are loaded; the rest stay on
// disk and are read back as the queue drains. Entries of queues that no longer exist, entries that
// were written only to save memory (transient), and message bodies no entry refers to are deleted.

import type { Logger } from '../log.js';
import { decodeTable } from '../protocol/field-table.js';
import { ENTRY_INLINE, ENTRY_TRANSIENT } from '../store/records.js';
import { Binding } from './binding.js';
import type { Broker } from './broker.js';
import { createExchange, isKnownExchangeType } from './exchange/types.js';
import { DelayedMessageExchange } from './exchange/delayed.js';
import type { Exchange } from './exchange/exchange.js';
import { Message } from './message.js';
import type { DurablePersistence } from './persistence.js';
import { PAGE_WINDOW, type Queue } from './queue/queue.js';
import { restoreQueue } from './queue/queue-types.js';

export interface RecoveryStats {
  exchanges: number;
  queues: number;
  bindings: number;
  messages: number;
  pagedMessages: number;
  droppedEntries: number;
  droppedMessages: number;
  delayedMessages: number;
}

interface PagedTail {
  count: number;
  bytes: number;
  fromSeq: number;
  lastSeq: number;
}

export function recover(broker: Broker, persistence: DurablePersistence, log: Logger): RecoveryStats {
  const store = persistence.store;
  const stats: RecoveryStats = {
    exchanges: 0,
    queues: 0,
    bindings: 0,
    messages: 0,
    pagedMessages: 0,
    droppedEntries: 0,
    droppedMessages: 0,
    delayedMessages: 0,
  };

  const exchangesById = new Map<number, Exchange>();
  for (const rec of store.loadExchanges()) {
    const vhost = broker.addVHost(rec.vhost);
    if (!isKnownExchangeType(rec.type) || vhost.exchanges.has(rec.name)) {
      log.warn({ vhost: rec.vhost, exchange: rec.name, type: rec.type }, 'stored exchange skipped');
      continue;
    }
    const ex = createExchange(rec.type, rec.vhost, rec.name, {
      durable: true,
      autoDelete: rec.autoDelete,
      internal: rec.internal,
      args: decodeTable(Buffer.from(rec.args)),
    });
    ex.storeId = rec.id;
    vhost.addExchange(ex);
    exchangesById.set(rec.id, ex);
    stats.exchanges++;
  }

  const queuesById = new Map<number, Queue>();
  for (const rec of store.loadQueues()) {
    const vhost = broker.addVHost(rec.vhost);
    const args = decodeTable(Buffer.from(rec.args));
    const queue = restoreQueue(vhost, rec.name, args, rec.autoDelete, vhost.streamsDir);
    queue.storeId = rec.id;
    // After a crash the watermarks may lag the last deliveries: treat everything as possibly delivered.
    const stored = store.getDelivered(rec.id);
    for (let level = 0; level < queue.deliveredWatermarks.length; level++) {
      queue.deliveredWatermarks[level] = store.cleanShutdown ? (stored[level] ?? 0) : Number.MAX_SAFE_INTEGER;
    }
    vhost.queues.set(rec.name, queue);
    queuesById.set(rec.id, queue);
    stats.queues++;
  }

  for (const rec of store.loadBindings()) {
    const vhost = broker.vhosts.get(rec.vhost);
    const source = vhost?.exchanges.get(rec.source);
    const destination =
      rec.destinationKind === 'queue' ? vhost?.queues.get(rec.destination) : vhost?.exchanges.get(rec.destination);
    if (vhost === undefined || source === undefined || destination === undefined) {
      store.deleteBinding(rec.id);
      continue;
    }
    const binding = new Binding(source, destination, rec.routingKey, decodeTable(Buffer.from(rec.args)));
    binding.storeId = rec.id;
    if (!source.addBinding(binding)) continue;
    if (destination.kind === 'queue') destination.bindings.add(binding);
    else destination.incoming.add(binding);
    stats.bindings++;
  }

  const refs = new Map<number, number>();
  const tails = new Map<Queue, PagedTail>();
  for (const e of store.allEntries()) {
    store.noteMessageId(e.messageId);
    const queue = queuesById.get(e.queueId);
    if (queue === undefined || (e.flags & ENTRY_TRANSIENT) !== 0) {
      store.deleteEntry(e.queueId, e.seq);
      stats.droppedEntries++;
      continue;
    }
    const tail = tails.get(queue);
    if (tail === undefined && (queue.ready.count < PAGE_WINDOW || queue.options.maxPriority !== 0)) {
      const entry = persistence.entryFromStore(queue, e);
      if (entry === null) {
        store.deleteEntry(e.queueId, e.seq);
        stats.droppedEntries++;
        continue;
      }
      queue.restoreEntry(entry);
    } else if (tail === undefined) {
      tails.set(queue, { count: 1, bytes: e.bodySize, fromSeq: e.seq, lastSeq: e.seq });
    } else {
      tail.count++;
      tail.bytes += e.bodySize;
      tail.lastSeq = e.seq;
    }
    if ((e.flags & ENTRY_INLINE) === 0) refs.set(e.messageId, (refs.get(e.messageId) ?? 0) + 1);
    stats.messages++;
  }
  for (const [queue, tail] of tails) {
    queue.restorePaged(tail.count, tail.bytes, tail.fromSeq, tail.lastSeq);
    stats.pagedMessages += tail.count;
  }
  if (!store.cleanShutdown) {
    // Everything recovered counts as possibly delivered; what arrives from now on does not.
    for (const queue of queuesById.values()) {
      queue.deliveredWatermarks.fill(queue.lastSeq);
      store.putDelivered(queue.storeId, queue.deliveredWatermarks);
    }
  }

  for (const d of store.allDelayed()) {
    store.noteMessageId(d.messageId);
    const ex = exchangesById.get(d.exchangeId);
    if (!(ex instanceof DelayedMessageExchange)) {
      store.deleteDelayed(d.exchangeId, d.dueAt, d.messageId);
      continue;
    }
    const m = d.message;
    ex.hold({ message: new Message(m.exchange, m.routingKey, m.properties, m.body, m.publishedAt), dueAt: d.dueAt, storeId: d.messageId });
    stats.delayedMessages++;
  }

  for (const id of store.allMessageIds()) {
    const n = refs.get(id);
    if (n === undefined) {
      store.deleteMessage(id);
      stats.droppedMessages++;
    } else persistence.setRefs(id, n);
  }
  return stats;
}
