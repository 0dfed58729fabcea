// Micro-benchmarks of the per-message operations whose cost must not grow with queue depth or
// consumer count: each is timed at several sizes and printed as ns per operation, so a table
// that is flat from left to right is the expected result. The broker model runs without sockets
// (the same classes the server uses); the durable cases use a real LMDB store in a temp folder.

import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Broker } from '../../src/broker/broker.js';
import { Message } from '../../src/broker/message.js';
import { TransientPersistence } from '../../src/broker/persistence.js';
import { Consumer, ConsumerList, type ConsumerChannel } from '../../src/broker/queue/consumers.js';
import type { Queue } from '../../src/broker/queue/queue.js';
import { UnackedDelivery, UnackedLedger } from '../../src/broker/unacked.js';
import type { VHost } from '../../src/broker/vhost.js';
import { DEFAULT_CONFIG } from '../../src/config.js';
import { createLogger } from '../../src/log.js';
import { encodeBasicProperties } from '../../src/protocol/frame-writer.js';
import type { FieldTable } from '../../src/protocol/field-table.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startBroker } from '../../src/index.js';
import { buildDeepQueue } from '../store/build-store.js';

const OWNER = { id: 1 };
const PROPS = encodeBasicProperties({});
const BODY = Buffer.alloc(16);

export interface Row {
  name: string;
  /** ns per operation at each size */
  ns: number[];
}

function transientVHost(): VHost {
  const config = { ...DEFAULT_CONFIG, dataDir: '/nonexistent', logLevel: 'silent' as const, memoryBudgetBytes: Number.MAX_SAFE_INTEGER };
  return new Broker(config, new TransientPersistence(), createLogger('silent')).addVHost('/');
}

function declare(vhost: VHost, name: string, args: FieldTable = {}): Queue {
  return vhost.declareQueue({ name, passive: false, durable: false, exclusive: false, autoDelete: false, args }, OWNER);
}

function fill(vhost: VHost, queue: string, n: number): void {
  const now = Date.now();
  for (let i = 0; i < n; i++) vhost.publish(vhost.defaultExchange, new Message('', queue, PROPS, BODY, now), null, now);
}

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** Runs op `ops` times (after a warm-up and a full GC) and returns the median ns per op of 5 runs. */
function time(ops: number, op: (i: number) => void): number {
  for (let i = 0; i < Math.min(5000, ops); i++) op(i);
  gc();
  const per = Math.floor(ops / 5);
  const samples: number[] = [];
  for (let run = 0; run < 5; run++) {
    const start = process.hrtime.bigint();
    for (let i = 0; i < per; i++) op(i);
    samples.push(Number(process.hrtime.bigint() - start) / per);
  }
  samples.sort((a, b) => a - b);
  return samples[2]!;
}

const OPS = 100_000;

const HOUR_PROPS = encodeBasicProperties({ expiration: '3600000' });

/** Publish one + deliver one + ack one, behind a backlog of `depth` messages. */
function publishConsume(depth: number, args: FieldTable = {}, props = PROPS): number {
  const vhost = transientVHost();
  const q = declare(vhost, 'q', args);
  const now = Date.now();
  for (let i = 0; i < depth; i++) vhost.publish(vhost.defaultExchange, new Message('', 'q', props, BODY, now), null, now);
  return time(OPS, () => {
    vhost.publish(vhost.defaultExchange, new Message('', 'q', props, BODY, now), null, now);
    q.settle(q.take(now)!);
  });
}

/** Take the head and put it back (basic.reject requeue=true), at depth `depth`. */
function requeueOne(depth: number): number {
  const vhost = transientVHost();
  const q = declare(vhost, 'q');
  fill(vhost, 'q', depth);
  const now = Date.now();
  return time(OPS, () => q.requeue(q.take(now)!, now));
}

/** A requeue that lands in the middle of the queue: one of `depth` unacked goes back. */
function requeueMiddle(depth: number): number {
  const vhost = transientVHost();
  const q = declare(vhost, 'q');
  fill(vhost, 'q', 2 * depth);
  const now = Date.now();
  // Half the queue taken (unacked); the entry requeued falls between the ready ones.
  const taken = Array.from({ length: depth }, () => q.take(now)!);
  let k = 0;
  return time(Math.min(OPS, depth), () => {
    const e = taken[(k++ * 7919) % depth]!;
    if (e.state === 1) q.requeue(e, now);
  });
}

/** Ack of one delivery from the middle of a ledger of `depth` unacked deliveries. */
function ackOutOfOrder(depth: number): number {
  const vhost = transientVHost();
  const q = declare(vhost, 'q');
  fill(vhost, 'q', depth + OPS + 1000);
  const ledger = new UnackedLedger();
  const now = Date.now();
  let tag = 0;
  for (let i = 0; i < depth; i++) ledger.add(new UnackedDelivery(++tag, q.take(now)!, null));
  return time(OPS, () => {
    // deliver one, ack one from the middle (the oldest stays unacked: worst case for a deque)
    ledger.add(new UnackedDelivery(++tag, q.take(now)!, null));
    const d = ledger.take(tag - (depth >> 1));
    if (d !== undefined) q.settle(d.entry);
  });
}

class Channel implements ConsumerChannel {
  canSend(): boolean {
    return true;
  }
  deliver(): void {}
  consumerCancelledByServer(): void {}
}

/** Choosing a consumer among `count`, all but one at their prefetch limit. */
function chooseConsumer(count: number): number {
  const list = new ConsumerList(false);
  const queue = { consumers: list } as unknown as Queue;
  const channel = new Channel();
  for (let i = 0; i < count - 1; i++) {
    const c = new Consumer(`c${i}`, channel, queue, false, false, 0, 1, {});
    c.unacked = 1;
    list.add(c);
  }
  list.add(new Consumer('free', channel, queue, true, false, 0, 0, {}));
  return time(OPS, () => {
    list.next();
  });
}

export function queueBenchmarks(sizes: readonly number[]): Row[] {
  const rows: Row[] = [];
  const row = (name: string, f: (n: number) => number): void => {
    rows.push({ name, ns: sizes.map(f) });
  };
  row('publish + deliver + ack, behind N ready (ns)', (n) => publishConsume(n));
  row('same, queue with x-message-ttl 1 h (ns)', (n) => publishConsume(n, { 'x-message-ttl': 3_600_000 }));
  row('same, per-message expiration 1 h (ns)', (n) => publishConsume(n, {}, HOUR_PROPS));
  row('requeue of the head, N ready (ns)', requeueOne);
  row('requeue into the middle, N unacked (ns)', requeueMiddle);
  row('ack out of order, N unacked on the channel (ns)', ackOutOfOrder);
  row('choose a consumer, N consumers, all but 1 full (ns)', chooseConsumer);
  return rows;
}

/**
 * Store operations on a durable queue of N messages written through the store layer: the time
 * from opening the data folder to listening (recovery reads counts, not messages), and purge of
 * the whole queue (its range is swept in the background; the purge itself reads nothing). Both in
 * ms for the whole operation: flat means O(1) in N.
 */
export async function storeBenchmarks(sizes: readonly number[]): Promise<Row[]> {
  const start: number[] = [];
  const purge: number[] = [];
  for (const n of sizes) {
    const dir = mkdtempSync(join(tmpdir(), 'warren-bench-store-'));
    try {
      await buildDeepQueue(dir, 'deep', n, 64);
      const t0 = process.hrtime.bigint();
      const broker = await startBroker({ port: 0, dataDir: dir, logLevel: 'silent' });
      start.push(Number(process.hrtime.bigint() - t0) / 1e6);
      const queue = broker.broker.vhosts.get('/')!.queues.get('deep')!;
      const t1 = process.hrtime.bigint();
      queue.purge();
      purge.push(Number(process.hrtime.bigint() - t1) / 1e6);
      await broker.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  // Reported as ns "per operation" of the whole thing, for the same table shape.
  return [
    { name: 'start to listening, N stored (ms, whole)', ns: start },
    { name: 'purge of N stored messages (ms, whole)', ns: purge },
  ];
}

export function printTable(title: string, sizes: readonly number[], rows: readonly Row[]): void {
  const label = (n: number): string => (n >= 1_000_000 ? `${n / 1_000_000} M` : `${n / 1000} k`);
  const width = Math.max(...rows.map((r) => r.name.length));
  console.log(title);
  console.log(`${'operation'.padEnd(width)}  ${sizes.map((s) => `N=${label(s)}`.padStart(10)).join('')}`);
  for (const r of rows) console.log(`${r.name.padEnd(width)}  ${r.ns.map((v) => v.toFixed(v < 10 ? 1 : 0).padStart(10)).join('')}`);
}
