// Formatting for humans: grouped numbers, rates with units, byte sizes, durations and ages.

const grouped = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });
const oneDecimal = new Intl.NumberFormat('en-US', { maximumFractionDigits: 1, minimumFractionDigits: 0 });

/** 1234567 → "1,234,567"; undefined (the API left the field out) → "–". */
export function fmtNum(n: number | undefined | null): string {
  return typeof n === 'number' && Number.isFinite(n) ? grouped.format(n) : '–';
}

/** A per-second rate: "0/s", "0.4/s", "1,250/s". */
export function fmtRate(r: number | undefined | null): string {
  if (typeof r !== 'number' || !Number.isFinite(r)) return '–';
  return `${Math.abs(r) >= 100 ? grouped.format(r) : oneDecimal.format(r)}/s`;
}

const BYTE_UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];

export function fmtBytes(n: number | undefined | null): string {
  if (typeof n !== 'number' || !Number.isFinite(n)) return '–';
  let value = n;
  let unit = 0;
  while (Math.abs(value) >= 1024 && unit < BYTE_UNITS.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${unit === 0 ? grouped.format(value) : oneDecimal.format(value)} ${BYTE_UNITS[unit]}`;
}

/** 93784000 ms → "1d 2h"; 65000 → "1m 5s"; under a second → "0s". */
export function fmtDuration(ms: number | undefined | null): string {
  if (typeof ms !== 'number' || !Number.isFinite(ms) || ms < 0) return '–';
  const s = Math.floor(ms / 1000);
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  if (d > 0) return `${d}d ${h}h`;
  if (h > 0) return `${h}h ${m}m`;
  if (m > 0) return `${m}m ${sec}s`;
  return `${sec}s`;
}

/** Time of an epoch-ms instant, as local date and time. */
export function fmtTime(ms: number | undefined | null): string {
  if (typeof ms !== 'number' || !Number.isFinite(ms)) return '–';
  return new Date(ms).toLocaleString();
}

/** Ratio as a percentage with one decimal. */
export function fmtPercent(part: number, whole: number): string {
  if (!(whole > 0)) return '–';
  return `${oneDecimal.format((100 * part) / whole)}%`;
}

/** Reads a nested field ("message_stats.publish_details.rate") from an API object. */
export function pick(obj: unknown, dotted: string): unknown {
  let cur: unknown = obj;
  for (const key of dotted.split('.')) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[key];
  }
  return cur;
}

export function num(obj: unknown, dotted: string): number | undefined {
  const v = pick(obj, dotted);
  return typeof v === 'number' ? v : undefined;
}

/** An AMQP table / JSON value as compact text for a table cell. */
export function fmtValue(v: unknown): string {
  if (v === undefined || v === null) return '';
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return JSON.stringify(v);
}
