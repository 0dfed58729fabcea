// Conversions between AMQP field tables and the JSON the management API speaks, the way RabbitMQ's
// API converts them: tables become objects, longstrs strings, timestamps and decimals numbers;
// JSON coming in becomes longs (integers), doubles, booleans, longstrs, arrays and nested tables.

import { Decimal, FIELD_TYPES, Timestamp, TypedValue, type FieldTable, type FieldValue } from '../protocol/field-table.js';
import { badRequest } from './http-error.js';

export function fieldValueToJson(value: FieldValue): unknown {
  if (value === null || typeof value === 'boolean' || typeof value === 'number' || typeof value === 'string') return value;
  if (typeof value === 'bigint') return Number(value);
  if (Buffer.isBuffer(value)) return value.toString('utf8');
  if (value instanceof Timestamp) return value.seconds;
  if (value instanceof Decimal) return value.value / 10 ** value.scale;
  if (value instanceof TypedValue) {
    const v = value.value;
    return Buffer.isBuffer(v) ? v.toString('utf8') : typeof v === 'bigint' ? Number(v) : v;
  }
  if (Array.isArray(value)) return value.map(fieldValueToJson);
  return tableToJson(value);
}

export function tableToJson(table: FieldTable | undefined | null): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (table === undefined || table === null) return out;
  for (const key of Object.keys(table)) out[key] = fieldValueToJson(table[key]!);
  return out;
}

/** The AMQP type letter RabbitMQ's API gives a JSON value. */
function typeLetter(value: unknown): string {
  if (value === null) return 'V';
  if (typeof value === 'boolean') return 't';
  if (typeof value === 'string') return 'S';
  if (typeof value === 'number') return Number.isInteger(value) ? 'l' : 'd';
  return Array.isArray(value) ? 'A' : 'F';
}

function jsonToFieldValue(value: unknown, where: string): FieldValue {
  if (value === null || typeof value === 'boolean' || typeof value === 'string') return value;
  if (typeof value === 'number') return value;
  if (typeof value === 'object') {
    if (Array.isArray(value)) {
      const array = value.map((v) => jsonToFieldValue(v, where));
      Object.defineProperty(array, FIELD_TYPES, { value: value.map(typeLetter), enumerable: false });
      return array;
    }
    return jsonToTable(value, where);
  }
  throw badRequest(`${where}: unsupported value ${String(value)}`);
}

/**
 * A JSON object of arguments or headers as an AMQP table: a null-prototype object recording each
 * field's type, exactly like a table decoded from the wire (so validation texts name the type).
 */
export function jsonToTable(value: unknown, where = 'arguments'): FieldTable {
  const table = Object.create(null) as FieldTable;
  const types: Record<string, string> = {};
  Object.defineProperty(table, FIELD_TYPES, { value: types, enumerable: false });
  if (value === undefined || value === null || value === '') return table;
  if (typeof value !== 'object' || Array.isArray(value)) throw badRequest(`${where} must be a JSON object`);
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    table[k] = jsonToFieldValue(v, where);
    types[k] = typeLetter(v);
  }
  return table;
}
