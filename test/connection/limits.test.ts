// Limits. The consumer timeout as RabbitMQ 3.x (consumer_timeout; text checked on RabbitMQ 3.10
// with a 2000 ms timeout): a channel holding a delivery unacknowledged for longer than the broker's
// --consumer-timeout, or its queue's x-consumer-timeout, is closed with 406 and RabbitMQ's text;
// its messages go back to the queue. --max-connections: connections beyond the limit are not served
// (no connection.start) until another closes, as RabbitMQ's listener does at connection_max.

import { describe, expect, it } from 'vitest';
import * as M from '../../src/protocol/generated/amqp.js';
import { QUIET_MS, sleep, uniqueName, waitFor } from '../support/harness.js';
import { PROTOCOL_HEADER, RawClient } from '../support/raw-client.js';
import { useTestBroker } from '../support/test-broker.js';

const timedOut = (channel: number, ms: number): string =>
  `PRECONDITION_FAILED - delivery acknowledgement on channel ${channel} timed out. Timeout value used: ${ms} ms. This timeout value can be configured, see consumers doc guide to learn more`;

describe('consumer timeout', () => {
  const broker = useTestBroker({ consumerTimeoutMs: 1000 });
  const clients = broker.clients;

  it('a delivery unacked past --consumer-timeout closes its channel with 406; the message is requeued', async () => {
    const conn = await clients.connect();
    const ch = await clients.channel(conn);
    const q = uniqueName('timeout');
    await ch.assertQueue(q, { durable: false });
    ch.sendToQueue(q, Buffer.from('slow'));
    let deliveredAt = 0;
    await ch.consume(q, () => (deliveredAt ||= Date.now()));
    const err = await waitFor(() => ch.errors[0], 'the channel to be closed', 10_000);
    expect(Date.now() - deliveredAt).toBeGreaterThanOrEqual(1000);
    expect(err).toMatchObject({ code: 406, text: timedOut(1, 1000), classId: 0, methodId: 0 });
    expect(conn.closed).toBe(false); // a channel error only
    const other = await clients.channel(conn);
    const m = await waitFor(() => other.get(q, { noAck: true }), 'the message back in the queue');
    expect(m && [m.content.toString(), m.fields.redelivered]).toEqual(['slow', true]);
  });

  it('deliveries acked in time keep the channel open', async () => {
    const ch = await clients.channel();
    const q = uniqueName('in-time');
    await ch.assertQueue(q, { durable: false });
    await ch.prefetch(1);
    let acked = 0;
    await ch.consume(q, (m) => {
      if (m === null) return;
      setTimeout(() => {
        ch.ack(m);
        acked++;
      }, 300);
    });
    for (let i = 0; i < 8; i++) ch.sendToQueue(q, Buffer.from(String(i)));
    await waitFor(() => acked === 8, '8 acks, each within the timeout', 10_000);
    expect(ch.errors).toEqual([]);
  });

  it('basic.get deliveries count too', async () => {
    const ch = await clients.channel();
    const q = uniqueName('get-timeout');
    await ch.assertQueue(q, { durable: false });
    ch.sendToQueue(q, Buffer.from('got'));
    await waitFor(() => ch.get(q, { noAck: false }), 'the message');
    expect(await waitFor(() => ch.errors[0], 'the channel to be closed', 10_000)).toMatchObject({ code: 406, text: timedOut(1, 1000) });
  });
});

describe('x-consumer-timeout', () => {
  const broker = useTestBroker(); // the default: 30 minutes
  const clients = broker.clients;

  it("a queue's x-consumer-timeout applies to its deliveries; other queues keep the broker's", async () => {
    const conn = await clients.connect();
    const short = await clients.channel(conn);
    const long = await clients.channel(conn);
    const qs = uniqueName('short');
    const ql = uniqueName('long');
    await short.assertQueue(qs, { durable: false, arguments: { 'x-consumer-timeout': 500 } });
    await long.assertQueue(ql, { durable: false });
    short.sendToQueue(qs, Buffer.from('a'));
    long.sendToQueue(ql, Buffer.from('b'));
    await short.consume(qs, () => {});
    await long.consume(ql, () => {});
    expect(await waitFor(() => short.errors[0], 'the short-timeout channel to be closed', 10_000)).toMatchObject({ code: 406, text: timedOut(1, 500) });
    await sleep(QUIET_MS);
    expect(long.errors).toEqual([]);
  });

  it('x-consumer-timeout must be a non-negative integer', async () => {
    const ch = await clients.channel();
    const q = uniqueName('bad');
    await ch.assertQueue(q, { durable: false, arguments: { 'x-consumer-timeout': -1 } }).catch(() => {});
    expect(ch.errors[0]).toMatchObject({ code: 406, text: `PRECONDITION_FAILED - invalid arg 'x-consumer-timeout' for queue '${q}' in vhost '/': {value_negative,-1}` });
  });
});

describe('--max-connections', () => {
  const broker = useTestBroker({ maxConnections: 2 });
  const clients = broker.clients;

  it('a connection beyond the limit is not served until another closes', async () => {
    const a = await clients.connect();
    await clients.connect();
    const waiting = await RawClient.open(broker.port);
    waiting.startParsing();
    waiting.write(PROTOCOL_HEADER);
    await sleep(QUIET_MS);
    expect(waiting.frames).toEqual([]);
    expect(waiting.closed).toBe(false);
    expect(broker.server.connections.size).toBe(2);
    await a.close();
    await waiting.waitForMethod(M.CONNECTION_START);
    waiting.destroy();
    // The limit holds again afterwards: one slot was freed and taken.
    await waitFor(() => broker.server.connections.size === 1, 'the raw connection to go');
    const c = await clients.connect();
    expect(c.closed).toBe(false);
  });
});
