// Queue types in listings: the management API shows each queue's type (classic, quorum, stream),
// and a stream's length as its message count. Checked against RabbitMQ 3.10 as well
// (WARREN_TEST_MGMT_URL + WARREN_TEST_AMQP_URL, as the other management tests).

import { randomBytes } from 'node:crypto';
import amqp from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMgmtTarget, type MgmtTarget } from '../management/target.js';
import { waitFor } from '../support/wait.js';

let target: MgmtTarget;
let conn: amqp.ChannelModel;
const suffix = randomBytes(4).toString('hex');
const names = { classic: `lt-classic-${suffix}`, quorum: `lt-quorum-${suffix}`, stream: `lt-stream-${suffix}` };

beforeAll(async () => {
  target = await startMgmtTarget();
  conn = await amqp.connect(target.amqpUrl);
  const ch = await conn.createConfirmChannel();
  await ch.assertQueue(names.classic, { durable: true });
  await ch.assertQueue(names.quorum, { durable: true, arguments: { 'x-queue-type': 'quorum' } });
  await ch.assertQueue(names.stream, { durable: true, arguments: { 'x-queue-type': 'stream' } });
  for (let i = 0; i < 3; i++) ch.sendToQueue(names.stream, Buffer.from(`s${i}`));
  ch.sendToQueue(names.quorum, Buffer.from('q'));
  await ch.waitForConfirms();
});

afterAll(async () => {
  const ch = await conn.createChannel();
  for (const q of Object.values(names)) await ch.deleteQueue(q).catch(() => {});
  await conn.close();
  await target.stop();
});

describe('queue type in the management API', () => {
  it('each queue shows its type; a stream shows its length', async () => {
    // RabbitMQ's statistics arrive every few seconds.
    await waitFor(async () => (await target.api.get(`/api/queues/%2F/${names.stream}`)).body.messages === 3, 'the stream to show 3 messages', 15_000);
    for (const [type, name] of Object.entries(names)) {
      const one = await target.api.get(`/api/queues/%2F/${name}`);
      expect(one.status).toBe(200);
      expect(one.body).toEqual(expect.objectContaining({ name, type, durable: true, auto_delete: false, exclusive: false }));
    }
    const all = (await target.api.get('/api/queues/%2F')).body as { name: string; type: string }[];
    const mine = all.filter((q) => Object.values(names).includes(q.name)).map((q) => [q.name, q.type]);
    expect(Object.fromEntries(mine)).toEqual({ [names.classic]: 'classic', [names.quorum]: 'quorum', [names.stream]: 'stream' });
  });
});
