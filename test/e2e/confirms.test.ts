// Publisher confirms end to end: delivery tags per channel, exactly one confirm per publish,
// coalesced acks (multiple), unroutable and returned messages, persistent messages acked only once
// on disk, basic.nack under x-overflow=reject-publish, and the tx/confirm mode rules. Every
// expectation is RabbitMQ's. The broker runs in-process on a real data folder; one test runs
// bin/warren as a child process to kill it the moment a confirm arrives.

import { rmSync } from 'node:fs';
import type { Channel, ChannelModel, Message } from 'amqplib';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../support/broker.js';
import { ChildBroker } from '../support/child-broker.js';
import { RawClient, frame, headerPayload } from '../support/raw-client.js';
import * as M from '../../src/protocol/generated/amqp.js';
import {
  QUIET_MS,
  recordedChannel,
  recordedConfirmChannel,
  rejection,
  sleep,
  uniqueName,
  waitFor,
  type RecordedConfirmChannel,
} from '../support/harness.js';
import { useTestBroker } from '../support/test-broker.js';

const broker = useTestBroker();
const clients = broker.clients;
const connect = (url?: string) => clients.connect(url);

interface Confirm {
  kind: 'ack' | 'nack';
  deliveryTag: number;
  multiple: boolean;
}

/** A confirm channel whose basic.ack / basic.nack frames are recorded as they arrive. */
async function recordingConfirmChannel(conn: ChannelModel): Promise<RecordedConfirmChannel & { confirms: Confirm[] }> {
  const ch = (await recordedConfirmChannel(conn)) as RecordedConfirmChannel & { confirms: Confirm[] };
  ch.confirms = [];
  ch.on('ack', (f: { deliveryTag: number; multiple: boolean }) => ch.confirms.push({ kind: 'ack', deliveryTag: f.deliveryTag, multiple: f.multiple }));
  ch.on('nack', (f: { deliveryTag: number; multiple: boolean }) => ch.confirms.push({ kind: 'nack', deliveryTag: f.deliveryTag, multiple: f.multiple }));
  return ch;
}

const plainChannel = recordedChannel;

/**
 * Which publish sequence numbers the confirms settle, and how often: a single ack/nack settles its
 * tag; a multiple one settles every tag up to it not settled yet. Returns the settle count per tag
 * and any single confirm for a tag already settled.
 */
function settled(confirms: Confirm[]): { count: Map<number, number>; repeats: Confirm[]; acked: Set<number>; nacked: Set<number> } {
  const count = new Map<number, number>();
  const acked = new Set<number>();
  const nacked = new Set<number>();
  const repeats: Confirm[] = [];
  for (const c of confirms) {
    const into = c.kind === 'ack' ? acked : nacked;
    if (c.multiple) {
      for (let t = 1; t <= c.deliveryTag; t++) {
        if (count.has(t)) continue;
        count.set(t, 1);
        into.add(t);
      }
    } else {
      if (count.has(c.deliveryTag)) repeats.push(c);
      count.set(c.deliveryTag, (count.get(c.deliveryTag) ?? 0) + 1);
      into.add(c.deliveryTag);
    }
  }
  return { count, repeats, acked, nacked };
}

const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i + 1);

/** The name of a queue deleted after the test. */
function queueName(prefix: string, conn: ChannelModel): string {
  const name = uniqueName(prefix);
  broker.cleanup(async () => {
    const ch = await conn.createChannel().catch(() => null);
    if (ch === null) return;
    ch.on('error', () => {});
    await ch.deleteQueue(name).catch(() => {});
    await ch.close().catch(() => {});
  });
  return name;
}

describe('publisher confirms', () => {
  it('acks count from 1 on each channel and settle every publish exactly once', async () => {
    const conn = await connect();
    const q = queueName('confirm-q', conn);
    const a = await recordingConfirmChannel(conn);
    const b = await recordingConfirmChannel(conn);
    await a.assertQueue(q, { durable: false });
    for (let i = 0; i < 8; i++) {
      if (i < 3) a.sendToQueue(q, Buffer.from(`a${i}`));
      b.sendToQueue(q, Buffer.from(`b${i}`));
    }
    await a.waitForConfirms();
    await b.waitForConfirms();
    await sleep(QUIET_MS);
    for (const [ch, n] of [
      [a, 3],
      [b, 8],
    ] as const) {
      expect(ch.confirms.length).toBeGreaterThan(0);
      expect(ch.confirms.every((c) => c.kind === 'ack' && c.deliveryTag >= 1 && c.deliveryTag <= n)).toBe(true);
      const s = settled(ch.confirms);
      expect(s.repeats).toEqual([]);
      expect([...s.count.keys()].sort((x, y) => x - y)).toEqual(range(n));
      expect([...s.count.values()].every((k) => k === 1)).toBe(true);
      expect(Math.max(...ch.confirms.map((c) => c.deliveryTag))).toBe(n);
    }
    expect((await a.checkQueue(q)).messageCount).toBe(11);
  });

  it('many publishes: every one is acked once, and acks are coalesced with multiple=true', async () => {
    const conn = await connect();
    const transientQ = queueName('confirm-many-t', conn);
    const durableQ = queueName('confirm-many-d', conn);
    const t = await recordingConfirmChannel(conn);
    const d = await recordingConfirmChannel(conn);
    await t.assertQueue(transientQ, { durable: false });
    await d.assertQueue(durableQ, { durable: true });
    const N = 3000;
    for (let i = 0; i < N; i++) {
      t.sendToQueue(transientQ, Buffer.from(`t${i}`));
      d.sendToQueue(durableQ, Buffer.from(`d${i}`), { persistent: true });
    }
    await t.waitForConfirms();
    await d.waitForConfirms();
    await sleep(QUIET_MS);
    for (const ch of [t, d]) {
      const s = settled(ch.confirms);
      expect(ch.confirms.filter((c) => c.kind === 'nack')).toEqual([]);
      expect(s.repeats).toEqual([]);
      expect(s.count.size).toBe(N);
      expect([...s.count.entries()].every(([tag, k]) => tag >= 1 && tag <= N && k === 1)).toBe(true);
      expect(ch.confirms.some((c) => c.multiple)).toBe(true);
      expect(ch.confirms.length).toBeLessThan(N);
    }
    expect((await t.checkQueue(transientQ)).messageCount).toBe(N);
    expect((await d.checkQueue(durableQ)).messageCount).toBe(N);
  });

  it('an unroutable message without mandatory is acked, and nothing is returned', async () => {
    const conn = await connect();
    const ch = await recordingConfirmChannel(conn);
    const returns: Message[] = [];
    ch.on('return', (m: Message) => returns.push(m));
    const x = uniqueName('confirm-empty-fanout');
    await ch.assertExchange(x, 'fanout', { durable: false, autoDelete: false });
    broker.cleanup(() => ch.deleteExchange(x).then(() => {}, () => {}));
    const results: (Error | null)[] = [];
    ch.publish('amq.direct', uniqueName('nowhere'), Buffer.from('u1'), {}, (err) => results.push(err ?? null));
    ch.publish(x, '', Buffer.from('u2'), { persistent: true }, (err) => results.push(err ?? null));
    await ch.waitForConfirms();
    await sleep(QUIET_MS);
    expect(results).toEqual([null, null]);
    const s = settled(ch.confirms);
    expect([...s.acked].sort()).toEqual([1, 2]);
    expect(s.nacked.size).toBe(0);
    expect(returns).toEqual([]);
  });

  it('mandatory and unroutable: basic.return arrives before the basic.ack for it (raw frames)', async () => {
    const c = await RawClient.handshake(broker.port);
    broker.cleanup(() => c.destroy());
    await c.openChannel(1);
    c.send(1, { id: M.CONFIRM_SELECT, nowait: false });
    await c.waitForMethod(M.CONFIRM_SELECT_OK, 1);
    c.frames.length = 0;
    const key = uniqueName('nowhere');
    const publish = (mandatory: boolean, exchange: string, routingKey: string, text: string): void => {
      const body = Buffer.from(text);
      c.send(1, { id: M.BASIC_PUBLISH, reserved1: 0, exchange, routingKey, mandatory, immediate: false });
      c.write(frame(2, 1, headerPayload(body.length)));
      c.write(frame(3, 1, body));
    };
    publish(true, 'amq.direct', key, 'returned');
    await waitFor(() => c.frames.some((f) => f.method?.id === M.BASIC_ACK), 'basic.ack');
    const kinds = c.frames.map((f) => (f.method ? M.METHOD_NAMES.get(f.method.id) : f.type === 2 ? 'header' : f.type === 3 ? 'body' : `type ${f.type}`));
    expect(kinds).toEqual(['basic.return', 'header', 'body', 'basic.ack']);
    expect(c.frames[0]!.method).toEqual({ id: M.BASIC_RETURN, replyCode: 312, replyText: 'NO_ROUTE', exchange: 'amq.direct', routingKey: key });
    expect(c.frames[2]!.payload.toString()).toBe('returned');
    expect(c.frames[3]!.method).toEqual({ id: M.BASIC_ACK, deliveryTag: 1, multiple: false });

    // A routable mandatory publish: no return, ack with tag 2.
    c.frames.length = 0;
    const q = `confirm-raw-${key}`;
    c.send(1, { id: M.QUEUE_DECLARE, reserved1: 0, queue: q, passive: false, durable: false, exclusive: true, autoDelete: false, noWait: false, arguments: {} });
    await c.waitForMethod(M.QUEUE_DECLARE_OK, 1);
    publish(true, '', q, 'routed');
    const ack = await c.waitForMethod(M.BASIC_ACK, 1);
    expect(ack).toEqual({ id: M.BASIC_ACK, deliveryTag: 2, multiple: false });
    expect(c.frames.filter((f) => f.method?.id === M.BASIC_RETURN)).toEqual([]);
  });

  it('mandatory and unroutable through amqplib: the return event comes before the publish callback', async () => {
    const conn = await connect();
    const ch = await recordingConfirmChannel(conn);
    const events: string[] = [];
    ch.on('return', (m: Message) => events.push(`return ${(m.fields as unknown as { replyCode: number }).replyCode} ${m.content.toString()}`));
    ch.publish('amq.direct', uniqueName('nowhere'), Buffer.from('r1'), { mandatory: true }, (err) => events.push(`confirm ${err ? 'error' : 'ok'}`));
    await ch.waitForConfirms();
    expect(events).toEqual(['return 312 r1', 'confirm ok']);
  });

  it('a persistent message to a durable queue is acked', async () => {
    const conn = await connect();
    const q = queueName('confirm-durable', conn);
    const ch = await recordingConfirmChannel(conn);
    await ch.assertQueue(q, { durable: true });
    ch.sendToQueue(q, Buffer.from('on disk'), { persistent: true });
    await ch.waitForConfirms();
    expect(ch.confirms).toEqual([{ kind: 'ack', deliveryTag: 1, multiple: false }]);
  });

  it('persistent messages are acked only once on disk: killed the moment an ack arrives, the broker still has them', async () => {
    const dataDir = tempDir('warren-confirm-kill-');
    broker.cleanup(() => rmSync(dataDir, { recursive: true, force: true }));
    let child = await ChildBroker.start(dataDir);
    broker.cleanup(async () => {
      await child.kill();
    });
    const conn = await connect(child.url);
    const ch = await recordingConfirmChannel(conn);
    await ch.assertQueue('confirm-kill', { durable: true });
    // The first confirm to arrive kills the broker on the spot; what it confirms must survive.
    let confirmedAtKill: number[] | null = null;
    ch.on('ack', (f: { deliveryTag: number; multiple: boolean }) => {
      if (confirmedAtKill !== null) return;
      child.process.kill('SIGKILL');
      confirmedAtKill = f.multiple ? range(f.deliveryTag) : [f.deliveryTag];
    });
    for (let i = 1; i <= 500; i++) ch.sendToQueue('confirm-kill', Buffer.from(`k${i}`), { persistent: true });
    await waitFor(() => child.process.exitCode !== null || child.process.signalCode !== null, 'the broker to die');
    await waitFor(() => conn.closed, 'the client to see it');
    expect(confirmedAtKill).not.toBeNull();

    child = await ChildBroker.start(dataDir);
    const conn2 = await connect(child.url);
    const check = await plainChannel(conn2);
    const bodies: string[] = [];
    for (;;) {
      const m = await check.get('confirm-kill', { noAck: true });
      if (m === false) break;
      bodies.push(m.content.toString());
    }
    // Everything confirmed is there; what is there is in publish order.
    const missing = confirmedAtKill!.filter((i) => !bodies.includes(`k${i}`));
    expect(missing).toEqual([]);
    expect(bodies).toEqual(range(bodies.length).map((i) => `k${i}`));
    await conn2.close();
    await child.stop();
  });

  it('x-overflow=reject-publish with x-max-length=1: the second publish is nacked (transient and persistent)', async () => {
    const conn = await connect();
    for (const durable of [false, true]) {
      const q = queueName(durable ? 'confirm-reject-d' : 'confirm-reject-t', conn);
      const ch = await recordingConfirmChannel(conn);
      await ch.assertQueue(q, { durable, arguments: { 'x-overflow': 'reject-publish', 'x-max-length': 1 } });
      const results: (string | null)[] = [];
      ch.sendToQueue(q, Buffer.from('first'), { persistent: durable }, (err) => results.push(err ? err.message : null));
      ch.sendToQueue(q, Buffer.from('second'), { persistent: durable }, (err) => results.push(err ? err.message : null));
      await waitFor(() => results.length === 2, 'two confirms');
      expect(results.sort()).toEqual(['message nacked', null].sort());
      expect(ch.confirms.filter((c) => c.kind === 'nack')).toEqual([{ kind: 'nack', deliveryTag: 2, multiple: false }]);
      const s = settled(ch.confirms);
      expect(s.acked.has(1)).toBe(true);
      expect(s.nacked).toEqual(new Set([2]));
      // The queue kept the first; once it is consumed, the next publish is acked again.
      const m = await ch.get(q, { noAck: true });
      expect(m && m.content.toString()).toBe('first');
      expect(await ch.get(q, { noAck: true })).toBe(false);
      const third: (string | null)[] = [];
      ch.sendToQueue(q, Buffer.from('third'), { persistent: durable }, (err) => third.push(err ? err.message : null));
      await waitFor(() => third.length === 1, 'the third confirm');
      expect(third).toEqual([null]);
      expect(settled(ch.confirms).acked.has(3)).toBe(true);
      await ch.close();
    }
  });

  it('a transient message to a non-durable queue is acked', async () => {
    const conn = await connect();
    const q = queueName('confirm-transient', conn);
    const ch = await recordingConfirmChannel(conn);
    await ch.assertQueue(q, { durable: false });
    const results: (Error | null)[] = [];
    ch.sendToQueue(q, Buffer.from('t'), {}, (err) => results.push(err ?? null));
    await ch.waitForConfirms();
    expect(results).toEqual([null]);
    expect(ch.confirms).toEqual([{ kind: 'ack', deliveryTag: 1, multiple: false }]);
  });
});

/** amqplib has no tx API: its generic rpc sends any method and waits for the given reply. */
function rpc(ch: Channel, method: number, fields: Record<string, unknown>, reply: number): Promise<unknown> {
  return (ch as unknown as { rpc(m: number, f: Record<string, unknown>, r: number): Promise<unknown> }).rpc(method, fields, reply);
}

describe('tx and confirm modes', () => {
  it('tx.select then confirm.select is 406 cannot switch from tx to confirm mode', async () => {
    const conn = await connect();
    const ch = await plainChannel(conn);
    await rpc(ch, M.TX_SELECT, {}, M.TX_SELECT_OK);
    expect(await rejection(rpc(ch, M.CONFIRM_SELECT, { nowait: false }, M.CONFIRM_SELECT_OK))).toMatchObject({
      code: 406,
      text: 'PRECONDITION_FAILED - cannot switch from tx to confirm mode',
      classId: 85,
      methodId: 10,
    });
    expect(conn.closed).toBe(false); // a channel error, not a connection error
  });

  it('confirm.select then tx.select is 406 cannot switch from confirm to tx mode', async () => {
    const conn = await connect();
    const ch = await plainChannel(conn);
    await rpc(ch, M.CONFIRM_SELECT, { nowait: false }, M.CONFIRM_SELECT_OK);
    expect(await rejection(rpc(ch, M.TX_SELECT, {}, M.TX_SELECT_OK))).toMatchObject({
      code: 406,
      text: 'PRECONDITION_FAILED - cannot switch from confirm to tx mode',
      classId: 90,
      methodId: 10,
    });
    expect(conn.closed).toBe(false);
  });

  it('selecting the same mode twice is fine', async () => {
    const conn = await connect();
    const a = await plainChannel(conn);
    await rpc(a, M.TX_SELECT, {}, M.TX_SELECT_OK);
    await rpc(a, M.TX_SELECT, {}, M.TX_SELECT_OK);
    const b = await plainChannel(conn);
    await rpc(b, M.CONFIRM_SELECT, { nowait: false }, M.CONFIRM_SELECT_OK);
    await rpc(b, M.CONFIRM_SELECT, { nowait: false }, M.CONFIRM_SELECT_OK);
    expect(a.errors).toEqual([]);
    expect(b.errors).toEqual([]);
  });

  it('tx.commit and tx.rollback without tx.select are 406 channel is not transactional', async () => {
    const conn = await connect();
    for (const [method, reply, methodId] of [
      [M.TX_COMMIT, M.TX_COMMIT_OK, 20],
      [M.TX_ROLLBACK, M.TX_ROLLBACK_OK, 30],
    ] as const) {
      const ch = await plainChannel(conn);
      expect(await rejection(rpc(ch, method, {}, reply))).toMatchObject({
        code: 406,
        text: 'PRECONDITION_FAILED - channel is not transactional',
        classId: 90,
        methodId,
      });
    }
    expect(conn.closed).toBe(false);
  });
});
