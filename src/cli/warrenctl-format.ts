// warrenctl's output, as rabbitmqctl prints it: a "Listing … ..." line, then tab-separated rows
// under a header line ("table", the default, and "tsv"), or JSON ("json": one object per line in
// an array). Nested values print as Erlang terms do in rabbitmqctl ([{"key",value}], [a, b]).

export type Formatter = 'table' | 'tsv' | 'json';
export const FORMATTERS: readonly Formatter[] = ['table', 'tsv', 'json'];

export interface OutputOptions {
  formatter: Formatter;
  /** --no-table-headers */
  headers: boolean;
  /** --quiet: no "Listing ..." lines */
  quiet: boolean;
}

/** A value nested inside a list or proplist: strings quoted, as Erlang prints binaries. */
function nested(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  return cell(v);
}

/** One cell of a table row, as rabbitmqctl prints it. */
export function cell(v: unknown): string {
  if (v === null || v === undefined) return '';
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return String(v);
  if (Array.isArray(v)) return `[${v.map(nested).join(', ')}]`;
  const entries = Object.entries(v as Record<string, unknown>);
  return `[${entries.map(([k, x]) => `{${JSON.stringify(k)},${nested(x)}}`).join(',')}]`;
}

/** Lists (tags) of plain words print without quotes: [administrator, monitoring]. */
export function wordList(v: unknown): string {
  return Array.isArray(v) ? `[${v.map(String).join(', ')}]` : cell(v);
}

export type Row = Record<string, unknown>;

/** Prints rows with the given columns in the chosen format. */
export function printRows(out: (s: string) => void, rows: Row[], columns: readonly string[], options: OutputOptions, render: Partial<Record<string, (v: unknown) => string>> = {}): void {
  if (options.formatter === 'json') {
    const picked = rows.map((r) => Object.fromEntries(columns.map((c) => [c, r[c] ?? null])));
    if (picked.length === 0) out('[\n]\n');
    else out(`[\n${picked.map((r) => JSON.stringify(r)).join('\n,')}\n]\n`);
    return;
  }
  // As rabbitmqctl: nothing at all (not even the header line) when there are no rows.
  if (rows.length === 0) return;
  const lines: string[] = [];
  if (options.headers) lines.push(columns.join('\t'));
  for (const r of rows) lines.push(columns.map((c) => (render[c] ?? cell)(r[c])).join('\t'));
  if (lines.length > 0) out(lines.join('\n') + '\n');
}

/** The "Listing queues for vhost / ..." line: not with --quiet, nor with the json formatter. */
export function banner(out: (s: string) => void, text: string, options: OutputOptions): void {
  if (!options.quiet && options.formatter !== 'json') out(`${text}\n`);
}
