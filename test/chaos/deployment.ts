// What the chaos checker runs its clients against: one bin/warren (to prove the checker itself
// with crash faults), or a 3-node cluster (bin/warren --cluster) on 3 etcd members. In the cluster
// every link a partition may cut goes through a FaultProxy:
//
//   node i          binds 127.0.2.(10+i): its AMQP, management and replication ports; clients of
//                   the checker connect here directly
//   node i's face   127.0.2.(110+i): the address node i advertises to the others (--cluster-advertise);
//                   proxies on the same port numbers forward to node i. Nodes connect from their
//                   bind address, so a proxy knows which node a connection comes from, and connects
//                   on from that node's face address (the leader trusts PROXY headers only from
//                   the advertised addresses of the nodes)
//   etcd member k   127.0.2.(20+k); node i reaches it through a proxy on its own face address, so
//                   node i alone can be cut from etcd
//
// Names in the FaultNetwork: n1 n2 n3 (nodes), e1 e2 e3 (etcd members).

import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { EtcdCluster } from '../support/etcd.js';
import { FaultNetwork, FaultProxy } from './fault-proxy.js';
import { accepts, freePortOn, sleep, waitUntil } from './net.js';
import type { Proc, Supervisor } from './supervisor.js';

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
/** bin/warren of this checkout, or another build's (WARREN_CHAOS_BIN) to check that one. */
const WARREN_BIN = process.env['WARREN_CHAOS_BIN'] ?? join(repoRoot, 'bin', 'warren');

export interface DeploymentOptions {
  supervisor: Supervisor;
  /** run folder: data and logs */
  root: string;
  /** the first three octets of the loopback addresses used (default 127.0.2) */
  net: string;
  /** etcd lease TTL of the Warren nodes, seconds */
  leaseTtlSec: number;
  /** --cluster-max-lag, ms */
  maxLagMs: number;
  /** --cluster-log-retain (a size such as 1MiB) */
  logRetain: string;
  /** key prefix in etcd */
  prefix: string;
}

export class WarrenNode {
  proc: Proc | null = null;
  /** starts of this node (the first and every restart) */
  starts = 0;

  constructor(
    readonly index: number,
    readonly name: string,
    readonly host: string,
    readonly face: string,
    readonly amqpPort: number,
    readonly managementPort: number,
    readonly clusterPort: number,
    readonly dataDir: string,
    readonly logPath: string,
    private readonly extraArgs: () => string[],
    private readonly readyLine: RegExp,
    private readonly supervisor: Supervisor,
  ) {}

  get url(): string {
    return `amqp://guest:guest@${this.host}:${this.amqpPort}`;
  }

  get managementUrl(): string {
    return `http://${this.host}:${this.managementPort}`;
  }

  get running(): boolean {
    return this.proc?.running ?? false;
  }

  get paused(): boolean {
    return this.proc?.paused ?? false;
  }

  /** Starts bin/warren (if not running) and waits until it says it listens. */
  async start(timeoutMs = 60_000): Promise<void> {
    if (this.running) return;
    // prettier-ignore
    const args = [
      WARREN_BIN,
      '--bind', this.host,
      '--port', String(this.amqpPort),
      '--management-bind', this.host,
      '--management-port', String(this.managementPort),
      // No Prometheus listener: its default is the fixed 15692, and runs on one machine would collide.
      '--prometheus-port', '0',
      '--data-dir', this.dataDir,
      '--log-level', 'info',
      ...this.extraArgs(),
    ];
    const proc = this.supervisor.spawn(this.name, process.execPath, args, this.logPath);
    this.proc = proc;
    this.starts++;
    await proc.waitForLine(this.readyLine, timeoutMs);
  }

  async kill(): Promise<void> {
    await this.proc?.kill();
  }

  /** Graceful stop (SIGTERM), SIGKILL after graceMs. */
  async stop(graceMs = 20_000): Promise<void> {
    await this.proc?.stop(graceMs);
  }

  pause(): void {
    this.proc?.signal('SIGSTOP');
  }

  resume(): void {
    this.proc?.signal('SIGCONT');
  }

  /** Removes the data folder (the node must be stopped): it comes back as a new, empty node. */
  wipe(): void {
    if (this.running) throw new Error(`${this.name} is running; stop it before wiping its data`);
    rmSync(this.dataDir, { recursive: true, force: true });
  }
}

export interface ClusterState {
  /** index of the leading node, null when none */
  leader: number | null;
  leaderEpoch: number;
  /** node indexes registered in etcd */
  registered: number[];
  /** node indexes in the in-sync set */
  isr: number[];
}

export interface Deployment {
  readonly kind: 'single' | 'cluster';
  readonly nodes: WarrenNode[];
  readonly etcd: EtcdCluster | null;
  readonly network: FaultNetwork;
  start(): Promise<void>;
  /** Client URLs of every node. */
  urls(): string[];
  state(): Promise<ClusterState>;
  /** Waits until the deployment serves clients with every node in sync; throws after timeoutMs. */
  waitHealthy(timeoutMs: number): Promise<void>;
  /** Undoes every fault: network healed, paused processes resumed, stopped ones started. */
  healAll(): Promise<void>;
  close(): Promise<void>;
}

/** One bin/warren, no etcd: faults are crashes, pauses and restarts of that one node. */
export class SingleDeployment implements Deployment {
  readonly kind = 'single' as const;
  readonly etcd = null;
  readonly network = new FaultNetwork();
  readonly nodes: WarrenNode[] = [];

  constructor(private readonly o: DeploymentOptions) {}

  async start(): Promise<void> {
    const host = `${this.o.net}.11`;
    const amqpPort = await freePortOn(host);
    const managementPort = await freePortOn(host);
    const dataDir = join(this.o.root, 'n1');
    mkdirSync(dataDir, { recursive: true });
    const node = new WarrenNode(
      0,
      'n1',
      host,
      host,
      amqpPort,
      managementPort,
      0,
      dataDir,
      join(this.o.root, 'logs', 'n1.log'),
      () => [],
      /listening on amqp:/,
      this.o.supervisor,
    );
    this.nodes.push(node);
    await node.start();
  }

  urls(): string[] {
    return this.nodes.map((n) => n.url);
  }

  async state(): Promise<ClusterState> {
    const up = this.nodes[0]!.running && !this.nodes[0]!.paused;
    return { leader: up ? 0 : null, leaderEpoch: this.nodes[0]!.starts, registered: up ? [0] : [], isr: up ? [0] : [] };
  }

  async waitHealthy(timeoutMs: number): Promise<void> {
    const n = this.nodes[0]!;
    await waitUntil(() => n.running && !n.paused && accepts(n.host, n.amqpPort), 'the node to accept connections', timeoutMs);
  }

  async healAll(): Promise<void> {
    const n = this.nodes[0]!;
    if (n.paused) n.resume();
    if (!n.running) await n.start();
  }

  async close(): Promise<void> {
    for (const n of this.nodes) await n.stop();
  }
}

/** Three etcd members and three bin/warren --cluster nodes, every inter-node link behind a FaultProxy. */
export class ClusterDeployment implements Deployment {
  readonly kind = 'cluster' as const;
  readonly network = new FaultNetwork();
  readonly nodes: WarrenNode[] = [];
  etcd: EtcdCluster | null = null;
  private readonly proxies: FaultProxy[] = [];
  /** node id (from its data folder, as registered in etcd) → node index */
  private readonly faceToIndex = new Map<string, number>();

  constructor(private readonly o: DeploymentOptions) {}

  private nodeHost(i: number): string {
    return `${this.o.net}.${11 + i}`;
  }

  private faceHost(i: number): string {
    return `${this.o.net}.${111 + i}`;
  }

  async start(): Promise<void> {
    const { supervisor, root } = this.o;
    const logs = join(root, 'logs');
    const etcdHosts = [0, 1, 2].map((k) => `${this.o.net}.${21 + k}`);
    this.etcd = await EtcdCluster.start({
      hosts: etcdHosts,
      dataRoot: join(root, 'etcd'),
      freePort: (host) => freePortOn(host),
      healthyTimeoutMs: 60_000,
      spawn: (name, args) => supervisor.spawn(name, 'etcd', args, join(logs, `${name}.log`)),
    });
    const etcd = this.etcd;
    const labelOf = (address: string): string => {
      for (let i = 0; i < 3; i++) if (address === this.nodeHost(i) || address === this.faceHost(i)) return `n${i + 1}`;
      return 'client';
    };
    const faceOf = (address: string): string | undefined => {
      for (let i = 0; i < 3; i++) if (address === this.nodeHost(i)) return this.faceHost(i);
      return undefined;
    };
    for (let i = 0; i < 3; i++) {
      const host = this.nodeHost(i);
      const face = this.faceHost(i);
      this.faceToIndex.set(face, i);
      const amqpPort = await freePortOn(host, face);
      const managementPort = await freePortOn(host, face);
      const clusterPort = await freePortOn(host, face);
      // Node i's own way to each etcd member, so that it alone can be cut from etcd.
      const etcdEndpoints: string[] = [];
      for (const [k, m] of etcd.members.entries()) {
        const port = await freePortOn(face);
        await this.addProxy({ listenHost: face, listenPort: port, targetHost: m.host, targetPort: m.clientPort, to: `e${k + 1}`, from: () => `n${i + 1}` });
        etcdEndpoints.push(`http://${face}:${port}`);
      }
      // Node i's face: what the other nodes reach it at.
      for (const port of [amqpPort, managementPort, clusterPort]) {
        await this.addProxy({ listenHost: face, listenPort: port, targetHost: host, targetPort: port, to: `n${i + 1}`, from: labelOf, localAddress: faceOf });
      }
      const dataDir = join(root, `n${i + 1}`);
      mkdirSync(dataDir, { recursive: true });
      // prettier-ignore
      const clusterArgs = (): string[] => [
        '--cluster',
        '--etcd-endpoints', etcdEndpoints.join(','),
        '--cluster-port', String(clusterPort),
        '--cluster-advertise', `${face}:${clusterPort}`,
        '--cluster-prefix', this.o.prefix,
        '--cluster-lease-ttl', String(this.o.leaseTtlSec),
        '--cluster-max-lag', String(this.o.maxLagMs),
        '--cluster-log-retain', this.o.logRetain,
      ];
      this.nodes.push(
        new WarrenNode(i, `n${i + 1}`, host, face, amqpPort, managementPort, clusterPort, dataDir, join(logs, `n${i + 1}.log`), clusterArgs, /cluster node \S+ listening on/, supervisor),
      );
    }
    await Promise.all(this.nodes.map((n) => n.start()));
  }

  private async addProxy(o: Omit<ConstructorParameters<typeof FaultProxy>[0], 'network'>): Promise<void> {
    const proxy = new FaultProxy({ ...o, network: this.network });
    await proxy.listen();
    this.proxies.push(proxy);
  }

  urls(): string[] {
    return this.nodes.map((n) => n.url);
  }

  async state(): Promise<ClusterState> {
    const etcd = this.etcd!;
    const kvs = await etcd.range(`${this.o.prefix}/`);
    const idToIndex = new Map<string, number>();
    const registered: number[] = [];
    let leaderKv: { value: string; createRevision: number } | null = null;
    let isrIds: string[] = [];
    for (const kv of kvs) {
      if (kv.key.startsWith(`${this.o.prefix}/nodes/`)) {
        const info = JSON.parse(kv.value) as { id: string; host: string };
        const i = this.faceToIndex.get(info.host);
        if (i !== undefined) {
          idToIndex.set(info.id, i);
          registered.push(i);
        }
      } else if (kv.key.startsWith(`${this.o.prefix}/leader/`)) {
        if (leaderKv === null || kv.createRevision < leaderKv.createRevision) leaderKv = kv;
      } else if (kv.key === `${this.o.prefix}/isr`) {
        isrIds = JSON.parse(kv.value) as string[];
      }
    }
    let leader: number | null = null;
    if (leaderKv !== null) {
      const info = JSON.parse(leaderKv.value) as { host: string };
      leader = this.faceToIndex.get(info.host) ?? null;
    }
    const isr = isrIds.map((id) => idToIndex.get(id)).filter((i): i is number => i !== undefined);
    return { leader, leaderEpoch: leaderKv?.createRevision ?? 0, registered: registered.sort(), isr: isr.sort() };
  }

  async waitHealthy(timeoutMs: number): Promise<void> {
    let last = 'no answer from etcd';
    try {
      await waitUntil(
        async () => {
          const s = await this.state();
          last = `leader ${s.leader === null ? 'none' : `n${s.leader + 1}`}, registered ${s.registered.map((i) => `n${i + 1}`).join(' ')}, in sync ${s.isr.map((i) => `n${i + 1}`).join(' ')}`;
          if (s.leader === null || s.registered.length !== this.nodes.length || s.isr.length !== this.nodes.length) return false;
          const leader = this.nodes[s.leader]!;
          return leader.running && !leader.paused && (await accepts(leader.host, leader.amqpPort));
        },
        'the cluster to be healthy',
        timeoutMs,
        250,
      );
    } catch {
      throw new Error(`the cluster did not become healthy in ${timeoutMs} ms (${last})`);
    }
  }

  async healAll(): Promise<void> {
    this.network.heal();
    const etcd = this.etcd!;
    for (let k = 0; k < etcd.members.length; k++) {
      etcd.resume(k);
      if (!etcd.running(k)) etcd.restart(k);
    }
    for (const n of this.nodes) if (n.paused) n.resume();
    await Promise.all(this.nodes.filter((n) => !n.running).map((n) => n.start()));
  }

  async close(): Promise<void> {
    // Followers first, then the leader (its graceful stop waits for followers it no longer has).
    await Promise.all(this.nodes.map((n) => n.stop(10_000)));
    for (const p of this.proxies) await p.close();
  }
}

/** A fresh run folder (tmpfs when there is one: etcd and LMDB sync a lot). */
export function runFolder(name: string): string {
  const base = existsSync('/dev/shm') ? '/dev/shm' : '/tmp';
  const dir = join(base, `${name}-${process.pid}-${Date.now().toString(36)}`);
  mkdirSync(join(dir, 'logs'), { recursive: true });
  return dir;
}

export { sleep };
