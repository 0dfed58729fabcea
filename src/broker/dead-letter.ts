// Dead-lettering as RabbitMQ 3.10 does it: the message is copied with an updated `x-death` header
// (an array of tables, one per queue+reason, most recent first, `count` incremented on repeats),
// `x-first-death-reason/queue/exchange` set on its first death, and the `expiration` property
// removed (recorded as `original-expiration`). It is republished to the dead-letter exchange with
// the dead-letter routing key, or its original routing keys (including CC; the CC header itself is
// removed). As RabbitMQ, the headers table comes out sorted by key, user headers keeping their wire
// types. A message that would go round a cycle in which nobody rejected it is dropped instead.

import {
  FIELD_TYPES,
  Timestamp,
  TypedValue,
  copyTable,
  type FieldTable,
  type FieldValue,
} from '../protocol/field-table.js';
import type { Message } from './message.js';
import type { DeadLetterReason, Queue } from './queue/queue.js';

export interface DeadLetterCopy {
  copy: Message;
  routingKeys: string[];
  /** the copy's x-death array (for the cycle check, without decoding the copy again) */
  deaths: FieldValue[];
}

function stringsOf(value: FieldValue | undefined): string[] {
  if (!Array.isArray(value)) return [];
  const out: string[] = [];
  for (const v of value) if (typeof v === 'string') out.push(v);
  return out;
}

function isTable(v: FieldValue): v is FieldTable {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !Buffer.isBuffer(v) && !(v instanceof Timestamp) && !(v instanceof TypedValue);
}

/** Sorted by key (byte order), as rabbit_misc:sort_field_table leaves a table; types kept. */
function sortTable(t: FieldTable): FieldTable {
  const out = copyTable(undefined);
  for (const k of Object.keys(t).sort(compareKeys)) out[k] = t[k]!;
  const types = (t as { [FIELD_TYPES]?: Record<string, string> })[FIELD_TYPES];
  if (types !== undefined) Object.defineProperty(out, FIELD_TYPES, { value: types, enumerable: false });
  return out;
}

/** Byte order of the UTF-8 keys; UTF-16 order agrees except around astral characters, rare in keys. */
function compareKeys(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export function deadLetterCopy(queue: Queue, message: Message, reason: DeadLetterReason, now: number): DeadLetterCopy {
  const props = message.properties;
  const headers = copyTable(props.headers);
  const originalKeys = [message.routingKey, ...stringsOf(headers['CC'])];
  const deadLetterKey = queue.options.deadLetterRoutingKey;
  // As RabbitMQ: CC goes only when a dead-letter routing key replaces the original keys.
  if (deadLetterKey !== undefined) delete headers['CC'];
  delete headers['BCC'];
  const deaths = Array.isArray(headers['x-death']) ? (headers['x-death'] as FieldValue[]) : undefined;

  const info: FieldTable = {
    count: new TypedValue('l', 1),
    reason,
    queue: queue.name,
    time: new Timestamp(Math.floor(now / 1000)),
    exchange: message.exchange,
    'routing-keys': originalKeys,
  };
  if (props.expiration !== undefined) info['original-expiration'] = props.expiration;

  let newDeaths: FieldValue[];
  if (deaths === undefined) {
    newDeaths = [info];
    headers['x-death'] = newDeaths;
    headers['x-first-death-reason'] = reason;
    headers['x-first-death-queue'] = queue.name;
    headers['x-first-death-exchange'] = message.exchange;
  } else {
    const others: FieldValue[] = [];
    let match: FieldTable | undefined;
    for (const d of deaths) {
      if (match === undefined && isTable(d) && d['queue'] === queue.name && d['reason'] === reason) match = d;
      else others.push(d);
    }
    let updated: FieldTable;
    // An entry added in front of earlier deaths has its keys sorted, as RabbitMQ leaves it.
    if (match === undefined) updated = sortTable(info);
    else {
      const count = match['count'];
      const n = typeof count === 'number' || typeof count === 'bigint' ? Number(count) : 0;
      updated = sortTable({ ...match, count: new TypedValue('l', n + 1) });
    }
    newDeaths = [updated, ...others];
    headers['x-death'] = newDeaths;
  }

  const routingKeys = deadLetterKey !== undefined ? [deadLetterKey] : originalKeys;
  const { expiration: _dropped, ...rest } = props;
  const copy = message.withProperties(
    { ...rest, headers: sortTable(headers) },
    queue.options.deadLetterExchange ?? '',
    routingKeys[0] ?? '',
    now,
  );
  return { copy, routingKeys, deaths: newDeaths };
}

/** Target queues the message must not enter: it died there before with no rejection since. */
export function findDeadLetterCycles(reason: DeadLetterReason, deaths: readonly FieldValue[], targets: readonly Queue[]): Set<Queue> {
  const cycling = new Set<Queue>();
  if (reason === 'rejected') return cycling;
  for (const q of targets) {
    for (const d of deaths) {
      if (!isTable(d)) break;
      if (d['reason'] === 'rejected') break;
      if (d['queue'] === q.name) {
        cycling.add(q);
        break;
      }
    }
  }
  return cycling;
}
