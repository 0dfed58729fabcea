// A connection remembers the channel its last frame was for (Connection.channelById), so frames of
// one message find their channel without a table lookup each. A channel number closed and opened
// again must reach the new channel, never the closed one: checked here with deliveries and acks,
// whose tags only the channel that made them knows, after a close from either side.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as M from '../../src/protocol/generated/amqp.js';
import { startTarget, uniqueName, type Target } from '../support/harness.js';
import { RawClient } from '../support/raw-client.js';

let broker: Target & { stop(): Promise<void> };

beforeAll(async () => {
  broker = await startTarget();
});
afterAll(async () => {
  await broker.stop();
});

function declare(raw: RawClient, channel: number, queue: string, passive = false): void {
  raw.send(channel, { id: M.QUEUE_DECLARE, reserved1: 0, queue, passive, durable: false, exclusive: false, autoDelete: false, noWait: false, arguments: {} });
}

function deleteQueue(raw: RawClient, channel: number, queue: string): void {
  raw.send(channel, { id: M.QUEUE_DELETE, reserved1: 0, queue, ifUnused: false, ifEmpty: false, noWait: true });
}

/** basic.qos prefetch 1 and a manual-ack consumer on the queue; returns the first delivery. */
async function consumeOne(raw: RawClient, channel: number, queue: string): Promise<M.BasicDeliver> {
  raw.send(channel, { id: M.BASIC_QOS, prefetchSize: 0, prefetchCount: 1, global: false });
  await raw.waitForMethod(M.BASIC_QOS_OK, channel);
  raw.send(channel, { id: M.BASIC_CONSUME, reserved1: 0, queue, consumerTag: '', noLocal: false, noAck: false, exclusive: false, noWait: false, arguments: {} });
  await raw.waitForMethod(M.BASIC_CONSUME_OK, channel);
  return (await raw.waitForMethod(M.BASIC_DELIVER, channel)) as M.BasicDeliver;
}

describe('a channel number used again after a close', () => {
  it('after the client closed it: acks on the new channel settle its deliveries', async () => {
    const raw = await RawClient.handshake(broker.port);
    const queue = uniqueName('reuse');
    await raw.openChannel(2);
    declare(raw, 2, queue);
    await raw.waitForMethod(M.QUEUE_DECLARE_OK, 2);
    for (const body of ['a', 'b', 'c']) raw.publish(2, '', queue, Buffer.from(body));

    await raw.openChannel(1);
    const first = await consumeOne(raw, 1, queue);
    expect(first.deliveryTag).toBe(1);
    raw.send(1, { id: M.CHANNEL_CLOSE, replyCode: 200, replyText: 'bye', classId: 0, methodId: 0 });
    await raw.waitForMethod(M.CHANNEL_CLOSE_OK, 1);

    // Channel 1 again: a new channel, whose delivery tags start again at 1. Acking them one by one
    // lets the next delivery come (prefetch 1); an ack taken by the old channel would be refused.
    await raw.openChannel(1);
    const again = await consumeOne(raw, 1, queue);
    expect(again).toMatchObject({ deliveryTag: 1, redelivered: true });
    raw.send(1, { id: M.BASIC_ACK, deliveryTag: 1, multiple: false });
    expect(await raw.waitForMethod(M.BASIC_DELIVER, 1)).toMatchObject({ deliveryTag: 2, redelivered: false });
    raw.send(1, { id: M.BASIC_ACK, deliveryTag: 2, multiple: false });
    expect(await raw.waitForMethod(M.BASIC_DELIVER, 1)).toMatchObject({ deliveryTag: 3, redelivered: false });
    raw.send(1, { id: M.BASIC_ACK, deliveryTag: 3, multiple: false });
    declare(raw, 1, queue, true);
    expect(await raw.waitForMethod(M.QUEUE_DECLARE_OK, 1)).toMatchObject({ messageCount: 0, consumerCount: 1 });
    expect(raw.frames.filter((f) => f.method?.id === M.CHANNEL_CLOSE || f.method?.id === M.CONNECTION_CLOSE)).toEqual([]);
    deleteQueue(raw, 1, queue);
    await raw.openChannel(3); // answered after the delete: the queue is gone before the socket is
    raw.destroy();
  });

  it('after the broker closed it (a channel error): the new channel publishes and consumes', async () => {
    const raw = await RawClient.handshake(broker.port);
    const queue = uniqueName('reuse');
    await raw.openChannel(1);
    declare(raw, 1, queue);
    await raw.waitForMethod(M.QUEUE_DECLARE_OK, 1);
    // An ack for a tag never delivered: 406, the broker closes channel 1.
    raw.send(1, { id: M.BASIC_ACK, deliveryTag: 7, multiple: false });
    expect(await raw.expectChannelClose(1)).toMatchObject({ replyCode: 406 });
    raw.send(1, { id: M.CHANNEL_CLOSE_OK });

    await raw.openChannel(1);
    raw.publish(1, '', queue, Buffer.from('after'));
    const delivery = await consumeOne(raw, 1, queue);
    expect(delivery.deliveryTag).toBe(1);
    raw.send(1, { id: M.BASIC_ACK, deliveryTag: 1, multiple: false });
    declare(raw, 1, queue, true);
    expect(await raw.waitForMethod(M.QUEUE_DECLARE_OK, 1)).toMatchObject({ messageCount: 0 });
    expect(raw.frames.filter((f) => f.method?.id === M.CHANNEL_CLOSE || f.method?.id === M.CONNECTION_CLOSE)).toEqual([]);
    deleteQueue(raw, 1, queue);
    await raw.openChannel(3); // answered after the delete: the queue is gone before the socket is
    raw.destroy();
  });
});
