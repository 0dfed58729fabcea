// The overview's message_stats and churn_rates as RabbitMQ 3.10 shows them — the same keys
// (publish, confirm, deliver, deliver_no_ack, get, get_no_ack, get_empty, deliver_get, redeliver,
// ack, drop_unroutable, return_unroutable, disk_reads, disk_writes, each with _details.rate) and
// exact counts after real amqplib traffic — taken from the broker-level totals, so they stay when
// the queue, channels and connection that counted them are gone (the vhost's message_stats and byte
// counts too). Also head_message_timestamp: the
// timestamp property of the next message to deliver, null without one, absent for quorum queues
// and streams. Runs against RabbitMQ too (WARREN_TEST_MGMT_URL + WARREN_TEST_AMQP_URL): counts are
// compared as differences, and RabbitMQ's statistics arrive a few seconds late.

import amqp from 'amqplib';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../support/wait.js';
import { enc } from './api-client.js';
import { startMgmtTarget, EXTERNAL_MGMT, type MgmtTarget } from './target.js';

let target: MgmtTarget;
beforeAll(async () => {
  target = await startMgmtTarget();
});
afterAll(async () => {
  await target?.stop();
});

/** RabbitMQ 3.10's overview message_stats keys. */
const MESSAGE_KEYS = [
  'ack', 'confirm', 'deliver', 'deliver_get', 'deliver_no_ack', 'disk_reads', 'disk_writes', 'drop_unroutable',
  'get', 'get_empty', 'get_no_ack', 'publish', 'redeliver', 'return_unroutable',
];
const CHURN_KEYS = ['channel_closed', 'channel_created', 'connection_closed', 'connection_created', 'queue_created', 'queue_declared', 'queue_deleted'];
/** How long RabbitMQ may take to show new statistics (it collects every 5 s). */
const STATS_DELAY_MS = EXTERNAL_MGMT ? 20_000 : 2_000;

type Stats = Record<string, number | { rate: number }>;

async function overview(): Promise<{ message_stats: Stats; churn_rates: Stats }> {
  const r = await target.api.get('/api/overview');
  expect(r.status).toBe(200);
  return r.body;
}

/** The counts of some keys (0 for a key not shown yet: a fresh RabbitMQ shows none). */
function counts(stats: Stats, keys: readonly string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const k of keys) out[k] = typeof stats[k] === 'number' ? stats[k] : 0;
  return out;
}

function minus(a: Record<string, number>, b: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const k of Object.keys(a)) out[k] = a[k]! - (b[k] ?? 0);
  return out;
}

/** The keys counted exactly (RabbitMQ's disk_reads/disk_writes depend on its queue index). */
const EXACT_KEYS = MESSAGE_KEYS.filter((k) => !k.startsWith('disk_'));
/** The vhost message_stats keys Warren keeps per vhost (RabbitMQ has confirm, get, … there too). */
const VHOST_KEYS = ['ack', 'deliver_get', 'drop_unroutable', 'publish', 'redeliver', 'return_unroutable'];

async function vhostRow(): Promise<{ message_stats?: Stats; recv_oct: number; send_oct: number }> {
  const r = await target.api.get('/api/vhosts/%2F');
  expect(r.status).toBe(200);
  return r.body;
}

describe('overview message_stats', () => {
  const queue = `overview-stats-${randomUUID()}`;
  const expected: Record<string, number> = {
    publish: 15,
    confirm: 15,
    deliver: 10,
    deliver_no_ack: 1,
    get: 2,
    get_no_ack: 1,
    get_empty: 1,
    deliver_get: 14,
    redeliver: 1,
    ack: 11,
    drop_unroutable: 1,
    return_unroutable: 1,
  };
  let before: Record<string, number>;
  let churnBefore: Record<string, number>;
  let after: Record<string, number>;
  let vhostBefore: Record<string, number>;
  let vhostAfter: Record<string, number>;
  let octetsAfter: [number, number];

  it('has RabbitMQ’s keys, each with _details.rate, and exact counts after real traffic', async () => {
    const start = await overview();
    before = counts(start.message_stats, MESSAGE_KEYS);
    churnBefore = counts(start.churn_rates, CHURN_KEYS);
    vhostBefore = counts((await vhostRow()).message_stats ?? {}, VHOST_KEYS);

    const conn = await amqp.connect(target.amqpUrl);
    const pub = await conn.createConfirmChannel();
    const ch = await conn.createChannel();
    await ch.assertQueue(queue, { durable: true });
    for (let i = 0; i < 10; i++) pub.sendToQueue(queue, Buffer.from(`m${i}`), { persistent: true, timestamp: 1_700_000_000 + i });
    await pub.waitForConfirms();
    // consume with manual acks: deliver 10, ack 10 (closing the channel ends the consumer)
    let seen = 0;
    await new Promise<void>((resolve) => {
      void ch.consume(queue, (m) => {
        ch.ack(m!);
        if (++seen === 10) resolve();
      });
    });
    await ch.close();
    const getter = await conn.createChannel();
    pub.sendToQueue(queue, Buffer.from('g1'));
    pub.sendToQueue(queue, Buffer.from('g2'));
    await pub.waitForConfirms();
    // get (manual), nack with requeue, get again (redelivered), ack: get 2, redeliver 1, ack 1
    const first = await waitFor(() => getter.get(queue), 'a message to get');
    getter.nack(first, false, true);
    const again = await waitFor(() => getter.get(queue), 'the requeued message');
    expect(again.fields.redelivered).toBe(true);
    getter.ack(again);
    // get with no ack: get_no_ack 1; then the queue is empty: get_empty 1
    await waitFor(() => getter.get(queue, { noAck: true }), 'the second message');
    expect(await getter.get(queue)).toBe(false);
    // consume with no ack: deliver_no_ack 1
    pub.sendToQueue(queue, Buffer.from('n1'));
    await pub.waitForConfirms();
    await new Promise<void>((resolve) => {
      void getter.consume(queue, () => resolve(), { noAck: true });
    });
    // unroutable: returned (mandatory) and dropped; both confirmed
    pub.publish('amq.direct', `nowhere-${randomUUID()}`, Buffer.from('r'), { mandatory: true });
    pub.publish('amq.direct', `nowhere-${randomUUID()}`, Buffer.from('d'));
    await pub.waitForConfirms();

    const reached = await waitFor(
      async () => {
        const now = counts((await overview()).message_stats, EXACT_KEYS);
        const delta = minus(now, before);
        return EXACT_KEYS.every((k) => delta[k] === expected[k]) ? now : null;
      },
      'the overview to count the traffic',
      STATS_DELAY_MS,
    ).catch(async (err: Error) => {
      const delta = minus(counts((await overview()).message_stats, EXACT_KEYS), before);
      throw new Error(`${err.message}: got ${JSON.stringify(delta)}, expected ${JSON.stringify(expected)}`);
    });
    after = reached;

    vhostAfter = await waitFor(
      async () => {
        const now = counts((await vhostRow()).message_stats ?? {}, VHOST_KEYS);
        const delta = minus(now, vhostBefore);
        return VHOST_KEYS.every((k) => delta[k] === expected[k]) ? now : null;
      },
      'the vhost to count the traffic',
      STATS_DELAY_MS,
    ).catch(async (err: Error) => {
      const delta = minus(counts((await vhostRow()).message_stats ?? {}, VHOST_KEYS), vhostBefore);
      throw new Error(`${err.message}: got ${JSON.stringify(delta)}`);
    });
    const v = await vhostRow();
    octetsAfter = [v.recv_oct, v.send_oct];
    expect(v.recv_oct).toBeGreaterThan(0);
    expect(v.send_oct).toBeGreaterThan(0);
    const stats = (await overview()).message_stats;
    expect(Object.keys(stats).sort()).toEqual([...MESSAGE_KEYS, ...MESSAGE_KEYS.map((k) => `${k}_details`)].sort());
    for (const k of MESSAGE_KEYS) {
      expect(typeof stats[k], k).toBe('number');
      expect(stats[`${k}_details`], k).toEqual({ rate: expect.any(Number) });
    }
    await conn.close();
  }, 60_000);

  it('keeps every count when the queue, channels and connection are gone', async () => {
    const del = await target.api.delete(`/api/queues/%2F/${enc(queue)}`);
    expect(del.status).toBe(204);
    // RabbitMQ's overview would drop its counts after a few seconds if it summed live objects: wait
    // for the churn to show the deletion and the closed connection, then compare.
    const churn = await waitFor(
      async () => {
        const c = minus(counts((await overview()).churn_rates, CHURN_KEYS), churnBefore);
        return c['queue_deleted'] === 1 && c['connection_closed'] === 1 && c['channel_closed'] === 3 ? c : null;
      },
      'churn_rates to show the closes and the deletion',
      STATS_DELAY_MS,
    );
    expect(churn).toEqual({
      channel_closed: 3,
      channel_created: 3,
      connection_closed: 1,
      connection_created: 1,
      queue_created: 1,
      queue_declared: 1,
      queue_deleted: 1,
    });
    expect(counts((await overview()).message_stats, EXACT_KEYS)).toEqual(after);
    // The vhost keeps what its closed channels and connection and deleted queue counted, too.
    const v = await vhostRow();
    expect(counts(v.message_stats ?? {}, VHOST_KEYS)).toEqual(vhostAfter);
    expect(v.recv_oct).toBeGreaterThanOrEqual(octetsAfter[0]);
    expect(v.send_oct).toBeGreaterThanOrEqual(octetsAfter[1]);
  }, 60_000);

  it('a user limited to some vhosts sees the sum of those vhosts’ figures', async () => {
    const user = `overview-mgmt-${randomUUID()}`;
    const vhost = `overview-vhost-${randomUUID()}`;
    expect((await target.api.put(`/api/users/${user}`, { password: 'pw', tags: 'management' })).status).toBe(201);
    expect((await target.api.put(`/api/vhosts/${enc(vhost)}`)).status).toBe(201);
    expect((await target.api.put(`/api/permissions/${enc(vhost)}/${user}`, { configure: '.*', write: '.*', read: '.*' })).status).toBe(201);
    try {
      const url = new URL(target.amqpUrl);
      url.username = user;
      url.password = 'pw';
      url.pathname = `/${enc(vhost)}`;
      const conn = await amqp.connect(url.toString());
      const pub = await conn.createConfirmChannel();
      for (let i = 0; i < 4; i++) pub.publish('amq.direct', 'nowhere', Buffer.from('x'));
      await pub.waitForConfirms();
      await conn.close();
      const mine = target.api.as(user, 'pw');
      const stats = await waitFor(
        async () => {
          const o = (await mine.get('/api/overview')).body as { message_stats: Stats };
          return o.message_stats['publish'] === 4 ? o.message_stats : null;
        },
        'the user’s overview to count its vhost’s publishes',
        STATS_DELAY_MS,
      );
      expect([stats['publish'], stats['drop_unroutable']]).toEqual([4, 4]);
      expect(stats['publish_details']).toEqual({ rate: expect.any(Number) });
    } finally {
      await target.api.delete(`/api/vhosts/${enc(vhost)}`);
      await target.api.delete(`/api/users/${user}`);
    }
  }, 60_000);

  it.skipIf(EXTERNAL_MGMT)('rates are per second over the sampling interval', async () => {
    const rates = target.warren!.management!.context.rates;
    rates.stop();
    try {
      rates.tick(1_000_000);
      const conn = await amqp.connect(target.amqpUrl);
      const pub = await conn.createConfirmChannel();
      for (let i = 0; i < 8; i++) pub.publish('amq.direct', 'nowhere', Buffer.from('x'));
      await pub.waitForConfirms();
      await conn.close();
      rates.tick(1_002_000); // 2 s later: 8 publishes = 4/s
      const o = await overview();
      expect(o.message_stats['publish_details']).toEqual({ rate: 4 });
      expect(o.message_stats['confirm_details']).toEqual({ rate: 4 });
      expect(o.message_stats['drop_unroutable_details']).toEqual({ rate: 4 });
      expect(o.message_stats['ack_details']).toEqual({ rate: 0 });
      expect(o.churn_rates['connection_created_details']).toEqual({ rate: 0.5 });
    } finally {
      rates.start();
    }
  });
});

describe('head_message_timestamp', () => {
  const names: string[] = [];
  let conn: Awaited<ReturnType<typeof amqp.connect>>;
  beforeAll(async () => {
    conn = await amqp.connect(target.amqpUrl);
  });
  afterAll(async () => {
    const ch = await conn.createChannel();
    for (const n of names) await ch.deleteQueue(n);
    await conn.close();
  });

  async function queueWith(args: Record<string, unknown>, messages: { timestamp?: number; priority?: number }[]): Promise<string> {
    const name = `head-ts-${randomUUID()}`;
    names.push(name);
    const ch = await conn.createConfirmChannel();
    await ch.assertQueue(name, { durable: true, arguments: args });
    for (const m of messages) ch.sendToQueue(name, Buffer.from('x'), m);
    await ch.waitForConfirms();
    await ch.close();
    return name;
  }

  async function row(name: string, messages: number): Promise<Record<string, unknown>> {
    return waitFor(
      async () => {
        const r = (await target.api.get(`/api/queues/%2F/${enc(name)}`)).body as Record<string, unknown>;
        return r['messages'] === messages ? r : null;
      },
      `${name} to show ${messages} messages`,
      STATS_DELAY_MS,
    );
  }

  it('is the timestamp property of the message at the head, in seconds', async () => {
    const name = await queueWith({}, [{ timestamp: 1_700_000_100 }, { timestamp: 1_700_000_200 }]);
    expect((await row(name, 2))['head_message_timestamp']).toBe(1_700_000_100);
  });

  it('is null for an empty queue and when the head has no timestamp', async () => {
    const empty = await queueWith({}, []);
    expect(await row(empty, 0)).toHaveProperty('head_message_timestamp', null);
    const none = await queueWith({}, [{}, { timestamp: 5 }]);
    expect(await row(none, 2)).toHaveProperty('head_message_timestamp', null);
  });

  it('follows priority: the head is the highest priority’s first message', async () => {
    const name = await queueWith({ 'x-max-priority': 5 }, [{ timestamp: 100 }, { timestamp: 200, priority: 5 }]);
    expect((await row(name, 2))['head_message_timestamp']).toBe(200);
  });

  it('is not shown for quorum queues and streams', async () => {
    const quorum = await queueWith({ 'x-queue-type': 'quorum' }, [{ timestamp: 300 }]);
    expect(await row(quorum, 1)).not.toHaveProperty('head_message_timestamp');
    const stream = await queueWith({ 'x-queue-type': 'stream' }, [{ timestamp: 400 }]);
    expect(await row(stream, 1)).not.toHaveProperty('head_message_timestamp');
  });
});
