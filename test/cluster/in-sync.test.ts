// The in-sync set and the confirm rule (LavinMQ 2.9's): a confirm goes out only when every in-sync
// follower has the message and any shrink of the set is committed in etcd. Failure modes of this
// design, each against 3 real etcd members and 3 Warren nodes:
//   - a frozen follower holds confirms only until it is dropped (the lag limit), never beyond;
//   - a follower stuck in catch-up (not in sync) holds nobody's confirms;
//   - with etcd unreachable a shrink cannot commit, so confirms wait (never sent early);
//   - a node out of the in-sync set never becomes leader, even when it is the only one left;
//   - a leader whose lease ran out while etcd had no quorum does not hold the election afterwards
//     (etcd extends every lease when it elects its own new leader: the lease is revoked instead);
//   - a graceful leader shutdown hands over to an in-sync follower at once, nothing lost.

import amqp from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../support/wait.js';
import { EtcdCluster, etcdHosts } from '../support/etcd.js';
import { WarrenCluster, type WarrenNode } from './support/cluster.js';
import { api, consumeAll, publishConfirmed } from './support/clients.js';

const LEASE_TTL_SEC = 8;
const MAX_LAG_MS = 2000;
let etcd: EtcdCluster;
let cluster: WarrenCluster;
let leader: WarrenNode;

beforeAll(async () => {
  etcd = await EtcdCluster.start({ hosts: etcdHosts(3, 221) });
  cluster = await WarrenCluster.create(etcd, 3, 21, { leaseTtlSec: LEASE_TTL_SEC, maxLagMs: MAX_LAG_MS });
  await cluster.startAll();
  leader = await cluster.waitLeader(60_000);
  await cluster.waitInSync(3, 60_000);
}, 120_000);

afterAll(async () => {
  await cluster?.close();
  await etcd?.close();
});

/** Publishes one persistent message on an open confirm channel; resolves with ms until its confirm. */
function timedConfirm(ch: amqp.ConfirmChannel, queue: string, id: string): Promise<number> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    ch.sendToQueue(queue, Buffer.from(id), { persistent: true, messageId: id }, (err) => (err ? reject(err as Error) : resolve(Date.now() - started)));
  });
}

async function confirmChannel(node: WarrenNode, queue: string): Promise<{ conn: amqp.ChannelModel; ch: amqp.ConfirmChannel }> {
  const conn = await amqp.connect(node.url);
  conn.on('error', () => {});
  const ch = await conn.createConfirmChannel();
  ch.on('error', () => {});
  await ch.assertQueue(queue, { durable: true });
  return { conn, ch };
}

/**
 * The leader, once it holds its etcd lease for more than half a TTL ahead (renewals get through).
 * The node elected first after an etcd outage may hold a lease it last renewed before the outage:
 * seen under load after the no-quorum test, elected 0.9 s before that lease ran out here, when it
 * stepped down and closed the next test's publishing connection ('Channel ended').
 */
async function settledLeader(): Promise<WarrenNode> {
  return waitFor(
    async () => {
      const node = await cluster.waitLeader(30_000);
      const status = await api<{ role: string; lease_valid_ms: number }>(node, '/api/cluster/status').catch(() => null);
      return status?.body.role === 'leader' && status.body.lease_valid_ms > (LEASE_TTL_SEC * 1000) / 2 ? node : null;
    },
    'a leader whose lease is valid for more than half a TTL ahead',
    60_000,
  );
}

describe('in-sync set', () => {
  it('a frozen follower holds confirms until it is dropped from the set, then they flow again', async () => {
    const [frozen] = cluster.followers(leader);
    const { conn, ch } = await confirmChannel(leader, 'frozen-follower');
    try {
      expect(await timedConfirm(ch, 'frozen-follower', 'warm-up')).toBeLessThan(MAX_LAG_MS);
      frozen!.pause();
      const waited = await timedConfirm(ch, 'frozen-follower', 'held');
      // Held for the lag limit (the follower could not acknowledge), released by the shrink.
      expect(waited).toBeGreaterThanOrEqual(MAX_LAG_MS - 300);
      expect(waited).toBeLessThan(MAX_LAG_MS + 8000);
      const isr = (await cluster.view()).isr!;
      expect(isr).not.toContain(frozen!.id);
      expect(isr).toHaveLength(2);
      expect(await timedConfirm(ch, 'frozen-follower', 'after')).toBeLessThan(MAX_LAG_MS);
    } finally {
      frozen!.resume();
      await conn.close().catch(() => {});
    }
    await cluster.waitInSync(3, 60_000);
  }, 90_000);

  it('a follower stuck in catch-up holds nobody’s confirms', async () => {
    const [behind] = cluster.followers(leader);
    await behind!.stop();
    await waitFor(async () => (await cluster.view()).isr?.length === 2, 'the stopped follower to leave the set', 30_000);
    // Enough to take a while to catch up.
    await publishConfirmed(leader.url, 'catch-up', 0, 120, Buffer.alloc(256 * 1024, 7));
    await behind!.start();
    // Connected and catching up, not in sync: freeze it there.
    await waitFor(
      async () => {
        const { body } = await api<{ nodes: { name: string; in_sync: boolean; replication: { state: string } | null }[] }>(leader, '/api/cluster/status');
        const row = body.nodes.find((n) => n.name === behind!.id);
        // 'streaming' is also the state of a follower in sync: one that caught up before this
        // poll came round (a slow answer on a loaded machine) must not be taken for one catching up.
        if (row?.in_sync === false && (row.replication?.state === 'streaming' || row.replication?.state === 'snapshot')) {
          behind!.pause();
          return true;
        }
        return false;
      },
      'the restarted follower to connect',
      30_000,
    );
    const { conn, ch } = await confirmChannel(leader, 'catch-up');
    try {
      const view = await cluster.view();
      expect(view.isr).not.toContain(behind!.id);
      expect(await timedConfirm(ch, 'catch-up', 'not-held')).toBeLessThan(MAX_LAG_MS);
    } finally {
      behind!.resume();
      await conn.close().catch(() => {});
    }
    await cluster.waitInSync(3, 60_000);
    const { ids } = await consumeAll(leader.url, 'catch-up', 121);
    expect(new Set(ids).size).toBe(121);
  }, 120_000);

  it('with etcd unreachable a lagging follower cannot be dropped: confirms wait, and go out once etcd is back', async () => {
    const [frozen] = cluster.followers(leader);
    const { conn, ch } = await confirmChannel(leader, 'etcd-down');
    let confirmedAfter = -1;
    try {
      expect(await timedConfirm(ch, 'etcd-down', 'warm-up')).toBeLessThan(MAX_LAG_MS);
      frozen!.pause();
      for (let i = 0; i < 3; i++) etcd.pause(i);
      const pausedAt = Date.now();
      const pending = timedConfirm(ch, 'etcd-down', 'held').then((ms) => (confirmedAfter = ms));
      // Well past the lag limit, still within the lease: only the uncommitted shrink holds it.
      await new Promise((r) => setTimeout(r, MAX_LAG_MS + 2000));
      expect(confirmedAfter).toBe(-1);
      for (let i = 0; i < 3; i++) etcd.resume(i);
      const resumedAt = Date.now();
      expect(resumedAt - pausedAt).toBeLessThan(LEASE_TTL_SEC * 1000 - 1000);
      await pending;
      expect(confirmedAfter).toBeGreaterThanOrEqual(resumedAt - pausedAt - 50);
      expect((await cluster.view()).isr).not.toContain(frozen!.id);
    } finally {
      for (let i = 0; i < 3; i++) etcd.resume(i);
      frozen!.resume();
      await conn.close().catch(() => {});
    }
    await cluster.waitInSync(3, 60_000);
  }, 90_000);

  it('a node out of the in-sync set never leads, even alone: the cluster waits for an in-sync node, nothing confirmed lost', async () => {
    const [inSync, outOfSync] = cluster.followers(leader);
    await outOfSync!.stop();
    await waitFor(async () => (await cluster.view()).isr?.length === 2, 'the stopped follower to leave the set', 30_000);
    // Confirmed while it is away: it does not have these.
    await publishConfirmed(leader.url, 'only-in-sync', 0, 100);
    const old = leader;
    await old.kill();
    await inSync!.kill();
    await outOfSync!.start();
    // The dead leader's lease runs out; the only running node is registered, eligible in every
    // other way, and must not take over.
    await waitFor(
      async () => {
        const v = await cluster.view();
        return v.leader === null && v.nodes.length === 1 && v.nodes[0]!.id === outOfSync!.id;
      },
      'the dead leader’s key to expire with only the out-of-sync node registered',
      LEASE_TTL_SEC * 1000 + 20_000,
    );
    // Well past the time an election takes here (well under a second once a candidate exists).
    await new Promise((r) => setTimeout(r, 3000));
    expect((await cluster.view()).leader).toBeNull();
    await inSync!.start();
    leader = await cluster.waitLeader(30_000);
    expect(leader.id).toBe(inSync!.id);
    const { ids } = await consumeAll(leader.url, 'only-in-sync', 100);
    expect(new Set(ids).size).toBe(100);
    await old.start();
    await cluster.waitInSync(3, 60_000);
  }, 120_000);

  it('a leader whose lease ran out while etcd had no quorum: a new leader is elected as soon as etcd is back, nothing confirmed lost', async () => {
    await publishConfirmed(leader.url, 'no-quorum', 0, 500);
    const old = leader;
    const oldEpoch = (await cluster.view()).leader!.epoch;
    await etcd.stop(1);
    await etcd.stop(2);
    try {
      await waitFor(
        () => /"reason":"the etcd lease is gone[^"]*","msg":"stepping down as leader"/.test(old.output.join('')),
        'the leader to step down when its lease runs out',
        LEASE_TTL_SEC * 1000 + 20_000,
      );
    } finally {
      etcd.restart(1);
      etcd.restart(2);
    }
    await etcd.waitHealthy(60_000);
    const backAt = Date.now();
    await waitFor(
      async () => {
        const v = await cluster.view().catch(() => null);
        return v?.leader !== null && v?.leader !== undefined && v.leader.epoch !== oldEpoch ? v.leader : null;
      },
      'a new election',
      LEASE_TTL_SEC * 1000 + 20_000,
    );
    // etcd's new leader extended every lease by a whole TTL: had the old leader's lease (and its
    // election key) been left to expire, no election could have finished before then.
    const electedMs = Date.now() - backAt;
    expect(electedMs, `a new leader ${electedMs} ms after etcd was back`).toBeLessThan(LEASE_TTL_SEC * 1000);
    // Under load the first node elected after etcd's return has been seen to hand over to another
    // within seconds (both in sync), so which node leads in the end is not asserted: what this test
    // proves is the prompt election above and no loss below (read from a leader whose lease is
    // renewed, so that it does not step down while it is being read).
    leader = await settledLeader();
    const { ids } = await consumeAll(leader.url, 'no-quorum', 500);
    expect(new Set(ids).size).toBe(500);
    await cluster.waitInSync(3, 60_000);
  }, 120_000);

  it('a graceful leader shutdown hands over to an in-sync follower at once; every confirmed message is there', async () => {
    // Independent of the tests before: all three nodes in sync under a settled leader.
    await cluster.waitInSync(3, 60_000);
    leader = await settledLeader();
    await publishConfirmed(leader.url, 'graceful', 0, 3000);
    const old = leader;
    await old.stop();
    // Resigned: its election key was gone before it exited, so nobody waits for its lease to run
    // out (a crashed leader's key stays LEASE_TTL_SEC). Read from etcd rather than timed: a time
    // bound from the stop also counted the graceful stop itself, slow on a loaded machine.
    const afterExit = await cluster.view();
    expect(afterExit.leader?.id ?? null, 'the leader key right after the old leader exited').not.toBe(old.id);
    leader = await cluster.waitLeader(30_000, old);
    const { ids } = await consumeAll(leader.url, 'graceful', 3000);
    expect(new Set(ids).size).toBe(3000);
    await old.start();
    await cluster.waitInSync(3, 60_000);
  }, 90_000);
});
