// Warren's Prometheus endpoint as Prometheus itself sees it: a real Prometheus scrapes a real
// broker after real amqplib traffic (publishes with confirms, consumes, gets, acks, nacks, an
// unroutable mandatory publish, a dead-lettered message), and every counter is read back through
// Prometheus' HTTP API with its exact expected value. promtool lints the expositions, and counters
// must survive the deletion of the queues, channels and connections that counted them.

import amqp, { type ConfirmChannel, type Channel, type ConsumeMessage } from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestBroker, type TestBroker } from '../support/broker.js';
import { waitFor } from '../support/wait.js';
import { PrometheusServer, promtoolCheckMetrics } from './prometheus-server.js';

let broker: TestBroker;
let prometheus: PrometheusServer;
let metricsUrl: string;

beforeAll(async () => {
  broker = await startTestBroker({ metricsOnFreePort: true });
  metricsUrl = `http://127.0.0.1:${broker.metrics!.port}`;
  prometheus = await PrometheusServer.start([
    { job: 'warren', address: `127.0.0.1:${broker.metrics!.port}`, path: '/metrics' },
    { job: 'warren-per-object', address: `127.0.0.1:${broker.metrics!.port}`, path: '/metrics/per-object' },
  ]);
}, 60_000);

afterAll(async () => {
  await prometheus?.stop();
  await broker?.stop();
});

async function scrape(path: string): Promise<string> {
  const res = await fetch(`${metricsUrl}${path}`);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
  return res.text();
}

/** The value of an unlabelled sample (or one with exactly these labels) in an exposition. */
function sampleValue(text: string, name: string, labels = ''): number | undefined {
  const wanted = labels === '' ? `${name} ` : `${name}{${labels}} `;
  const line = text.split('\n').find((l) => l.startsWith(wanted));
  return line === undefined ? undefined : Number(line.slice(wanted.length));
}

/** Publishes on a confirm channel and waits for every confirm. */
async function publishAll(ch: ConfirmChannel, sends: (() => void)[]): Promise<void> {
  for (const send of sends) send();
  await ch.waitForConfirms();
}

describe('Prometheus reads exact counters after real traffic', () => {
  // What the traffic below does, counted by hand.
  const EXPECTED: Record<string, number> = {
    'rabbitmq_global_messages_received_total{protocol="amqp091"}': 12,
    'rabbitmq_global_messages_received_confirm_total{protocol="amqp091"}': 12,
    'rabbitmq_global_messages_confirmed_total{protocol="amqp091"}': 12,
    'rabbitmq_global_messages_routed_total{protocol="amqp091"}': 10,
    'rabbitmq_global_messages_unroutable_returned_total{protocol="amqp091"}': 1,
    'rabbitmq_global_messages_unroutable_dropped_total{protocol="amqp091"}': 1,
    'rabbitmq_global_messages_delivered_consume_manual_ack_total{protocol="amqp091",queue_type="rabbit_classic_queue"}': 5,
    'rabbitmq_global_messages_delivered_consume_auto_ack_total{protocol="amqp091",queue_type="rabbit_classic_queue"}': 2,
    'rabbitmq_global_messages_delivered_get_manual_ack_total{protocol="amqp091",queue_type="rabbit_classic_queue"}': 3,
    'rabbitmq_global_messages_delivered_get_auto_ack_total{protocol="amqp091",queue_type="rabbit_classic_queue"}': 1,
    'rabbitmq_global_messages_delivered_total{protocol="amqp091",queue_type="rabbit_classic_queue"}': 11,
    'rabbitmq_global_messages_get_empty_total{protocol="amqp091",queue_type="rabbit_classic_queue"}': 1,
    'rabbitmq_global_messages_redelivered_total{protocol="amqp091",queue_type="rabbit_classic_queue"}': 1,
    'rabbitmq_global_messages_acknowledged_total{protocol="amqp091",queue_type="rabbit_classic_queue"}': 6,
    'rabbitmq_global_messages_dead_lettered_rejected_total{queue_type="rabbit_classic_queue",dead_letter_strategy="at_most_once"}': 1,
    'rabbitmq_global_messages_dead_lettered_rejected_total{queue_type="rabbit_classic_queue",dead_letter_strategy="disabled"}': 0,
    'rabbitmq_global_messages_dead_lettered_expired_total{queue_type="rabbit_classic_queue",dead_letter_strategy="disabled"}': 0,
    'rabbitmq_global_messages_dead_lettered_maxlen_total{queue_type="rabbit_classic_queue",dead_letter_strategy="at_most_once"}': 0,
    'rabbitmq_global_messages_dead_lettered_delivery_limit_total{queue_type="rabbit_quorum_queue",dead_letter_strategy="at_most_once"}': 0,
    'rabbitmq_message_size_bytes_count{protocol="amqp091"}': 12,
    'rabbitmq_message_size_bytes_bucket{protocol="amqp091",le="100"}': 11,
    'rabbitmq_message_size_bytes_bucket{protocol="amqp091",le="1000"}': 11,
    'rabbitmq_message_size_bytes_bucket{protocol="amqp091",le="10000"}': 12,
    'rabbitmq_message_size_bytes_bucket{protocol="amqp091",le="+Inf"}': 12,
    'rabbitmq_message_size_bytes_sum{protocol="amqp091"}': 11 * 5 + 5000,
    rabbitmq_connections_opened_total: 2,
    rabbitmq_connections_closed_total: 1,
    rabbitmq_channels_opened_total: 4,
    rabbitmq_channels_closed_total: 1,
    rabbitmq_queues_created_total: 5,
    rabbitmq_queues_declared_total: 6,
    rabbitmq_queues_deleted_total: 1,
    rabbitmq_channel_messages_published_total: 12,
    rabbitmq_channel_messages_confirmed_total: 12,
    rabbitmq_channel_get_ack_total: 3,
    rabbitmq_channel_get_total: 1,
    rabbitmq_channel_get_empty_total: 1,
    rabbitmq_channel_messages_delivered_ack_total: 5,
    rabbitmq_channel_messages_delivered_total: 2,
    rabbitmq_channel_messages_redelivered_total: 1,
    rabbitmq_channel_messages_acked_total: 6,
    rabbitmq_queue_messages_published_total: 11, // 10 published + 1 dead-lettered into m.dl
    rabbitmq_queue_messages_ready: 1,
    rabbitmq_queue_messages_unacked: 0,
    rabbitmq_queue_messages: 1,
    rabbitmq_queues: 4,
    rabbitmq_connections: 1,
    rabbitmq_channels: 3,
    rabbitmq_consumers: 2,
    'rabbitmq_global_consumers{protocol="amqp091"}': 2,
    'rabbitmq_global_publishers{protocol="amqp091"}': 1,
    'warren_queue_messages_dead_lettered_total{reason="rejected",dead_letter_strategy="at_most_once"}': 1,
  };

  let conn: amqp.ChannelModel;
  let trafficDoneAt = 0;

  beforeAll(async () => {
    conn = await amqp.connect(broker.url);
    const pub: ConfirmChannel = await conn.createConfirmChannel();
    await pub.assertQueue('m.main', { durable: true });
    await pub.assertQueue('m.main', { durable: true }); // a redeclare: declared, not created
    await pub.assertQueue('m.dl');
    await pub.assertQueue('m.src', { arguments: { 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': 'm.dl' } });
    await pub.assertQueue('m.auto');
    await pub.assertQueue('m.empty');
    const body = Buffer.from('hello');
    await publishAll(pub, [
      ...Array.from({ length: 5 }, () => () => void pub.sendToQueue('m.main', body, { persistent: true })),
      ...Array.from({ length: 3 }, () => () => void pub.sendToQueue('m.src', body)),
      () => void pub.sendToQueue('m.auto', body),
      () => void pub.sendToQueue('m.auto', Buffer.alloc(5000)),
      () => void pub.publish('amq.direct', 'nowhere', body, { mandatory: true }),
      () => void pub.publish('amq.direct', 'nowhere', body),
    ]);

    const getter: Channel = await conn.createChannel();
    const first = await getter.get('m.src', { noAck: false });
    expect(first).not.toBe(false);
    getter.nack(first as amqp.GetMessage, false, false); // dead-lettered to m.dl (rejected)
    expect(await getter.get('m.src', { noAck: true })).not.toBe(false); // auto-ack get
    expect(await getter.get('m.empty', { noAck: true })).toBe(false); // get-empty
    const dead = await waitFor(async () => getter.get('m.dl', { noAck: false }), 'the dead-lettered message');
    getter.nack(dead, false, true); // requeued…
    const again = await waitFor(async () => getter.get('m.dl', { noAck: false }), 'the requeued message');
    expect(again.fields.redelivered).toBe(true); // …and redelivered
    getter.ack(again);

    const consumer: Channel = await conn.createChannel();
    await consumer.prefetch(10);
    const received: ConsumeMessage[] = [];
    await consumer.consume('m.main', (m) => {
      if (m !== null) received.push(m);
    });
    await waitFor(() => received.length === 5, 'five deliveries');
    for (const m of received) consumer.ack(m);
    const autoAcked: ConsumeMessage[] = [];
    await consumer.consume('m.auto', (m) => m && autoAcked.push(m), { noAck: true });
    await waitFor(() => autoAcked.length === 2, 'two auto-ack deliveries');

    await pub.deleteQueue('m.empty');
    // A second connection that comes and goes, with a channel that closes.
    const other = await amqp.connect(broker.url);
    const closing = await other.createChannel();
    await closing.close();
    await other.close();
    // Wait until the broker has seen the acks (they have no reply).
    await waitFor(() => broker.broker.stats.acknowledged === 6, 'the acks to arrive');
    trafficDoneAt = Date.now();
  }, 30_000);

  afterAll(async () => {
    // The last test closes it; this is for a run that failed before.
    await conn?.close().catch(() => undefined);
  });

  it('every counter has its exact value in Prometheus (instant queries)', async () => {
    await prometheus.scrapedAfter(trafficDoneAt);
    const seen: Record<string, number> = {};
    for (const expr of Object.keys(EXPECTED)) {
      // Query each series through the aggregated job: labels are part of the selector.
      const selector = expr.includes('{') ? expr.replace('{', '{job="warren",') : `${expr}{job="warren"}`;
      seen[expr] = await prometheus.value(selector);
    }
    expect(seen).toEqual(EXPECTED);
  });

  it('per-object series add up to the aggregated ones and carry RabbitMQ labels', async () => {
    await prometheus.scrapedAfter(trafficDoneAt);
    expect(await prometheus.value('sum(rabbitmq_queue_messages_ready{job="warren-per-object"})')).toBe(1);
    expect(await prometheus.value('rabbitmq_queue_messages_ready{job="warren-per-object",vhost="/",queue="m.main"}')).toBe(0);
    expect(await prometheus.value('rabbitmq_queue_messages_published_total{job="warren-per-object",vhost="/",queue="m.main"}')).toBe(5);
    expect(await prometheus.value('rabbitmq_queue_messages_persistent{job="warren-per-object",vhost="/",queue="m.main"}')).toBe(0);
    expect(await prometheus.value('rabbitmq_queue_disk_writes_total{job="warren-per-object",vhost="/",queue="m.main"}')).toBe(5);
    expect(await prometheus.value('sum(rabbitmq_channel_messages_published_total{job="warren-per-object",exchange=""})')).toBe(10);
    expect(await prometheus.value('sum(rabbitmq_channel_messages_unroutable_returned_total{job="warren-per-object",exchange="amq.direct"})')).toBe(1);
    expect(await prometheus.value('sum(rabbitmq_channel_messages_delivered_ack_total{job="warren-per-object",queue="m.main"})')).toBe(5);
    expect(await prometheus.value('sum(rabbitmq_channel_consumers{job="warren-per-object"})')).toBe(2);
    expect(await prometheus.value('warren_queue_messages_dead_lettered_total{job="warren-per-object",queue="m.src",reason="rejected",dead_letter_strategy="at_most_once"}')).toBe(1);
    const identity = await prometheus.query('rabbitmq_identity_info');
    expect(identity.map((s) => s.metric['rabbitmq_endpoint']).sort()).toEqual(['aggregated', 'per-object']);
    const build = await prometheus.query('rabbitmq_build_info{job="warren"}');
    expect(build[0]!.metric['product_name']).toBe('Warren');
    expect(build[0]!.metric['erlang_version']).toBe(process.versions.node);
  });

  it('promtool accepts the expositions', async () => {
    for (const path of ['/metrics', '/metrics/per-object', '/metrics/detailed?family=queue_coarse_metrics&family=channel_metrics']) {
      const text = await scrape(path);
      const result = promtoolCheckMetrics(text);
      expect({ path, ...result }).toEqual({ path, status: 0, output: '' });
    }
  });

  it('counters survive the deletion of the queues, channels and connections that counted them', async () => {
    const before = await scrape('/metrics');
    const names = [
      'rabbitmq_queue_messages_published_total',
      'rabbitmq_queue_disk_writes_total',
      'rabbitmq_channel_messages_published_total',
      'rabbitmq_channel_messages_acked_total',
      'rabbitmq_connection_incoming_bytes_total',
      'rabbitmq_connection_outgoing_bytes_total',
    ];
    const counts = Object.fromEntries(names.map((n) => [n, sampleValue(before, n)]));
    const ch = await conn.createChannel();
    for (const q of ['m.main', 'm.dl', 'm.src', 'm.auto']) await ch.deleteQueue(q);
    await conn.close();
    await waitFor(() => broker.server.connections.size === 0, 'the connection to go');
    const after = await scrape('/metrics');
    expect(sampleValue(after, 'rabbitmq_queues')).toBe(0);
    expect(sampleValue(after, 'rabbitmq_connections')).toBe(0);
    expect(sampleValue(after, 'rabbitmq_channels')).toBe(0);
    for (const n of names.slice(0, 4)) expect([n, sampleValue(after, n)]).toEqual([n, counts[n]]);
    // Bytes keep growing with the close handshake, never shrink.
    for (const n of names.slice(4)) expect(sampleValue(after, n)!).toBeGreaterThanOrEqual(counts[n]!);
    expect(sampleValue(after, 'rabbitmq_queues_deleted_total')).toBe(5);
    expect(sampleValue(after, 'rabbitmq_global_messages_received_total', 'protocol="amqp091"')).toBe(12);
  });
});
