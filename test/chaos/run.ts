// `npm run chaos -- --rounds N`: a Jepsen-style check of Warren. Starts its own deployment (by
// default 3 etcd members and 3 `bin/warren --cluster` nodes; `--single` for one plain bin/warren),
// runs publishers (confirms) and consumers (manual acks) that reconnect through any node, and
// injects one random fault per round (see faults.ts). Then it heals everything, drains the queues
// and counts: lost (confirmed, never received), unexpected (received, never published), duplicated
// (received more than once; each repeat must be flagged redelivered). Prints a table per fault type
// and ends with the line
//
//   rounds R, confirmed C, lost L, unexpected U, duplicated D
//
// Exit code: 0 when nothing was lost, nothing unexpected arrived and every queue is empty at the
// end; 1 when one of those fails; 2 when the checker itself could not run. Everything it starts it
// stops, by pid, on every way out (Ctrl-C included); its data and logs are removed after a passing
// run and kept (path printed) otherwise or with --keep.

import { rmSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { ClusterDeployment, runFolder, SingleDeployment, type Deployment } from './deployment.js';
import { faultsFor, type FaultContext } from './faults.js';
import { DRAIN, History, type Counts } from './history.js';
import { sleep, waitUntil } from './net.js';
import { Supervisor } from './supervisor.js';
import { Workload } from './workload.js';

const USAGE = `usage: npm run chaos -- [options]

  --rounds N          fault rounds (default 10)
  --single            one plain bin/warren (crash faults only) instead of a 3-node cluster
  --faults a,b        only these faults (default: every fault of the mode)
                        cluster: kill-leader pause-leader etcd-one etcd-two partition-leader
                                 partition-follower isolate-leader-etcd partition-leader-peers
                                 slow-network kill-follower-snapshot
                        single:  kill pause restart (and lose-data: the node's data is
                                 removed, so the run must fail — the checker's own check)
  --lease-ttl S       the nodes' etcd lease TTL, seconds (default 5)
  --max-lag MS        the nodes' --cluster-max-lag (default 3000)
  --log-retain SIZE   the nodes' --cluster-log-retain (default 1MiB: a follower back from a cut
                      often needs a whole snapshot, so resyncs are exercised too)
  --rate N            publishes per second, all publishers together (default 100)
  --seed N            seed of the fault choices (default: random; printed)
  --net A.B.C         loopback addresses A.B.C.x to use (default 127.0.2)
  --keep              keep the run folder (data, logs) even when the run passes

  WARREN_CHAOS_BIN=path/to/bin/warren checks another build than this checkout's.
`;

interface Options {
  rounds: number;
  single: boolean;
  faults: string[] | null;
  leaseTtlSec: number;
  maxLagMs: number;
  logRetain: string;
  rate: number;
  seed: number;
  net: string;
  keep: boolean;
}

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      rounds: { type: 'string', default: '10' },
      single: { type: 'boolean', default: false },
      faults: { type: 'string' },
      'lease-ttl': { type: 'string', default: '5' },
      'max-lag': { type: 'string', default: '3000' },
      'log-retain': { type: 'string', default: '1MiB' },
      rate: { type: 'string', default: '100' },
      seed: { type: 'string' },
      net: { type: 'string', default: '127.0.2' },
      keep: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(USAGE);
    process.exit(0);
  }
  const int = (name: string, raw: string, min: number): number => {
    const n = Number(raw);
    if (!Number.isInteger(n) || n < min) throw new Error(`--${name} must be an integer ≥ ${min} (got '${raw}')`);
    return n;
  };
  if (!/^127\.\d{1,3}\.\d{1,3}$/.test(values.net)) throw new Error(`--net must look like 127.0.2 (got '${values.net}')`);
  return {
    rounds: int('rounds', values.rounds, 0),
    single: values.single,
    faults: values.faults === undefined ? null : values.faults.split(',').map((s) => s.trim()).filter((s) => s !== ''),
    leaseTtlSec: int('lease-ttl', values['lease-ttl'], 2),
    maxLagMs: int('max-lag', values['max-lag'], 100),
    logRetain: values['log-retain'],
    rate: int('rate', values.rate, 1),
    seed: values.seed === undefined ? Math.floor(Math.random() * 2 ** 31) : int('seed', values.seed, 0),
    net: values.net,
    keep: values.keep,
  };
}

/** mulberry32: a small seeded generator, so that a run's sequence of faults can be repeated. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const say = (line: string): void => void process.stdout.write(`${line}\n`);
const elapsed = (since: number): string => `${((Date.now() - since) / 1000).toFixed(1)} s`;

function table(counts: Map<string, Counts>): string {
  const cols = ['rounds', 'confirmed', 'lost', 'unexpected', 'duplicated', 'unflagged', 'unknown', 'nacked', 'returned'] as const;
  const rows = [...counts.entries()].filter(([name]) => name !== 'all');
  rows.push(['all', counts.get('all')!]);
  const width = Math.max(5, ...rows.map(([name]) => name.length));
  const head = ['fault'.padEnd(width), ...cols.map((c) => c.padStart(10))].join(' ');
  const lines = rows.map(([name, c]) => [name.padEnd(width), ...cols.map((k) => String(c[k]).padStart(10))].join(' '));
  return [head, ...lines].join('\n');
}

async function main(): Promise<number> {
  let options: Options;
  try {
    options = parseOptions(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`chaos: ${(err as Error).message}\n\n${USAGE}`);
    return 2;
  }
  const kind = options.single ? 'single' : 'cluster';
  const faults = faultsFor(kind, options.faults);
  if (faults.length === 0 && options.rounds > 0) throw new Error('no faults selected');
  const supervisor = new Supervisor();
  const root = runFolder('warren-chaos');
  let passed = false;
  supervisor.afterStop(() => {
    if (passed && !options.keep) rmSync(root, { recursive: true, force: true });
    else say(`chaos: data and logs kept in ${root}`);
  });
  const started = Date.now();
  say(`chaos: ${kind} run, ${options.rounds} rounds, faults ${faults.map((f) => f.name).join(' ')}, seed ${options.seed}, logs in ${root}/logs`);

  const queues = ['chaos-q1', 'chaos-q2', 'chaos-q3'];
  const ballastQueue = 'chaos-ballast';
  const history = new History('set-up');
  let exitCode = 2;
  let finalLine: string | null = null;
  try {
    const deploymentOptions = { supervisor, root, net: options.net, leaseTtlSec: options.leaseTtlSec, maxLagMs: options.maxLagMs, logRetain: options.logRetain, prefix: 'warren-chaos' };
    const d: Deployment = kind === 'single' ? new SingleDeployment(deploymentOptions) : new ClusterDeployment(deploymentOptions);
    supervisor.onStop(() => d.close());
    await d.start();
    await d.waitHealthy(120_000);
    say(`chaos: ${d.nodes.length} node(s) up (${d.urls().join(' ')}) in ${elapsed(started)}`);

    const notes = new Map<string, number>();
    const workload = new Workload({
      urls: () => d.urls(),
      queues,
      publishers: 2,
      consumers: 2,
      rate: options.rate,
      window: 50,
      prefetch: 20,
      history,
      // Client trouble is expected under faults: count it by kind, print the summary per round.
      note: (line) => {
        const key = line.replace(/\d+/g, '#').slice(0, 120);
        notes.set(key, (notes.get(key) ?? 0) + 1);
      },
    });
    supervisor.onStop(() => workload.stop());
    await workload.declare(60_000);
    // Messages that stay queued until the drain: what a crash must keep (and, in a cluster, a store
    // worth snapshotting: a follower that starts empty needs a while to receive it).
    if (kind === 'cluster') await workload.ballast(ballastQueue, 600, 8192, 120_000);
    else await workload.ballast(ballastQueue, 200, 1024, 60_000);
    workload.start();
    await waitUntil(() => history.confirmedCount > 0, 'the first confirmed publish', 60_000);
    say(`chaos: clients running (${history.confirmedCount} confirmed so far)`);

    const random = seeded(options.seed);
    const ctx: FaultContext = {
      d,
      leaseMs: options.leaseTtlSec * 1000,
      maxLagMs: options.maxLagMs,
      random,
      note: (line) => say(`  ${line}`),
      failovers: [],
    };
    let unhealthyRounds = 0;
    for (let r = 1; r <= options.rounds; r++) {
      const fault = faults[Math.floor(random() * faults.length)]!;
      history.startRound(fault.name);
      const roundStart = Date.now();
      const confirmedBefore = history.confirmedCount;
      await sleep(1000 + random() * 1500);
      let what: string;
      try {
        what = await fault.run(ctx);
      } catch (err) {
        what = `fault failed: ${(err as Error).message.split('\n')[0]}`;
      }
      await d.healAll().catch((err: unknown) => say(`  heal failed: ${(err as Error).message.split('\n')[0]}`));
      let health: string;
      const healStart = Date.now();
      try {
        await d.waitHealthy(90_000);
        health = `healthy after ${elapsed(healStart)}`;
      } catch (err) {
        unhealthyRounds++;
        health = `NOT healthy: ${(err as Error).message.split('\n')[0]}`;
      }
      const troubles = [...notes.entries()].map(([k, n]) => `${n}× ${k}`).join('; ');
      notes.clear();
      say(
        `round ${r}/${options.rounds} ${fault.name}: ${what}; ${health}; +${history.confirmedCount - confirmedBefore} confirmed, ${workload.unconfirmed} unconfirmed (${elapsed(roundStart)}, ended ${new Date().toISOString().slice(11, 19)} UTC)`,
      );
      if (troubles !== '') say(`  clients: ${troubles}`);
    }

    // ---- Heal, drain, count --------------------------------------------------------------------
    history.startRound(DRAIN);
    await d.healAll();
    await d.waitHealthy(120_000).catch((err: unknown) => say(`chaos: before the drain: ${(err as Error).message}`));
    await workload.stopPublishing();
    say(`chaos: publishing stopped (${history.confirmedCount} confirmed); draining`);
    const allQueues = [...queues, ballastQueue];
    // The consumers take what is left of the chaos queues; the ballast is taken with basic.get.
    await waitUntil(
      async () => {
        const depths = await workload.depths(queues);
        const ready = [...depths.values()].reduce((n, x) => n + (x?.messages ?? 0), 0);
        return ready === 0 && Date.now() - history.lastDeliveryAt > 2000;
      },
      'the consumers to empty the queues',
      120_000,
      500,
    ).catch((err: unknown) => say(`chaos: ${(err as Error).message}`));
    await workload.stop();
    const leftover = await waitUntil(() => workload.getRemaining(allQueues).then((n) => n + 1), 'the remaining messages', 60_000, 1000);
    const depths = await waitUntil(() => workload.depths(allQueues), 'the queue depths', 60_000, 1000);
    const missing = [...depths.entries()].filter(([, x]) => x === null).map(([q]) => q);
    const notEmpty = [...depths.entries()].filter(([, x]) => x !== null && (x.messages !== 0 || x.consumers !== 0));

    const counts = history.count();
    const all = counts.get('all')!;
    say('');
    say(table(counts));
    say('');
    if (ctx.failovers.length > 0) {
      const sorted = [...ctx.failovers].sort((a, b) => a - b);
      say(`failover (leader gone → new leader in etcd): ${sorted.length} measured, median ${sorted[Math.floor(sorted.length / 2)]} ms, max ${sorted[sorted.length - 1]} ms`);
    }
    say(`clients connected ${workload.connects} times; ${leftover - 1} messages taken by basic.get after the consumers stopped; ${unhealthyRounds} rounds did not heal in time; ${elapsed(started)} in all`);
    if (all.lost > 0) say(`LOST (confirmed, never received), first ones: ${history.lostSample(10).join(', ')}`);
    if (all.unflagged > 0) {
      say(`${all.unflagged} values were delivered more than once without the redelivered flag (f: not flagged, r: flagged, then the round it arrived in), first ones:`);
      say(`  ${history.unflaggedSample(10).join('; ')}`);
    }
    for (const [q, x] of notEmpty) say(`NOT EMPTY at the end: ${q} has ${x!.messages} messages and ${x!.consumers} consumers`);
    if (missing.length > 0) say(`MISSING at the end (declared durable, now gone): ${missing.join(', ')}`);
    finalLine = `rounds ${all.rounds}, confirmed ${all.confirmed}, lost ${all.lost}, unexpected ${all.unexpected}, duplicated ${all.duplicated}`;
    passed = all.lost === 0 && all.unexpected === 0 && notEmpty.length === 0 && missing.length === 0;
    exitCode = passed ? 0 : 1;
  } catch (err) {
    process.stderr.write(`chaos: the checker could not finish: ${(err as Error).stack ?? String(err)}\n`);
    exitCode = 2;
  } finally {
    await supervisor.stopAll();
  }
  // The result is the very last line (after the clean-up's own lines).
  if (finalLine !== null) say(finalLine);
  return exitCode;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`chaos: ${(err as Error).message}\n`);
    process.exit(2);
  },
);
