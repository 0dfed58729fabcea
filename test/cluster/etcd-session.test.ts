// The etcd session against 3 real etcd members on loopback: the JSON-gateway client, the lease
// kept alive by a worker thread while the main thread is blocked, election under <prefix>/leader,
// the in-sync set written only while holding the leader key (fencing), the secret, and a lease
// that is gone (revoked, or etcd unreachable past the TTL) being noticed at once.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Coordinator, type NodeInfo } from '../../src/cluster/coordinator.js';
import { EtcdClient, EtcdError, type LeaderKey } from '../../src/cluster/etcd-client.js';
import { EtcdSession } from '../../src/cluster/session.js';
import { createLogger } from '../../src/log.js';
import { waitFor } from '../support/wait.js';
import { EtcdCluster, etcdHosts } from '../support/etcd.js';

const log = createLogger('silent');
let etcd: EtcdCluster;
let client: EtcdClient;
let prefixCounter = 0;
const prefix = (): string => `test-${process.pid}-${++prefixCounter}`;

function node(id: string): NodeInfo {
  return { id, host: '127.0.1.9', clusterPort: 1, amqpPort: 2, amqpTlsPort: 0, managementPort: 3, metricsPort: 0 };
}

beforeAll(async () => {
  etcd = await EtcdCluster.start({ hosts: etcdHosts(3, 201) });
  client = new EtcdClient(etcd.endpoints);
}, 60_000);

afterAll(async () => {
  client?.close();
  await etcd?.close();
});

describe('etcd JSON gateway client', () => {
  it('puts, reads by prefix, runs transactions and deletes', async () => {
    const p = prefix();
    await client.put(`${p}/a`, 'one');
    await client.put(`${p}/b`, Buffer.from([0, 1, 2, 255]));
    await client.put(`${p}0`, 'outside the prefix');
    const { kvs } = await client.range(`${p}/`, { prefix: true });
    expect(kvs.map((k) => k.key)).toEqual([`${p}/a`, `${p}/b`]);
    expect(kvs[0]!.value.toString()).toBe('one');
    expect([...kvs[1]!.value]).toEqual([0, 1, 2, 255]);
    const created = await client.txn([{ key: `${p}/c`, target: 'CREATE', result: 'EQUAL', createRevision: 0 }], [{ put: { key: `${p}/c`, value: 'x' } }]);
    expect(created.succeeded).toBe(true);
    const again = await client.txn(
      [{ key: `${p}/c`, target: 'CREATE', result: 'EQUAL', createRevision: 0 }],
      [{ put: { key: `${p}/c`, value: 'y' } }],
      [{ range: { key: `${p}/c` } }],
    );
    expect(again.succeeded).toBe(false);
    expect(again.responses[0]![0]!.value.toString()).toBe('x');
    expect(await client.deleteRange(`${p}/`, { prefix: true })).toBe(3);
    expect(await client.get(`${p}/a`)).toBeNull();
  });

  it('keeps working with one member stopped, and says etcd is unreachable when none answers', async () => {
    const p = prefix();
    await etcd.stop(0);
    try {
      await client.put(`${p}/k`, 'v');
      expect((await client.get(`${p}/k`))!.value.toString()).toBe('v');
    } finally {
      etcd.restart(0);
      await etcd.waitHealthy();
    }
    const nobody = new EtcdClient(['http://127.0.1.250:1'], { timeoutMs: 1000 });
    const err = await nobody.get('x').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EtcdError);
    expect((err as EtcdError).unreachable).toBe(true);
    expect((err as EtcdError).message).toMatch(/^etcd unreachable at http:\/\/127\.0\.1\.250:1/);
    nobody.close();
  }, 60_000);
});

describe('lease session', () => {
  it('stays valid while the main thread is blocked for longer than the TTL (renewed by its worker)', async () => {
    const session = await EtcdSession.open(client, { ttlSec: 2, log });
    try {
      const p = prefix();
      await client.put(`${p}/mine`, 'held', session.leaseId);
      expect(session.valid).toBe(true);
      // Busy for 2.5 TTLs: only the worker thread can renew the lease meanwhile.
      const until = Date.now() + 5000;
      while (Date.now() < until) {
        /* blocked */
      }
      expect(session.valid).toBe(true);
      expect((await client.get(`${p}/mine`))!.value.toString()).toBe('held');
    } finally {
      await session.close(true);
    }
  }, 30_000);

  it('notices at once when its lease is revoked, and its keys are gone', async () => {
    const session = await EtcdSession.open(client, { ttlSec: 3, log });
    const p = prefix();
    await client.put(`${p}/mine`, 'held', session.leaseId);
    let reason = '';
    session.onLost((r) => (reason = r));
    const revokedAt = Date.now();
    await client.leaseRevoke(session.leaseId);
    await waitFor(() => reason !== '', 'the session to report the lease lost', 5000);
    // The keeper renews every TTL/3: the loss is seen on the next renewal at the latest.
    expect(Date.now() - revokedAt).toBeLessThan(3000);
    expect(reason).toBe('etcd says the lease has expired');
    expect(session.valid).toBe(false);
    expect(await client.get(`${p}/mine`)).toBeNull();
    await session.close(false);
  }, 30_000);

  it('stops counting the lease as held when etcd is unreachable past its TTL', async () => {
    const session = await EtcdSession.open(client, { ttlSec: 3, log });
    let lost = false;
    session.onLost(() => (lost = true));
    // Every member paused: no renewal can reach etcd.
    for (let i = 0; i < 3; i++) etcd.pause(i);
    const pausedAt = Date.now();
    try {
      await waitFor(() => !session.valid, 'the lease to stop counting as valid', 10_000);
      const invalidAfter = Date.now() - pausedAt;
      // Never beyond the TTL etcd granted (it raises short TTLs to its own minimum; the validity is
      // counted from when the last renewal was sent).
      expect(session.ttlSec).toBeGreaterThanOrEqual(3);
      expect(invalidAfter).toBeLessThanOrEqual(session.ttlSec * 1000 + 300);
      await waitFor(() => lost, 'the lost event', 5000);
    } finally {
      for (let i = 0; i < 3; i++) etcd.resume(i);
      await etcd.waitHealthy();
      await session.close(false);
    }
  }, 60_000);
});

describe('election, in-sync set and secret', () => {
  it('elects one leader at a time; the next candidate takes over when the leader lease goes', async () => {
    const coordinator = new Coordinator(client, prefix(), log);
    const a = await EtcdSession.open(client, { ttlSec: 5, log });
    const b = await EtcdSession.open(client, { ttlSec: 5, log });
    try {
      const keyA = await coordinator.campaign(node('a'), a.leaseId, new AbortController().signal);
      let keyB: LeaderKey | null = null;
      const campaignB = coordinator.campaign(node('b'), b.leaseId, new AbortController().signal).then((k) => (keyB = k));
      await waitFor(async () => (await client.range(`${coordinator.electionName}/`, { prefix: true })).kvs.length === 2, 'two candidates');
      let view = await coordinator.view();
      expect(view.leader?.id).toBe('a');
      expect(view.leader?.epoch).toBe(Number(keyA.rev));
      expect(keyB).toBeNull();
      await a.close(true); // the leader's lease goes: its key with it
      await campaignB;
      view = await coordinator.view();
      expect(view.leader?.id).toBe('b');
      expect(view.leader!.epoch).toBeGreaterThan(Number(keyA.rev));
    } finally {
      await a.close(true);
      await b.close(true);
    }
  }, 30_000);

  it('an aborted campaign leaves no candidate key behind', async () => {
    const coordinator = new Coordinator(client, prefix(), log);
    const a = await EtcdSession.open(client, { ttlSec: 5, log });
    const b = await EtcdSession.open(client, { ttlSec: 5, log });
    try {
      await coordinator.campaign(node('a'), a.leaseId, new AbortController().signal);
      const abort = new AbortController();
      const pending = coordinator.campaign(node('b'), b.leaseId, abort.signal).catch((e: unknown) => e);
      await waitFor(async () => (await client.range(`${coordinator.electionName}/`, { prefix: true })).kvs.length === 2, 'two candidates');
      abort.abort();
      await pending;
      await waitFor(async () => (await client.range(`${coordinator.electionName}/`, { prefix: true })).kvs.length === 1, 'the aborted candidate key to go');
    } finally {
      await a.close(true);
      await b.close(true);
    }
  }, 30_000);

  it('writes the in-sync set only while holding the leader key', async () => {
    const coordinator = new Coordinator(client, prefix(), log);
    const a = await EtcdSession.open(client, { ttlSec: 5, log });
    try {
      const key = await coordinator.campaign(node('a'), a.leaseId, new AbortController().signal);
      expect(await coordinator.writeIsr(key, ['a', 'b'])).toBe(true);
      expect((await coordinator.view()).isr).toEqual(['a', 'b']);
      await coordinator.resign(key);
      expect(await coordinator.writeIsr(key, ['a'])).toBe(false);
      expect((await coordinator.view()).isr).toEqual(['a', 'b']);
    } finally {
      await a.close(true);
    }
  }, 30_000);

  it('creates the shared secret once; every node reads the same one', async () => {
    const p = prefix();
    const one = new Coordinator(client, p, log);
    const two = new Coordinator(new EtcdClient([...etcd.endpoints].reverse()), p, log);
    const [s1, s2] = await Promise.all([one.secret(), two.secret()]);
    expect(s1).toMatch(/^[0-9a-f]{64}$/);
    expect(s2).toBe(s1);
    expect(await one.secret()).toBe(s1);
    two.etcd.close();
  });
});
