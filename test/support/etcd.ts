// Real etcd members (Debian's etcd-server 3.4) for the cluster tests and the chaos checker: one
// member per given loopback address, free ports, data on tmpfs when there is one, timeouts relaxed
// for a shared, loaded machine. Members are killed (SIGKILL), stopped (SIGTERM), paused
// (SIGSTOP/SIGCONT) and started again on their data, always by pid. Also the little etcd reading a
// checker does itself (range over a prefix, through etcd's v3 JSON gateway), so that its view does
// not depend on what Warren reports about itself.
//
// Who starts the processes is the caller's choice: by default each member is a child process whose
// last output lines are kept for error messages (tests); the chaos checker passes its supervisor,
// which logs to files and ends everything on any way out.

import { spawn as spawnChild, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePortOn, stopChild } from './processes.js';

/** A running etcd member as the cluster drives it (test/chaos/supervisor.ts's Proc is one). */
export interface EtcdProcess {
  /** not exited yet */
  readonly running: boolean;
  /** stopped with SIGSTOP */
  readonly paused: boolean;
  signal(sig: NodeJS.Signals): void;
  /** SIGKILL, resolved once it has exited */
  kill(): Promise<void>;
  /** SIGTERM (SIGKILL after a grace period), resolved once it has exited */
  stop(): Promise<void>;
  lastLines(n: number): string;
}

/** Starts `etcd args…` for the member called name. */
export type EtcdSpawn = (name: string, args: string[]) => EtcdProcess;

export interface EtcdOptions {
  /** one member per address (127.x.y.z) */
  hosts: string[];
  /** where members keep their data (default: a new folder on tmpfs, removed by close()) */
  dataRoot?: string;
  /** default: child processes of this one (ChildEtcd) */
  spawn?: EtcdSpawn;
  /** a free port on host (default: processes.ts's freePortOn) */
  freePort?: (host: string) => Promise<number>;
  /** how long start() waits for a healthy cluster (default 30 s) */
  healthyTimeoutMs?: number;
}

export interface EtcdMember {
  name: string;
  host: string;
  clientPort: number;
  peerPort: number;
  clientUrl: string;
  dataDir: string;
  proc: EtcdProcess | null;
}

export interface EtcdKv {
  key: string;
  value: string;
  createRevision: number;
}

/** POST a JSON body to etcd's v3 gateway; resolves with the parsed answer. */
export function etcdCall<T>(endpoint: string, path: string, body: unknown, timeoutMs = 2000): Promise<T> {
  return new Promise((resolve, reject) => {
    const payload = JSON.stringify(body);
    const req = request(`${endpoint}${path}`, { method: 'POST', timeout: timeoutMs, headers: { 'content-type': 'application/json' } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString();
        if (res.statusCode !== 200) {
          reject(new Error(`etcd ${path}: HTTP ${res.statusCode} ${text}`));
          return;
        }
        try {
          resolve(JSON.parse(text) as T);
        } catch (err) {
          reject(err as Error);
        }
      });
    });
    req.on('timeout', () => req.destroy(new Error(`etcd ${path}: no answer in ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(payload);
  });
}

const b64 = (s: string): string => Buffer.from(s).toString('base64');

/** The range end that makes a range query cover every key starting with prefix. */
function prefixEnd(prefix: string): string {
  const bytes = Buffer.from(prefix);
  bytes[bytes.length - 1]!++;
  return bytes.toString('base64');
}

/** 127.0.1.first, 127.0.1.first+1, …: one address per member, apart from other test files' members. */
export function etcdHosts(size: number, first: number): string[] {
  return Array.from({ length: size }, (_, i) => `127.0.1.${first + i}`);
}

export class EtcdCluster {
  private constructor(
    readonly members: EtcdMember[],
    private readonly spawnMember: EtcdSpawn,
    /** the data folder this object created (removed by close()), or null when the caller gave one */
    private readonly ownedRoot: string | null,
    private readonly token: string,
  ) {}

  get endpoints(): string[] {
    return this.members.map((m) => m.clientUrl);
  }

  /** Starts one member per host and waits until the cluster is healthy. */
  static async start(options: EtcdOptions): Promise<EtcdCluster> {
    const ownedRoot = options.dataRoot === undefined ? mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'warren-etcd-')) : null;
    const dataRoot = options.dataRoot ?? ownedRoot!;
    const freePort = options.freePort ?? freePortOn;
    const members: EtcdMember[] = [];
    for (const [i, host] of options.hosts.entries()) {
      const clientPort = await freePort(host);
      let peerPort = await freePort(host);
      while (peerPort === clientPort) peerPort = await freePort(host);
      members.push({
        name: `etcd${i + 1}`,
        host,
        clientPort,
        peerPort,
        clientUrl: `http://${host}:${clientPort}`,
        dataDir: join(dataRoot, `etcd${i + 1}`),
        proc: null,
      });
    }
    const spawn = options.spawn ?? ((name: string, args: string[]) => new ChildEtcd(name, args));
    const cluster = new EtcdCluster(members, spawn, ownedRoot, `warren-test-${process.pid}-${Date.now()}`);
    try {
      for (let i = 0; i < members.length; i++) cluster.spawn(i, 'new');
      await cluster.waitHealthy(options.healthyTimeoutMs ?? 30_000);
    } catch (err) {
      await cluster.close();
      throw err;
    }
    return cluster;
  }

  private spawn(i: number, state: 'new' | 'existing'): void {
    const m = this.members[i]!;
    const initialCluster = this.members.map((x) => `${x.name}=http://${x.host}:${x.peerPort}`).join(',');
    // prettier-ignore
    const args = [
      '--name', m.name,
      '--data-dir', m.dataDir,
      '--listen-client-urls', m.clientUrl,
      '--advertise-client-urls', m.clientUrl,
      '--listen-peer-urls', `http://${m.host}:${m.peerPort}`,
      '--initial-advertise-peer-urls', `http://${m.host}:${m.peerPort}`,
      '--initial-cluster', initialCluster,
      '--initial-cluster-state', state,
      '--initial-cluster-token', this.token,
      // A slow heartbeat on a busy machine must not start an etcd election by itself.
      '--heartbeat-interval', '250',
      '--election-timeout', '2500',
      '--log-level', 'warn',
    ];
    m.proc = this.spawnMember(m.name, args);
  }

  running(i: number): boolean {
    return this.members[i]!.proc?.running ?? false;
  }

  /** Kills member i (SIGKILL: a crash). */
  async kill(i: number): Promise<void> {
    await this.members[i]!.proc?.kill();
  }

  /** Stops member i (SIGTERM) and waits for it to exit. */
  async stop(i: number): Promise<void> {
    await this.members[i]!.proc?.stop();
  }

  /** Starts member i again on its data (it rejoins the cluster); nothing if it runs. */
  restart(i: number): void {
    if (this.running(i)) return;
    this.spawn(i, 'existing');
  }

  pause(i: number): void {
    this.members[i]!.proc?.signal('SIGSTOP');
  }

  resume(i: number): void {
    this.members[i]!.proc?.signal('SIGCONT');
  }

  /** Waits until every running, unpaused member reports healthy (a leader and a quorum). */
  async waitHealthy(timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const running = this.members.filter((m) => m.proc?.running === true && !m.proc.paused);
      const ok = await Promise.all(running.map((m) => health(m.clientUrl)));
      if (ok.length > 0 && ok.every(Boolean)) return;
      if (Date.now() > deadline) {
        throw new Error(`etcd did not become healthy in ${timeoutMs} ms:\n${this.members.map((m) => `${m.name}: ${m.proc?.lastLines(5) ?? 'not running'}`).join('\n')}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** Every key under prefix, from the first member that answers. */
  async range(prefix: string): Promise<EtcdKv[]> {
    let lastError: Error | null = null;
    for (const m of this.members) {
      if (m.proc?.running !== true || m.proc.paused) continue;
      try {
        const res = await etcdCall<{ kvs?: { key: string; value?: string; create_revision: string }[] }>(m.clientUrl, '/v3/kv/range', {
          key: b64(prefix),
          range_end: prefixEnd(prefix),
          serializable: false,
        });
        return (res.kvs ?? []).map((kv) => ({
          key: Buffer.from(kv.key, 'base64').toString(),
          value: Buffer.from(kv.value ?? '', 'base64').toString(),
          createRevision: Number(kv.create_revision),
        }));
      } catch (err) {
        lastError = err as Error;
      }
    }
    throw lastError ?? new Error('no etcd member is running');
  }

  /** Stops every member and removes the data folder this object created. */
  async close(): Promise<void> {
    await Promise.all(this.members.map((m) => m.proc?.stop()));
    if (this.ownedRoot !== null) rmSync(this.ownedRoot, { recursive: true, force: true });
  }
}

function health(url: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request(`${url}/health`, { method: 'GET', timeout: 2000 }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve(/"health":\s*"true"/.test(body)));
    });
    req.on('error', () => resolve(false));
    req.on('timeout', () => req.destroy());
    req.end();
  });
}

/** Lines of a member's output kept for error messages. */
const TAIL_LINES = 200;

/** The default member: a child process of this one, its last output lines kept in memory. */
class ChildEtcd implements EtcdProcess {
  private readonly child: ChildProcess;
  private readonly output: string[] = [];
  paused = false;

  constructor(name: string, args: string[]) {
    this.child = spawnChild('etcd', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const keep = (c: Buffer | string): void => {
      this.output.push(c.toString());
      if (this.output.length > TAIL_LINES) this.output.splice(0, this.output.length - TAIL_LINES);
    };
    this.child.stdout!.on('data', keep);
    this.child.stderr!.on('data', keep);
    this.child.on('error', (err) => keep(`${name}: spawn failed: ${err.message}`));
    this.child.once('exit', () => (this.paused = false));
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  signal(sig: NodeJS.Signals): void {
    if (!this.running) return;
    this.child.kill(sig);
    if (sig === 'SIGSTOP') this.paused = true;
    if (sig === 'SIGCONT') this.paused = false;
  }

  async kill(): Promise<void> {
    if (!this.running) return;
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    this.child.kill('SIGKILL');
    await exited;
  }

  async stop(): Promise<void> {
    this.paused = false;
    await stopChild(this.child);
  }

  lastLines(n: number): string {
    return this.output.slice(-n).join('');
  }
}
