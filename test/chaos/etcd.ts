// The chaos checker's etcd: real members of Debian's etcd-server (3.4) on their own loopback
// addresses, data under the run folder (tmpfs when there is one), timeouts relaxed for a shared,
// loaded machine. Members are killed, paused and restarted by pid for the etcd faults. Also the
// little etcd reading the checker does itself (who leads, the in-sync set), through etcd's v3 JSON
// gateway, so that the checker's view does not depend on what Warren reports about itself.

import { request } from 'node:http';
import { join } from 'node:path';
import { freePortOn, sleep } from './net.js';
import type { Proc, Supervisor } from './supervisor.js';

export interface EtcdMember {
  name: string;
  host: string;
  clientPort: number;
  peerPort: number;
  clientUrl: string;
  dataDir: string;
  proc: Proc | null;
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

export interface EtcdKv {
  key: string;
  value: string;
  createRevision: number;
}

export class EtcdCluster {
  private constructor(
    readonly members: EtcdMember[],
    private readonly supervisor: Supervisor,
    private readonly logDir: string,
    private readonly token: string,
  ) {}

  get endpoints(): string[] {
    return this.members.map((m) => m.clientUrl);
  }

  /** Starts one member per host and waits until the cluster answers. */
  static async start(supervisor: Supervisor, hosts: string[], dataRoot: string, logDir: string): Promise<EtcdCluster> {
    const members: EtcdMember[] = [];
    for (const [i, host] of hosts.entries()) {
      const clientPort = await freePortOn(host);
      let peerPort = await freePortOn(host);
      while (peerPort === clientPort) peerPort = await freePortOn(host);
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
    const cluster = new EtcdCluster(members, supervisor, logDir, `warren-chaos-${process.pid}-${Date.now()}`);
    for (let i = 0; i < members.length; i++) cluster.spawn(i, 'new');
    await cluster.waitHealthy(60_000);
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
    m.proc = this.supervisor.spawn(m.name, 'etcd', args, join(this.logDir, `${m.name}.log`));
  }

  running(i: number): boolean {
    return this.members[i]!.proc?.running ?? false;
  }

  /** Kills member i (SIGKILL: a crash). */
  async kill(i: number): Promise<void> {
    await this.members[i]!.proc?.kill();
  }

  /** Starts member i again on its data (it rejoins the cluster). */
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

  /** Waits until every running member reports healthy (a leader and a quorum). */
  async waitHealthy(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const running = this.members.filter((m) => m.proc?.running === true && !m.proc.paused);
      const ok = await Promise.all(running.map((m) => health(m.clientUrl)));
      if (ok.length > 0 && ok.every(Boolean)) return;
      if (Date.now() > deadline) {
        throw new Error(`etcd did not become healthy in ${timeoutMs} ms:\n${this.members.map((m) => `${m.name}: ${m.proc?.lastLines(5) ?? 'not running'}`).join('\n')}`);
      }
      await sleep(200);
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
