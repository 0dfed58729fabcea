// Start-up: rebuild durable exchanges, queues and bindings from the store, and each durable
// queue's message count from the counts the store keeps — no message is read, so the time to
// listen does not grow with the backlog. Messages come into memory as queues drain (and, in the
// background, warmUpQueues reads queue heads so TTLs run). Messages that may have been delivered
// before the stop come back marked redelivered. Entries of queues that no longer exist, entries
// written only to save memory (spilled) and ranges purged before the stop are deleted in the
// background, keys only.

import type { Logger } from '../log.js';
import { decodeTable } from '../protocol/field-table.js';
import { MAX_SEQ, SPILL_BIT } from '../store/keys.js';
import { GARBAGE_SPILL_ONLY, GARBAGE_WHOLE_QUEUE } from '../store/records.js';
import { Binding } from './binding.js';
import type { Broker } from './broker.js';
import { createExchange, isKnownExchangeType } from './exchange/types.js';
import { DelayedMessageExchange } from './exchange/delayed.js';
import type { Exchange } from './exchange/exchange.js';
import type { DurablePersistence } from './persistence.js';
import type { Queue } from './queue/queue.js';
import { restoreQueue } from './queue/queue-types.js';

export interface RecoveryStats {
  exchanges: number;
  queues: number;
  bindings: number;
  /** stored messages of the recovered queues (counted, not read) */
  messages: number;
  /** held messages of durable delayed exchanges */
  delayedMessages: number;
  /** entry ranges of queues that are gone, being deleted in the background */
  droppedQueueRanges: number;
}

export function recover(broker: Broker, persistence: DurablePersistence, log: Logger): RecoveryStats {
  const store = persistence.store;
  const stats: RecoveryStats = {
    exchanges: 0,
    queues: 0,
    bindings: 0,
    messages: 0,
    delayedMessages: 0,
    droppedQueueRanges: 0,
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

  // Messages: counts only. Nothing is read per message — queues load their heads as they drain
  // (and warmUpQueues() reads the heads in the background after the broker listens).
  for (const [id, queue] of queuesById) {
    const levels = store.getCounts(id);
    let lastSeq = 0;
    for (let level = 0; level < queue.deliveredWatermarks.length; level++) lastSeq = Math.max(lastSeq, store.lastSeq(id, level));
    queue.restoreStored(levels, lastSeq);
    stats.messages += queue.messageCount;
  }
  if (!store.cleanShutdown) {
    // Everything recovered counts as possibly delivered; what arrives from now on does not.
    for (const queue of queuesById.values()) {
      queue.deliveredWatermarks.fill(queue.lastSeq);
      store.putDelivered(queue.storeId, queue.deliveredWatermarks);
    }
  }

  for (const [id, ex] of exchangesById) {
    if (!(ex instanceof DelayedMessageExchange)) continue;
    const count = store.getCounts(id)[0]?.count ?? 0;
    ex.restoreStored(count);
    stats.delayedMessages += count;
  }

  // Garbage: ranges purged or deleted and not swept yet, entries of queues that are gone (or were
  // never durable, or spilled to save memory), delayed messages of exchanges that are gone, and
  // counts nobody owns. Found by one seek per id, deleted in the background a chunk at a time.
  for (const range of store.garbageRanges()) persistence.sweep(range, true);
  for (const id of store.entryQueueIds()) {
    // Ids of queues that left entries behind are not handed out again while those are swept.
    store.noteEntityId((id & ~SPILL_BIT) >>> 0);
    if (queuesById.has(id)) continue;
    // A spill range always goes (it only saved memory); a queue's own range when the queue is gone.
    const spill = (id & SPILL_BIT) !== 0;
    const queueId = (id & ~SPILL_BIT) >>> 0;
    const flags = GARBAGE_WHOLE_QUEUE | (spill ? GARBAGE_SPILL_ONLY : 0);
    // A live queue spills again from its next seq on: only what it spilled before the stop goes.
    const live = queuesById.get(queueId);
    const toSeq = live === undefined ? MAX_SEQ : live.lastSeq + 1;
    persistence.sweep({ queueId, level: 255, fromSeq: 0, toSeq, flags }, false);
    stats.droppedQueueRanges++;
  }
  for (const id of store.delayedExchangeIds()) {
    store.noteEntityId((id & ~SPILL_BIT) >>> 0);
    if (!(exchangesById.get(id) instanceof DelayedMessageExchange)) persistence.sweepDelayed(id);
  }
  for (const id of store.countIds()) if (!queuesById.has(id) && !exchangesById.has(id)) store.deleteCounts(id);
  return stats;
}

/** Queues with TTLs first: their heads must be looked at for expiry; others only save a read. */
function warmUpOrder(queues: Queue[]): Queue[] {
  return queues.sort((a, b) => Number(b.options.messageTtlMs !== undefined) - Number(a.options.messageTtlMs !== undefined));
}

/**
 * After the broker listens: reads the head of each recovered queue into memory, a few queues per
 * turn, while the broker is under its memory budget — so TTLs run (expired messages leave and are
 * dead-lettered without waiting for a consumer) and the first deliveries need no read. Queues not
 * reached are read when first consumed from.
 */
export function warmUpQueues(broker: Broker, log: Logger): void {
  const pending = warmUpOrder(
    [...broker.vhosts.values()].flatMap((v) => [...v.queues.values()]).filter((q) => q.durable && q.pagedOutCount > 0),
  );
  const step = (): void => {
    try {
      for (let n = 0; n < 16 && pending.length > 0; n++) {
        const queue = pending.shift()!;
        if (queue.deleted) continue;
        if (broker.memory.overBudget && queue.options.messageTtlMs === undefined) continue;
        queue.warmUp();
      }
    } catch (err) {
      log.error({ err }, 'reading queue heads after start-up failed; they are read when consumed from');
      return;
    }
    if (pending.length > 0) setImmediate(step);
  };
  if (pending.length > 0) setImmediate(step);
}
