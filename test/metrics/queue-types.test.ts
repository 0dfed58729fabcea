// Metrics for quorum queues and streams as RabbitMQ 3.10 exports them: the global delivery, ack and
// dead-letter counters carry queue_type rabbit_classic_queue / rabbit_quorum_queue /
// rabbit_stream_queue with each type's own counts; per-object (and rabbitmq_detailed_*) queue
// families appear for the types RabbitMQ has them for (streams: depth and consumers only; quorum
// queues: no paging, disk or head-timestamp families); a stream's messages are all "ready" and none
// "unacked", whatever its readers hold. Read back through a real Prometheus.

import amqp, { type ConsumeMessage } from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestBroker, type TestBroker } from '../support/broker.js';
import { waitFor } from '../support/wait.js';
import { PrometheusServer } from './prometheus-server.js';

let broker: TestBroker;
let prometheus: PrometheusServer;
let conn: amqp.ChannelModel;
let metricsUrl: string;
let trafficDoneAt = 0;

const QUEUES = { classic: 't.classic', quorum: 't.quorum', stream: 't.stream' } as const;

beforeAll(async () => {
  broker = await startTestBroker({ metricsOnFreePort: true, managementOnFreePort: true });
  metricsUrl = `http://127.0.0.1:${broker.metrics!.port}`;
  prometheus = await PrometheusServer.start([
    { job: 'agg', address: `127.0.0.1:${broker.metrics!.port}`, path: '/metrics' },
    { job: 'obj', address: `127.0.0.1:${broker.metrics!.port}`, path: '/metrics/per-object' },
  ]);

  conn = await amqp.connect(broker.url);
  const pub = await conn.createConfirmChannel();
  await pub.assertQueue(QUEUES.classic, { durable: true });
  await pub.assertQueue(QUEUES.quorum, { durable: true, arguments: { 'x-queue-type': 'quorum' } });
  await pub.assertQueue(QUEUES.stream, { durable: true, arguments: { 'x-queue-type': 'stream' } });
  await pub.assertQueue('t.dlq', { durable: true });
  await pub.assertQueue('t.quorum-dlx', { durable: true, arguments: { 'x-queue-type': 'quorum', 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': 't.dlq' } });
  for (const q of Object.values(QUEUES)) for (let i = 0; i < 3; i++) pub.sendToQueue(q, Buffer.from('hello'), { persistent: true, timestamp: 1_700_000_000 });
  pub.sendToQueue('t.quorum-dlx', Buffer.from('reject me'), { persistent: true });
  await pub.waitForConfirms();

  // One manual-ack consumer per queue takes the three messages and holds them unacked.
  const ch = await conn.createChannel();
  await ch.prefetch(10);
  const held: Record<string, ConsumeMessage[]> = { [QUEUES.classic]: [], [QUEUES.quorum]: [], [QUEUES.stream]: [] };
  for (const q of Object.values(QUEUES)) {
    await ch.consume(q, (m) => m && held[q]!.push(m), q === QUEUES.stream ? { arguments: { 'x-stream-offset': 'first' } } : {});
  }
  await waitFor(() => Object.values(held).every((h) => h.length === 3), 'three deliveries from each queue');
  // The stream's and the quorum queue's deliveries are acked; the classic ones stay unacked.
  for (const m of [...held[QUEUES.quorum]!, ...held[QUEUES.stream]!]) ch.ack(m);
  // A rejected message of a quorum queue with a dead-letter exchange.
  const getter = await conn.createChannel();
  const rejected = await waitFor(() => getter.get('t.quorum-dlx'), 'the message to reject');
  getter.nack(rejected, false, false);
  await waitFor(() => broker.broker.stats.acknowledged === 6, 'the acks to arrive');
  await waitFor(() => broker.broker.vhosts.get('/')!.queues.get('t.dlq')!.messageCount === 1, 'the dead-lettered message');
  trafficDoneAt = Date.now();
}, 60_000);

afterAll(async () => {
  await conn?.close().catch(() => undefined);
  await prometheus?.stop();
  await broker?.stop();
});

async function scrape(path: string): Promise<string> {
  const res = await fetch(`${metricsUrl}${path}`);
  expect(res.status).toBe(200);
  return res.text();
}

/** The queue family names (without prefix) that have a sample for a queue in an exposition. */
function familiesOf(text: string, queue: string, prefix: string): string[] {
  const out = new Set<string>();
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${prefix}queue_`) || !line.includes(`queue="${queue}"`)) continue;
    out.add(line.slice(prefix.length, line.indexOf('{')));
  }
  return [...out].sort();
}

/** RabbitMQ 3.10's per-object queue families per queue type (minus the Erlang process ones). */
const COMMON = ['queue_consumers', 'queue_messages', 'queue_messages_published_total', 'queue_messages_ready', 'queue_messages_unacked'];
const WITH_BYTES = [
  ...COMMON,
  'queue_messages_bytes', 'queue_messages_persistent', 'queue_messages_persistent_bytes', 'queue_messages_ram', 'queue_messages_ram_bytes',
  'queue_messages_ready_bytes', 'queue_messages_unacked_bytes',
];
const CLASSIC_ONLY = [
  'queue_disk_reads_total', 'queue_disk_writes_total', 'queue_head_message_timestamp', 'queue_messages_paged_out', 'queue_messages_paged_out_bytes',
  'queue_messages_ready_ram', 'queue_messages_unacked_ram',
];

describe('metrics of quorum queues and streams', () => {
  it('global counters are split by queue type with exact values (Prometheus instant queries)', async () => {
    await prometheus.scrapedAfter(trafficDoneAt);
    const expected: Record<string, number> = {};
    for (const [type, manual, acked, get] of [
      ['classic', 3, 0, 0],
      ['quorum', 3, 3, 1],
      ['stream', 3, 3, 0],
    ] as const) {
      const labels = `job="agg",protocol="amqp091",queue_type="rabbit_${type}_queue"`;
      expected[`consume_manual_ack ${type}`] = manual;
      expected[`acknowledged ${type}`] = acked;
      expected[`get_manual_ack ${type}`] = get;
      expected[`delivered ${type}`] = manual + get;
      const read = async (family: string): Promise<number> => prometheus.value(`rabbitmq_global_messages_${family}_total{${labels}}`);
      const seen: Record<string, number> = {
        [`consume_manual_ack ${type}`]: await read('delivered_consume_manual_ack'),
        [`acknowledged ${type}`]: await read('acknowledged'),
        [`get_manual_ack ${type}`]: await read('delivered_get_manual_ack'),
        [`delivered ${type}`]: await read('delivered'),
      };
      expect(seen).toEqual(Object.fromEntries(Object.keys(seen).map((k) => [k, expected[k]])));
    }
    expect(await prometheus.value('rabbitmq_global_messages_dead_lettered_rejected_total{job="agg",queue_type="rabbit_quorum_queue",dead_letter_strategy="at_most_once"}')).toBe(1);
    expect(await prometheus.value('rabbitmq_global_messages_dead_lettered_rejected_total{job="agg",queue_type="rabbit_classic_queue",dead_letter_strategy="at_most_once"}')).toBe(0);
  });

  it('dead-letter series are RabbitMQ’s: per type and strategy', async () => {
    const text = await scrape('/metrics');
    const series = text
      .split('\n')
      .filter((l) => l.startsWith('rabbitmq_global_messages_dead_lettered_'))
      .map((l) => l.slice(0, l.lastIndexOf(' ')))
      .sort();
    const q = (reason: string, type: string, strategy: string): string =>
      `rabbitmq_global_messages_dead_lettered_${reason}_total{queue_type="rabbit_${type}_queue",dead_letter_strategy="${strategy}"}`;
    expect(series).toEqual(
      [
        q('confirmed', 'quorum', 'at_least_once'),
        q('delivery_limit', 'quorum', 'at_least_once'), q('delivery_limit', 'quorum', 'at_most_once'), q('delivery_limit', 'quorum', 'disabled'),
        q('expired', 'classic', 'at_most_once'), q('expired', 'classic', 'disabled'),
        q('expired', 'quorum', 'at_least_once'), q('expired', 'quorum', 'at_most_once'), q('expired', 'quorum', 'disabled'),
        q('maxlen', 'classic', 'at_most_once'), q('maxlen', 'classic', 'disabled'), q('maxlen', 'quorum', 'at_most_once'), q('maxlen', 'quorum', 'disabled'),
        q('rejected', 'classic', 'at_most_once'), q('rejected', 'classic', 'disabled'),
        q('rejected', 'quorum', 'at_least_once'), q('rejected', 'quorum', 'at_most_once'), q('rejected', 'quorum', 'disabled'),
      ].sort(),
    );
  });

  it('per-object and detailed queue families are the ones RabbitMQ has for each queue type', async () => {
    const perObject = await scrape('/metrics/per-object');
    const detailed = await scrape('/metrics/detailed?family=queue_coarse_metrics&family=queue_consumer_count&family=queue_metrics');
    const detailedOnes = (names: string[]): string[] => names.filter((n) => n !== 'queue_messages_published_total').sort();
    expect(familiesOf(perObject, QUEUES.classic, 'rabbitmq_')).toEqual([...WITH_BYTES, ...CLASSIC_ONLY].sort());
    expect(familiesOf(perObject, QUEUES.quorum, 'rabbitmq_')).toEqual([...WITH_BYTES].sort());
    expect(familiesOf(perObject, QUEUES.stream, 'rabbitmq_')).toEqual([...COMMON].sort());
    expect(familiesOf(detailed, QUEUES.classic, 'rabbitmq_detailed_')).toEqual(detailedOnes([...WITH_BYTES, ...CLASSIC_ONLY]));
    expect(familiesOf(detailed, QUEUES.quorum, 'rabbitmq_detailed_')).toEqual(detailedOnes(WITH_BYTES));
    expect(familiesOf(detailed, QUEUES.stream, 'rabbitmq_detailed_')).toEqual(detailedOnes(COMMON));
  });

  it('queue depths per type: a stream’s messages are all ready, none unacked (Prometheus instant queries)', async () => {
    await prometheus.scrapedAfter(trafficDoneAt);
    const read = async (family: string, queue: string): Promise<number> => prometheus.value(`rabbitmq_${family}{job="obj",vhost="/",queue="${queue}"}`);
    const depth = async (queue: string): Promise<[number, number, number, number]> => [
      await read('queue_messages', queue),
      await read('queue_messages_ready', queue),
      await read('queue_messages_unacked', queue),
      await read('queue_consumers', queue),
    ];
    expect(await depth(QUEUES.classic)).toEqual([3, 0, 3, 1]);
    expect(await depth(QUEUES.quorum)).toEqual([0, 0, 0, 1]);
    expect(await depth(QUEUES.stream)).toEqual([3, 3, 0, 1]);
    expect(await read('queue_messages_persistent', QUEUES.quorum)).toBe(0);
    expect(await read('queue_head_message_timestamp', QUEUES.classic)).toBeNaN();
    // The aggregated depth is the sum of the per-object ones (t.dlq holds the dead-lettered one).
    expect(await prometheus.value('rabbitmq_queue_messages{job="agg"}')).toBe(3 + 0 + 3 + 1);
    expect(await prometheus.value('rabbitmq_queue_messages_unacked{job="agg"}')).toBe(3);
  });

  it('the management API shows a stream’s depth the same way', async () => {
    const res = await fetch(`http://127.0.0.1:${broker.management!.port}/api/queues/%2F/${QUEUES.stream}`, {
      headers: { authorization: `Basic ${Buffer.from('guest:guest').toString('base64')}` },
    });
    const row = (await res.json()) as Record<string, unknown>;
    expect([row['messages'], row['messages_ready'], row['messages_unacknowledged']]).toEqual([3, 3, 0]);
  });
});
