// Connection-level behaviour through a real client (amqplib) against an in-process broker.

import amqp from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestBroker, type TestBroker } from '../support/broker.js';
import { sleep, waitFor } from '../support/wait.js';
import { RawClient } from '../support/raw-client.js';
import * as M from '../../src/protocol/generated/amqp.js';

let broker: TestBroker;

beforeAll(async () => {
  broker = await startTestBroker();
});
afterAll(async () => {
  await broker.stop();
});

describe('connection', () => {
  it('connects, reports server properties and closes cleanly', async () => {
    const conn = await amqp.connect(broker.url);
    const props = (conn.connection as unknown as { serverProperties: Record<string, unknown> }).serverProperties;
    expect(props['product']).toBe('Warren');
    expect(props['capabilities']).toMatchObject({
      publisher_confirms: true,
      exchange_exchange_bindings: true,
      'basic.nack': true,
      consumer_cancel_notify: true,
      'connection.blocked': true,
      authentication_failure_close: true,
      per_consumer_qos: true,
    });
    await conn.close();
    expect(broker.server.connections.size).toBe(0);
  });

  it('opens and closes 200 channels on one connection, reusing numbers', async () => {
    const conn = await amqp.connect(broker.url);
    const channels = [];
    for (let i = 0; i < 200; i++) channels.push(await conn.createChannel());
    const [connection] = [...broker.server.connections];
    expect(connection!.channels.size).toBe(200);
    for (const ch of channels) await ch.close();
    expect(connection!.channels.size).toBe(0);
    // Closed numbers can be used again.
    const again = [];
    for (let i = 0; i < 10; i++) again.push(await conn.createChannel());
    const q = await again[9]!.assertQueue('', { exclusive: true });
    expect(q.queue).toMatch(/^amq\.gen-[A-Za-z0-9_-]{22}$/);
    await conn.close();
  });

  it('negotiates heartbeats and keeps an idle connection alive across 3+ intervals', async () => {
    const conn = await amqp.connect(`${broker.url}?heartbeat=1`);
    const ch = await conn.createChannel();
    let closed = false;
    conn.on('close', () => (closed = true));
    await sleep(3500);
    expect(closed).toBe(false);
    const q = await ch.assertQueue('', { exclusive: true });
    expect(q.messageCount).toBe(0);
    await conn.close();
  });

  it('sends heartbeats when the connection is quiet, and drops a silent peer after two intervals', async () => {
    const raw = await RawClient.handshake(broker.port, { heartbeat: 1 });
    await sleep(1600);
    expect(raw.frames.some((f) => f.type === M.FRAME_HEARTBEAT)).toBe(true);
    // The raw client never sends heartbeats: the broker gives up after 2 intervals.
    await raw.waitClosed(4000);
    expect(raw.closed).toBe(true);
  });

  it('refuses a bad password with connection.close 403 and closes the socket', async () => {
    const err = await amqp.connect(`amqp://guest:wrong@127.0.0.1:${broker.port}`).catch((e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toContain('403');
    expect((err as Error).message).toContain(
      'ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN. For details see the broker logfile.',
    );
    await waitFor(() => broker.server.connections.size === 0, 'the refused connection to go');
  });

  it('refuses an unknown user the same way', async () => {
    const err = await amqp.connect(`amqp://nobody:x@127.0.0.1:${broker.port}`).catch((e: Error) => e);
    expect((err as Error).message).toContain('ACCESS_REFUSED');
  });

  it('refuses an unknown vhost with 530 NOT_ALLOWED', async () => {
    const err = await amqp.connect(`${broker.url}/nope`).catch((e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    // amqplib does not surface the close reason during the handshake: read it off the wire.
    const raw = await RawClient.handshakeUntilOpen(broker.port, { clientProperties: {}, channelMax: 2047, frameMax: 131072, virtualHost: 'nope' });
    const close = await raw.expectConnectionClose();
    expect(close).toEqual({
      id: M.CONNECTION_CLOSE,
      replyCode: 530,
      replyText: 'NOT_ALLOWED - vhost nope not found',
      classId: 10,
      methodId: 40,
    });
    raw.send(0, { id: M.CONNECTION_CLOSE_OK });
    await raw.waitClosed();
  });

  it('accepts AMQPLAIN', async () => {
    const conn = await amqp.connect({
      protocol: 'amqp',
      hostname: '127.0.0.1',
      port: broker.port,
      username: 'guest',
      password: 'guest',
    }, { credentials: amqp.credentials.amqplain('guest', 'guest') });
    const ch = await conn.createChannel();
    await ch.checkExchange('amq.direct');
    await conn.close();
  });
});
