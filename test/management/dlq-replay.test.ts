// Dead-letter inspection and replay (Warren's own API paths): x-death summaries, replay to where
// messages died from, the reason filter, an explicit target, messages that cannot go anywhere, and
// the atomic move under kill -9: a broker killed at random moments during replays loses and
// duplicates nothing.

import amqp from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ChildBroker, freePort } from '../support/child-broker.js';
import { tempDir } from '../support/broker.js';
import { sleep, waitFor } from '../support/wait.js';
import { ApiClient } from './api-client.js';
import { startMgmtTarget, EXTERNAL_MGMT, type MgmtTarget } from './target.js';

describe.skipIf(EXTERNAL_MGMT)('dead-letter inspection and replay', () => {
  let target: MgmtTarget;
  let api: ApiClient;
  let conn: amqp.ChannelModel;
  let ch: amqp.ConfirmChannel;

  beforeAll(async () => {
    target = await startMgmtTarget();
    api = target.api;
    conn = await amqp.connect(target.amqpUrl);
    ch = await conn.createConfirmChannel();
  });
  afterAll(async () => {
    await conn?.close().catch(() => {});
    await target?.stop();
  });

  /** work (DLX → dlq); n messages published to work and rejected there. */
  async function deadLettered(prefix: string, bodies: string[]): Promise<{ work: string; dlq: string }> {
    const work = `${prefix}.work`;
    const dlq = `${prefix}.dlq`;
    await ch.assertQueue(dlq, { durable: true });
    await ch.assertQueue(work, { durable: true, arguments: { 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': dlq } });
    for (const b of bodies) ch.sendToQueue(work, Buffer.from(b), { persistent: true, headers: { n: b } });
    await ch.waitForConfirms();
    for (let i = 0; i < bodies.length; i++) {
      const m = await ch.get(work);
      if (m === false) throw new Error('work ran dry');
      ch.nack(m, false, false);
    }
    await waitFor(async () => (await api.get(`/api/queues/%2F/${dlq}`)).body.messages === bodies.length, `${dlq} to fill`);
    return { work, dlq };
  }

  async function drain(queue: string): Promise<string[]> {
    const r = await api.post(`/api/queues/%2F/${queue}/get`, { count: 10_000, ackmode: 'ack_requeue_false', encoding: 'auto' });
    return r.body.map((m: { payload: string }) => m.payload);
  }

  it('inspects without removing: x-death summary, where a replay would go, a body preview', async () => {
    const { work, dlq } = await deadLettered('inspect', ['a', 'b', 'c']);
    const r = await api.get(`/api/queues/%2F/${dlq}/dead-letters?count=2`);
    expect(r.status).toBe(200);
    expect(r.body).toHaveLength(2);
    expect(r.body[0]).toMatchObject({
      payload: 'a',
      payload_encoding: 'string',
      routing_key: dlq,
      replay_to: { exchange: '', routing_keys: [work] },
    });
    expect(r.body[0].x_death).toEqual([
      { queue: work, reason: 'rejected', exchange: '', 'routing-keys': [work], count: 1, time: expect.any(Number) },
    ]);
    expect((await api.get(`/api/queues/%2F/${dlq}`)).body.messages).toBe(3);
    expect((await api.get(`/api/queues/%2F/nope/dead-letters`)).status).toBe(404);
  });

  it('replays to where messages died from, in order, count at a time', async () => {
    const { work, dlq } = await deadLettered('replay', ['1', '2', '3', '4', '5']);
    const first = await api.post(`/api/queues/%2F/${dlq}/replay`, { count: 2 });
    expect(first.body).toEqual({ replayed: 2, skipped: 0, unroutable: 0 });
    const rest = await api.post(`/api/queues/%2F/${dlq}/replay`, {});
    expect(rest.body).toEqual({ replayed: 3, skipped: 0, unroutable: 0 });
    expect((await api.get(`/api/queues/%2F/${dlq}`)).body.messages).toBe(0);
    const back = await api.post(`/api/queues/%2F/${work}/get`, { count: 10, ackmode: 'ack_requeue_false', encoding: 'auto' });
    expect(back.body.map((m: { payload: string }) => m.payload)).toEqual(['1', '2', '3', '4', '5']);
    // The history stays with the message: a second death counts on.
    expect(back.body[0].properties.headers['x-death'][0]).toMatchObject({ queue: work, reason: 'rejected', count: 1 });
  });

  it('replays only the reason asked for; the others stay in their places', async () => {
    const work = 'reason.work';
    const dlq = 'reason.dlq';
    await ch.assertQueue(dlq, { durable: true });
    await ch.assertQueue(work, { durable: true, arguments: { 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': dlq } });
    ch.sendToQueue(work, Buffer.from('expired-1'), { persistent: true, expiration: '0' });
    ch.sendToQueue(work, Buffer.from('rejected-1'), { persistent: true });
    await ch.waitForConfirms();
    const m = await waitFor(async () => ch.get(work), 'the rejectable message');
    ch.nack(m, false, false);
    ch.sendToQueue(work, Buffer.from('expired-2'), { persistent: true, expiration: '0' });
    await ch.waitForConfirms();
    await waitFor(async () => (await api.get(`/api/queues/%2F/${dlq}`)).body.messages === 3, 'three dead letters');
    const r = await api.post(`/api/queues/%2F/${dlq}/replay`, { reason: 'expired' });
    expect(r.body).toEqual({ replayed: 2, skipped: 1, unroutable: 0 });
    expect(await drain(dlq)).toEqual(['rejected-1']);
    // Replayed into work: no consumer, and the expiration property is gone (kept as original-expiration).
    expect(await drain(work)).toEqual(['expired-1', 'expired-2']);
  });

  it('moves to a given exchange and routing key; leaves what has nowhere to go', async () => {
    const { dlq } = await deadLettered('target', ['x', 'y']);
    await ch.assertQueue('target.elsewhere', { durable: true });
    const moved = await api.post(`/api/queues/%2F/${dlq}/replay`, { count: 1, to_exchange: 'amq.default', routing_key: 'target.elsewhere' });
    expect(moved.body).toEqual({ replayed: 1, skipped: 0, unroutable: 0 });
    expect(await drain('target.elsewhere')).toEqual(['x']);
    const nowhere = await api.post(`/api/queues/%2F/${dlq}/replay`, { to_exchange: 'amq.direct', routing_key: 'no-binding' });
    expect(nowhere.body).toEqual({ replayed: 0, skipped: 0, unroutable: 1 });
    expect((await api.post(`/api/queues/%2F/${dlq}/replay`, { to_exchange: 'no-such-exchange' })).body).toEqual({
      error: 'bad_request',
      reason: "no exchange 'no-such-exchange' in vhost '/'",
    });
    // A message that was never dead-lettered has no x-death: nowhere to replay it to.
    await ch.assertQueue('plain.q', { durable: true });
    ch.sendToQueue('plain.q', Buffer.from('p'));
    await ch.waitForConfirms();
    expect((await api.post('/api/queues/%2F/plain.q/replay', {})).body).toEqual({ replayed: 0, skipped: 1, unroutable: 0 });
    expect(await drain(dlq)).toEqual(['y']);
  });
});

describe.skipIf(EXTERNAL_MGMT)('replay under kill -9', () => {
  const N = 3000;
  const ROUNDS = 8;
  let broker: ChildBroker | undefined;
  const dataDir = tempDir('warren-replay-kill-');

  afterAll(async () => {
    await broker?.kill();
  });

  async function start(): Promise<{ api: ApiClient }> {
    const httpPort = await freePort();
    broker = await ChildBroker.start(dataDir, undefined, ['--management-port', String(httpPort)]);
    return { api: new ApiClient(`http://127.0.0.1:${httpPort}`) };
  }

  async function contents(api: ApiClient, queue: string): Promise<string[]> {
    const r = await api.post(`/api/queues/%2F/${queue}/get`, { count: N + 10, ackmode: 'ack_requeue_true', encoding: 'auto' });
    expect(r.status).toBe(200);
    return r.body.map((m: { payload: string }) => m.payload);
  }

  it(`moves ${N} persistent messages back and forth, killed at random moments: none lost, none doubled`, async () => {
    let { api } = await start();
    const conn = await amqp.connect(broker!.url);
    const ch = await conn.createConfirmChannel();
    await ch.assertQueue('a', { durable: true });
    await ch.assertQueue('b', { durable: true });
    for (let i = 0; i < N; i++) ch.sendToQueue('a', Buffer.from(String(i)), { persistent: true });
    await ch.waitForConfirms();
    await conn.close();
    const expected = Array.from({ length: N }, (_, i) => String(i)).sort();
    let killedDuring = 0;
    const splits: string[] = [];
    let [inA, inB] = [N, 0];
    for (let round = 0; round < ROUNDS; round++) {
      // From the fuller queue to the other; killed at a random moment, or as soon as the first
      // batch shows in the target (so some kills surely land between batches).
      const [from, to] = inA >= inB ? ['a', 'b'] : ['b', 'a'];
      const before = Math.min(inA, inB);
      const replay = api.post(`/api/queues/%2F/${from}/replay`, { to_exchange: 'amq.default', routing_key: to }).catch(() => null);
      if (round % 2 === 0) await sleep(Math.floor(Math.random() * 100));
      else await waitFor(async () => (await api.get(`/api/queues/%2F/${to}?columns=messages`)).body.messages > before, 'the first batch', 10_000).catch(() => {});
      const answered = await Promise.race([replay.then(() => true), sleep(0).then(() => false)]);
      if (!answered) killedDuring++;
      await broker!.kill();
      ({ api } = await start());
      const a = await contents(api, 'a');
      const b = await contents(api, 'b');
      expect(a.length + b.length, `round ${round}: a=${a.length} b=${b.length}`).toBe(N);
      expect([...a, ...b].sort()).toEqual(expected);
      [inA, inB] = [a.length, b.length];
      splits.push(`${inA}/${inB}`);
    }
    console.log(`replay kill -9 loop: ${ROUNDS} rounds of ${N} messages, ${killedDuring} kills before the replay answered; a/b after each restart: ${splits.join(' ')}`);
    expect(killedDuring).toBeGreaterThan(0);
    await broker!.stop();
    broker = undefined;
  }, 120_000);
});
