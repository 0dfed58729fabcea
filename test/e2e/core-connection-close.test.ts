// A client's connection.close, as RabbitMQ 3.10 ends it: the broker answers close-ok and leaves
// the socket for the client to close, so the client reads close-ok before any end of stream.
// A broker that closes its side right after close-ok races clients that treat an end of stream as
// an error: amqp091-go's Close() then returns "Exception (501) Reason: EOF" now and then (its
// TestConcurrentClose catches it). Runs against RabbitMQ too (WARREN_TEST_AMQP_URL).

import { describe, expect, it } from 'vitest';
import * as M from '../../src/protocol/generated/amqp.js';
import { RawClient } from '../support/raw-client.js';
import { QUIET_MS, sleep, useBroker } from '../support/harness.js';

const h = useBroker();

describe('connection.close from the client', () => {
  it('is answered with close-ok; the socket stays open until the client closes it', async () => {
    const c = await RawClient.handshake(h.port);
    h.cleanup(() => c.destroy());
    await c.openChannel(1);
    c.send(0, { id: M.CONNECTION_CLOSE, replyCode: 200, replyText: 'bye', classId: 0, methodId: 0 });
    expect(await c.waitForMethod(M.CONNECTION_CLOSE_OK, 0)).toEqual({ id: M.CONNECTION_CLOSE_OK });
    await sleep(QUIET_MS);
    expect(c.closed).toBe(false);
    c.socket.end();
    await c.waitClosed();
  });

  it('a client that never closes its side is disconnected by the broker within the heartbeat interval', async () => {
    const c = await RawClient.handshake(h.port, { heartbeat: 1 });
    h.cleanup(() => c.destroy());
    c.send(0, { id: M.CONNECTION_CLOSE, replyCode: 200, replyText: 'bye', classId: 0, methodId: 0 });
    await c.waitForMethod(M.CONNECTION_CLOSE_OK, 0);
    await c.waitClosed(5000);
  });
});
