// Policies over quorum queues and streams (Warren, in-process broker; policies set through the
// admin façade as the management API does): a quorum queue takes delivery-limit and
// dead-letter-strategy from a policy, a stream takes its retention (max-length-bytes, max-age) —
// the lower of argument and policy, as RabbitMQ combines them.

import { describe, expect, it } from 'vitest';
import { collector, uniqueName } from '../support/harness.js';
import { useTestBroker } from '../support/test-broker.js';

const broker = useTestBroker();
const clients = broker.clients;


const admin = () => broker.broker.admin;

describe('policies over quorum queues and streams', () => {
  it('a quorum queue takes delivery-limit from a policy; the lower of argument and policy wins', async () => {
    const ch = await clients.channel();
    const byPolicy = uniqueName('qpol-limit');
    const both = uniqueName('qpol-both');
    await ch.assertQueue(byPolicy, { durable: true, arguments: { 'x-queue-type': 'quorum' } });
    await ch.assertQueue(both, { durable: true, arguments: { 'x-queue-type': 'quorum', 'x-delivery-limit': 1 } });
    await admin().putPolicy('/', 'qpol', { pattern: '^qpol-', definition: { 'delivery-limit': 2 }, 'apply-to': 'queues' });
    const returnsBeforeDrop = async (q: string): Promise<number> => {
      ch.sendToQueue(q, Buffer.from('poison'));
      let deliveries = 0;
      for (;;) {
        const m = await ch.get(q);
        if (m === false) {
          // Nothing to get: either the nack is still on its way back, or the message is gone.
          if ((await ch.checkQueue(q)).messageCount === 0) return deliveries;
          continue;
        }
        deliveries++;
        ch.nack(m, false, true);
      }
    };
    expect(await returnsBeforeDrop(byPolicy)).toBe(3); // limit 2: delivered 3 times, then dropped
    expect(await returnsBeforeDrop(both)).toBe(2); // argument 1 < policy 2
    await admin().deletePolicy('/', 'qpol');
  });

  it('a stream takes max-length-bytes from a policy: old segments go when it applies', async () => {
    const ch = await clients.channel();
    const q = uniqueName('spol-size');
    await ch.assertQueue(q, { durable: true, arguments: { 'x-queue-type': 'stream', 'x-stream-max-segment-size-bytes': 1000 } });
    const pub = await (await clients.connect()).createConfirmChannel();
    for (let i = 0; i < 40; i++) pub.sendToQueue(q, Buffer.from(`m${i}-${'x'.repeat(90)}`));
    await pub.waitForConfirms();
    expect((await ch.checkQueue(q)).messageCount).toBe(40);
    await admin().putPolicy('/', 'spol', { pattern: '^spol-', definition: { 'max-length-bytes': 2000 }, 'apply-to': 'queues' });
    const kept = (await ch.checkQueue(q)).messageCount;
    expect(kept).toBeLessThan(40);
    expect(kept).toBeGreaterThan(5);
    await ch.prefetch(100);
    const c = collector((m) => ch.ack(m));
    await ch.consume(q, c.onMessage, { arguments: { 'x-stream-offset': 'first' } });
    await c.waitFor(kept);
    expect(c.bodies()[kept - 1]!.startsWith('m39-')).toBe(true);
    await admin().deletePolicy('/', 'spol');
  });
});
