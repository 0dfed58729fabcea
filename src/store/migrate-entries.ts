// Layout migration of queue entries from layout 2 (the same as layout 1 for messages): entries were keyed queue id ‖ seq in `entries`,
// with transient ones flagged inside, reference counts rebuilt by reading every entry at each
// start, and the next message id found by scanning. This step (run once, inside the store's
// migration transaction) rewrites them as the current layout keeps them — keyed by priority level
// in `queue-entries`, shared bodies indexed in `shared` and counted in `refs`, per-queue counts in
// `counts` (held delayed messages too), message ids reserved in `meta` — and drops what a start would have dropped anyway
// (entries of queues that are gone, transient entries, message records nothing refers to).

import type { Database, RootDatabase } from 'lmdb';
import { decodeTable } from '../protocol/field-table.js';
import { decodeBasicProperties } from '../protocol/generated/amqp.js';
import { entryKey, idKey, messageKey, readU64 } from './keys.js';
import { BODY_COMPRESSION_OPTIONS } from './compression.js';
import {
  ENTRY_INLINE,
  ENTRY_TRANSIENT,
  decodeEntryValue,
  decodeInlineMessage,
  decodeMessage,
  encodeCounts,
  type LevelCounts,
  type QueueRecord,
} from './records.js';

/** Layout 1 and 2's entries database (queue id u32 ‖ seq u64). */
export const V2_ENTRIES_DB = 'entries';

function binary(root: RootDatabase, name: string, compressed: boolean): Database<Buffer, Buffer> {
  return root.openDB<Buffer, Buffer>({
    name,
    keyEncoding: 'binary',
    encoding: 'binary',
    ...(compressed ? { compression: BODY_COMPRESSION_OPTIONS } : {}),
  });
}

/** x-max-priority of a stored queue (0 when none), as the broker clamps it. */
function maxPriorityOf(rec: QueueRecord): number {
  const v = decodeTable(Buffer.from(rec.args))['x-max-priority'];
  const n = typeof v === 'number' ? v : typeof v === 'bigint' ? Number(v) : 0;
  return Number.isInteger(n) && n > 0 ? Math.min(n, 255) : 0;
}

export function migrateEntriesV2(root: RootDatabase): void {
  const queues = root.openDB<QueueRecord, Buffer>({ name: 'queues', keyEncoding: 'binary' });
  const v1 = binary(root, V2_ENTRIES_DB, true);
  const entries = binary(root, 'queue-entries', true);
  const shared = binary(root, 'shared', false);
  const refs = binary(root, 'refs', false);
  const counts = binary(root, 'counts', false);
  const messages = binary(root, 'messages', true);
  const delayed = binary(root, 'delayed', true);
  const meta = root.openDB<unknown, string>({ name: 'meta' });

  const maxPriority = new Map<number, number>();
  for (const { value } of queues.getRange({})) maxPriority.set(value.id, maxPriorityOf(value));

  const levelCounts = new Map<number, LevelCounts[]>();
  const refCounts = new Map<number, number>();
  let maxMessageId = 0;
  for (const { key, value } of v1.getRange({})) {
    const queueId = key.readUInt32BE(0);
    const seq = readU64(key, 4);
    const header = decodeEntryValue(value);
    maxMessageId = Math.max(maxMessageId, header.messageId);
    const maxP = maxPriority.get(queueId);
    if (maxP === undefined || (header.flags & ENTRY_TRANSIENT) !== 0) {
      continue;
    }
    const inline = (header.flags & ENTRY_INLINE) !== 0;
    let level = 0;
    if (maxP > 0) {
      const stored = inline ? decodeInlineMessage(value) : (() => {
        const m = messages.getBinary(messageKey(header.messageId));
        return m === undefined ? undefined : decodeMessage(m);
      })();
      if (stored === undefined) {
          continue;
      }
      const p = decodeBasicProperties(stored.properties, 0, stored.properties.length).priority ?? 0;
      level = Math.min(p, maxP);
    }
    const newKey = entryKey(queueId, level, seq);
    entries.putSync(newKey, value);
    if (!inline) {
      shared.putSync(newKey, messageKey(header.messageId));
      refCounts.set(header.messageId, (refCounts.get(header.messageId) ?? 0) + 1);
    }
    let levels = levelCounts.get(queueId);
    if (levels === undefined) {
      levels = Array.from({ length: maxP + 1 }, () => ({ count: 0, bytes: 0, headSeq: 0 }));
      levelCounts.set(queueId, levels);
    }
    levels[level]!.count++;
    levels[level]!.bytes += header.bodySize;
  }
  v1.dropSync();
  for (const [queueId, levels] of levelCounts) counts.putSync(idKey(queueId), encodeCounts(levels));

  for (const key of [...messages.getKeys({})]) {
    const id = readU64(key as Buffer, 0);
    maxMessageId = Math.max(maxMessageId, id);
    const n = refCounts.get(id);
    if (n === undefined) {
      messages.removeSync(key as Buffer);
    } else {
      const value = Buffer.allocUnsafe(4);
      value.writeUInt32BE(n, 0);
      refs.putSync(key as Buffer, value);
    }
  }
  // Held delayed messages: counted per exchange, as layout 3 keeps them.
  const held = new Map<number, number>();
  for (const key of delayed.getKeys({})) {
    const exchangeId = (key as Buffer).readUInt32BE(0);
    held.set(exchangeId, (held.get(exchangeId) ?? 0) + 1);
    maxMessageId = Math.max(maxMessageId, readU64(key as Buffer, 12));
  }
  for (const [exchangeId, count] of held) counts.putSync(idKey(exchangeId), encodeCounts([{ count, bytes: 0, headSeq: 0 }]));
  meta.putSync('messageIds', maxMessageId + 1);
}
