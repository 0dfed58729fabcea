// The leader's in-sync set and the gate every confirm, tx.commit-ok and durable *-ok waits at.
//
// A commit (a numbered log record) counts as durable — its waiters are released — only when
//   1. it is committed on the leader's disk,
//   2. every follower the set requires has acknowledged it durably, and
//   3. the leader still holds its etcd lease.
// Required followers are the committed members (etcd `<prefix>/isr`) plus followers being added;
// a member being removed stays required until etcd has committed its removal, so a shrink of the
// set never lets a confirm out early. A member that is disconnected, or whose oldest missing record
// is older than the lag limit, is removed; a follower that has caught up (acknowledged everything
// already released, and not lagging) is added — required from that moment, member once etcd says so.
//
// The etcd writes themselves (fenced on the leader key) are the caller's: `commit(members)`
// resolves true when written, false when this node no longer leads, and rejects when etcd is
// unreachable (retried on the next tick; confirms wait meanwhile).

import type { Logger } from '../log.js';
import type { DurabilityGate } from './replication-log.js';

export interface FollowerProgress {
  id: string;
  connected: boolean;
  /** the highest record the follower has acknowledged as durable */
  ackedSeq: number;
  /** bytes of records sent and not yet acknowledged */
  unackedBytes: number;
  /** receiving the record stream (not a snapshot): only then can it join the set */
  streaming: boolean;
}

export interface InSyncSetOptions {
  self: string;
  /** a required follower this far behind (oldest missing record's age) is removed */
  lagLimitMs: number;
  commit(members: string[]): Promise<boolean>;
  leaseValid(): boolean;
  /** the node no longer leads (a fenced write was refused) */
  onFenced(): void;
  log: Logger;
}

interface Waiter {
  seq: number;
  resolve: () => void;
}

const RESOLVED = Promise.resolve();
/** Commit times kept for lag measurement (older ones are dropped first). */
const MAX_COMMIT_TIMES = 100_000;

export class InSyncSet implements DurabilityGate {
  /** committed members, the leader included */
  private members: Set<string>;
  private readonly joining = new Set<string>();
  private readonly leaving = new Set<string>();
  readonly followers = new Map<string, FollowerProgress>();
  private waiters: Waiter[] = [];
  private waiterHead = 0;
  /** (seq, committed at) of records not yet acknowledged by every required follower */
  private commitTimes: number[] = [];
  private localSeq = 0;
  private released = 0;
  private writing = false;
  private stopped = false;
  /** ISR changes committed in etcd (metrics) */
  shrinks = 0;
  expansions = 0;

  constructor(
    private readonly options: InSyncSetOptions,
    startSeq: number,
  ) {
    this.members = new Set([options.self]);
    this.localSeq = startSeq;
    this.released = startSeq;
  }

  /** Committed members, sorted (the leader included). */
  get memberList(): string[] {
    return [...this.members].sort();
  }

  get releasedSeq(): number {
    return this.released;
  }

  get committedSeq(): number {
    return this.localSeq;
  }

  /** Followers whose acknowledgement a release needs. */
  private isRequired(id: string): boolean {
    return id !== this.options.self && (this.members.has(id) || this.joining.has(id));
  }

  whenReplicated(seq: number): PromiseLike<unknown> {
    if (seq <= this.released) return RESOLVED;
    return new Promise<void>((resolve) => {
      this.waiters.push({ seq, resolve });
    });
  }

  localCommitted(seq: number): void {
    if (seq <= this.localSeq) return;
    this.localSeq = seq;
    // Bounded: a follower further behind than this many records counts from the oldest time kept.
    if (this.commitTimes.length >= 2 * MAX_COMMIT_TIMES) this.commitTimes = this.commitTimes.slice(this.commitTimes.length / 2);
    this.commitTimes.push(seq, Date.now());
    this.release();
  }

  followerConnected(id: string, ackedSeq: number): FollowerProgress {
    const progress: FollowerProgress = { id, connected: true, ackedSeq, unackedBytes: 0, streaming: false };
    this.followers.set(id, progress);
    return progress;
  }

  followerAcked(progress: FollowerProgress, seq: number): void {
    if (seq > progress.ackedSeq) progress.ackedSeq = seq;
    if (this.isRequired(progress.id)) this.release();
  }

  followerDisconnected(progress: FollowerProgress): void {
    progress.connected = false;
    if (this.followers.get(progress.id) === progress) this.followers.delete(progress.id);
    if (this.isRequired(progress.id)) this.remove(progress.id, 'disconnected');
  }

  /** Periodic: lag checks, additions, etcd writes, and a release (the lease may have come back). */
  tick(): void {
    if (this.stopped) return;
    const now = Date.now();
    for (const id of [...this.members, ...this.joining]) {
      if (id === this.options.self || this.leaving.has(id)) continue;
      const f = this.followers.get(id);
      if (f === undefined || !f.connected) this.remove(id, 'disconnected');
      else if (this.lagMs(f, now) > this.options.lagLimitMs) this.remove(id, 'lagging');
    }
    for (const f of this.followers.values()) {
      if (!f.connected || !f.streaming || this.isRequired(f.id)) continue;
      if (f.ackedSeq >= this.released && this.lagMs(f, now) <= this.options.lagLimitMs / 2) {
        // Required from now: nothing released from here on goes out without it.
        this.joining.add(f.id);
        this.options.log.info({ node: f.id, seq: f.ackedSeq }, 'follower caught up: adding it to the in-sync set');
      }
    }
    this.writeMembers();
    this.release();
  }

  /** How long the follower has been missing its oldest unacknowledged committed record. */
  lagMs(f: FollowerProgress, now: number): number {
    if (f.ackedSeq >= this.localSeq) return 0;
    const times = this.commitTimes;
    for (let i = 0; i < times.length; i += 2) {
      if (times[i]! > f.ackedSeq) return now - times[i + 1]!;
    }
    return 0;
  }

  private remove(id: string, reason: string): void {
    if (this.leaving.has(id)) return;
    if (this.joining.has(id) && !this.members.has(id)) {
      // Never committed as a member: dropping the requirement needs no etcd write.
      this.joining.delete(id);
      this.options.log.warn({ node: id, reason }, 'follower not added to the in-sync set');
      this.release();
      return;
    }
    this.leaving.add(id);
    this.options.log.warn({ node: id, reason }, 'removing follower from the in-sync set');
    this.writeMembers();
  }

  /** One fenced etcd write at a time, of the membership wanted now. */
  private writeMembers(): void {
    if (this.writing || this.stopped) return;
    if (this.joining.size === 0 && this.leaving.size === 0) return;
    const adding = [...this.joining].filter((id) => !this.members.has(id));
    const removing = [...this.leaving];
    const wanted = new Set(this.members);
    for (const id of adding) wanted.add(id);
    for (const id of removing) wanted.delete(id);
    this.writing = true;
    this.options.commit([...wanted].sort()).then(
      (ok) => {
        this.writing = false;
        if (this.stopped) return;
        if (!ok) {
          this.options.log.error('the in-sync set could not be written: this node no longer holds the leader key');
          this.options.onFenced();
          return;
        }
        this.members = wanted;
        for (const id of adding) this.joining.delete(id);
        for (const id of removing) this.leaving.delete(id);
        if (adding.length > 0) this.expansions++;
        if (removing.length > 0) this.shrinks++;
        this.options.log.info({ members: this.memberList }, 'in-sync set committed');
        this.release();
        this.writeMembers();
      },
      (err: unknown) => {
        this.writing = false;
        // etcd unreachable: confirms that need this change keep waiting; the next tick retries.
        this.options.log.warn({ err: (err as Error).message }, 'writing the in-sync set failed; retrying');
      },
    );
  }

  /** Releases every waiter whose record is durable everywhere it must be. */
  private release(): void {
    if (this.stopped || !this.options.leaseValid()) return;
    let target = this.localSeq;
    for (const id of this.members) if (id !== this.options.self) target = Math.min(target, this.followers.get(id)?.ackedSeq ?? 0);
    for (const id of this.joining) target = Math.min(target, this.followers.get(id)?.ackedSeq ?? 0);
    if (target <= this.released) return;
    this.released = target;
    const waiters = this.waiters;
    let i = this.waiterHead;
    while (i < waiters.length && waiters[i]!.seq <= target) waiters[i++]!.resolve();
    if (i >= waiters.length) {
      this.waiters = [];
      this.waiterHead = 0;
    } else if (i > 1024 && i * 2 > waiters.length) {
      this.waiters = waiters.slice(i);
      this.waiterHead = 0;
    } else this.waiterHead = i;
    // Commit times only matter for records some required follower may still be missing.
    let keepFrom = target;
    for (const f of this.followers.values()) if (f.connected) keepFrom = Math.min(keepFrom, f.ackedSeq);
    const times = this.commitTimes;
    let cut = 0;
    while (cut < times.length && times[cut]! <= keepFrom) cut += 2;
    if (cut > 0) this.commitTimes = times.slice(cut);
  }

  /** Stops releasing anything (the node steps down): waiting confirms are never sent. */
  stop(): void {
    this.stopped = true;
    this.waiters = [];
    this.waiterHead = 0;
  }

  /** Number of commits waiting for followers (metrics, tests). */
  get waiting(): number {
    return this.waiters.length - this.waiterHead;
  }
}
