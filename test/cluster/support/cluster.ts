// Runs Warren cluster nodes as users do (bin/warren --cluster) on loopback addresses 127.0.1.x with
// free ports in 23000–23999, against an EtcdCluster. Nodes are stopped by pid: SIGTERM (graceful),
// SIGKILL (crash), SIGSTOP/SIGCONT (a frozen process). Roles are read from etcd, the source of truth.

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, existsSync, appendFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Coordinator, type ClusterView } from '../../../src/cluster/coordinator.js';
import { EtcdClient } from '../../../src/cluster/etcd-client.js';
import { createLogger } from '../../../src/log.js';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { waitFor } from '../../support/wait.js';
import type { EtcdCluster } from '../../support/etcd.js';
import { freePortOn, stopChild } from '../../support/processes.js';

/** bin/warren, from the sources (tests) or from dist/ (the compiled chaos checker). */
const here = dirname(fileURLToPath(import.meta.url));
const WARREN_BIN = join(here, ...(here.includes('/dist/') ? ['..', '..', '..', '..'] : ['..', '..', '..']), 'bin', 'warren');

/** How long a graceful stop may take before it is made a crash (see WarrenNode.stop). */
const GRACEFUL_STOP_MS = 30_000;

export interface NodeOptions {
  leaseTtlSec?: number;
  maxLagMs?: number;
  extraArgs?: string[];
  /** advertise this cluster port instead of the real one (a fault-injecting proxy in between) */
  advertisePort?: number;
  etcdEndpoints?: string[];
  /** data folders per node (default: fresh folders under a temporary root) */
  dataDirs?: string[];
}

export class WarrenNode {
  process: ChildProcess | null = null;
  readonly output: string[] = [];
  exits = 0;

  constructor(
    readonly index: number,
    readonly host: string,
    readonly amqpPort: number,
    readonly managementPort: number,
    readonly clusterPort: number,
    readonly metricsPort: number,
    readonly dataDir: string,
    /** command-line arguments; may be extended before start() */
    readonly args: string[],
    private readonly logFile: string | null,
  ) {}

  get id(): string {
    const file = join(this.dataDir, 'cluster-node-id');
    return existsSync(file) ? readFileSync(file, 'utf8').trim() : '';
  }

  get url(): string {
    return `amqp://guest:guest@${this.host}:${this.amqpPort}`;
  }

  get running(): boolean {
    return this.process !== null && this.process.exitCode === null && this.process.signalCode === null;
  }

  /** Starts the node and waits until it serves its ports. */
  async start(): Promise<void> {
    if (this.running) return;
    const child = spawn(process.execPath, [WARREN_BIN, ...this.args], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.process = child;
    const onData = (c: Buffer): void => {
      const text = c.toString();
      this.output.push(text);
      if (this.output.length > 400) this.output.splice(0, this.output.length - 400);
      if (this.logFile !== null) appendFileSync(this.logFile, text);
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.on('exit', () => this.exits++);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`node ${this.index} did not start in 30 s:\n${this.tail()}`)), 30_000);
      // This process's own output only: `output` keeps earlier runs of the node, whose 'listening'
      // line made a restart resolve on its first line, before it had registered or listened.
      let own = '';
      const check = (c: Buffer): void => {
        own += c.toString();
        if (/cluster node \S+ listening on/.test(own)) {
          clearTimeout(timer);
          child.stdout!.off('data', check);
          resolve();
        }
      };
      child.stdout!.on('data', check);
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`node ${this.index} exited with ${code}:\n${this.tail()}`));
      });
    });
  }

  tail(lines = 40): string {
    return this.output.join('').split('\n').slice(-lines).join('\n');
  }

  /**
   * Graceful stop (SIGTERM) and wait. A leader's graceful stop may take up to 10 s for its in-sync
   * followers to have everything, then up to 10 s to close its store: a SIGKILL after 10 s (the
   * default) would turn a slow graceful stop on a loaded machine into a crash, whose election key
   * then stays until its lease runs out.
   */
  async stop(): Promise<void> {
    const child = this.process;
    if (child === null) return;
    await stopChild(child, GRACEFUL_STOP_MS);
    this.process = null;
  }

  /** Crash: SIGKILL now. */
  async kill(): Promise<void> {
    const child = this.process;
    if (child === null) return;
    if (child.exitCode === null && child.signalCode === null) {
      await new Promise<void>((resolve) => {
        child.once('exit', () => resolve());
        child.kill('SIGKILL');
      });
    }
    this.process = null;
  }

  pause(): void {
    this.process?.kill('SIGSTOP');
  }

  resume(): void {
    this.process?.kill('SIGCONT');
  }
}

export class WarrenCluster {
  readonly coordinator: Coordinator;
  private readonly etcdClient: EtcdClient;

  private constructor(
    readonly etcd: EtcdCluster,
    readonly nodes: WarrenNode[],
    readonly prefix: string,
    private readonly root: string,
  ) {
    this.etcdClient = new EtcdClient(etcd.endpoints);
    this.coordinator = new Coordinator(this.etcdClient, prefix, createLogger('silent'));
  }

  /** Creates (does not start) `size` nodes on 127.0.1.<firstHost>…; start them with startAll(). */
  static async create(etcd: EtcdCluster, size = 3, firstHost = 1, options: NodeOptions = {}): Promise<WarrenCluster> {
    const root = mkdtempSync(join(tmpdir(), 'warren-cluster-'));
    const prefix = `warren-test-${process.pid}-${Date.now()}`;
    const nodes: WarrenNode[] = [];
    const logDir = process.env['WARREN_CLUSTER_TEST_LOGS'];
    for (let i = 0; i < size; i++) {
      const host = `127.0.1.${firstHost + i}`;
      const amqpPort = await freePortOn(host);
      let managementPort = await freePortOn(host);
      while (managementPort === amqpPort) managementPort = await freePortOn(host);
      let clusterPort = await freePortOn(host);
      while (clusterPort === amqpPort || clusterPort === managementPort) clusterPort = await freePortOn(host);
      let metricsPort = await freePortOn(host);
      while ([amqpPort, managementPort, clusterPort].includes(metricsPort)) metricsPort = await freePortOn(host);
      const dataDir = options.dataDirs?.[i] ?? join(root, `node${i + 1}`);
      const args = [
        '--cluster',
        '--bind', host,
        '--port', String(amqpPort),
        '--management-bind', host,
        '--management-port', String(managementPort),
        '--cluster-port', String(clusterPort),
        '--prometheus-port', String(metricsPort),
        '--etcd-endpoints', (options.etcdEndpoints ?? etcd.endpoints).join(','),
        '--cluster-prefix', prefix,
        '--cluster-lease-ttl', String(options.leaseTtlSec ?? 5),
        '--cluster-max-lag', String(options.maxLagMs ?? 4000),
        '--data-dir', dataDir,
        '--log-level', process.env['WARREN_CLUSTER_TEST_LOG_LEVEL'] ?? 'info',
        ...(options.advertisePort !== undefined ? ['--cluster-advertise', `${host}:${options.advertisePort}`] : []),
        ...(options.extraArgs ?? []),
      ];
      nodes.push(new WarrenNode(i, host, amqpPort, managementPort, clusterPort, metricsPort, dataDir, args, logDir ? join(logDir, `node${i + 1}.log`) : null));
    }
    return new WarrenCluster(etcd, nodes, prefix, root);
  }

  async startAll(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.start()));
  }

  view(): Promise<ClusterView> {
    return this.coordinator.view();
  }

  nodeById(id: string): WarrenNode | undefined {
    return this.nodes.find((n) => n.id === id);
  }

  /** Waits for a leader (other than `not`, if given) and returns its node. */
  async waitLeader(timeoutMs = 30_000, not?: WarrenNode): Promise<WarrenNode> {
    const id = await waitFor(
      async () => {
        const v = await this.view().catch(() => null);
        const leader = v?.leader;
        if (leader === null || leader === undefined) return null;
        if (not !== undefined && leader.id === not.id) return null;
        const node = this.nodeById(leader.id);
        // Serving: its AMQP port answers as the leader's (the broker is up).
        return node !== undefined && new RegExp(`"epoch":${leader.epoch},"seq":\\d+,"msg":"leading"`).test(node.output.join('')) ? leader.id : null;
      },
      `a leader${not !== undefined ? ` other than node ${not.index}` : ''}`,
      timeoutMs,
    );
    return this.nodeById(id)!;
  }

  /** Waits until the in-sync set holds `count` nodes (all running nodes by default). */
  async waitInSync(count = this.nodes.filter((n) => n.running).length, timeoutMs = 30_000): Promise<string[]> {
    return waitFor(
      async () => {
        const v = await this.view().catch(() => null);
        return v?.isr !== null && v?.isr !== undefined && v.isr.length >= count ? v.isr : null;
      },
      `${count} nodes in sync`,
      timeoutMs,
    );
  }

  followers(leader: WarrenNode): WarrenNode[] {
    return this.nodes.filter((n) => n !== leader);
  }

  dumpLogs(): string {
    return this.nodes.map((n) => `---- node ${n.index} (${n.host}, ${n.id}) ----\n${n.tail(60)}`).join('\n');
  }

  async close(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.kill()));
    this.etcdClient.close();
    rmSync(this.root, { recursive: true, force: true });
  }
}
