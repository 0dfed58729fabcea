// Channel closing as RabbitMQ 3.10 does it, checked with a raw socket against the real broker:
// when the server and the client close the same channel at the same time, the channel is kept until
// both closes are acknowledged; after a channel's close-ok nothing more is sent on it (not even the
// publisher confirms of messages still being written); channel numbers stay within channel_max
// (the spec's rule; RabbitMQ 3.10 accepts any number and only counts open channels).

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as M from '../../src/protocol/generated/amqp.js';
import { EXTERNAL, QUIET_MS, sleep, startTarget, uniqueName, type Target } from '../support/harness.js';
import { RawClient } from '../support/raw-client.js';

// Runs against RabbitMQ too (WARREN_TEST_AMQP_URL), except where Warren deliberately differs.
let broker: Target & { stop(): Promise<void> };

beforeAll(async () => {
  broker = await startTarget();
});
afterAll(async () => {
  await broker.stop();
});

const PERSISTENT = Buffer.from([0x10, 0x00, 2]); // property flags: delivery-mode only; 2 = persistent

function declare(raw: RawClient, channel: number, queue: string, durable: boolean, passive = false): void {
  raw.send(channel, {
    id: M.QUEUE_DECLARE,
    reserved1: 0,
    queue,
    passive,
    durable,
    exclusive: false,
    autoDelete: false,
    noWait: false,
    arguments: {},
  });
}

const methodsOn = (raw: RawClient, channel: number): string[] =>
  raw.frames.filter((f) => f.channel === channel).map((f) => (f.method ? M.METHOD_NAMES.get(f.method.id)! : `frame type ${f.type}`));

describe('simultaneous channel.close from both sides', () => {
  it('answers the client close with close-ok and keeps the channel until the client acknowledges ours', async () => {
    const raw = await RawClient.handshake(broker.port);
    await raw.openChannel(1);
    // The passive declare fails (404) while the client's own close is already on its way.
    declare(raw, 1, uniqueName('missing'), false, true);
    raw.send(1, { id: M.CHANNEL_CLOSE, replyCode: 200, replyText: 'bye', classId: 0, methodId: 0 });
    expect(await raw.expectChannelClose(1)).toMatchObject({ replyCode: 404, classId: 50, methodId: 10 });
    await raw.waitForMethod(M.CHANNEL_CLOSE_OK, 1);
    // Our close-ok for the server's close: the channel is still known, so this is no error.
    raw.send(1, { id: M.CHANNEL_CLOSE_OK });
    // Now it is gone and the number can be used again.
    await raw.openChannel(1);
    await raw.openChannel(2);
    expect(raw.closed).toBe(false);
    expect(raw.frames.filter((f) => f.channel === 0)).toEqual([]);
    raw.destroy();
  });
});

describe('nothing after close-ok', () => {
  it('a confirm channel closed with persistent publishes still being written gets no ack after its close-ok', async () => {
    const raw = await RawClient.handshake(broker.port);
    const q = uniqueName('close-confirm');
    await raw.openChannel(2);
    declare(raw, 2, q, true);
    await raw.waitForMethod(M.QUEUE_DECLARE_OK, 2);
    await raw.openChannel(1);
    raw.send(1, { id: M.CONFIRM_SELECT, nowait: false });
    await raw.waitForMethod(M.CONFIRM_SELECT_OK, 1);
    // Publishes and the close in one write: the close-ok goes out before the store commits.
    for (let i = 0; i < 20; i++) raw.publish(1, '', q, Buffer.from(`m${i}`), PERSISTENT);
    raw.send(1, { id: M.CHANNEL_CLOSE, replyCode: 200, replyText: 'bye', classId: 0, methodId: 0 });
    await raw.waitForMethod(M.CHANNEL_CLOSE_OK, 1);
    // A confirmed persistent publish on another channel: its commit comes after the first one.
    await raw.openChannel(3);
    raw.send(3, { id: M.CONFIRM_SELECT, nowait: false });
    await raw.waitForMethod(M.CONFIRM_SELECT_OK, 3);
    raw.publish(3, '', q, Buffer.from('later'), PERSISTENT);
    await raw.waitForMethod(M.BASIC_ACK, 3);
    await sleep(QUIET_MS);
    expect(methodsOn(raw, 1)).toEqual([]);
    // Every message is in the queue all the same (the client may not know, but nothing is lost).
    declare(raw, 2, q, true, true);
    expect(await raw.waitForMethod(M.QUEUE_DECLARE_OK, 2)).toMatchObject({ messageCount: 21 });
    raw.send(2, { id: M.QUEUE_DELETE, reserved1: 0, queue: q, ifUnused: false, ifEmpty: false, noWait: false });
    await raw.waitForMethod(M.QUEUE_DELETE_OK, 2);
    raw.destroy();
  });
});

describe('channel numbers', () => {
  // RabbitMQ 3.10 only limits how many channels are open (530, see hostile.test.ts) and accepts
  // any number; Warren follows the spec: usable channel numbers are 1..channel_max.
  it.skipIf(EXTERNAL)('Warren-only: a channel number above the negotiated channel_max is 504 CHANNEL_ERROR', async () => {
    const raw = await RawClient.handshake(broker.port, { channelMax: 10 });
    await raw.openChannel(10);
    raw.send(11, { id: M.CHANNEL_OPEN, reserved1: '' });
    expect(await raw.expectConnectionClose()).toEqual({
      id: M.CONNECTION_CLOSE,
      replyCode: 504,
      replyText: 'CHANNEL_ERROR - channel 11 is above the negotiated channel_max (10)',
      classId: 20,
      methodId: 10,
    });
    raw.send(0, { id: M.CONNECTION_CLOSE_OK });
    await raw.waitClosed();
  });
});
