// Gauges stay exact under churn. RabbitMQ 3.10's rabbitmq_global_publishers drifts negative when
// channels and connections that published come and go (rabbitmq-server #5462); Warren counts its
// gauges from the live objects at scrape time, so after any amount of churn they read exactly what
// is open, and the opened/closed counters agree with them.

import amqp from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestBroker, type TestBroker } from '../support/broker.js';
import { waitFor } from '../support/wait.js';

let broker: TestBroker;

beforeAll(async () => {
  broker = await startTestBroker({ metricsOnFreePort: true });
});

afterAll(async () => {
  await broker?.stop();
});

async function metrics(): Promise<Map<string, number>> {
  const text = await (await fetch(`http://127.0.0.1:${broker.metrics!.port}/metrics`)).text();
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    out.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return out;
}

describe('gauges under connection and channel churn', () => {
  it('publishers, consumers, channels and connections return to exactly zero, and opened = closed', async () => {
    const ROUNDS = 8;
    const PER_ROUND = 10;
    for (let round = 0; round < ROUNDS; round++) {
      await Promise.all(
        Array.from({ length: PER_ROUND }, async (_, i) => {
          const conn = await amqp.connect(broker.url);
          const pub = await conn.createChannel();
          const q = await pub.assertQueue('', { exclusive: true });
          pub.sendToQueue(q.queue, Buffer.from('x'));
          const sub = await conn.createChannel();
          await sub.consume(q.queue, () => {}, { noAck: true });
          // Half close their channels first, half drop the whole connection (with or without a
          // clean close), as clients do.
          if (i % 3 === 0) {
            await pub.close();
            await sub.close();
            await conn.close();
          } else if (i % 3 === 1) {
            await conn.close();
          } else {
            conn.on('error', () => {}); // the client sees its own socket cut
            (conn as unknown as { connection: { stream: { destroy(): void } } }).connection.stream.destroy();
          }
        }),
      );
      // Mid-churn, the gauges never go below zero.
      const m = await metrics();
      expect(m.get('rabbitmq_global_publishers{protocol="amqp091"}')!).toBeGreaterThanOrEqual(0);
    }
    await waitFor(() => broker.server.connections.size === 0, 'every connection to be gone');
    const m = await metrics();
    expect({
      publishers: m.get('rabbitmq_global_publishers{protocol="amqp091"}'),
      consumers: m.get('rabbitmq_global_consumers{protocol="amqp091"}'),
      connections: m.get('rabbitmq_connections'),
      channels: m.get('rabbitmq_channels'),
      queues: m.get('rabbitmq_queues'),
      connectionsOpened: m.get('rabbitmq_connections_opened_total'),
      connectionsClosed: m.get('rabbitmq_connections_closed_total'),
      channelsOpened: m.get('rabbitmq_channels_opened_total'),
      channelsClosed: m.get('rabbitmq_channels_closed_total'),
      queuesCreated: m.get('rabbitmq_queues_created_total'),
      queuesDeleted: m.get('rabbitmq_queues_deleted_total'),
      received: m.get('rabbitmq_global_messages_received_total{protocol="amqp091"}'),
    }).toEqual({
      publishers: 0,
      consumers: 0,
      connections: 0,
      channels: 0,
      queues: 0,
      connectionsOpened: ROUNDS * PER_ROUND,
      connectionsClosed: ROUNDS * PER_ROUND,
      channelsOpened: ROUNDS * PER_ROUND * 2,
      channelsClosed: ROUNDS * PER_ROUND * 2,
      queuesCreated: ROUNDS * PER_ROUND,
      queuesDeleted: ROUNDS * PER_ROUND,
      received: ROUNDS * PER_ROUND,
    });
  });

  it('while connections are open, the gauges count exactly what is open', async () => {
    const conns = await Promise.all(Array.from({ length: 5 }, () => amqp.connect(broker.url)));
    const channels = await Promise.all(conns.map((c) => c.createChannel()));
    for (const ch of channels.slice(0, 3)) ch.sendToQueue('nowhere', Buffer.from('x')); // three publishers
    await waitFor(async () => (await metrics()).get('rabbitmq_global_publishers{protocol="amqp091"}') === 3, 'three publishers');
    const m = await metrics();
    expect([m.get('rabbitmq_connections'), m.get('rabbitmq_channels')]).toEqual([5, 5]);
    await Promise.all(conns.map((c) => c.close()));
    await waitFor(() => broker.server.connections.size === 0, 'every connection to be gone');
    expect((await metrics()).get('rabbitmq_global_publishers{protocol="amqp091"}')).toBe(0);
  });
});
