// warrenctl's cluster verbs, over the cluster's management API (src/cluster/cluster-routes.ts):
// cluster_status prints roles, the in-sync set and replication lag, in the shape of rabbitmqctl's
// cluster_status; cluster_leave asks a node to leave (it hands over if it leads, then stops).

import { ApiError, seg } from './warrenctl-client.js';
import { CommandError, EX_DATAERR, EX_UNAVAILABLE, UsageError } from './warrenctl-errors.js';
import type { Invocation, Verb } from './warrenctl-commands.js';

interface NodeRow {
  name: string;
  host: string;
  role: string;
  in_sync: boolean;
  replication: { state: string; lag_records: number | null; lag_bytes: number | null; lag_ms: number | null } | null;
}

interface StatusBody {
  node: string;
  leader: string | null;
  epoch: number;
  in_sync: string[];
  nodes: NodeRow[];
  failovers: number;
  committed_seq: number;
  log_bytes: number;
}

async function clusterStatus(inv: Invocation): Promise<StatusBody> {
  try {
    return await inv.client.get<StatusBody>('/api/cluster/status');
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) {
      throw new CommandError('this Warren is not a cluster node (it was started without --cluster)', EX_UNAVAILABLE);
    }
    throw err;
  }
}

function lag(r: NodeRow): string {
  const rep = r.replication;
  if (rep === null) return '';
  if (rep.lag_records === null) return rep.state;
  return `${rep.state}, lag ${rep.lag_records} records, ${rep.lag_bytes} bytes, ${rep.lag_ms} ms`;
}

export const CLUSTER_VERBS: Record<string, Verb> = {
  cluster_status: {
    usage: 'cluster_status',
    summary: 'Displays the cluster: leader, followers, in-sync set and replication lag',
    help: 'Displays the cluster as the leader sees it: every node with its role, whether it is in sync, and its replication lag (records, bytes, ms).',
    async run(inv) {
      const s = await clusterStatus(inv);
      if (inv.output.formatter === 'json') {
        inv.out(JSON.stringify(s) + '\n');
        return;
      }
      const lines = [
        `Cluster status of node ${s.node} ...`,
        'Basics',
        '',
        `Leader: ${s.leader ?? '(none)'}${s.leader !== null ? ` (epoch ${s.epoch})` : ''}`,
        `Committed log records: ${s.committed_seq}`,
        `Replication log size (bytes): ${s.log_bytes}`,
        `Failovers seen: ${s.failovers}`,
        '',
        'Nodes',
        '',
        ...s.nodes.map((n) => [n.name, n.host, n.role, n.in_sync ? 'in sync' : 'not in sync', lag(n)].filter((x) => x !== '').join('\t')),
        '',
        'In-sync set',
        '',
        s.in_sync.join(', '),
      ];
      inv.out(lines.join('\n') + '\n');
    },
  },
  cluster_leave: {
    usage: 'cluster_leave <node>',
    summary: 'Asks a cluster node to leave: it hands over if it leads, then stops',
    help: 'Asks a cluster node (its name as cluster_status shows it) to leave the cluster: a leader first waits for its in-sync followers and hands over, then the node stops. Started again, it joins as a follower.',
    async run(inv) {
      if (inv.args.length !== 1) throw new UsageError(`${inv.args.length === 0 ? 'not enough' : 'too many'} arguments.\nUsage: warrenctl ${this.usage}`);
      const node = inv.args[0]!;
      if (!inv.output.quiet) inv.out(`Asking node ${node} to leave the cluster ...\n`);
      await clusterStatus(inv);
      try {
        await inv.client.post(`/api/cluster/nodes/${seg(node)}/leave`);
      } catch (err) {
        if (err instanceof ApiError && err.status === 404) throw new CommandError(`no cluster node '${node}' (see warrenctl cluster_status)`, EX_DATAERR);
        throw err;
      }
    },
  },
};
