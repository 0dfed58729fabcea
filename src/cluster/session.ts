// A node's etcd session: one lease (10 s TTL by default) that every key of this node is attached to
// (its registration, its election candidacy), renewed by a worker thread (lease-keeper.ts) so that
// a busy event loop cannot lose it. `valid` answers, from shared memory and without waiting,
// whether the lease is still known to be held; `onLost` fires when it is gone.

import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { Logger } from '../log.js';
import type { EtcdClient } from './etcd-client.js';
import { LEASE_ALIVE, LEASE_STOP, SHARED_BYTES, SLOT_MAIN_TICK, SLOT_STATUS, SLOT_VALID_UNTIL, type LeaseKeeperData } from './lease-shared.js';

/** The main thread ticks this often; the keeper stops renewing when the ticks stop for stuckLimitMs. */
const TICK_MS = 250;

/** The compiled keeper beside this file, or (running from TypeScript sources in tests) in dist/. */
function keeperScript(): URL {
  const here = new URL('./lease-keeper.js', import.meta.url);
  if (existsSync(fileURLToPath(here))) return here;
  return new URL('../../dist/src/cluster/lease-keeper.js', import.meta.url);
}

export interface SessionOptions {
  ttlSec: number;
  /** stop renewing when the event loop has been stuck this long (default: 3 TTLs) */
  stuckLimitMs?: number;
  log: Logger;
}

export class EtcdSession {
  private readonly status: Int32Array;
  private readonly times: BigInt64Array;
  private readonly ticker: NodeJS.Timeout;
  private readonly worker: Worker;
  private lostReason: string | null = null;
  private readonly lostListeners: ((reason: string) => void)[] = [];
  private closed = false;

  private constructor(
    private readonly etcd: EtcdClient,
    readonly leaseId: string,
    readonly ttlSec: number,
    grantedAt: number,
    stuckLimitMs: number,
    private readonly log: Logger,
  ) {
    const shared = new SharedArrayBuffer(SHARED_BYTES);
    this.status = new Int32Array(shared, 0, 2);
    this.times = new BigInt64Array(shared, 8, 2);
    Atomics.store(this.times, SLOT_VALID_UNTIL, BigInt(grantedAt + ttlSec * 1000));
    Atomics.store(this.times, SLOT_MAIN_TICK, BigInt(Date.now()));
    this.ticker = setInterval(() => {
      Atomics.store(this.times, SLOT_MAIN_TICK, BigInt(Date.now()));
      // The keeper's message may be queued behind other work: the shared status is read directly.
      if (this.lostReason === null && !this.closed && !this.valid) this.lost('the lease ran out');
    }, TICK_MS);
    this.ticker.unref();
    const data: LeaseKeeperData = { endpoints: etcd.endpointList, leaseId, ttlSec, stuckLimitMs, shared };
    this.worker = new Worker(keeperScript(), { workerData: data });
    this.worker.unref();
    this.worker.on('message', (msg: { type: string; reason?: string; sinceMs?: number }) => {
      if (msg.type === 'lost') this.lost(msg.reason ?? 'lost');
      else if (msg.type === 'stuck') this.log.error({ sinceMs: msg.sinceMs }, 'event loop stuck: no longer renewing the etcd lease');
    });
    this.worker.on('error', (err) => this.lost(`the lease keeper failed: ${err.message}`));
  }

  /** Grants a lease and starts keeping it alive. */
  static async open(etcd: EtcdClient, options: SessionOptions): Promise<EtcdSession> {
    const grantedAt = Date.now();
    const { id, ttlSec } = await etcd.leaseGrant(options.ttlSec);
    return new EtcdSession(etcd, id, ttlSec, grantedAt, options.stuckLimitMs ?? 3 * ttlSec * 1000, options.log);
  }

  /** Whether the lease is known to be held right now (false once lost or stopped). */
  get valid(): boolean {
    return Atomics.load(this.status, SLOT_STATUS) === LEASE_ALIVE && Date.now() < Number(Atomics.load(this.times, SLOT_VALID_UNTIL));
  }

  /** Milliseconds the lease is known to be held for (0 when not). */
  get validForMs(): number {
    if (Atomics.load(this.status, SLOT_STATUS) !== LEASE_ALIVE) return 0;
    return Math.max(0, Number(Atomics.load(this.times, SLOT_VALID_UNTIL)) - Date.now());
  }

  get isLost(): boolean {
    return this.lostReason !== null;
  }

  onLost(listener: (reason: string) => void): void {
    if (this.lostReason !== null) queueMicrotask(() => listener(this.lostReason!));
    else this.lostListeners.push(listener);
  }

  private lost(reason: string): void {
    if (this.lostReason !== null || this.closed) return;
    this.lostReason = reason;
    Atomics.store(this.status, SLOT_STATUS, LEASE_STOP);
    this.log.warn({ lease: this.leaseId, reason }, 'etcd lease lost');
    for (const l of this.lostListeners.splice(0)) {
      try {
        l(reason);
      } catch (err) {
        this.log.error({ err }, 'a lease-lost listener failed');
      }
    }
  }

  /** Stops renewing; revoke: also delete the lease now (every key of this node goes at once). */
  async close(revoke: boolean): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.ticker);
    Atomics.store(this.status, SLOT_STATUS, LEASE_STOP);
    await this.worker.terminate();
    if (revoke) {
      try {
        await this.etcd.leaseRevoke(this.leaseId);
      } catch (err) {
        this.log.warn({ err: (err as Error).message }, 'could not revoke the etcd lease; it expires by itself');
      }
    }
  }
}
