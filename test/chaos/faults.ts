// The faults the chaos checker injects, one per round, chosen at random among those enabled. Each
// injects its fault, holds it, undoes it and returns a one-line description of what it did. The
// round loop then heals anything left over and waits for the deployment to be healthy again.
//
// Single node (proving the checker): kill (SIGKILL, restart), pause (SIGSTOP, SIGCONT), restart
// (graceful). Cluster: the leader killed or paused longer than its lease, one or two etcd members
// killed, a node (leader or follower) cut off from the other nodes and from etcd, the leader cut
// off from etcd only or from its followers only, slow links, and a follower killed while it
// receives a snapshot.

import type { ClusterState, Deployment, WarrenNode } from './deployment.js';
import { sleep, waitUntil } from './net.js';

export interface FaultContext {
  d: Deployment;
  /** lease TTL of the Warren nodes, ms */
  leaseMs: number;
  /** --cluster-max-lag, ms */
  maxLagMs: number;
  random: () => number;
  note: (line: string) => void;
  /** failover times measured (leader gone → new leader in etcd), ms */
  failovers: number[];
}

export interface Fault {
  name: string;
  kind: 'single' | 'cluster';
  /** only when named in --faults: a fault that breaks the broker's promise on purpose */
  selfCheck?: true;
  run(ctx: FaultContext): Promise<string>;
}

const between = (ctx: FaultContext, lo: number, hi: number): number => Math.round(lo + ctx.random() * (hi - lo));

function pickOne<T>(ctx: FaultContext, list: T[]): T {
  return list[Math.floor(ctx.random() * list.length)]!;
}

/** The leading node, waiting (bounded) for one. */
async function leaderNode(ctx: FaultContext): Promise<{ node: WarrenNode; state: ClusterState }> {
  const state = await waitUntil(async () => {
    const s = await ctx.d.state();
    return s.leader !== null ? s : null;
  }, 'a leader', 30_000);
  return { node: ctx.d.nodes[state!.leader!]!, state: state! };
}

/** Waits for a leader other than the one of epoch `oldEpoch`; returns how long it took (ms) or null. */
async function timeToNewLeader(ctx: FaultContext, oldEpoch: number, since: number, timeoutMs: number): Promise<number | null> {
  try {
    await waitUntil(
      async () => {
        const s = await ctx.d.state();
        return s.leader !== null && s.leaderEpoch !== oldEpoch;
      },
      'a new leader',
      timeoutMs,
      100,
    );
    const ms = Date.now() - since;
    ctx.failovers.push(ms);
    return ms;
  } catch {
    return null;
  }
}

const NODE_NAMES = ['n1', 'n2', 'n3'];
const ETCD_NAMES = ['e1', 'e2', 'e3'];

export const FAULTS: Fault[] = [
  // ---- single node -------------------------------------------------------------------------------
  {
    name: 'kill',
    kind: 'single',
    async run(ctx) {
      const n = ctx.d.nodes[0]!;
      await n.kill();
      const down = between(ctx, 200, 1500);
      await sleep(down);
      await n.start();
      return `SIGKILL, down ${down} ms, restarted`;
    },
  },
  {
    name: 'pause',
    kind: 'single',
    async run(ctx) {
      const n = ctx.d.nodes[0]!;
      const ms = between(ctx, 1000, 5000);
      n.pause();
      await sleep(ms);
      n.resume();
      return `SIGSTOP for ${ms} ms`;
    },
  },
  {
    name: 'restart',
    kind: 'single',
    async run(ctx) {
      const n = ctx.d.nodes[0]!;
      await n.stop();
      await n.start();
      return 'SIGTERM (graceful), restarted';
    },
  },

  {
    // The checker's own check: the node loses its data folder, so confirmed messages are gone and
    // the run must report them lost and fail.
    name: 'lose-data',
    kind: 'single',
    selfCheck: true,
    async run(ctx) {
      const n = ctx.d.nodes[0]!;
      await n.kill();
      n.wipe();
      await n.start();
      return 'SIGKILL, data folder removed (a broken promise on purpose), restarted empty';
    },
  },

  // ---- cluster -----------------------------------------------------------------------------------
  {
    name: 'kill-leader',
    kind: 'cluster',
    async run(ctx) {
      const { node, state } = await leaderNode(ctx);
      const at = Date.now();
      await node.kill();
      const took = await timeToNewLeader(ctx, state.leaderEpoch, at, ctx.leaseMs + 30_000);
      await node.start();
      return `SIGKILL ${node.name} (leader); ${took === null ? 'no new leader' : `new leader after ${took} ms`}; restarted`;
    },
  },
  {
    name: 'pause-leader',
    kind: 'cluster',
    async run(ctx) {
      const { node, state } = await leaderNode(ctx);
      const ms = between(ctx, ctx.leaseMs * 1.5, ctx.leaseMs * 2.2);
      const at = Date.now();
      node.pause();
      const took = await timeToNewLeader(ctx, state.leaderEpoch, at, ms);
      await sleep(Math.max(0, at + ms - Date.now()));
      node.resume();
      return `SIGSTOP ${node.name} (leader) for ${ms} ms; ${took === null ? 'no new leader meanwhile' : `new leader after ${took} ms`}`;
    },
  },
  {
    name: 'etcd-one',
    kind: 'cluster',
    async run(ctx) {
      const etcd = ctx.d.etcd!;
      const k = Math.floor(ctx.random() * etcd.members.length);
      const ms = between(ctx, 2000, 6000);
      await etcd.kill(k);
      await sleep(ms);
      etcd.restart(k);
      return `SIGKILL etcd member ${k + 1} for ${ms} ms`;
    },
  },
  {
    name: 'etcd-two',
    kind: 'cluster',
    async run(ctx) {
      const etcd = ctx.d.etcd!;
      const keep = Math.floor(ctx.random() * etcd.members.length);
      const victims = [0, 1, 2].filter((k) => k !== keep);
      const ms = between(ctx, ctx.leaseMs * 1.2, ctx.leaseMs * 2);
      for (const k of victims) await etcd.kill(k);
      await sleep(ms);
      for (const k of victims) etcd.restart(k);
      return `SIGKILL etcd members ${victims.map((k) => k + 1).join(' and ')} (no quorum) for ${ms} ms`;
    },
  },
  {
    name: 'partition-leader',
    kind: 'cluster',
    async run(ctx) {
      const { node, state } = await leaderNode(ctx);
      const ms = between(ctx, ctx.leaseMs * 1.5, ctx.leaseMs * 2.2);
      const at = Date.now();
      const others = NODE_NAMES.filter((n) => n !== node.name);
      ctx.d.network.partition([[node.name], [...others, ...ETCD_NAMES]]);
      const took = await timeToNewLeader(ctx, state.leaderEpoch, at, ms);
      await sleep(Math.max(0, at + ms - Date.now()));
      ctx.d.network.heal();
      return `${node.name} (leader) cut off from the other nodes and etcd for ${ms} ms; ${took === null ? 'no new leader meanwhile' : `new leader after ${took} ms`}`;
    },
  },
  {
    name: 'partition-follower',
    kind: 'cluster',
    async run(ctx) {
      const { state } = await leaderNode(ctx);
      const follower = pickOne(
        ctx,
        ctx.d.nodes.filter((n) => n.index !== state.leader),
      );
      const ms = between(ctx, ctx.leaseMs * 1.5, ctx.leaseMs * 2.2);
      const others = NODE_NAMES.filter((n) => n !== follower.name);
      ctx.d.network.partition([[follower.name], [...others, ...ETCD_NAMES]]);
      await sleep(ms);
      ctx.d.network.heal();
      return `${follower.name} (follower) cut off from the other nodes and etcd for ${ms} ms`;
    },
  },
  {
    // The leader keeps its clients and its followers but loses etcd: its lease runs out, so it must
    // stop serving while the followers (which still reach etcd) elect one of themselves.
    name: 'isolate-leader-etcd',
    kind: 'cluster',
    async run(ctx) {
      const { node, state } = await leaderNode(ctx);
      const ms = between(ctx, ctx.leaseMs * 1.5, ctx.leaseMs * 2.2);
      const at = Date.now();
      ctx.d.network.partition([[node.name], ETCD_NAMES]);
      const took = await timeToNewLeader(ctx, state.leaderEpoch, at, ms);
      await sleep(Math.max(0, at + ms - Date.now()));
      ctx.d.network.heal();
      return `${node.name} (leader) cut off from etcd only (not from its followers or clients) for ${ms} ms; ${took === null ? 'no new leader meanwhile' : `new leader after ${took} ms`}`;
    },
  },
  {
    name: 'partition-leader-peers',
    kind: 'cluster',
    async run(ctx) {
      const { node } = await leaderNode(ctx);
      const ms = between(ctx, ctx.maxLagMs * 1.5, ctx.maxLagMs * 2.5);
      const others = NODE_NAMES.filter((n) => n !== node.name);
      ctx.d.network.partition([[node.name], others]);
      await sleep(ms);
      const isr = (await ctx.d.state().catch(() => null))?.isr.map((i) => `n${i + 1}`).join(' ') ?? '?';
      ctx.d.network.heal();
      return `${node.name} (leader) cut off from its followers (not from etcd) for ${ms} ms; in sync at the end: ${isr}`;
    },
  },
  {
    name: 'slow-network',
    kind: 'cluster',
    async run(ctx) {
      const { node } = await leaderNode(ctx);
      const delay = between(ctx, 50, 400);
      const ms = between(ctx, 3000, 6000);
      ctx.d.network.delay(
        node.name,
        [...NODE_NAMES, ...ETCD_NAMES].filter((n) => n !== node.name),
        delay,
      );
      await sleep(ms);
      ctx.d.network.heal();
      return `${delay} ms added between ${node.name} (leader) and everything else, for ${ms} ms`;
    },
  },
  {
    name: 'kill-follower-snapshot',
    kind: 'cluster',
    async run(ctx) {
      const { state } = await leaderNode(ctx);
      const follower = pickOne(
        ctx,
        ctx.d.nodes.filter((n) => n.index !== state.leader),
      );
      // A follower with no data needs a snapshot of the leader's store before the stream.
      await follower.kill();
      follower.wipe();
      await follower.start();
      const proc = follower.proc!;
      let outcome: string;
      try {
        await proc.waitForLine(/following the leader.*"snapshot":true|"snapshot":true.*following the leader/, ctx.leaseMs + 30_000, true);
        // Anywhere in the transfer: at once, or a little later.
        const after = between(ctx, 0, 150);
        await sleep(after);
        await follower.kill();
        outcome = proc.seen(/snapshot installed/) ? `killed ${after} ms after the snapshot began, when it was already installed` : `killed ${after} ms into its snapshot`;
      } catch (err) {
        await follower.kill();
        outcome = `killed (no snapshot seen: ${(err as Error).message.split('\n')[0]})`;
      }
      await follower.start();
      return `${follower.name} (follower) wiped and restarted; ${outcome}; restarted on what it had`;
    },
  },
];

export function faultsFor(kind: 'single' | 'cluster', names: string[] | null): Fault[] {
  const list = FAULTS.filter((f) => f.kind === kind && (names === null ? f.selfCheck !== true : names.includes(f.name)));
  if (names !== null) {
    const unknown = names.filter((n) => !FAULTS.some((f) => f.name === n && f.kind === kind));
    if (unknown.length > 0) {
      throw new Error(`unknown fault(s) for a ${kind} run: ${unknown.join(', ')}; known: ${FAULTS.filter((f) => f.kind === kind).map((f) => f.name).join(', ')}`);
    }
  }
  return list;
}
