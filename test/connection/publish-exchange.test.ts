// A channel remembers the exchange its last publish went to (Channel.exchangeNamed), saving a lookup
// per message. An exchange deleted and declared again under the same name must get the next
// publishes on that same channel, and a deleted one must answer 404 as before.

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

async function call(raw: RawClient, method: M.Method, okId: number): Promise<M.Method> {
  raw.send(1, method);
  return raw.waitForMethod(okId, 1);
}

const declareExchange = (exchange: string): M.Method => ({
  id: M.EXCHANGE_DECLARE, reserved1: 0, exchange, type: 'fanout', passive: false, durable: false, autoDelete: false, internal: false, noWait: false, arguments: {},
});
const declareQueue = (queue: string, passive = false): M.Method => ({
  id: M.QUEUE_DECLARE, reserved1: 0, queue, passive, durable: false, exclusive: false, autoDelete: false, noWait: false, arguments: {},
});
const bind = (queue: string, exchange: string): M.Method => ({ id: M.QUEUE_BIND, reserved1: 0, queue, exchange, routingKey: '', noWait: false, arguments: {} });

describe('publishing on one channel while its exchange is deleted and declared again', () => {
  it('reaches the new exchange, and a deleted one is 404', async () => {
    const raw = await RawClient.handshake(broker.port);
    await raw.openChannel(1);
    const exchange = uniqueName('ex');
    const [first, second] = [uniqueName('q1'), uniqueName('q2')];
    await call(raw, declareExchange(exchange), M.EXCHANGE_DECLARE_OK);
    for (const q of [first, second]) await call(raw, declareQueue(q), M.QUEUE_DECLARE_OK);
    await call(raw, bind(first, exchange), M.QUEUE_BIND_OK);
    raw.publish(1, exchange, '', Buffer.from('one'));
    raw.publish(1, exchange, '', Buffer.from('two'));

    await call(raw, { id: M.EXCHANGE_DELETE, reserved1: 0, exchange, ifUnused: false, noWait: false }, M.EXCHANGE_DELETE_OK);
    await call(raw, declareExchange(exchange), M.EXCHANGE_DECLARE_OK);
    await call(raw, bind(second, exchange), M.QUEUE_BIND_OK);
    raw.publish(1, exchange, '', Buffer.from('three'));
    expect(await call(raw, declareQueue(first, true), M.QUEUE_DECLARE_OK)).toMatchObject({ messageCount: 2 });
    expect(await call(raw, declareQueue(second, true), M.QUEUE_DECLARE_OK)).toMatchObject({ messageCount: 1 });

    await call(raw, { id: M.EXCHANGE_DELETE, reserved1: 0, exchange, ifUnused: false, noWait: false }, M.EXCHANGE_DELETE_OK);
    raw.publish(1, exchange, '', Buffer.from('four'));
    expect(await raw.expectChannelClose(1)).toMatchObject({
      replyCode: 404,
      replyText: `NOT_FOUND - no exchange '${exchange}' in vhost '/'`,
      classId: 60,
      methodId: 40,
    });
    raw.send(1, { id: M.CHANNEL_CLOSE_OK });
    await raw.openChannel(2);
    for (const q of [first, second]) raw.send(2, { id: M.QUEUE_DELETE, reserved1: 0, queue: q, ifUnused: false, ifEmpty: false, noWait: false });
    await raw.waitForMethod(M.QUEUE_DELETE_OK, 2);
    await raw.waitForMethod(M.QUEUE_DELETE_OK, 2);
    raw.destroy();
  });
});
