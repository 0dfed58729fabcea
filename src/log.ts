// The root pino logger and child-logger helpers. Messages are short constants; details go in fields
// (conn, vhost, channel, queue). Nothing is logged per message on the hot path; warnings that a
// stream of messages can trigger (a missing dead-letter exchange, a dead-letter cycle) go through
// RateLimitedWarning: one line per key (queue) per minute, with how many were held back.
//
// Output is JSON lines, one object per event; when stdout is a terminal a person is reading, so the
// same events are printed human-readable (pino-pretty, in-process, synchronous).

import { pino, type Logger, type LevelWithSilent } from 'pino';
import { PinoPretty } from 'pino-pretty';

export type { Logger };

export const LOG_LEVELS: readonly LevelWithSilent[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

/** Where log lines go when no destination is given: pretty on a terminal, JSON otherwise. */
function defaultDestination(): pino.DestinationStream {
  if (process.stdout.isTTY) {
    return PinoPretty({ colorize: true, sync: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' });
  }
  return pino.destination({ dest: 1, sync: false });
}

export function createLogger(level: LevelWithSilent, destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level,
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    destination ?? defaultDestination(),
  );
}

interface WarningWindow {
  /** occurrences since the last line written */
  held: number;
  /** fields of the latest occurrence, repeated in the summary line */
  fields: Record<string, unknown>;
  timer: NodeJS.Timeout;
}

/**
 * A warning that may fire once per message: the first occurrence for a key is logged at once, later
 * ones in the same window are only counted and reported in one line when the window ends
 * (`count` = how many were held back). A key with nothing held is forgotten, so the map is bounded
 * by the keys active in the last window.
 */
export class RateLimitedWarning {
  private readonly windows = new Map<string, WarningWindow>();

  constructor(
    private readonly log: Logger,
    private readonly message: string,
    private readonly windowMs = 60_000,
  ) {}

  note(key: string, fields: Record<string, unknown>): void {
    const open = this.windows.get(key);
    if (open !== undefined) {
      open.held++;
      open.fields = fields;
      return;
    }
    this.log.warn(fields, this.message);
    this.openWindow(key, fields);
  }

  private openWindow(key: string, fields: Record<string, unknown>): void {
    const timer = setTimeout(() => this.closeWindow(key), this.windowMs);
    timer.unref();
    this.windows.set(key, { held: 0, fields, timer });
  }

  private closeWindow(key: string): void {
    const window = this.windows.get(key);
    if (window === undefined) return;
    this.windows.delete(key);
    if (window.held === 0) return;
    this.log.warn({ ...window.fields, count: window.held, windowSec: this.windowMs / 1000 }, `${this.message} (repeated)`);
    // Keep at most one line per window: the next occurrence waits for the next summary.
    this.openWindow(key, window.fields);
  }

  /** Keys with an open window (for tests of the bound). */
  get size(): number {
    return this.windows.size;
  }

  /** Stops the timers without writing anything more (broker shutdown). */
  stop(): void {
    for (const w of this.windows.values()) clearTimeout(w.timer);
    this.windows.clear();
  }
}
