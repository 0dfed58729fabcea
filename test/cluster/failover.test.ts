// A 3-node Warren cluster on 3 real etcd members, all on loopback: election, replication to every
// node, a publisher with confirms and a consumer with acks through a follower's proxy, kill -9 of
// the leader with a follower taking over within the lease TTL plus a few seconds, clients
// reconnecting, and every confirmed message there. Every node runs an --on-leader-elected hook that
// appends what it was told to a file: one line per takeover, from the node that took over.

import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import amqp from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../support/wait.js';
import { EtcdCluster, etcdHosts } from '../support/etcd.js';
import { WarrenCluster, type WarrenNode } from './support/cluster.js';
import { api, consumeAll, ctl, publishConfirmed } from './support/clients.js';

const LEASE_TTL_SEC = 5;
let etcd: EtcdCluster;
let cluster: WarrenCluster;
const hookDir = mkdtempSync(join(tmpdir(), 'warren-hook-'));
const hookFile = join(hookDir, 'elected');

beforeAll(async () => {
  etcd = await EtcdCluster.start({ hosts: etcdHosts(3, 211) });
  const hook = `echo "$WARREN_NODE_ID $WARREN_LEADER_HOST $WARREN_AMQP_PORT $WARREN_MANAGEMENT_PORT $WARREN_EPOCH" >> '${hookFile}'`;
  cluster = await WarrenCluster.create(etcd, 3, 11, { leaseTtlSec: LEASE_TTL_SEC, extraArgs: ['--on-leader-elected', hook] });
  await cluster.startAll();
}, 90_000);

afterAll(async () => {
  await cluster?.close();
  await etcd?.close();
  rmSync(hookDir, { recursive: true, force: true });
});

/** The lines the --on-leader-elected hook has written so far. */
function hookLines(): string[] {
  return existsSync(hookFile) ? readFileSync(hookFile, 'utf8').split('\n').filter((l) => l !== '') : [];
}

/** The hook line the leader of `epoch` writes about itself. */
function hookLine(node: WarrenNode, epoch: number): string {
  return `${node.id} ${node.host} ${node.amqpPort} ${node.managementPort} ${epoch}`;
}

describe('3-node cluster', () => {
  let leader: WarrenNode;
  let consumedThroughProxy = 0;

  it('elects one leader and puts every node in the in-sync set', async () => {
    leader = await cluster.waitLeader(60_000);
    const isr = await cluster.waitInSync(3, 60_000);
    expect(isr.sort()).toEqual(cluster.nodes.map((n) => n.id).sort());
    const view = await cluster.view();
    expect(view.nodes.map((n) => n.id).sort()).toEqual(isr.sort());
    // The hook ran once, on the leader, with its address and epoch.
    await waitFor(() => hookLines().length > 0, 'the --on-leader-elected hook to run');
    expect(hookLines()).toEqual([hookLine(leader, view.leader!.epoch)]);
  }, 90_000);

  it('reports roles, the in-sync set and replication lag through any node’s management port (warrenctl cluster_status)', async () => {
    const follower = cluster.followers(leader)[1]!;
    // Followers forward their management port to the leader: the answer is the leader's view.
    const { status, body } = await api<Record<string, any>>(follower, '/api/cluster/status');
    expect(status).toBe(200);
    expect(body['node']).toBe(leader.id);
    expect(body['role']).toBe('leader');
    expect(body['leader']).toBe(leader.id);
    expect([...body['in_sync']].sort()).toEqual(cluster.nodes.map((n) => n.id).sort());
    const rows = body['nodes'] as Record<string, any>[];
    expect(rows.map((r) => r['name']).sort()).toEqual(cluster.nodes.map((n) => n.id).sort());
    for (const r of rows) {
      if (r['name'] === leader.id) {
        expect(r['role']).toBe('leader');
        expect(r['replication']).toBeNull();
      } else {
        expect(r['role']).toBe('follower');
        expect(r['in_sync']).toBe(true);
        expect(r['replication']['state']).toBe('streaming');
        expect(typeof r['replication']['lag_records']).toBe('number');
        expect(typeof r['replication']['lag_bytes']).toBe('number');
      }
    }
    // Prometheus, also through the follower: roles, the in-sync set and lag per follower.
    const metrics = await (await fetch(`http://${follower.host}:${follower.metricsPort}/metrics`)).text();
    expect(metrics).toContain(`warren_cluster_leader{node="${leader.id}"} 1\n`);
    expect(metrics).toContain('warren_cluster_in_sync_nodes 3\n');
    for (const f of cluster.followers(leader)) {
      expect(metrics).toContain(`warren_cluster_leader{node="${f.id}"} 0\n`);
      expect(metrics).toContain(`warren_cluster_in_sync{node="${f.id}"} 1\n`);
      expect(metrics).toMatch(new RegExp(`^warren_cluster_replication_lag_records\\{node="${f.id}"\\} \\d+$`, 'm'));
      expect(metrics).toMatch(new RegExp(`^warren_cluster_replication_lag_bytes\\{node="${f.id}"\\} \\d+$`, 'm'));
    }
    expect(metrics).toMatch(/^warren_cluster_failovers_total 0$/m);
    const out = await ctl(follower, ['cluster_status']);
    expect(out.code).toBe(0);
    expect(out.stdout).toContain(`Cluster status of node ${leader.id} ...`);
    expect(out.stdout).toMatch(new RegExp(`^${leader.id}\t${leader.host}\tleader\tin sync$`, 'm'));
    for (const f of cluster.followers(leader)) {
      expect(out.stdout).toMatch(new RegExp(`^${f.id}\t${f.host}\tfollower\tin sync\tstreaming, lag \\d+ records, \\d+ bytes, \\d+ ms$`, 'm'));
    }
  }, 60_000);

  it('the leader sees the real client address of a connection through a follower (PROXY header)', async () => {
    const follower = cluster.followers(leader)[0]!;
    const conn = await amqp.connect(follower.url, { clientProperties: { connection_name: 'via-proxy' } });
    try {
      const found = await waitFor(async () => {
        const { body } = await api<Record<string, any>[]>(leader, '/api/connections');
        return body.find((c) => c['client_properties']?.['connection_name'] === 'via-proxy');
      }, 'the proxied connection in the leader’s list');
      // The client connected from 127.0.0.1 (its default source), not from the follower's address.
      expect(found['peer_host']).toBe('127.0.0.1');
      expect(found['peer_host']).not.toBe(follower.host);
    } finally {
      await conn.close();
    }
  }, 60_000);

  it('takes confirmed publishes and acked consumes through a follower’s proxy', async () => {
    const follower = cluster.followers(leader)[0]!;
    await publishConfirmed(follower.url, 'through-proxy', 0, 500);
    const { ids } = await consumeAll(follower.url, 'through-proxy', 250);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids.length).toBeGreaterThanOrEqual(250);
    consumedThroughProxy = ids.length;
  }, 60_000);

  it('a follower whose registration lapsed (lease run out while cut off) still forwards clients: the leader trusts its PROXY header', async () => {
    const follower = cluster.followers(leader)[1]!;
    const etcdClient = cluster.coordinator.etcd;
    const key = cluster.coordinator.nodesPrefix + follower.id;
    const registration = (await etcdClient.get(key))!;
    const registered = async (): Promise<boolean> => {
      const { body } = await api<Record<string, any>>(leader, '/api/cluster/status');
      return (body['nodes'] as Record<string, any>[]).some((r) => r['name'] === follower.id);
    };
    // What etcd does when the follower's lease runs out: its registration goes.
    await etcdClient.deleteRange(key);
    try {
      await waitFor(async () => !(await registered()), 'the leader to see the registration gone');
      await publishConfirmed(follower.url, 'lapsed-registration', 0, 10);
      const { ids } = await consumeAll(follower.url, 'lapsed-registration', 10);
      expect(ids.sort((x, y) => x - y)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    } finally {
      // As the follower does once it has a lease again.
      await etcdClient.put(key, registration.value, registration.lease);
    }
    await waitFor(registered, 'the registration back in the leader’s view');
  }, 60_000);

  it('survives kill -9 of the leader: a follower takes over within the lease TTL plus a few seconds, nothing confirmed is lost', async () => {
    await publishConfirmed(leader.url, 'failover', 0, 2000);
    const killedAt = Date.now();
    const old = leader;
    await old.kill();
    leader = await cluster.waitLeader(LEASE_TTL_SEC * 1000 + 15_000, old);
    const tookOverMs = Date.now() - killedAt;
    expect(tookOverMs).toBeLessThan(LEASE_TTL_SEC * 1000 + 8000);
    // The new leader ran the hook (e.g. to point a DNS name at itself).
    const epoch = (await cluster.view()).leader!.epoch;
    await waitFor(() => hookLines().length === 2, 'the new leader’s --on-leader-elected hook');
    expect(hookLines()[1]).toBe(hookLine(leader, epoch));
    // Clients reach the new leader through any live node.
    const follower = cluster.followers(leader).find((n) => n.running)!;
    const { ids, redelivered } = await consumeAll(follower.url, 'failover', 2000);
    expect(new Set(ids)).toEqual(new Set(Array.from({ length: 2000 }, (_, i) => i)));
    // Promoted from a copy: everything counts as possibly delivered before.
    expect(redelivered).toBe(ids.length);
    // The earlier queue's remaining messages (500 published, 250+ acked) survived too, none acked came back.
    const conn = await amqp.connect(leader.url);
    const ch = await conn.createChannel();
    const q = await ch.checkQueue('through-proxy');
    expect(q.messageCount).toBe(500 - consumedThroughProxy);
    await conn.close();
  }, 90_000);

  it('the killed node comes back as a follower and catches up', async () => {
    const old = cluster.nodes.find((n) => !n.running)!;
    await old.start();
    const isr = await cluster.waitInSync(3, 60_000);
    expect(isr).toContain(old.id);
    const view = await cluster.view();
    expect(view.leader?.id).toBe(leader.id);
  }, 90_000);

  it('cluster_leave: the leader hands over at once (no lease wait) with nothing lost, then stops', async () => {
    await publishConfirmed(leader.url, 'handover', 0, 1000);
    const old = leader;
    const follower = cluster.followers(leader)[0]!;
    const askedAt = Date.now();
    const out = await ctl(follower, ['cluster_leave', old.id]);
    expect(out.code).toBe(0);
    expect(out.stdout).toBe(`Asking node ${old.id} to leave the cluster ...\n`);
    leader = await cluster.waitLeader(30_000, old);
    // Resigned, not expired: well within the lease TTL.
    expect(Date.now() - askedAt).toBeLessThan(LEASE_TTL_SEC * 1000);
    await waitFor(() => !old.running || old.process?.exitCode === 0, 'the node that left to exit', 30_000);
    expect(old.process?.exitCode ?? 0).toBe(0);
    expect(old.output.join('')).toContain(`warren: node ${old.id} left the cluster`);
    const { ids } = await consumeAll(leader.url, 'handover', 1000);
    expect(new Set(ids).size).toBe(1000);
    const missing = await ctl(leader, ['cluster_leave', 'no-such-node']);
    expect(missing.code).toBe(65);
    expect(missing.stderr).toContain("no cluster node 'no-such-node' (see warrenctl cluster_status)");
  }, 90_000);
});
