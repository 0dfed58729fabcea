// The cluster's Prometheus families, on the leader's /metrics (followers forward their metrics
// port to it): roles, the in-sync set, each follower's replication lag in records, bytes and
// seconds, failovers and snapshots. Read from the node's status at scrape time.

import { labelPairs, ValueFamily, type Family, type Sample } from '../metrics/exposition.js';
import type { ClusterStatus } from './node.js';

export function clusterFamilies(status: () => ClusterStatus): Family[] {
  const perNode = (value: (s: ClusterStatus, id: string) => number | null) => (): Sample[] => {
    const s = status();
    const out: Sample[] = [];
    for (const n of s.nodes) {
      const v = value(s, n.id);
      if (v !== null) out.push({ labels: labelPairs([['node', n.id]]), value: v });
    }
    return out;
  };
  const follower = (pick: (f: ClusterStatus['followers'][number]) => number) => (s: ClusterStatus, id: string): number | null => {
    if (s.leader?.id === id) return null;
    const f = s.followers.find((x) => x.id === id);
    return f === undefined ? null : pick(f);
  };
  return [
    new ValueFamily('warren_cluster_leader', 'Whether the node leads the cluster (1) or follows (0)', 'gauge', perNode((s, id) => (s.leader?.id === id ? 1 : 0))),
    new ValueFamily('warren_cluster_in_sync', 'Whether the node is in the in-sync set', 'gauge', perNode((s, id) => (s.isr.includes(id) ? 1 : 0))),
    new ValueFamily('warren_cluster_in_sync_nodes', 'Nodes in the in-sync set, the leader included', 'gauge', () => status().isr.length),
    new ValueFamily('warren_cluster_nodes', 'Nodes registered in etcd', 'gauge', () => status().nodes.length),
    new ValueFamily('warren_cluster_replication_lag_records', 'Log records committed on the leader and not yet acknowledged by the follower', 'gauge', perNode(follower((f) => f.lagRecords))),
    new ValueFamily('warren_cluster_replication_lag_bytes', 'Bytes of log records sent to the follower and not yet acknowledged', 'gauge', perNode(follower((f) => f.lagBytes))),
    new ValueFamily('warren_cluster_replication_lag_seconds', 'Age of the oldest record the follower has not acknowledged', 'gauge', perNode(follower((f) => f.lagMs / 1000))),
    new ValueFamily('warren_cluster_log_committed_records', 'The last log record committed by the leader (its sequence number)', 'gauge', () => status().seq),
    new ValueFamily('warren_cluster_log_bytes', 'Bytes of replication log held for followers', 'gauge', () => status().logBytes),
    new ValueFamily('warren_cluster_failovers_total', 'Leader changes this node has seen', 'counter', () => status().failovers),
    new ValueFamily('warren_cluster_snapshots_sent_total', 'Whole-store snapshots sent to followers', 'counter', () => status().snapshotsSent),
    new ValueFamily('warren_cluster_epoch', 'The leadership epoch (the etcd revision of the leader key)', 'gauge', () => status().epoch),
  ];
}
