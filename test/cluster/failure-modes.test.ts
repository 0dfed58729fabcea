// Known failure modes of a leader-follower cluster on etcd, each against real etcd members and
// Warren nodes on loopback:
//   - old messages coming back after a follower resyncs (it gets a whole snapshot, never a merge);
//   - a leader whose disk stalls while its lease keeps being renewed (the disk watchdog steps it
//     down; a real frozen file system — fsfreeze on a loop-mounted ext4, when this machine allows it);
//   - leadership lost because the broker is busy (thousands of consumers disconnecting at once).

import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import amqp from 'amqplib';
import { afterAll, describe, expect, it } from 'vitest';
import { waitFor } from '../support/wait.js';
import { EtcdCluster, etcdHosts } from '../support/etcd.js';
import { WarrenCluster } from './support/cluster.js';
import { api, consumeAll, publishConfirmed, queueDepth } from './support/clients.js';

let etcd: EtcdCluster | null = null;
const clusters: WarrenCluster[] = [];

async function etcdCluster(): Promise<EtcdCluster> {
  etcd ??= await EtcdCluster.start({ hosts: etcdHosts(3, 231) });
  return etcd;
}

afterAll(async () => {
  for (const c of clusters) await c.close();
  await etcd?.close();
});

interface StatusRow {
  name: string;
  in_sync: boolean;
  replication: { state: string; acked_seq: number } | null;
}

describe('a follower that resyncs', () => {
  it('gets a whole snapshot when its position is gone from the log: acked messages and deleted queues do not come back', async () => {
    const cluster = await WarrenCluster.create(await etcdCluster(), 3, 31, { leaseTtlSec: 5, extraArgs: ['--cluster-log-retain', '256KB'] });
    clusters.push(cluster);
    await cluster.startAll();
    const leader = await cluster.waitLeader(60_000);
    await cluster.waitInSync(3, 60_000);
    const [behind, third] = cluster.followers(leader);
    await publishConfirmed(leader.url, 'resync-acked', 0, 200);
    await publishConfirmed(leader.url, 'resync-deleted', 0, 50);
    await waitFor(async () => {
      const { body } = await api<{ nodes: StatusRow[]; committed_seq: number }>(leader, '/api/cluster/status');
      return body.nodes.filter((n) => n.replication !== null).every((n) => n.replication!.acked_seq === body.committed_seq);
    }, 'both followers to have everything');
    await behind!.stop();
    // While it is away: everything it holds is consumed or deleted, new things arrive, and the
    // log moves on far beyond what it retains.
    await consumeAll(leader.url, 'resync-acked', 200);
    const conn = await amqp.connect(leader.url);
    const ch = await conn.createChannel();
    await ch.deleteQueue('resync-deleted');
    await conn.close();
    await publishConfirmed(leader.url, 'resync-kept', 0, 10);
    const { body: before } = await api<{ committed_seq: number }>(leader, '/api/cluster/status');
    await publishConfirmed(leader.url, 'resync-filler', 0, 40, Buffer.alloc(64 * 1024, 1));
    await consumeAll(leader.url, 'resync-filler', 40);
    await waitFor(async () => (await api<{ log_first_seq: number }>(leader, '/api/cluster/status')).body.log_first_seq > before.committed_seq, 'the log to drop the records the stopped follower would need', 30_000);
    const installs = (): number => (behind!.output.join('').match(/"msg":"snapshot installed"/g) ?? []).length;
    const installedBefore = installs();
    await behind!.start();
    await waitFor(() => installs() > installedBefore, 'the follower to install a snapshot', 60_000);
    await cluster.waitInSync(3, 60_000);
    // Make the resynced node the leader: the third stops, then the leader hands over.
    await third!.stop();
    await waitFor(async () => (await cluster.view()).isr?.length === 2, 'the in-sync set without the third node', 30_000);
    await leader.stop();
    const next = await cluster.waitLeader(30_000, leader);
    expect(next.id).toBe(behind!.id);
    expect(await queueDepth(next.url, 'resync-acked')).toBe(0);
    expect(await queueDepth(next.url, 'resync-deleted')).toBeNull();
    expect(await queueDepth(next.url, 'resync-kept')).toBe(10);
    expect(await queueDepth(next.url, 'resync-filler')).toBe(0);
  }, 240_000);
});

/** A loop-mounted ext4 file system that can be frozen (root, loop devices and fsfreeze needed). */
function loopMount(): { mountPoint: string; freeze(): void; thaw(): void; remove(): void } | null {
  const root = mkdtempSync(join(tmpdir(), 'warren-stall-'));
  const image = join(root, 'disk.img');
  const mountPoint = join(root, 'mnt');
  try {
    mkdirSync(mountPoint);
    execFileSync('truncate', ['-s', '256M', image]);
    execFileSync('mkfs.ext4', ['-q', '-F', image], { stdio: 'ignore' });
    execFileSync('mount', ['-o', 'loop', image, mountPoint], { stdio: 'ignore' });
  } catch {
    rmSync(root, { recursive: true, force: true });
    return null;
  }
  let frozen = false;
  return {
    mountPoint,
    freeze() {
      execFileSync('fsfreeze', ['-f', mountPoint]);
      frozen = true;
    },
    thaw() {
      if (frozen) execFileSync('fsfreeze', ['-u', mountPoint]);
      frozen = false;
    },
    remove() {
      if (frozen) execFileSync('fsfreeze', ['-u', mountPoint]);
      try {
        execFileSync('umount', [mountPoint], { stdio: 'ignore' });
      } catch {
        execFileSync('umount', ['-l', mountPoint], { stdio: 'ignore' });
      }
      rmSync(root, { recursive: true, force: true });
    },
  };
}

const disk = process.getuid?.() === 0 ? loopMount() : null;

describe.skipIf(disk === null)('a leader whose disk stalls', () => {
  afterAll(() => disk?.remove());

  it('steps down (disk watchdog) although its lease is renewed; a follower takes over with every confirmed message', async () => {
    const cluster = await WarrenCluster.create(await etcdCluster(), 3, 41, { leaseTtlSec: 5, dataDirs: [join(disk!.mountPoint, 'node1')] });
    clusters.push(cluster);
    const [first, ...rest] = cluster.nodes;
    // The node on the freezable disk starts alone, so it leads.
    await first!.start();
    const leader = await cluster.waitLeader(60_000);
    expect(leader).toBe(first);
    await Promise.all(rest.map((n) => n.start()));
    await cluster.waitInSync(3, 60_000);
    await publishConfirmed(leader.url, 'stall', 0, 1000);
    const conn = await amqp.connect(leader.url);
    conn.on('error', () => {});
    const ch = await conn.createConfirmChannel();
    ch.on('error', () => {});
    let confirmedDuringStall = false;
    disk!.freeze();
    const frozenAt = Date.now();
    try {
      ch.sendToQueue('stall', Buffer.from('during'), { persistent: true, messageId: 'during' }, (err) => {
        if (err === null || err === undefined) confirmedDuringStall = true;
      });
      const next = await cluster.waitLeader(30_000, leader);
      // The watchdog's limit is half the lease TTL (at least 2 s); then the election.
      expect(Date.now() - frozenAt).toBeLessThan(5000 / 2 + 10_000);
      expect(confirmedDuringStall).toBe(false);
      expect(leader.output.join('')).toMatch(/"reason":"the disk has not committed for \d+ ms","msg":"stepping down as leader"/);
      const { ids } = await consumeAll(next.url, 'stall', 1000);
      for (let i = 0; i < 1000; i++) expect(ids).toContain(i);
    } finally {
      disk!.thaw();
      await conn.close().catch(() => {});
    }
    await leader.kill();
  }, 180_000);
});

describe('a busy leader', () => {
  it('keeps its leadership while thousands of consumers disconnect at once', async () => {
    const cluster = await WarrenCluster.create(await etcdCluster(), 3, 51, { leaseTtlSec: 5 });
    clusters.push(cluster);
    await cluster.startAll();
    const leader = await cluster.waitLeader(60_000);
    await cluster.waitInSync(3, 60_000);
    const epoch = (await cluster.view()).leader!.epoch;
    const connections: amqp.ChannelModel[] = [];
    for (let c = 0; c < 10; c++) {
      const conn = await amqp.connect(leader.url);
      conn.on('error', () => {});
      const ch = await conn.createChannel();
      await ch.assertQueue(`busy-${c}`, { durable: true });
      await Promise.all(Array.from({ length: 500 }, () => ch.consume(`busy-${c}`, () => {})));
      connections.push(conn);
    }
    const { body } = await api<{ object_totals: { consumers: number } }>(leader, '/api/overview');
    expect(body.object_totals.consumers).toBe(5000);
    // Every socket cut at the same moment.
    for (const conn of connections) (conn as unknown as { connection: { stream: { destroy(): void } } }).connection.stream.destroy();
    await waitFor(async () => (await api<{ object_totals: { consumers: number } }>(leader, '/api/overview')).body.object_totals.consumers === 0, 'the consumers to be gone', 60_000);
    // Longer than the lease: had it lapsed, another node would lead by now.
    await new Promise((r) => setTimeout(r, 6000));
    const view = await cluster.view();
    expect(view.leader?.id).toBe(leader.id);
    expect(view.leader?.epoch).toBe(epoch);
    expect(leader.output.join('')).not.toContain('stepping down as leader');
    await publishConfirmed(leader.url, 'busy-after', 0, 10);
  }, 180_000);
});
