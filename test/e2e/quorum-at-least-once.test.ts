// At-least-once dead-lettering from a quorum queue (x-dead-letter-strategy at-least-once with
// x-overflow reject-publish), amqplib. A dead-lettered message leaves the source only once its
// target has stored it: while the target refuses it (full, reject-publish) it waits in the source
// and flows on as room appears; and with bin/warren killed (-9) in the middle, every message is
// afterwards either in the target or back in the source — none lost.

import type { ChannelModel } from 'amqplib';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../support/broker.js';
import { ChildBroker } from '../support/child-broker.js';
import { useChildBrokers } from '../support/child-brokers.js';
import { EXTERNAL, collector, sleep, useBroker, waitFor, QUIET_MS, type Channel } from '../support/harness.js';

const h = useBroker();

const { live, folders, clients } = useChildBrokers();

const sourceArgs = (target: string): Record<string, unknown> => ({
  'x-queue-type': 'quorum',
  'x-dead-letter-strategy': 'at-least-once',
  'x-overflow': 'reject-publish',
  'x-dead-letter-exchange': '',
  'x-dead-letter-routing-key': target,
});

/** A target that holds at most `room` messages and refuses more (reject-publish). */
const targetArgs = (room: number): Record<string, unknown> => ({ 'x-max-length': room, 'x-overflow': 'reject-publish' });

/** Publishes persistent messages m0… and waits for the confirms. */
async function fill(conn: ChannelModel, q: string, n: number): Promise<void> {
  const pub = await conn.createConfirmChannel();
  for (let i = 0; i < n; i++) pub.sendToQueue(q, Buffer.from(`m${i}`), { persistent: true });
  await pub.waitForConfirms();
  await pub.close();
}

/** Consumes n messages from q and rejects them (requeue=false): they die. */
async function rejectAll(ch: Channel, q: string, n: number): Promise<void> {
  await ch.prefetch(n);
  const c = collector((m) => ch.reject(m, false));
  const { consumerTag } = await ch.consume(q, c.onMessage);
  await c.waitFor(n);
  await ch.cancel(consumerTag);
}

describe.skipIf(EXTERNAL)('at-least-once dead-lettering', () => {
  it('a full target keeps messages waiting in the source; they move as room appears, in order, none twice', async () => {
    const conn = await h.connect();
    const ch = await h.channel(conn);
    const target = h.queue('alo-target');
    const source = h.queue('alo-source');
    await ch.assertQueue(target, { durable: true, arguments: targetArgs(3) });
    await ch.assertQueue(source, { durable: true, arguments: sourceArgs(target) });
    await fill(conn, source, 8);
    await rejectAll(await h.channel(conn), source, 8);
    await waitFor(async () => (await ch.checkQueue(target)).messageCount === 3, 'the target full');
    await sleep(QUIET_MS);
    // Five wait in the source, neither ready there nor lost.
    expect((await ch.checkQueue(source)).messageCount).toBe(0);
    expect((await ch.checkQueue(target)).messageCount).toBe(3);
    const drained: string[] = [];
    while (drained.length < 8) {
      const m = await waitFor(async () => ch.get(target, { noAck: true }), `message ${drained.length} in the target`, 5000);
      drained.push(m.content.toString());
    }
    expect(drained).toEqual(['m0', 'm1', 'm2', 'm3', 'm4', 'm5', 'm6', 'm7']);
    await sleep(QUIET_MS);
    expect(await ch.get(target)).toBe(false);
    expect((await ch.checkQueue(source)).messageCount).toBe(0);
  });

  it('with no route, the message waits until a binding appears', async () => {
    const conn = await h.connect();
    const ch = await h.channel(conn);
    const dlx = h.exchange('alo-dlx');
    const target = h.queue('alo-late');
    const source = h.queue('alo-noroute');
    await ch.assertExchange(dlx, 'direct', { durable: true });
    await ch.assertQueue(target, { durable: true });
    await ch.assertQueue(source, { durable: true, arguments: { ...sourceArgs(''), 'x-dead-letter-exchange': dlx, 'x-dead-letter-routing-key': 'dead' } });
    await fill(conn, source, 2);
    await rejectAll(await h.channel(conn), source, 2);
    await sleep(QUIET_MS);
    expect((await ch.checkQueue(target)).messageCount).toBe(0);
    await ch.bindQueue(target, dlx, 'dead');
    await waitFor(async () => (await ch.checkQueue(target)).messageCount === 2, 'both dead-lettered once routed');
  });

  it('kill -9 while messages wait for a full target: after the restart every message is in the target or back in the source', { timeout: 60_000 }, async () => {
    const dataDir = tempDir('warren-alo-');
    folders.push(dataDir);
    let broker = await ChildBroker.start(dataDir);
    live.add(broker);
    let conn = await clients.connect(broker.url);
    let ch = await conn.createChannel();
    await ch.assertQueue('target', { durable: true, arguments: targetArgs(5) });
    await ch.assertQueue('source', { durable: true, arguments: sourceArgs('target') });
    await fill(conn, 'source', 20);
    await rejectAll(await conn.createChannel(), 'source', 20);
    await waitFor(async () => (await ch.checkQueue('target')).messageCount === 5, 'the target full');
    await broker.kill();
    live.delete(broker);
    await clients.closeAll(200);

    broker = await ChildBroker.start(dataDir);
    live.add(broker);
    conn = await clients.connect(broker.url);
    ch = await conn.createChannel();
    const inTarget = (await ch.checkQueue('target')).messageCount;
    const inSource = (await ch.checkQueue('source')).messageCount;
    // Copies stored in the target stay there; every message not yet released by the source (the
    // fifteen that were waiting, and any whose removal was not committed yet) is back, ready.
    expect(inTarget).toBeLessThanOrEqual(5);
    expect(inSource).toBeGreaterThanOrEqual(15);
    expect(inTarget + inSource).toBeGreaterThanOrEqual(20);
    // Drain both: the target by getting, the source by rejecting again (they die into the target as it empties).
    const seen = new Set<string>();
    const sourceCh = await conn.createChannel();
    await sourceCh.prefetch(50);
    await sourceCh.consume('source', (m) => m && sourceCh.reject(m, false));
    await waitFor(
      async () => {
        for (;;) {
          const m = await ch.get('target', { noAck: true });
          if (m === false) break;
          seen.add(m.content.toString());
        }
        return seen.size === 20;
      },
      'all 20 messages through the target',
      20_000,
    );
    expect([...seen].sort()).toEqual(Array.from({ length: 20 }, (_, i) => `m${i}`).sort());
    await clients.closeAll(200);
    await broker.stop();
    live.delete(broker);
  });
});
