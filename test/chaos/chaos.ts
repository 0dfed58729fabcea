// `npm run chaos -- --rounds N`: a Jepsen-style check of the replicated cluster. It starts its own
// 3 etcd members and 3 Warren nodes on loopback addresses, publishes unique messages with confirms
// and consumes them with manual acks (both through whichever node they reach; followers forward to
// the leader) while injecting one fault per round at random:
//
//   kill-leader        SIGKILL of the leader (restarted after the takeover)
//   pause-leader       SIGSTOP of the leader for longer than the lease, then SIGCONT
//   etcd-one           one etcd member stopped, then started
//   etcd-two           two etcd members stopped (no quorum), then started
//   partition-leader   the leader's replication port cut off from its followers, then healed
//   isolate-leader     the leader cut off from every etcd member, then healed
//   kill-snapshot      a follower's data is lost; it is killed while receiving its snapshot
//
// Partitions go through TCP links the checker controls (test/chaos/faulty-link.ts): each node
// advertises its replication port through one, and reaches etcd through others. After the last
// round everything is healed, the publisher stops, the consumer drains, and the messages are
// counted as RabbitMQ's Jepsen test counts them:
//
//   lost        confirmed and never consumed
//   unexpected  consumed but never published
//   duplicated  consumed more than once (each repeat must carry the redelivered flag)
//
// The last line is `rounds R, confirmed C, lost L, unexpected U, duplicated D`; the exit code is 0
// only when L and U are 0 and every queue is empty at the end.
//
//   npm run chaos -- --rounds 50 [--seed 7] [--rate 300] [--faults kill-leader,etcd-two] [--logs DIR]

import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import amqp from 'amqplib';
import { EtcdCluster, freePortOn } from '../cluster/support/etcd.js';
import { WarrenCluster, type WarrenNode } from '../cluster/support/cluster.js';
import { FaultyLink } from './faulty-link.js';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : fallback;
}

const ROUNDS = Number(arg('rounds', '10'));
const SEED = Number(arg('seed', String(Date.now() % 100_000)));
const RATE = Number(arg('rate', '300'));
const LEASE_TTL_SEC = 5;
const MAX_LAG_MS = 3000;
const ALL_FAULTS = ['kill-leader', 'pause-leader', 'etcd-one', 'etcd-two', 'partition-leader', 'isolate-leader', 'kill-snapshot'] as const;
type Fault = (typeof ALL_FAULTS)[number];
const FAULTS = arg('faults', ALL_FAULTS.join(',')).split(',').filter((f): f is Fault => (ALL_FAULTS as readonly string[]).includes(f));
const QUEUE = 'jepsen';

// A small seeded generator: a run can be repeated with --seed.
let state = SEED >>> 0 || 1;
function random(): number {
  state ^= state << 13;
  state ^= state >>> 17;
  state ^= state << 5;
  return (state >>> 0) / 4294967296;
}
const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const log = (line: string): void => {
  process.stdout.write(`[chaos ${new Date().toISOString().slice(11, 19)}] ${line}\n`);
};

async function waitUntil(check: () => Promise<boolean> | boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await Promise.resolve().then(check).catch(() => false)) return true;
    await sleep(50);
  }
  return false;
}

// ---- The workload ------------------------------------------------------------------------------

const published = new Set<number>();
const confirmed = new Set<number>();
const deliveries = new Map<number, number>();
let unflaggedDuplicates = 0;
let totalDeliveries = 0;

class Publisher {
  private running = true;
  private next = 1;
  done: Promise<void> = Promise.resolve();

  constructor(private readonly nodes: () => WarrenNode[]) {}

  start(): void {
    this.done = this.loop();
  }

  stop(): Promise<void> {
    this.running = false;
    return this.done;
  }

  private async loop(): Promise<void> {
    while (this.running) {
      const node = pick(this.nodes());
      let conn: amqp.ChannelModel | null = null;
      try {
        conn = await amqp.connect(node.url, { timeout: 3000 });
        conn.on('error', () => {});
        const ch = await conn.createConfirmChannel();
        ch.on('error', () => {});
        await ch.assertQueue(QUEUE, { durable: true });
        let closed = false;
        conn.on('close', () => (closed = true));
        let inFlight = 0;
        const interval = 1000 / RATE;
        let due = Date.now();
        while (this.running && !closed) {
          if (inFlight >= 200) {
            await sleep(5);
            continue;
          }
          const id = this.next++;
          published.add(id);
          inFlight++;
          ch.sendToQueue(QUEUE, Buffer.from(`message ${id}`), { persistent: true, messageId: String(id) }, (err) => {
            inFlight--;
            if (err === null || err === undefined) confirmed.add(id);
          });
          due += interval;
          const wait = due - Date.now();
          if (wait > 0) await sleep(wait);
          else due = Date.now();
        }
        if (!closed) await ch.waitForConfirms().catch(() => {});
      } catch {
        // the node went away, or refused: try another
      } finally {
        await conn?.close().catch(() => {});
      }
      if (this.running) await sleep(200);
    }
  }
}

class Consumer {
  private running = true;
  done: Promise<void> = Promise.resolve();
  lastDeliveryAt = Date.now();

  constructor(private readonly nodes: () => WarrenNode[]) {}

  start(): void {
    this.done = this.loop();
  }

  stop(): Promise<void> {
    this.running = false;
    return this.done;
  }

  private async loop(): Promise<void> {
    while (this.running) {
      const node = pick(this.nodes());
      let conn: amqp.ChannelModel | null = null;
      try {
        conn = await amqp.connect(node.url, { timeout: 3000 });
        conn.on('error', () => {});
        let closed = false;
        conn.on('close', () => (closed = true));
        const ch = await conn.createChannel();
        ch.on('error', () => {});
        await ch.assertQueue(QUEUE, { durable: true });
        await ch.prefetch(100);
        await ch.consume(QUEUE, (msg) => {
          if (msg === null) return;
          const id = Number(msg.properties.messageId);
          const seen = deliveries.get(id) ?? 0;
          if (seen > 0 && !msg.fields.redelivered) unflaggedDuplicates++;
          deliveries.set(id, seen + 1);
          totalDeliveries++;
          this.lastDeliveryAt = Date.now();
          ch.ack(msg);
        });
        while (this.running && !closed) await sleep(50);
        if (!closed) await ch.close().catch(() => {});
      } catch {
        // try another node
      } finally {
        await conn?.close().catch(() => {});
      }
      if (this.running) await sleep(200);
    }
  }
}

// ---- The cluster under test --------------------------------------------------------------------

interface Rig {
  etcd: EtcdCluster;
  cluster: WarrenCluster;
  /** per node: the link its followers replicate through */
  replicationLinks: FaultyLink[];
  /** per node: its links to each etcd member */
  etcdLinks: FaultyLink[][];
}

async function setUp(): Promise<Rig> {
  const etcd = await EtcdCluster.start(3, 101);
  const cluster = await WarrenCluster.create(etcd, 3, 111, {
    leaseTtlSec: LEASE_TTL_SEC,
    maxLagMs: MAX_LAG_MS,
    extraArgs: ['--cluster-log-retain', '1MB'],
  });
  const replicationLinks: FaultyLink[] = [];
  const etcdLinks: FaultyLink[][] = [];
  for (const node of cluster.nodes) {
    const link = await FaultyLink.listen(node.host, await freePortOn(node.host), node.host, node.clusterPort);
    replicationLinks.push(link);
    const toEtcd: FaultyLink[] = [];
    for (const m of etcd.members) toEtcd.push(await FaultyLink.listen(node.host, await freePortOn(node.host), m.host, m.clientPort));
    etcdLinks.push(toEtcd);
    // Flags given twice: the later one wins.
    node.args.push('--cluster-advertise', `${node.host}:${link.port}`, '--etcd-endpoints', toEtcd.map((l) => `http://${l.host}:${l.port}`).join(','));
  }
  await cluster.startAll();
  return { etcd, cluster, replicationLinks, etcdLinks };
}

async function leaderOf(rig: Rig, timeoutMs = LEASE_TTL_SEC * 1000 + 20_000, not?: WarrenNode): Promise<WarrenNode | null> {
  try {
    return await rig.cluster.waitLeader(timeoutMs, not);
  } catch {
    return null;
  }
}

/** Everything running, a leader, and every node in sync. */
async function healthy(rig: Rig, timeoutMs = 90_000): Promise<boolean> {
  for (const n of rig.cluster.nodes) if (!n.running) await n.start().catch((err: unknown) => log(`restart of node ${n.index} failed: ${(err as Error).message}`));
  for (let i = 0; i < rig.etcd.members.length; i++) if (rig.etcd.members[i]!.process === null) await rig.etcd.startMember(i);
  for (const l of [...rig.replicationLinks, ...rig.etcdLinks.flat()]) l.mode = 'pass';
  return waitUntil(async () => {
    const v = await rig.cluster.view();
    return v.leader !== null && v.isr !== null && v.isr.length === rig.cluster.nodes.length;
  }, timeoutMs);
}

// ---- Faults ------------------------------------------------------------------------------------

async function inject(rig: Rig, fault: Fault): Promise<string> {
  const leader = await leaderOf(rig);
  if (leader === null) return 'no leader to start from';
  const i = leader.index;
  switch (fault) {
    case 'kill-leader': {
      await leader.kill();
      const next = await leaderOf(rig, LEASE_TTL_SEC * 1000 + 20_000, leader);
      await leader.start();
      return `node ${i} killed; node ${next?.index ?? '?'} took over`;
    }
    case 'pause-leader': {
      leader.pause();
      await sleep(LEASE_TTL_SEC * 1000 + 2000 + random() * 2000);
      leader.resume();
      const next = await leaderOf(rig);
      return `node ${i} paused past its lease; leader now node ${next?.index ?? '?'}`;
    }
    case 'etcd-one': {
      const m = Math.floor(random() * 3);
      await rig.etcd.stopMember(m);
      await sleep(3000 + random() * 4000);
      await rig.etcd.startMember(m);
      return `etcd member ${m} stopped and started`;
    }
    case 'etcd-two': {
      const keep = Math.floor(random() * 3);
      const stopped = [0, 1, 2].filter((m) => m !== keep);
      await Promise.all(stopped.map((m) => rig.etcd.stopMember(m)));
      await sleep(LEASE_TTL_SEC * 1000 + random() * 4000);
      for (const m of stopped) await rig.etcd.startMember(m);
      return `etcd members ${stopped.join(' and ')} stopped (no quorum) and started`;
    }
    case 'partition-leader': {
      const link = rig.replicationLinks[i]!;
      link.mode = 'blackhole';
      await sleep(MAX_LAG_MS + 2000 + random() * 4000);
      link.mode = 'pass';
      return `node ${i} (leader) cut off from its followers, then healed`;
    }
    case 'isolate-leader': {
      for (const l of rig.etcdLinks[i]!) l.mode = 'blackhole';
      await sleep(LEASE_TTL_SEC * 1000 + 2000 + random() * 3000);
      for (const l of rig.etcdLinks[i]!) l.mode = 'pass';
      const next = await leaderOf(rig);
      return `node ${i} (leader) cut off from etcd; leader now node ${next?.index ?? '?'}`;
    }
    case 'kill-snapshot': {
      const follower = pick(rig.cluster.followers(leader));
      await follower.kill();
      // Its disk is lost: it comes back as a new node that needs the whole store.
      rmSync(follower.dataDir, { recursive: true, force: true });
      mkdirSync(follower.dataDir, { recursive: true });
      await follower.start();
      const during = await waitUntil(() => follower.output.slice(-20).join('').includes('"snapshot":true,"seq":0,"msg":"following the leader"'), 20_000);
      await follower.kill();
      await sleep(500 + random() * 1500);
      await follower.start();
      return `node ${follower.index} lost its data and was killed ${during ? 'during' : 'after'} its snapshot`;
    }
  }
}

// ---- Main --------------------------------------------------------------------------------------

async function main(): Promise<number> {
  log(`rounds ${ROUNDS}, seed ${SEED}, ${RATE} messages/s, faults ${FAULTS.join(', ')}`);
  const rig = await setUp();
  const live = (): WarrenNode[] => {
    const up = rig.cluster.nodes.filter((n) => n.running);
    return up.length > 0 ? up : rig.cluster.nodes;
  };
  let status = 0;
  const publisher = new Publisher(live);
  const consumer = new Consumer(live);
  try {
    if (!(await healthy(rig))) throw new Error(`the cluster did not come up:\n${rig.cluster.dumpLogs()}`);
    publisher.start();
    consumer.start();
    let unhealthy = 0;
    for (let r = 1; r <= ROUNDS; r++) {
      const fault = pick(FAULTS);
      const what = await inject(rig, fault);
      const ok = await healthy(rig);
      if (!ok) unhealthy++;
      log(`round ${r}/${ROUNDS} ${fault}: ${what}; ${ok ? 'healed' : 'NOT healed within 90 s'} — published ${published.size}, confirmed ${confirmed.size}, delivered ${totalDeliveries}`);
    }
    await publisher.stop();
    log('draining');
    const leader = await leaderOf(rig);
    // Drained: every confirmed message seen (or nothing new for a while) and the queue empty.
    await waitUntil(async () => {
      const idle = Date.now() - consumer.lastDeliveryAt > 5000;
      const all = [...confirmed].every((id) => deliveries.has(id));
      if (!all && !idle) return false;
      const res = await fetch(`http://${leader!.host}:${leader!.managementPort}/api/queues`, {
        headers: { authorization: `Basic ${Buffer.from('guest:guest').toString('base64')}` },
      });
      const queues = (await res.json()) as { name: string; messages: number }[];
      return queues.every((q) => q.messages === 0) && (all || Date.now() - consumer.lastDeliveryAt > 15_000);
    }, 300_000);
    await consumer.stop();
    const res = await fetch(`http://${leader!.host}:${leader!.managementPort}/api/queues`, {
      headers: { authorization: `Basic ${Buffer.from('guest:guest').toString('base64')}` },
    });
    const queues = (await res.json()) as { name: string; messages: number }[];
    const nonEmpty = queues.filter((q) => q.messages !== 0);
    let lost = 0;
    for (const id of confirmed) if (!deliveries.has(id)) lost++;
    let unexpected = 0;
    let duplicated = 0;
    for (const [id, count] of deliveries) {
      if (!published.has(id)) unexpected++;
      if (count > 1) duplicated += count - 1;
    }
    log(`published ${published.size}, delivered ${totalDeliveries}, unflagged duplicates ${unflaggedDuplicates}, rounds that did not heal ${unhealthy}, non-empty queues ${nonEmpty.map((q) => `${q.name}=${q.messages}`).join(' ') || 'none'}`);
    process.stdout.write(`rounds ${ROUNDS}, confirmed ${confirmed.size}, lost ${lost}, unexpected ${unexpected}, duplicated ${duplicated}\n`);
    status = lost === 0 && unexpected === 0 && nonEmpty.length === 0 ? 0 : 1;
  } catch (err) {
    process.stderr.write(`chaos: ${(err as Error).stack ?? String(err)}\n`);
    status = 2;
  } finally {
    await publisher.stop();
    await consumer.stop();
    await rig.cluster.close();
    for (const l of [...rig.replicationLinks, ...rig.etcdLinks.flat()]) await l.close();
    await rig.etcd.close();
  }
  return status;
}

if (arg('logs', '') !== '') process.env['WARREN_CLUSTER_TEST_LOGS'] = join(arg('logs', ''));
main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`chaos: ${String(err)}\n`);
    process.exit(2);
  },
);
