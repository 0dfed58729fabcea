// Prometheus text exposition (format 0.0.4) for metric families whose values are read at scrape
// time. A Family is registered in a prom-client Registry and answers prom-client's collect-time
// get(); the same family can also stream its samples in chunks through an ExpositionWriter, which
// yields to the event loop every couple of milliseconds. That matters for /metrics/per-object with
// tens of thousands of queues: prom-client formats each family in one synchronous block, which would
// stall message flow for the whole family.

import type { ServerResponse } from 'node:http';

export type MetricType = 'counter' | 'gauge' | 'untyped' | 'histogram';

/** One sample: rendered label pairs (`vhost="/",queue="q"`, may be '') and a value. */
export interface Sample {
  labels: string;
  value: number;
  /** name suffix for histogram parts (`_bucket`, `_sum`, `_count`) */
  suffix?: string;
}

/** Escapes a label value as the text format requires (backslash, double quote, newline). */
export function escapeLabelValue(value: string): string {
  if (!/[\\"\n]/.test(value)) return value;
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

/** `name="value"` pairs joined with commas. */
export function labelPairs(pairs: readonly (readonly [string, string])[]): string {
  let out = '';
  for (const [name, value] of pairs) {
    if (out !== '') out += ',';
    out += `${name}="${escapeLabelValue(value)}"`;
  }
  return out;
}

/** Numbers as Prometheus writes them: NaN, +Inf, -Inf, otherwise JavaScript's shortest form. */
export function formatValue(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Infinity) return '+Inf';
  if (value === -Infinity) return '-Inf';
  return String(value);
}

/** Parses `a="b",c="d"` back into an object (for prom-client's JSON form; never on a hot path). */
function parseLabels(labels: string): Record<string, string> {
  const out: Record<string, string> = {};
  const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;
  for (let m = re.exec(labels); m !== null; m = re.exec(labels)) {
    out[m[1]!] = m[2]!.replace(/\\n/g, '\n').replace(/\\(.)/g, '$1');
  }
  return out;
}

/**
 * Where samples go: appended to a text buffer that is handed to the response in pieces. Between
 * pieces the writer yields to the event loop once the current slice of work has taken more than
 * sliceMs, and waits for 'drain' when the client reads slowly.
 */
export class ExpositionWriter {
  private buffer = '';
  private sliceStartedAt = performance.now();
  /** the longest piece of synchronous work between two yields, ms (measured, for tests and logs) */
  longestSliceMs = 0;
  bytes = 0;

  constructor(
    private readonly out: ServerResponse | null,
    private readonly sliceMs = 2,
  ) {}

  header(family: { name: string; help: string; type: MetricType }): void {
    this.buffer += `# HELP ${family.name} ${family.help}\n# TYPE ${family.name} ${family.type}\n`;
  }

  sample(name: string, labels: string, value: number): void {
    this.buffer += labels === '' ? `${name} ${formatValue(value)}\n` : `${name}{${labels}} ${formatValue(value)}\n`;
  }

  /** Whether the current slice of work is used up (call yield() then). Cheap: one clock read. */
  get sliceUsed(): boolean {
    return performance.now() - this.sliceStartedAt >= this.sliceMs;
  }

  /** Hands buffered text to the response and lets other work run before continuing. */
  async yield(): Promise<void> {
    const slice = performance.now() - this.sliceStartedAt;
    if (slice > this.longestSliceMs) this.longestSliceMs = slice;
    this.flush();
    await new Promise<void>((resolve) => setImmediate(resolve));
    // Checked after the pause: 'drain' may already have come while other work ran.
    if (this.out !== null && !this.out.destroyed && this.out.writableNeedDrain) {
      await new Promise<void>((resolve) => {
        const done = (): void => {
          this.out!.off('drain', done);
          this.out!.off('close', done);
          resolve();
        };
        this.out!.on('drain', done);
        this.out!.on('close', done);
      });
    }
    this.sliceStartedAt = performance.now();
  }

  /** Writes what is buffered; returns false when the socket asked to wait. */
  flush(): boolean {
    if (this.buffer === '') return true;
    const text = this.buffer;
    this.buffer = '';
    this.bytes += Buffer.byteLength(text);
    if (this.out === null || this.out.destroyed) {
      this.collected.push(text);
      return true;
    }
    return this.out.write(text);
  }

  /** Text kept when there is no response to write to (tests, the aggregated endpoint). */
  readonly collected: string[] = [];

  /** Ends the slice accounting; returns everything collected when there was no response. */
  finish(): string {
    const slice = performance.now() - this.sliceStartedAt;
    if (slice > this.longestSliceMs) this.longestSliceMs = slice;
    this.flush();
    return this.collected.join('');
  }

  get aborted(): boolean {
    return this.out !== null && this.out.destroyed;
  }
}

/**
 * A metric family read at scrape time. Subclasses say how its samples are produced; writing them
 * (chunked) and prom-client's get() are shared.
 */
export abstract class Family {
  readonly aggregator = 'sum' as const;

  constructor(
    readonly name: string,
    readonly help: string,
    readonly type: MetricType,
  ) {}

  /** Writes header and samples; may yield between chunks. */
  abstract write(w: ExpositionWriter): Promise<void>;

  /** prom-client's collect-time contract: the family with its current values. */
  async get(): Promise<{ name: string; help: string; type: MetricType; aggregator: 'sum'; values: { labels: Record<string, string>; value: number; metricName?: string }[] }> {
    const w = new ExpositionWriter(null, Number.POSITIVE_INFINITY);
    await this.write(w);
    const values: { labels: Record<string, string>; value: number; metricName?: string }[] = [];
    for (const line of w.finish().split('\n')) {
      if (line === '' || line.startsWith('#')) continue;
      const m = /^([^{ ]+)(?:\{(.*)\})? (\S+)$/.exec(line);
      if (m === null) continue;
      values.push({ metricName: m[1]!, labels: parseLabels(m[2] ?? ''), value: Number(m[3]!) });
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }

  /** prom-client calls reset() on registry.resetMetrics(); values here are read, never stored. */
  reset(): void {}
}

/** A family with a few samples computed at once (broker totals, process figures). */
export class ValueFamily extends Family {
  constructor(
    name: string,
    help: string,
    type: MetricType,
    private readonly samples: () => readonly Sample[] | number | null,
  ) {
    super(name, help, type);
  }

  async write(w: ExpositionWriter): Promise<void> {
    w.header(this);
    const s = this.samples();
    if (s === null) return;
    if (typeof s === 'number') {
      w.sample(this.name, '', s);
      return;
    }
    for (const sample of s) w.sample(sample.suffix === undefined ? this.name : this.name + sample.suffix, sample.labels, sample.value);
  }
}

/** A row of a per-object family: its rendered labels and the object its values are read from. */
export interface Row<T> {
  labels: string;
  item: T;
}

/** One sample per row (per queue, per channel, …), written in chunks. */
export class RowFamily<T> extends Family {
  constructor(
    name: string,
    help: string,
    type: MetricType,
    private readonly rows: () => readonly Row<T>[],
    private readonly value: (item: T) => number,
    /** rows whose value is NaN are left out (RabbitMQ leaves out what it does not know) */
    private readonly skipNaN = false,
  ) {
    super(name, help, type);
  }

  async write(w: ExpositionWriter): Promise<void> {
    w.header(this);
    const rows = this.rows();
    for (let i = 0; i < rows.length; i++) {
      const row = rows[i]!;
      const v = this.value(row.item);
      if (!(this.skipNaN && Number.isNaN(v))) w.sample(this.name, row.labels, v);
      if ((i & 63) === 63 && w.sliceUsed) {
        await w.yield();
        if (w.aborted) return;
      }
    }
  }
}

/** Renders families in order into the writer, yielding between chunks. */
export async function writeFamilies(families: Iterable<Family>, w: ExpositionWriter): Promise<void> {
  for (const family of families) {
    await family.write(w);
    if (w.sliceUsed) await w.yield();
    if (w.aborted) return;
  }
}
