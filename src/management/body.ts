// Reading fields of a request's JSON body the way RabbitMQ's API does: missing mandatory keys are
// listed together ("[{key_missing,payload},…]"), and booleans and integers may come as JSON values
// or as strings ("true", "5": rabbitmqadmin sends them so).

import { badRequest } from './http-error.js';

export type Body = Record<string, unknown>;

/** Throws 400 listing every missing key, in RabbitMQ's order. */
export function requireKeys(body: Body, keys: readonly string[]): void {
  const missing: string[] = [];
  for (const k of keys) if (!(k in body)) missing.unshift(k);
  if (missing.length > 0) throw badRequest(`[${missing.map((k) => `{key_missing,${k}}`).join(',')}]`);
}

export function boolField(body: Body, key: string, fallback: boolean): boolean {
  const v = body[key];
  if (v === undefined || v === null) return fallback;
  if (v === true || v === 'true') return true;
  if (v === false || v === 'false') return false;
  throw badRequest(['not_boolean', typeof v === 'string' ? v : JSON.stringify(v)]);
}

export function intField(body: Body, key: string, fallback?: number): number {
  const v = body[key];
  if (v === undefined || v === null) {
    if (fallback !== undefined) return fallback;
    throw badRequest(`[{key_missing,${key}}]`);
  }
  if (typeof v === 'number' && Number.isInteger(v)) return v;
  if (typeof v === 'string' && /^-?\d+$/.test(v.trim())) return Number(v.trim());
  throw badRequest(['not_integer', typeof v === 'string' ? v : JSON.stringify(v)]);
}

export function stringField(body: Body, key: string, fallback?: string): string {
  const v = body[key];
  if (v === undefined || v === null) {
    if (fallback !== undefined) return fallback;
    throw badRequest(`[{key_missing,${key}}]`);
  }
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  throw badRequest([`not_string`, JSON.stringify(v)]);
}
