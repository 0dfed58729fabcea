// The delayed-retry pattern, exactly as the README documents it, run end to end: a work queue
// that dead-letters rejected messages into a retry queue, whose TTL dead-letters them back into
// the work queue after a delay; the consumer counts earlier failures from the x-death header and,
// after the last attempt, parks the message in a parking queue. Works the same on RabbitMQ 3.10.
//
// The code between the BEGIN and END markers is what the README shows; keep the two in step.

import amqp from 'amqplib';
import type { Channel, ConsumeMessage } from 'amqplib';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { sleep, waitFor, useBroker } from '../support/harness.js';

const h = useBroker();

// ==== BEGIN delayed-retry pattern (README) =======================================================
//
//   producer ──▶ work ──nack(requeue=false)──▶ work.retry (TTL) ──expired──▶ work ──▶ …
//                  └── after MAX_ATTEMPTS failures: published to work.parking, then acked
//
const MAX_ATTEMPTS = 3;
const RETRY_DELAY_MS = 100;

async function declareRetryTopology(ch: Channel): Promise<void> {
  // Rejected messages go to work.retry (through the default exchange)…
  await ch.assertQueue('work', {
    durable: true,
    arguments: { 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': 'work.retry' },
  });
  // …wait there RETRY_DELAY_MS, and expire back into work.
  await ch.assertQueue('work.retry', {
    durable: true,
    arguments: {
      'x-message-ttl': RETRY_DELAY_MS,
      'x-dead-letter-exchange': '',
      'x-dead-letter-routing-key': 'work',
    },
  });
  // Messages that failed MAX_ATTEMPTS times, for a human (or a script) to look at.
  await ch.assertQueue('work.parking', { durable: true });
}

/** How many times 'work' has rejected this message before: 0 on the first attempt. */
function previousFailures(msg: ConsumeMessage): number {
  const deaths = (msg.properties.headers?.['x-death'] ?? []) as { queue: string; reason: string; count: number }[];
  const death = deaths.find((d) => d.queue === 'work' && d.reason === 'rejected');
  return death === undefined ? 0 : Number(death.count);
}

async function consumeWithRetry(ch: Channel, handle: (msg: ConsumeMessage) => Promise<void>): Promise<void> {
  await ch.consume('work', async (msg) => {
    if (msg === null) return; // the broker cancelled the consumer (queue deleted)
    try {
      await handle(msg);
      ch.ack(msg);
    } catch {
      const attempt = previousFailures(msg) + 1;
      if (attempt < MAX_ATTEMPTS) {
        ch.nack(msg, false, false); // dead-lettered to work.retry; back in work after the delay
      } else {
        ch.sendToQueue('work.parking', msg.content, msg.properties); // keeps the x-death history
        ch.ack(msg);
      }
    }
  });
}
// ==== END delayed-retry pattern ==================================================================

const QUEUES = ['work', 'work.retry', 'work.parking'];

async function deleteQueues(): Promise<void> {
  const conn = await amqp.connect(h.url);
  const ch = await conn.createChannel();
  for (const q of QUEUES) await ch.deleteQueue(q);
  await conn.close();
}

// Fixed names (as in the README): start from nothing, and leave nothing behind.
beforeEach(deleteQueues);
afterEach(deleteQueues);

describe('delayed retry with dead-lettering (README example)', () => {
  it('a job that always fails is attempted exactly 3 times, ~RETRY_DELAY_MS apart, then parked with its x-death history', async () => {
    const conn = await h.connect();
    const ch = await h.channel(conn);
    await declareRetryTopology(ch);
    const attempts: { at: number; previousFailures: number; redelivered: boolean }[] = [];
    await consumeWithRetry(ch, async (msg) => {
      attempts.push({ at: Date.now(), previousFailures: previousFailures(msg), redelivered: msg.fields.redelivered });
      throw new Error('always fails');
    });
    const producer = await conn.createConfirmChannel();
    const t0 = Date.now();
    producer.sendToQueue('work', Buffer.from('job-1'), { messageId: 'job-1', persistent: true, headers: { tenant: 'acme' } });
    await producer.waitForConfirms();

    const parked = await waitFor(() => producer.get('work.parking', { noAck: true }), 'the parked message', 5000);
    expect(attempts.map((a) => a.previousFailures)).toEqual([0, 1, 2]);
    // A dead-lettered copy is a new delivery: never marked redelivered.
    expect(attempts.map((a) => a.redelivered)).toEqual([false, false, false]);
    expect(attempts[0]!.at - t0).toBeLessThan(RETRY_DELAY_MS);
    for (let i = 1; i < attempts.length; i++) {
      const gap = attempts[i]!.at - attempts[i - 1]!.at;
      expect(gap).toBeGreaterThanOrEqual(RETRY_DELAY_MS - 10);
      expect(gap).toBeLessThan(RETRY_DELAY_MS + 500);
    }
    await sleep(RETRY_DELAY_MS * 2);
    expect(attempts).toHaveLength(3);

    expect(parked.content.toString()).toBe('job-1');
    expect(parked.properties).toMatchObject({ messageId: 'job-1', deliveryMode: 2 });
    const headers = parked.properties.headers!;
    expect(headers['tenant']).toBe('acme');
    expect(headers['x-first-death-queue']).toBe('work');
    expect(headers['x-first-death-reason']).toBe('rejected');
    expect(headers['x-first-death-exchange']).toBe('');
    const deaths = headers['x-death']!;
    expect(deaths.map((d) => [d.queue, d.reason, d.count])).toEqual([
      ['work.retry', 'expired', 2],
      ['work', 'rejected', 2],
    ]);
    expect(deaths[0]).toMatchObject({ exchange: '', 'routing-keys': ['work.retry'] });
    expect(deaths[1]).toMatchObject({ exchange: '', 'routing-keys': ['work'] });

    for (const q of QUEUES) expect(await ch.checkQueue(q)).toMatchObject({ messageCount: 0 });
  });

  it('a job that succeeds on its second attempt is acked and never parked', async () => {
    const conn = await h.connect();
    const ch = await h.channel(conn);
    await declareRetryTopology(ch);
    const seen: number[] = [];
    await consumeWithRetry(ch, async (msg) => {
      seen.push(previousFailures(msg));
      if (seen.length === 1) throw new Error('transient failure');
    });
    ch.sendToQueue('work', Buffer.from('job-2'));
    await waitFor(() => seen.length === 2, 'the second attempt', 3000);
    await sleep(RETRY_DELAY_MS * 3);
    expect(seen).toEqual([0, 1]);
    for (const q of QUEUES) expect(await ch.checkQueue(q)).toMatchObject({ messageCount: 0, consumerCount: q === 'work' ? 1 : 0 });
  });
});
