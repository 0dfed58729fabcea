// AMQP transactions (tx.select / tx.commit / tx.rollback) end to end: publishes and acks, rejects
// and nacks made in a transaction take effect on commit and are undone by rollback; a channel
// stays transactional after either; mandatory returns come on commit; committed persistent
// messages survive a restart. Every expectation is RabbitMQ's. amqplib has no tx API, so the tx
// methods go through its generic rpc; everything else is plain amqplib.

import amqp, { type Channel, type Message } from 'amqplib';
import { describe, expect, it } from 'vitest';
import { startTestBroker, tempDir } from '../support/broker.js';
import * as M from '../../src/protocol/generated/amqp.js';
import { rmSync } from 'node:fs';
import { bodiesAndRedelivered, getAll, getN, QUIET_MS, recordedChannel, sleep, uniqueName, waitFor } from '../support/harness.js';
import { useTestBroker } from '../support/test-broker.js';

const broker = useTestBroker();
const clients = broker.clients;
const connect = (url?: string) => clients.connect(url);

const channel = recordedChannel;

function rpc(ch: Channel, method: number, reply: number): Promise<unknown> {
  return (ch as unknown as { rpc(m: number, f: Record<string, unknown>, r: number): Promise<unknown> }).rpc(method, {}, reply);
}
const txSelect = (ch: Channel): Promise<unknown> => rpc(ch, M.TX_SELECT, M.TX_SELECT_OK);
const txCommit = (ch: Channel): Promise<unknown> => rpc(ch, M.TX_COMMIT, M.TX_COMMIT_OK);
const txRollback = (ch: Channel): Promise<unknown> => rpc(ch, M.TX_ROLLBACK, M.TX_ROLLBACK_OK);

/** A queue (and its connection-independent cleanup). */
async function queue(ch: Channel, prefix: string, options: amqp.Options.AssertQueue = { durable: false }): Promise<string> {
  const name = uniqueName(prefix);
  await ch.assertQueue(name, options);
  broker.cleanup(async () => {
    const conn = await amqp.connect(broker.url);
    conn.on('error', () => {});
    const c = await conn.createChannel();
    c.on('error', () => {});
    await c.deleteQueue(name).catch(() => {});
    await conn.close().catch(() => {});
  });
  return name;
}

const count = async (ch: Channel, q: string): Promise<number> => (await ch.checkQueue(q)).messageCount;

const drain = async (ch: Channel, q: string): Promise<[string, boolean][]> => bodiesAndRedelivered(await getAll(ch, q));

async function fill(ch: Channel, q: string, bodies: string[]): Promise<void> {
  for (const b of bodies) ch.sendToQueue(q, Buffer.from(b));
  await waitFor(async () => (await count(ch, q)) === bodies.length, `${bodies.length} messages in ${q}`);
}

describe('tx: publishing', () => {
  it('publishes are invisible until tx.commit, then all there in order', async () => {
    const conn = await connect();
    const other = await channel(conn);
    const tx = await channel(conn);
    const q = await queue(other, 'tx-pub');
    await txSelect(tx);
    tx.sendToQueue(q, Buffer.from('p1'));
    tx.sendToQueue(q, Buffer.from('p2'), { persistent: true });
    tx.sendToQueue(q, Buffer.from('p3'));
    await sleep(QUIET_MS);
    expect(await count(other, q)).toBe(0);
    await txCommit(tx);
    expect(await count(other, q)).toBe(3);
    expect(await drain(other, q)).toEqual([
      ['p1', false],
      ['p2', false],
      ['p3', false],
    ]);
    expect(tx.errors).toEqual([]);
  });

  it('tx.rollback discards the publishes; the channel stays transactional', async () => {
    const conn = await connect();
    const other = await channel(conn);
    const tx = await channel(conn);
    const q = await queue(other, 'tx-rollback');
    await txSelect(tx);
    tx.sendToQueue(q, Buffer.from('gone1'));
    tx.sendToQueue(q, Buffer.from('gone2'));
    await txRollback(tx);
    await sleep(QUIET_MS);
    expect(await count(other, q)).toBe(0);
    tx.sendToQueue(q, Buffer.from('kept'));
    await sleep(QUIET_MS);
    expect(await count(other, q)).toBe(0); // still held: the next transaction began at rollback
    await txCommit(tx);
    expect(await drain(other, q)).toEqual([['kept', false]]);
    tx.sendToQueue(q, Buffer.from('after-commit'));
    await sleep(QUIET_MS);
    expect(await count(other, q)).toBe(0); // and at commit
    await txCommit(tx);
    expect(await drain(other, q)).toEqual([['after-commit', false]]);
  });

  it('closing the channel discards an uncommitted transaction', async () => {
    const conn = await connect();
    const other = await channel(conn);
    const tx = await channel(conn);
    const q = await queue(other, 'tx-close');
    await txSelect(tx);
    tx.sendToQueue(q, Buffer.from('never'));
    await tx.close();
    await sleep(QUIET_MS);
    expect(await count(other, q)).toBe(0);
  });

  it('a mandatory unroutable publish in a transaction is returned on commit, before commit-ok', async () => {
    const conn = await connect();
    const tx = await channel(conn);
    const events: string[] = [];
    tx.on('return', (m: Message) => events.push(`return ${(m.fields as unknown as { replyCode: number }).replyCode} ${(m.fields as unknown as { replyText: string }).replyText} ${m.content.toString()}`));
    await txSelect(tx);
    tx.publish('amq.direct', uniqueName('nowhere'), Buffer.from('unroutable'), { mandatory: true });
    await sleep(QUIET_MS);
    expect(events).toEqual([]);
    await txCommit(tx);
    events.push('commit-ok');
    expect(events).toEqual(['return 312 NO_ROUTE unroutable', 'commit-ok']);
  });

  it('a rolled-back mandatory unroutable publish is never returned', async () => {
    const conn = await connect();
    const tx = await channel(conn);
    const returns: Message[] = [];
    tx.on('return', (m: Message) => returns.push(m));
    await txSelect(tx);
    tx.publish('amq.direct', uniqueName('nowhere'), Buffer.from('unroutable'), { mandatory: true });
    await txRollback(tx);
    await txCommit(tx);
    await sleep(QUIET_MS);
    expect(returns).toEqual([]);
  });
});

describe('tx: acknowledgements', () => {
  it('an ack in a transaction takes effect only on commit: after rollback the message is still unacked', async () => {
    const conn = await connect();
    const other = await channel(conn);
    const q = await queue(other, 'tx-ack');
    await fill(other, q, ['m0']);

    // Rollback: the ack is undone; closing the channel requeues the message, redelivered.
    const tx = await channel(conn);
    await txSelect(tx);
    const [m] = await getN(tx, q, 1);
    tx.ack(m!);
    await txRollback(tx);
    expect(await count(other, q)).toBe(0); // still unacked, not ready
    await tx.close();
    await waitFor(async () => (await count(other, q)) === 1, 'the requeue');

    // Commit: the ack holds; closing the channel brings nothing back.
    const tx2 = await channel(conn);
    await txSelect(tx2);
    const [m2] = await getN(tx2, q, 1);
    expect(m2!.fields.redelivered).toBe(true);
    tx2.ack(m2!);
    await sleep(QUIET_MS);
    await txCommit(tx2);
    await tx2.close();
    await sleep(QUIET_MS);
    expect(await other.checkQueue(q)).toEqual({ queue: q, messageCount: 0, consumerCount: 0 });
    expect(tx.errors).toEqual([]);
    expect(tx2.errors).toEqual([]);
  });

  it('an ack in a transaction, channel closed before commit: the message comes back', async () => {
    const conn = await connect();
    const other = await channel(conn);
    const q = await queue(other, 'tx-ack-close');
    await fill(other, q, ['m0', 'm1']);
    const tx = await channel(conn);
    await txSelect(tx);
    const ms = await getN(tx, q, 2);
    tx.ack(ms[1]!, true);
    await sleep(QUIET_MS);
    await tx.close();
    await waitFor(async () => (await count(other, q)) === 2, 'the requeue');
    expect(await drain(other, q)).toEqual([
      ['m0', true],
      ['m1', true],
    ]);
  });

  it('reject and nack in a transaction take effect on commit', async () => {
    const conn = await connect();
    const other = await channel(conn);
    const q = await queue(other, 'tx-reject');
    await fill(other, q, ['m0', 'm1', 'm2', 'm3']);
    const tx = await channel(conn);
    await txSelect(tx);
    const ms = await getN(tx, q, 4);
    tx.reject(ms[0]!, true); // back on commit
    tx.nack(ms[2]!, false, false); // dropped on commit
    tx.nack(ms[3]!, false, true); // back on commit
    await sleep(QUIET_MS);
    expect(await count(other, q)).toBe(0);
    await txCommit(tx);
    await waitFor(async () => (await count(other, q)) === 2, 'the requeues at commit');
    // m1 was never settled: the channel's close brings it back too, at its original position.
    await tx.close();
    await waitFor(async () => (await count(other, q)) === 3, 'the requeue at close');
    expect(await drain(other, q)).toEqual([
      ['m0', true],
      ['m1', true],
      ['m3', true],
    ]);
  });

  it('a rolled-back reject and nack leave the messages unacked', async () => {
    const conn = await connect();
    const other = await channel(conn);
    const q = await queue(other, 'tx-reject-rollback');
    await fill(other, q, ['m0', 'm1', 'm2']);
    const tx = await channel(conn);
    await txSelect(tx);
    const ms = await getN(tx, q, 3);
    tx.reject(ms[0]!, false);
    tx.nack(ms[2]!, true, true); // m1 m2
    await txRollback(tx);
    await sleep(QUIET_MS);
    expect(await count(other, q)).toBe(0);
    // Still outstanding on the channel: ack them for real now.
    tx.ack(ms[0]!);
    tx.ack(ms[2]!, true);
    await txCommit(tx);
    await tx.close();
    await sleep(QUIET_MS);
    expect(await count(other, q)).toBe(0);
    expect(tx.errors).toEqual([]);
  });

  it('a reject without requeue in a transaction dead-letters on commit only', async () => {
    const conn = await connect();
    const other = await channel(conn);
    const dlx = uniqueName('tx-dlx');
    await other.assertExchange(dlx, 'fanout', { durable: false });
    broker.cleanup(async () => {
      const c = await amqp.connect(broker.url);
      c.on('error', () => {});
      const d = await c.createChannel();
      d.on('error', () => {});
      await d.deleteExchange(dlx).catch(() => {});
      await c.close().catch(() => {});
    });
    const dead = await queue(other, 'tx-dead');
    await other.bindQueue(dead, dlx, '');
    const q = await queue(other, 'tx-dl-src', { durable: false, arguments: { 'x-dead-letter-exchange': dlx } });
    await fill(other, q, ['m0']);
    const tx = await channel(conn);
    await txSelect(tx);
    const [m] = await getN(tx, q, 1);
    tx.reject(m!, false);
    await sleep(QUIET_MS);
    expect(await count(other, dead)).toBe(0);
    await txCommit(tx);
    await waitFor(async () => (await count(other, dead)) === 1, 'the dead-lettered message');
    const got = await other.get(dead, { noAck: true });
    expect(got && got.content.toString()).toBe('m0');
    expect(got && (got.properties.headers as Record<string, unknown>)['x-first-death-reason']).toBe('rejected');
  });

  it('publishes and acks in one transaction commit together', async () => {
    const conn = await connect();
    const other = await channel(conn);
    const src = await queue(other, 'tx-src');
    const dst = await queue(other, 'tx-dst');
    await fill(other, src, ['work']);
    const tx = await channel(conn);
    await txSelect(tx);
    const [m] = await getN(tx, src, 1);
    tx.sendToQueue(dst, Buffer.from(`done:${m!.content.toString()}`));
    tx.ack(m!);
    await sleep(QUIET_MS);
    expect([await count(other, src), await count(other, dst)]).toEqual([0, 0]);
    await txCommit(tx);
    await tx.close();
    await sleep(QUIET_MS);
    expect([await count(other, src), await count(other, dst)]).toEqual([0, 1]);
    expect(await drain(other, dst)).toEqual([['done:work', false]]);
  });
});

describe('tx: durability', () => {
  it('committed persistent messages in a durable queue survive a restart; rolled-back ones never existed', async () => {
    const dataDir = tempDir('warren-tx-');
    let b = await startTestBroker({ dataDir });
    broker.cleanup(async () => {
      await b.stop();
      rmSync(dataDir, { recursive: true, force: true });
    });
    const conn = await connect(b.url);
    const tx = await channel(conn);
    await tx.assertQueue('tx-durable', { durable: true });
    await txSelect(tx);
    tx.sendToQueue('tx-durable', Buffer.from('rolled-back'), { persistent: true });
    await txRollback(tx);
    tx.sendToQueue('tx-durable', Buffer.from('c1'), { persistent: true });
    tx.sendToQueue('tx-durable', Buffer.from('c2'), { persistent: true });
    await txCommit(tx);
    await conn.close().catch(() => {});
    await b.stop();

    b = await startTestBroker({ dataDir });
    const conn2 = await connect(b.url);
    const ch = await channel(conn2);
    expect(await drain(ch, 'tx-durable')).toEqual([
      ['c1', false],
      ['c2', false],
    ]);
  });
});
