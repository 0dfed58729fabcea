// What the chaos checker's clients did and saw, and the counting at the end (as RabbitMQ's Jepsen
// test counts a queue's history):
//   lost        a value whose publish was confirmed and that no consumer ever received
//   unexpected  a delivery of a value that was never published (or whose body is damaged)
//   duplicated  a value delivered more than once; every delivery but the first should carry the
//               redelivered flag: a value delivered more than once without it is counted
//               separately (unflagged). "First" is the broker's order, not the order of arrival:
//               after a partition heals, a consumer behind the cut may receive the original
//               delivery after another consumer received the redelivery, so the check is that at
//               most one delivery of a value lacks the flag.
// A publish that was neither confirmed nor nacked (its channel closed first) is "unknown": it may
// or may not have been enqueued, so receiving it is fine and missing it is fine. Publishes are
// mandatory: one returned as unroutable (its queue is gone) is confirmed by the broker but counted
// as returned, not confirmed.
//
// Every value belongs to the round in which it was published, and every round has a fault type, so
// the counts can be reported per fault type.

export type PublishState = 'pending' | 'confirmed' | 'nacked' | 'returned' | 'unknown';

interface Published {
  round: number;
  state: PublishState;
}

interface Received {
  count: number;
  /** deliveries without the redelivered flag (more than one: a repeat the broker did not flag) */
  unflagged: number;
  /** the flags in order of arrival, r (redelivered) or f, and the round of each: for the report */
  trail: string;
}

export interface Counts {
  rounds: number;
  published: number;
  confirmed: number;
  nacked: number;
  returned: number;
  unknown: number;
  lost: number;
  unexpected: number;
  duplicated: number;
  unflagged: number;
}

const emptyCounts = (): Counts => ({ rounds: 0, published: 0, confirmed: 0, nacked: 0, returned: 0, unknown: 0, lost: 0, unexpected: 0, duplicated: 0, unflagged: 0 });

const BODY_PREFIX = 'chaos:';

/** The type of the last round: healing and draining, no fault. */
export const DRAIN = 'drain';

/** The body of value v: the prefix, the value, and a filler whose length depends on it (damage shows). */
export function bodyOf(value: number, padTo = 0): Buffer {
  const head = `${BODY_PREFIX}${value}:`;
  const fill = 'abcdefghijklmnopqrstuvwxyz'.repeat(Math.ceil((value % 64) / 26) + Math.ceil(padTo / 26));
  return Buffer.from(head + fill.slice(0, (value % 64) + padTo));
}

/** The value carried by a body, or null when the body is not one bodyOf made. */
export function valueOf(body: Buffer): number | null {
  const text = body.toString();
  if (!text.startsWith(BODY_PREFIX)) return null;
  const end = text.indexOf(':', BODY_PREFIX.length);
  const value = Number(text.slice(BODY_PREFIX.length, end));
  if (!Number.isSafeInteger(value) || value <= 0) return null;
  const pad = body.length - bodyOf(value).length;
  return pad >= 0 && body.equals(bodyOf(value, pad)) ? value : null;
}

export class History {
  private nextValue = 1;
  private readonly published = new Map<number, Published>();
  private readonly received = new Map<number, Received>();
  /** deliveries that are not ours, by the round they arrived in */
  private readonly unexpectedByRound = new Map<number, number>();
  /** round index → fault type */
  private readonly roundTypes: string[] = [];
  round = 0;
  deliveries = 0;
  lastDeliveryAt = 0;

  constructor(firstRoundType: string) {
    this.roundTypes.push(firstRoundType);
  }

  /** Starts the next round (values published from now on belong to it). */
  startRound(type: string): number {
    this.roundTypes.push(type);
    this.round = this.roundTypes.length - 1;
    return this.round;
  }

  /** A new value about to be published. */
  publish(): number {
    const value = this.nextValue++;
    this.published.set(value, { round: this.round, state: 'pending' });
    return value;
  }

  settle(value: number, state: Exclude<PublishState, 'pending'>): void {
    const p = this.published.get(value);
    // A confirm is final: a late "channel closed" for an acked value changes nothing.
    if (p !== undefined && p.state === 'pending') p.state = state;
  }

  get pending(): number {
    let n = 0;
    for (const p of this.published.values()) if (p.state === 'pending') n++;
    return n;
  }

  get confirmedCount(): number {
    let n = 0;
    for (const p of this.published.values()) if (p.state === 'confirmed') n++;
    return n;
  }

  /** A delivery a consumer received (before it acks it). */
  deliver(body: Buffer, redelivered: boolean): void {
    this.deliveries++;
    this.lastDeliveryAt = Date.now();
    const value = valueOf(body);
    if (value === null || !this.published.has(value)) {
      this.unexpectedByRound.set(this.round, (this.unexpectedByRound.get(this.round) ?? 0) + 1);
      return;
    }
    const r = this.received.get(value);
    const mark = `${redelivered ? 'r' : 'f'}${this.round}`;
    if (r === undefined) this.received.set(value, { count: 1, unflagged: redelivered ? 0 : 1, trail: mark });
    else {
      r.count++;
      if (!redelivered) r.unflagged++;
      r.trail += ` ${mark}`;
    }
  }

  /** Counts per fault type, and the total under 'all'. */
  count(): Map<string, Counts> {
    const byType = new Map<string, Counts>();
    const get = (type: string): Counts => {
      let c = byType.get(type);
      if (c === undefined) byType.set(type, (c = emptyCounts()));
      return c;
    };
    const all = emptyCounts();
    for (const [i, type] of this.roundTypes.entries()) {
      const c = get(type);
      // The set-up before the first fault and the drain after the last are not fault rounds.
      if (i === 0 || type === DRAIN) continue;
      c.rounds++;
      all.rounds++;
    }
    for (const [value, p] of this.published) {
      const type = this.roundTypes[p.round]!;
      const c = get(type);
      const r = this.received.get(value);
      for (const x of [c, all]) {
        x.published++;
        if (p.state === 'confirmed') x.confirmed++;
        else if (p.state === 'nacked') x.nacked++;
        else if (p.state === 'returned') x.returned++;
        else x.unknown++;
        if (p.state === 'confirmed' && r === undefined) x.lost++;
        if (r !== undefined && r.count > 1) x.duplicated++;
        if (r !== undefined && r.unflagged > 1) x.unflagged++;
      }
    }
    for (const [round, n] of this.unexpectedByRound) {
      get(this.roundTypes[round]!).unexpected += n;
      all.unexpected += n;
    }
    byType.set('all', all);
    return byType;
  }

  /** Up to n lost values with their rounds (for the report). */
  lostSample(n: number): string[] {
    const out: string[] = [];
    for (const [value, p] of this.published) {
      if (p.state === 'confirmed' && !this.received.has(value)) out.push(`${value} (round ${p.round}, ${this.roundTypes[p.round]})`);
      if (out.length >= n) break;
    }
    return out;
  }

  /** Up to n values delivered more than once without the flag, with their deliveries (for the report). */
  unflaggedSample(n: number): string[] {
    const out: string[] = [];
    for (const [value, r] of this.received) {
      if (r.unflagged <= 1) continue;
      const p = this.published.get(value)!;
      out.push(`${value} (published in round ${p.round}; received ${r.trail})`);
      if (out.length >= n) break;
    }
    return out;
  }
}
