// Starts real etcd members (Debian's etcd-server 3.4) on loopback addresses 127.0.1.x with free
// ports in 23000–23999, data on tmpfs (/dev/shm) and timeouts relaxed for a loaded machine. Members
// are started and stopped by pid (SIGTERM, SIGKILL, SIGSTOP/SIGCONT for faults); close() ends them
// all and removes their data.

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { request } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A port in 23000–23999 free on this address a moment ago. */
export async function freePortOn(host: string): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = 23000 + Math.floor(Math.random() * 1000);
    const ok = await new Promise<boolean>((resolve) => {
      const srv = createServer();
      srv.once('error', () => resolve(false));
      srv.listen(port, host, () => srv.close(() => resolve(true)));
    });
    if (ok) return port;
  }
  throw new Error(`no free port in 23000-23999 on ${host}`);
}

export interface EtcdMember {
  name: string;
  host: string;
  clientPort: number;
  peerPort: number;
  clientUrl: string;
  dataDir: string;
  process: ChildProcess | null;
  output: string[];
}

function health(url: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request(`${url}/health`, { method: 'GET', timeout: 1000 }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve(/"health":\s*"true"/.test(body)));
    });
    req.on('error', () => resolve(false));
    req.on('timeout', () => req.destroy());
    req.end();
  });
}

export class EtcdCluster {
  private constructor(
    readonly members: EtcdMember[],
    private readonly root: string,
    private readonly token: string,
  ) {}

  get endpoints(): string[] {
    return this.members.map((m) => m.clientUrl);
  }

  /** Starts `size` members on 127.0.1.<firstHost>… and waits until the cluster is healthy. */
  static async start(size = 3, firstHost = 201): Promise<EtcdCluster> {
    const root = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'warren-etcd-'));
    const members: EtcdMember[] = [];
    for (let i = 0; i < size; i++) {
      const host = `127.0.1.${firstHost + i}`;
      const clientPort = await freePortOn(host);
      let peerPort = await freePortOn(host);
      while (peerPort === clientPort) peerPort = await freePortOn(host);
      members.push({
        name: `m${i + 1}`,
        host,
        clientPort,
        peerPort,
        clientUrl: `http://${host}:${clientPort}`,
        dataDir: join(root, `m${i + 1}`),
        process: null,
        output: [],
      });
    }
    const cluster = new EtcdCluster(members, root, `warren-test-${process.pid}-${Date.now()}`);
    try {
      for (let i = 0; i < size; i++) cluster.spawn(i, 'new');
      await cluster.waitHealthy();
    } catch (err) {
      await cluster.close();
      throw err;
    }
    return cluster;
  }

  private spawn(i: number, state: 'new' | 'existing'): void {
    const m = this.members[i]!;
    const initialCluster = this.members.map((x) => `${x.name}=http://${x.host}:${x.peerPort}`).join(',');
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
      // Relaxed for a shared, loaded machine: a slow heartbeat must not start an etcd election.
      '--heartbeat-interval', '250',
      '--election-timeout', '2500',
      '--log-level', 'error',
    ];
    const child = spawn('etcd', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout!.on('data', (c: Buffer) => pushBounded(m.output, c.toString()));
    child.stderr!.on('data', (c: Buffer) => pushBounded(m.output, c.toString()));
    child.on('error', (err) => pushBounded(m.output, `spawn failed: ${err.message}`));
    m.process = child;
  }

  /** Waits until every running member answers /health. */
  async waitHealthy(timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const running = this.members.filter((m) => m.process !== null);
      const ok = await Promise.all(running.map((m) => health(m.clientUrl)));
      if (ok.every(Boolean)) return;
      if (Date.now() > deadline) {
        throw new Error(`etcd did not become healthy:\n${this.members.map((m) => `${m.name}: ${m.output.slice(-5).join('')}`).join('\n')}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** Stops member i (SIGTERM, by pid) and waits for it to exit. */
  async stopMember(i: number): Promise<void> {
    const m = this.members[i]!;
    const child = m.process;
    if (child === null) return;
    m.process = null;
    await stopChild(child);
  }

  /** Starts member i again with its data (it rejoins). */
  async startMember(i: number): Promise<void> {
    if (this.members[i]!.process !== null) return;
    this.spawn(i, 'existing');
  }

  pause(i: number): void {
    this.members[i]!.process?.kill('SIGSTOP');
  }

  resume(i: number): void {
    this.members[i]!.process?.kill('SIGCONT');
  }

  async close(): Promise<void> {
    await Promise.all(this.members.map((_, i) => this.stopMember(i)));
    rmSync(this.root, { recursive: true, force: true });
  }
}

function pushBounded(list: string[], line: string): void {
  list.push(line);
  if (list.length > 200) list.splice(0, list.length - 200);
}

export async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  await new Promise<void>((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGCONT');
    child.kill('SIGTERM');
  });
}
