// The cluster's part of the management HTTP API (served by the leader; followers forward their
// management port to it):
//
//   GET  /api/cluster/status              roles, in-sync set, per-follower replication lag
//                                         (records, bytes, ms), failovers, log size
//   POST /api/cluster/nodes/:node/leave   asks a node to leave: it hands over if it leads, then
//                                         stops (told through etcd, so any node can be asked)
//
// Warren's own paths (RabbitMQ has no such endpoints: its cluster is Erlang distribution); the
// JSON uses RabbitMQ's snake_case style. warrenctl cluster_status / cluster_leave call them.

import type { Router } from '../management/router.js';
import { HttpError } from '../management/http-error.js';
import { Reply } from '../management/router.js';
import type { ClusterStatus } from './node.js';

export interface ClusterApi {
  status(): ClusterStatus;
  /** records a leave request for the node; false when no such node is registered */
  requestLeave(node: string): Promise<boolean>;
}

export function clusterStatusJson(s: ClusterStatus): Record<string, unknown> {
  const followers = new Map(s.followers.map((f) => [f.id, f]));
  const nodes = s.nodes.map((n) => {
    const f = followers.get(n.id);
    const leader = s.leader?.id === n.id;
    return {
      name: n.id,
      host: n.host,
      role: leader ? 'leader' : 'follower',
      in_sync: s.isr.includes(n.id),
      amqp_port: n.amqpPort,
      management_port: n.managementPort,
      cluster_port: n.clusterPort,
      replication: leader
        ? null
        : f === undefined
          ? { state: 'disconnected', acked_seq: 0, lag_records: null, lag_bytes: null, lag_ms: null }
          : { state: f.state, acked_seq: f.ackedSeq, lag_records: f.lagRecords, lag_bytes: f.lagBytes, lag_ms: f.lagMs, peer: f.address },
    };
  });
  return {
    node: s.node,
    role: s.role,
    leader: s.leader?.id ?? null,
    epoch: s.epoch,
    in_sync: s.isr,
    nodes,
    committed_seq: s.seq,
    log_bytes: s.logBytes,
    log_first_seq: s.logFirstSeq,
    failovers: s.failovers,
    snapshots_sent: s.snapshotsSent,
    lease_valid_ms: s.leaseValidMs,
  };
}

export function addClusterRoutes(router: Router, api: ClusterApi): void {
  router
    .get('/api/cluster/status', 'monitoring', () => clusterStatusJson(api.status()))
    .post('/api/cluster/nodes/:node/leave', 'administrator', async (req) => {
      const node = req.params['node']!;
      if (!(await api.requestLeave(node))) throw new HttpError(404, 'not_found', `no cluster node '${node}'`);
      return new Reply(202, { node, leaving: true });
    });
}
