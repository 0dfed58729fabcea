// Worker-thread entry: keeps one etcd lease alive, off the broker's event loop, so that a busy
// broker (thousands of consumers going at once, a long synchronous recovery step) does not lose
// its leadership. It renews every third of the TTL and publishes, in memory shared with the main
// thread, until when the lease is known to be valid (the time the renewal was *sent* plus the TTL
// etcd granted: never later than etcd's own expiry). The main thread reads that before anything
// that needs the lease (a confirm, a fenced write) without waiting for a message.
//
// It stops renewing — so the lease runs out and another node takes over — when the main thread
// has not ticked for `stuckLimitMs` (a wedged process must not hold leadership forever) or when
// the main thread asks it to (stepping down). When etcd says the lease is gone, or the known
// validity passes without a renewal, it marks the lease lost and tells the main thread.

import { parentPort, workerData } from 'node:worker_threads';
import { EtcdClient } from './etcd-client.js';
import { LEASE_LOST, SLOT_MAIN_TICK, SLOT_STATUS, SLOT_VALID_UNTIL, type LeaseKeeperData } from './lease-shared.js';

const data = workerData as LeaseKeeperData;
const status = new Int32Array(data.shared, 0, 2);
const times = new BigInt64Array(data.shared, 8, 2);
const etcd = new EtcdClient(data.endpoints, { timeoutMs: Math.max(500, Math.floor((data.ttlSec * 1000) / 4)) });
const intervalMs = Math.max(200, Math.floor((data.ttlSec * 1000) / 3));
const retryMs = Math.max(100, Math.floor(intervalMs / 4));

function lost(reason: string): void {
  Atomics.store(status, SLOT_STATUS, LEASE_LOST);
  parentPort?.postMessage({ type: 'lost', reason });
  etcd.close();
}

async function loop(): Promise<void> {
  for (;;) {
    if (Atomics.load(status, SLOT_STATUS) !== 0) {
      etcd.close();
      return;
    }
    const now = Date.now();
    const validUntil = Number(Atomics.load(times, SLOT_VALID_UNTIL));
    if (now >= validUntil) return lost('the lease ran out before it could be renewed (etcd unreachable)');
    const mainTick = Number(Atomics.load(times, SLOT_MAIN_TICK));
    if (now - mainTick > data.stuckLimitMs) {
      // Not renewing lets etcd expire the lease: the cluster moves on without this process.
      parentPort?.postMessage({ type: 'stuck', sinceMs: now - mainTick });
      await sleep(retryMs);
      continue;
    }
    let next = intervalMs;
    try {
      const sentAt = Date.now();
      const ttl = await etcd.leaseKeepAlive(data.leaseId, Math.min(intervalMs, Math.max(100, validUntil - sentAt)));
      if (Atomics.load(status, SLOT_STATUS) !== 0) continue;
      if (ttl <= 0) return lost('etcd says the lease has expired');
      Atomics.store(times, SLOT_VALID_UNTIL, BigInt(sentAt + ttl * 1000));
    } catch {
      next = retryMs;
    }
    await sleep(next);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => {
    const deadline = Date.now() + ms;
    // Waking up early when the main thread asks to stop (it sets LEASE_STOP and notifies).
    const wait = (): void => {
      if (Atomics.load(status, SLOT_STATUS) !== 0 || Date.now() >= deadline) resolve();
      else setTimeout(wait, Math.min(50, deadline - Date.now()));
    };
    wait();
  });
}

loop().then(
  () => parentPort?.postMessage({ type: 'stopped' }),
  (err: unknown) => lost(`the lease keeper failed: ${(err as Error).message}`),
);
