// Message rates (publish_details.rate, …) from sampled counters. Every interval the sampler reads
// the plain counters the hot path already keeps (per queue, connection, channel and the broker
// totals) and keeps the per-second rate since the previous sample: nothing is done per message,
// and a listing only reads the last computed rates. RabbitMQ samples every 5 seconds too.

/** Receives the current counter values of one object. */
export type Visit = (owner: object, values: Readonly<Record<string, number>>) => void;

interface Sample {
  at: number;
  values: Readonly<Record<string, number>>;
  rates: Record<string, number>;
}

export const SAMPLE_INTERVAL_MS = 5000;

/**
 * Levels rather than counters: their rate goes negative when they fall (a queue draining shows
 * messages_details.rate < 0, as on RabbitMQ). Counters never report a negative rate (a sum over
 * live objects drops when one is deleted; that is not traffic).
 */
const LEVELS = new Set(['messages', 'messages_ready', 'messages_unacknowledged']);

export class RateSampler {
  /** weak: a deleted queue or closed connection takes its samples with it */
  private readonly samples = new WeakMap<object, Sample>();
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly collect: (visit: Visit) => void) {}

  start(intervalMs = SAMPLE_INTERVAL_MS): void {
    if (this.timer !== null) return;
    this.tick();
    this.timer = setInterval(() => this.tick(), intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  /** Takes one sample of every object now. */
  tick(now = Date.now()): void {
    this.collect((owner, values) => {
      const previous = this.samples.get(owner);
      const rates: Record<string, number> = {};
      if (previous !== undefined && now > previous.at) {
        const seconds = (now - previous.at) / 1000;
        for (const key in values) {
          const before = previous.values[key];
          if (before === undefined) continue;
          const rate = (values[key]! - before) / seconds;
          rates[key] = LEVELS.has(key) ? rate : Math.max(0, rate);
        }
      }
      this.samples.set(owner, { at: now, values, rates });
    });
  }

  /** Per-second rate of a counter over the last interval (0.0 before two samples exist). */
  rate(owner: object, key: string): number {
    const r = this.samples.get(owner)?.rates[key];
    return r === undefined ? 0 : Math.round(r * 10) / 10;
  }

  /** {rate} as RabbitMQ's *_details objects. */
  details(owner: object, key: string): { rate: number } {
    return { rate: this.rate(owner, key) };
  }
}
