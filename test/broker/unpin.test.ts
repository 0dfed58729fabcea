// A small message that stays in a queue must not keep the whole socket read chunk it arrived in
// alive. Messages published in a burst arrive many to a chunk (up to 64 KiB); a body is a view into
// its chunk, which is fine for a message delivered at once. Within a couple of seconds of waiting
// in a queue, each gets its own copy of its bytes, and the chunk can go. The same for a delivery
// a consumer holds unacknowledged.

import amqp from 'amqplib';
import { afterAll, describe, expect, it } from 'vitest';
import type { Message } from '../../src/broker/message.js';
import type { Channel } from '../../src/connection/channel.js';
import { startTestBroker, waitFor, type TestBroker } from '../support/broker.js';

let broker: TestBroker | null = null;
afterAll(async () => {
  await broker?.stop();
});

/** Bytes a message keeps alive beyond its own: the rest of the buffers its body and properties view. */
function pinnedBytes(m: Message): number {
  return m.body.buffer.byteLength - m.body.length + (m.rawProperties.buffer.byteLength - m.rawProperties.length);
}

describe('queued messages do not pin socket chunks', () => {
  it('a burst of 2,000 small messages left in a queue: within seconds none holds more than its own bytes', { timeout: 30_000 }, async () => {
    broker = await startTestBroker();
    const conn = await amqp.connect(broker.url);
    const ch = await conn.createConfirmChannel();
    await ch.assertQueue('waiting', { durable: false });
    for (let i = 0; i < 2000; i++) ch.sendToQueue('waiting', Buffer.from(`small message ${i}`));
    await ch.waitForConfirms();
    const q = broker.broker.vhosts.get('/')!.queues.get('waiting')!;
    const messages = (): Message[] => [...q.ready.entries()].map((e) => e.message);
    expect(messages()).toHaveLength(2000);
    // The premise: they came in shared read chunks.
    expect(Math.max(...messages().map(pinnedBytes))).toBeGreaterThan(16 * 1024);
    await waitFor(() => Math.max(...messages().map(pinnedBytes)) <= 1024 * 8, 'every queued message to hold only its own bytes', 10_000);
    // Same content after the copy.
    expect(messages().map((m) => m.body.toString())).toEqual(Array.from({ length: 2000 }, (_, i) => `small message ${i}`));
    const got = await ch.get('waiting', { noAck: true });
    expect(got && got.content.toString()).toBe('small message 0');
    await conn.close();
  });

  it('2,000 small messages delivered in a burst and held unacknowledged: within seconds none holds more than its own bytes', { timeout: 30_000 }, async () => {
    broker ??= await startTestBroker();
    const conn = await amqp.connect(broker.url);
    const pub = await conn.createConfirmChannel();
    await pub.assertQueue('held', { durable: false });
    const sub = await conn.createChannel();
    const got: string[] = [];
    await sub.consume('held', (m) => {
      if (m !== null) got.push(m.content.toString());
    });
    for (let i = 0; i < 2000; i++) pub.sendToQueue('held', Buffer.from(`held message ${i}`));
    await pub.waitForConfirms();
    await waitFor(() => got.length === 2000, `the 2000 deliveries (have ${got.length})`, 10_000);
    // The consumer's channel on the broker side: its ledger holds the 2000 deliveries.
    const channels = [...broker.broker.connections].flatMap((c) => [...(c as unknown as { channels: Map<number, Channel> }).channels.values()]);
    const ledger = channels.map((ch) => ch.unacked).find((l) => l.size === 2000)!;
    expect(ledger).toBeDefined();
    const messages = (): Message[] => [...ledger.deliveries()].map((d) => d.entry.message);
    expect(messages()).toHaveLength(2000);
    // The premise: they came in shared read chunks.
    expect(Math.max(...messages().map(pinnedBytes))).toBeGreaterThan(16 * 1024);
    await waitFor(() => Math.max(...messages().map(pinnedBytes)) <= 1024 * 8, 'every held delivery to hold only its own bytes', 10_000);
    expect(messages().map((m) => m.body.toString())).toEqual(Array.from({ length: 2000 }, (_, i) => `held message ${i}`));
    expect(got).toEqual(Array.from({ length: 2000 }, (_, i) => `held message ${i}`));
    // Acknowledged after the copy: the ledger empties as usual.
    sub.ackAll();
    await waitFor(() => ledger.size === 0, 'the ledger to empty after ackAll', 5000);
    await conn.close();
  });
});
