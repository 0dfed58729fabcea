// Listing endpoints' query parameters, exactly as RabbitMQ's management API treats them:
//   page, page_size (1..500, default 100)  → a {filtered_count, item_count, items, page, page_count,
//                                            page_size, total_count} object instead of an array
//   name, use_regex                        → filter on the name (only when paginating); substring,
//                                            or regular expression; both case-insensitive
//   sort (dotted path), sort_reverse       → order (missing values first; strings by code unit)
//   columns (comma-separated dotted paths) → keep only those fields
// Rows are built lazily: filtering and the default sort work on names, so a page of 10,000 queues
// builds only the rows it returns.

import { HttpError, badRequest } from './http-error.js';

export type Row = Record<string, unknown>;

export interface Listed<T> {
  /** what name/use_regex filter on */
  name(item: T): string;
  /** the default order's keys (RabbitMQ: vhost, then name), or null for the source order */
  sortKeys(item: T): readonly string[] | null;
  row(item: T): Row;
}

export const MAX_PAGE_SIZE = 500;
const DEFAULT_PAGE_SIZE = 100;

/** Values whose inner keys a dotted column does not select from: RabbitMQ returns them whole. */
const OPAQUE_KEYS = new Set(['arguments', 'backing_queue_status', 'client_properties', 'effective_policy_definition', 'definition']);

interface Pagination {
  page: number;
  pageSize: number;
  name: string | undefined;
  regex: RegExp | undefined;
}

function parsePagination(query: URLSearchParams): Pagination | null {
  const pageRaw = query.get('page');
  if (pageRaw === null) return null;
  const sizeRaw = query.get('page_size');
  const invalid = badRequest('Pagination parameters are invalid');
  if (!/^-?\d+$/.test(pageRaw)) throw invalid;
  if (sizeRaw !== null && !/^-?\d+$/.test(sizeRaw)) throw invalid;
  const page = Number(pageRaw);
  const pageSize = sizeRaw === null ? DEFAULT_PAGE_SIZE : Number(sizeRaw);
  if (page < 1 || pageSize < 1 || pageSize > MAX_PAGE_SIZE) {
    throw new HttpError(
      400,
      'invalid_pagination_parameters',
      `Invalid pagination parameters: page number ${page}, page size ${sizeRaw === null ? 'undefined' : pageSize}`,
    );
  }
  const name = query.get('name') ?? undefined;
  let regex: RegExp | undefined;
  if (name !== undefined && name !== '' && query.get('use_regex') === 'true') {
    try {
      regex = new RegExp(name, 'i');
    } catch {
      throw invalid;
    }
  }
  return { page, pageSize, name: name === '' ? undefined : name, regex };
}

/** Erlang's term order as it shows in JSON: missing < numbers < booleans < objects < strings. */
function rank(v: unknown): number {
  if (v === undefined || v === null) return 0;
  if (typeof v === 'number') return 1;
  if (typeof v === 'boolean') return 2;
  if (typeof v === 'string') return 4;
  return 3;
}

export function compareValues(a: unknown, b: unknown): number {
  const ra = rank(a);
  const rb = rank(b);
  if (ra !== rb) return ra - rb;
  if (ra === 1) return (a as number) - (b as number);
  if (ra === 4 || ra === 2) return a === b ? 0 : (a as string) < (b as string) ? -1 : 1;
  return 0;
}

function pick(row: Row, path: readonly string[]): unknown {
  let v: unknown = row;
  for (const part of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Row)[part];
  }
  return v;
}

/** Keeps only the given dotted columns of a row (missing ones are left out, as RabbitMQ). */
export function selectColumns(row: Row, columns: readonly (readonly string[])[]): Row {
  const out: Row = {};
  for (const path of columns) copyPath(row, out, path, 0);
  return out;
}

function copyPath(from: Row, to: Row, path: readonly string[], i: number): void {
  const key = path[i]!;
  if (!(key in from)) return;
  const value = from[key];
  const last = i === path.length - 1;
  if (last || OPAQUE_KEYS.has(key) || value === null || typeof value !== 'object' || Array.isArray(value)) {
    to[key] = value;
    return;
  }
  const target = (to[key] ??= {}) as Row;
  copyPath(value as Row, target, path, i + 1);
}

export function parseColumns(query: URLSearchParams): (readonly string[])[] | null {
  const raw = query.get('columns');
  if (raw === null || raw === '') return null;
  return raw
    .split(',')
    .filter((c) => c !== '')
    .map((c) => c.split('.'));
}

function compareKeys(a: readonly string[], b: readonly string[]): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    if (a[i] !== b[i]) return a[i]! < b[i]! ? -1 : 1;
  }
  return a.length - b.length;
}

/** Applies the listing parameters to items; returns the JSON body to send. */
export function list<T>(items: Iterable<T>, how: Listed<T>, query: URLSearchParams): unknown {
  const pagination = parsePagination(query);
  let selected = [...items];
  const total = selected.length;
  if (pagination?.name !== undefined) {
    const { regex } = pagination;
    const needle = pagination.name.toLowerCase();
    selected = selected.filter((item) => (regex ? regex.test(how.name(item)) : how.name(item).toLowerCase().includes(needle)));
  }
  const sortRaw = query.get('sort');
  const reverse = query.get('sort_reverse') === 'true';
  let rows: Row[] | null = null;
  if (sortRaw !== null && sortRaw !== '') {
    const path = sortRaw.split('.');
    rows = selected.map((item) => how.row(item));
    const order = rows.map((row, i) => ({ row, key: pick(row, path), i }));
    order.sort((a, b) => compareValues(a.key, b.key) || a.i - b.i);
    rows = order.map((o) => o.row);
  } else {
    const keyed = selected.map((item, i) => ({ item, keys: how.sortKeys(item), i }));
    if (keyed.length > 0 && keyed[0]!.keys !== null) keyed.sort((a, b) => compareKeys(a.keys!, b.keys!) || a.i - b.i);
    selected = keyed.map((k) => k.item);
  }
  if (reverse) {
    if (rows !== null) rows.reverse();
    else selected.reverse();
  }
  const filtered = rows !== null ? rows.length : selected.length;
  let from = 0;
  let to = filtered;
  if (pagination !== null) {
    const { page, pageSize } = pagination;
    from = (page - 1) * pageSize;
    if (page > 1 && from >= filtered) {
      throw new HttpError(400, 'page_out_of_range', `Page out of range, page: ${page} page size: ${pageSize}, len: ${filtered}`);
    }
    to = Math.min(filtered, from + pageSize);
  }
  const pageRows = rows !== null ? rows.slice(from, to) : selected.slice(from, to).map((item) => how.row(item));
  const columns = parseColumns(query);
  const out = columns === null ? pageRows : pageRows.map((r) => selectColumns(r, columns));
  if (pagination === null) return out;
  return {
    filtered_count: filtered,
    item_count: out.length,
    items: out,
    page: pagination.page,
    page_count: Math.ceil(filtered / pagination.pageSize),
    page_size: pagination.pageSize,
    total_count: total,
  };
}

/** A single object's columns parameter (GET of one queue, exchange …). */
export function single(row: Row, query: URLSearchParams): Row {
  const columns = parseColumns(query);
  return columns === null ? row : selectColumns(row, columns);
}
