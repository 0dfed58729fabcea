// channel.flow from a client, as RabbitMQ 3.10 answers it: active=true is acknowledged with
// flow-ok, active=false (asking the broker to stop delivering) is not implemented and closes the
// connection with 540. Client test suites rely on this: amqp091-go's TestIntegrationConsumeFlow
// expects the 540 and fails against a broker that pauses deliveries instead.
// Runs against RabbitMQ too (WARREN_TEST_AMQP_URL): the expectations are RabbitMQ's.

import { describe, expect, it } from 'vitest';
import * as M from '../../src/protocol/generated/amqp.js';
import { RawClient } from '../support/raw-client.js';
import { useBroker } from '../support/harness.js';

const h = useBroker();

async function raw(): Promise<RawClient> {
  const c = await RawClient.handshake(h.port);
  h.cleanup(() => c.destroy());
  await c.openChannel(1);
  return c;
}

describe('channel.flow sent by the client', () => {
  it('active=true is answered with flow-ok active=true and the channel stays usable', async () => {
    const c = await raw();
    c.send(1, { id: M.CHANNEL_FLOW, active: true });
    expect(await c.waitForMethod(M.CHANNEL_FLOW_OK, 1)).toEqual({ id: M.CHANNEL_FLOW_OK, active: true });
    c.send(1, { id: M.BASIC_QOS, prefetchSize: 0, prefetchCount: 5, global: false });
    expect(await c.waitForMethod(M.BASIC_QOS_OK, 1)).toEqual({ id: M.BASIC_QOS_OK });
  });

  it('active=false is 540 NOT_IMPLEMENTED and closes the connection', async () => {
    const c = await raw();
    c.send(1, { id: M.CHANNEL_FLOW, active: false });
    expect(await c.expectConnectionClose()).toEqual({
      id: M.CONNECTION_CLOSE,
      replyCode: 540,
      replyText: 'NOT_IMPLEMENTED - active=false',
      classId: 20,
      methodId: 20,
    });
    expect(c.frames.some((f) => f.method?.id === M.CHANNEL_FLOW_OK)).toBe(false);
    c.send(0, { id: M.CONNECTION_CLOSE_OK });
    await c.waitClosed();
  });
});
