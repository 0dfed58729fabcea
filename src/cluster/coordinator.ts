// Warren's keys in etcd, under a configurable prefix (default `warren`):
//
//   <prefix>/leader/<lease>   etcd election: the oldest candidate key leads; value = its NodeInfo
//   <prefix>/isr              the in-sync set: JSON array of node ids; written only by the leader,
//                             in a transaction conditioned on its election key (fencing)
//   <prefix>/secret           the shared secret of the replication port (created once)
//   <prefix>/nodes/<id>       each running node's NodeInfo, attached to its lease
//   <prefix>/leave/<id>       a request for that node to leave the cluster (it deletes it as it goes)
//
// This module reads and writes them; deciding what to do is node.ts's job.

import { randomBytes } from 'node:crypto';
import type { Logger } from '../log.js';
import type { EtcdClient, KeyValue, LeaderKey } from './etcd-client.js';

export interface NodeInfo {
  id: string;
  /** the address other nodes and proxies reach this node at */
  host: string;
  /** replication port as advertised (followers connect there) */
  clusterPort: number;
  /** AMQP port (0: none) */
  amqpPort: number;
  /** AMQPS port (0: none) */
  amqpTlsPort: number;
  /** management HTTP port (0: none) */
  managementPort: number;
  /** Prometheus metrics port (0: none) */
  metricsPort: number;
}

export interface LeaderInfo extends NodeInfo {
  /** the create revision of its election key: unique per leadership, increasing */
  epoch: number;
}

export interface ClusterView {
  leader: LeaderInfo | null;
  /** null: never written (a new cluster) */
  isr: string[] | null;
  nodes: NodeInfo[];
  /** nodes asked to leave */
  leaving: string[];
  revision: number;
}

export class Coordinator {
  readonly electionName: string;
  readonly isrKey: string;
  readonly secretKey: string;
  readonly nodesPrefix: string;
  readonly leavePrefix: string;

  constructor(
    readonly etcd: EtcdClient,
    readonly prefix: string,
    private readonly log: Logger,
  ) {
    this.electionName = `${prefix}/leader`;
    this.isrKey = `${prefix}/isr`;
    this.secretKey = `${prefix}/secret`;
    this.nodesPrefix = `${prefix}/nodes/`;
    this.leavePrefix = `${prefix}/leave/`;
  }

  async requestLeave(id: string): Promise<void> {
    await this.etcd.put(this.leavePrefix + id, new Date().toISOString());
  }

  async clearLeave(id: string): Promise<void> {
    await this.etcd.deleteRange(this.leavePrefix + id);
  }

  /** The cluster's shared secret, created by whichever node asks first. */
  async secret(): Promise<string> {
    const fresh = randomBytes(32).toString('hex');
    const res = await this.etcd.txn(
      [{ key: this.secretKey, target: 'CREATE', result: 'EQUAL', createRevision: 0 }],
      [{ put: { key: this.secretKey, value: fresh } }],
      [{ range: { key: this.secretKey } }],
    );
    if (res.succeeded) {
      this.log.info({ key: this.secretKey }, 'created the cluster secret');
      return fresh;
    }
    const existing = res.responses[0]?.[0]?.value.toString('utf8');
    if (existing === undefined || existing === '') throw new Error(`etcd key ${this.secretKey} is empty: delete it so that a node creates a new one`);
    return existing;
  }

  async register(self: NodeInfo, lease: string): Promise<void> {
    await this.etcd.put(this.nodesPrefix + self.id, JSON.stringify(self), lease);
  }

  campaign(self: NodeInfo, lease: string, signal: AbortSignal): Promise<LeaderKey> {
    return this.etcd.campaign(this.electionName, lease, JSON.stringify(self), signal);
  }

  async resign(key: LeaderKey): Promise<void> {
    await this.etcd.resign(key);
  }

  /** Leader, in-sync set and registered nodes, read in one range. */
  async view(): Promise<ClusterView> {
    const { kvs, revision } = await this.etcd.range(`${this.prefix}/`, { prefix: true });
    return this.viewOf(kvs, revision);
  }

  viewOf(kvs: KeyValue[], revision: number): ClusterView {
    let leaderKv: KeyValue | null = null;
    let isr: string[] | null = null;
    const nodes: NodeInfo[] = [];
    const leaving: string[] = [];
    const leaderPrefix = `${this.electionName}/`;
    for (const kv of kvs) {
      if (kv.key.startsWith(leaderPrefix)) {
        if (leaderKv === null || kv.createRevision < leaderKv.createRevision) leaderKv = kv;
      } else if (kv.key === this.isrKey) {
        isr = parseIsr(kv.value);
      } else if (kv.key.startsWith(this.nodesPrefix)) {
        const info = parseNode(kv.value);
        if (info !== null) nodes.push(info);
      } else if (kv.key.startsWith(this.leavePrefix)) {
        leaving.push(kv.key.slice(this.leavePrefix.length));
      }
    }
    let leader: LeaderInfo | null = null;
    if (leaderKv !== null) {
      const info = parseNode(leaderKv.value);
      if (info !== null) leader = { ...info, epoch: leaderKv.createRevision };
    }
    nodes.sort((a, b) => a.id.localeCompare(b.id));
    return { leader, isr, nodes, leaving, revision };
  }

  /**
   * Writes the in-sync set if `leader` still holds the election (fencing): true when written,
   * false when the key is gone (another node may lead). Rejects when etcd is unreachable.
   */
  async writeIsr(leader: LeaderKey, members: string[]): Promise<boolean> {
    const key = Buffer.from(leader.key, 'base64').toString('utf8');
    const res = await this.etcd.txn(
      [{ key, target: 'CREATE', result: 'EQUAL', createRevision: Number(leader.rev) }],
      [{ put: { key: this.isrKey, value: JSON.stringify(members) } }],
    );
    return res.succeeded;
  }

  /** Whether `leader` still holds the election key (it is the oldest candidate with that revision). */
  async stillLeads(leader: LeaderKey): Promise<boolean> {
    const v = await this.view();
    return v.leader !== null && v.leader.epoch === Number(leader.rev);
  }
}

function parseIsr(value: Buffer): string[] | null {
  try {
    const parsed = JSON.parse(value.toString('utf8')) as unknown;
    return Array.isArray(parsed) ? parsed.filter((x): x is string => typeof x === 'string') : null;
  } catch {
    return null;
  }
}

function parseNode(value: Buffer): NodeInfo | null {
  try {
    const p = JSON.parse(value.toString('utf8')) as Partial<NodeInfo>;
    if (typeof p.id !== 'string' || typeof p.host !== 'string') return null;
    return {
      id: p.id,
      host: p.host,
      clusterPort: Number(p.clusterPort ?? 0),
      amqpPort: Number(p.amqpPort ?? 0),
      amqpTlsPort: Number(p.amqpTlsPort ?? 0),
      managementPort: Number(p.managementPort ?? 0),
      metricsPort: Number(p.metricsPort ?? 0),
    };
  } catch {
    return null;
  }
}
