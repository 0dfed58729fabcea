// A 3-node Warren cluster on 3 real etcd members, all on loopback: election, replication to every
// node, a publisher with confirms and a consumer with acks through a follower's proxy, kill -9 of
// the leader with a follower taking over within the lease TTL plus a few seconds, clients
// reconnecting, and every confirmed message there.

import amqp from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../support/wait.js';
import { EtcdCluster } from './support/etcd.js';
import { WarrenCluster, type WarrenNode } from './support/cluster.js';

const LEASE_TTL_SEC = 5;
let etcd: EtcdCluster;
let cluster: WarrenCluster;

beforeAll(async () => {
  etcd = await EtcdCluster.start(3, 211);
  cluster = await WarrenCluster.create(etcd, 3, 11, { leaseTtlSec: LEASE_TTL_SEC });
  await cluster.startAll();
}, 90_000);

afterAll(async () => {
  await cluster?.close();
  await etcd?.close();
});

async function publishConfirmed(url: string, queue: string, from: number, count: number): Promise<void> {
  const conn = await amqp.connect(url);
  try {
    const ch = await conn.createConfirmChannel();
    await ch.assertQueue(queue, { durable: true });
    for (let i = from; i < from + count; i++) ch.sendToQueue(queue, Buffer.from(`m-${i}`), { persistent: true, messageId: String(i) });
    await ch.waitForConfirms();
  } finally {
    await conn.close().catch(() => {});
  }
}

/** Consumes with manual acks until `expected` distinct messages arrived; returns the ids seen. */
async function consumeAll(url: string, queue: string, expected: number, timeoutMs = 30_000): Promise<{ ids: number[]; redelivered: number }> {
  const conn = await amqp.connect(url);
  const ids: number[] = [];
  let redelivered = 0;
  try {
    const ch = await conn.createChannel();
    await ch.prefetch(200);
    await ch.consume(queue, (msg) => {
      if (msg === null) return;
      ids.push(Number(msg.properties.messageId));
      if (msg.fields.redelivered) redelivered++;
      ch.ack(msg);
    });
    await waitFor(() => new Set(ids).size >= expected, `${expected} messages from ${queue}`, timeoutMs);
  } finally {
    await conn.close().catch(() => {});
  }
  return { ids, redelivered };
}

describe('3-node cluster', () => {
  let leader: WarrenNode;

  it('elects one leader and puts every node in the in-sync set', async () => {
    leader = await cluster.waitLeader(60_000);
    const isr = await cluster.waitInSync(3, 60_000);
    expect(isr.sort()).toEqual(cluster.nodes.map((n) => n.id).sort());
    const view = await cluster.view();
    expect(view.nodes.map((n) => n.id).sort()).toEqual(isr.sort());
  }, 90_000);

  it('takes confirmed publishes and acked consumes through a follower’s proxy', async () => {
    const follower = cluster.followers(leader)[0]!;
    await publishConfirmed(follower.url, 'through-proxy', 0, 500);
    const { ids } = await consumeAll(follower.url, 'through-proxy', 250);
    expect(new Set(ids).size).toBeGreaterThanOrEqual(250);
  }, 60_000);

  it('survives kill -9 of the leader: a follower takes over within the lease TTL plus a few seconds, nothing confirmed is lost', async () => {
    await publishConfirmed(leader.url, 'failover', 0, 2000);
    const killedAt = Date.now();
    const old = leader;
    await old.kill();
    leader = await cluster.waitLeader(LEASE_TTL_SEC * 1000 + 15_000, old);
    const tookOverMs = Date.now() - killedAt;
    expect(tookOverMs).toBeLessThan(LEASE_TTL_SEC * 1000 + 8000);
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
    expect(q.messageCount).toBeLessThanOrEqual(250);
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
});
