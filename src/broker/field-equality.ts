// Comparing decoded AMQP values the way RabbitMQ compares Erlang terms: tables are equal when they
// hold the same keys and values regardless of key order; numbers compare by value (number and
// bigint alike). Used for redeclare checks, binding identity and headers-exchange matching.

import { Decimal, Timestamp, TypedValue, type FieldTable, type FieldValue } from '../protocol/field-table.js';

/** A string that is equal for equal values: sorted keys, type-tagged scalars. */
export function canonicalFieldKey(value: FieldValue | undefined): string {
  if (value === undefined) return 'u';
  switch (typeof value) {
    case 'boolean':
      return value ? 'T' : 'F';
    case 'number':
    case 'bigint':
      return `n${String(value)}`;
    case 'string':
      return `s${value.length}:${value}`;
    default:
      break;
  }
  if (value === null) return 'v';
  if (Buffer.isBuffer(value)) return `x${value.toString('hex')}`;
  if (Array.isArray(value)) return `[${value.map(canonicalFieldKey).join(',')}]`;
  if (value instanceof Timestamp) return `t${value.seconds}`;
  if (value instanceof Decimal) return `d${value.scale}:${value.value}`;
  if (value instanceof TypedValue) return canonicalFieldKey(value.value);
  const keys = Object.keys(value).sort();
  return `{${keys.map((k) => `${k.length}:${k}=${canonicalFieldKey((value as FieldTable)[k])}`).join(',')}}`;
}

export function fieldValuesEqual(a: FieldValue | undefined, b: FieldValue | undefined): boolean {
  if (a === b) return true;
  // A long string and a byte array are both binaries to RabbitMQ: equal when their bytes are.
  if (typeof a === 'string' && Buffer.isBuffer(b)) return b.equals(Buffer.from(a));
  if (Buffer.isBuffer(a) && typeof b === 'string') return a.equals(Buffer.from(b));
  if ((typeof a === 'number' || typeof a === 'bigint') && (typeof b === 'number' || typeof b === 'bigint')) {
    // eslint-disable-next-line eqeqeq
    return a == b;
  }
  return canonicalFieldKey(a) === canonicalFieldKey(b);
}
