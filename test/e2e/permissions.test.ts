// The permission check point: every channel operation on a named exchange or queue asks the
// broker's Permissions. Here rules are set directly on the in-process broker to show the checks are
// wired and answer as RabbitMQ does (model-permissions.test.ts sets them through the admin façade).

import amqp from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestBroker, type TestBroker } from '../support/broker.js';
import { waitFor } from '../support/wait.js';

let broker: TestBroker;

beforeAll(async () => {
  broker = await startTestBroker();
  broker.broker.permissions.set('guest', '/', { configure: /^(ok\..*|amq\.gen.*)$/, write: /^(ok\..*|amq\.gen.*|amq\.default)$/, read: /^(ok\..*|amq\.gen.*)$/ });
});
afterAll(async () => {
  await broker.stop();
});

async function refusal(op: (ch: amqp.Channel) => Promise<unknown>): Promise<string> {
  const conn = await amqp.connect(broker.url);
  const ch = await conn.createChannel();
  const errors: string[] = [];
  ch.on('error', (e: Error) => errors.push(e.message));
  await op(ch).catch((e: Error) => errors.push(e.message));
  await waitFor(() => errors.length > 0, 'the channel error');
  await conn.close();
  return errors[0]!;
}

describe('permissions', () => {
  it('allows what the rules allow', async () => {
    const conn = await amqp.connect(broker.url);
    const ch = await conn.createChannel();
    await ch.assertQueue('ok.q', { exclusive: true });
    ch.sendToQueue('ok.q', Buffer.from('x'));
    const m = await new Promise<amqp.ConsumeMessage>((resolve) => ch.consume('ok.q', (msg) => msg && resolve(msg), { noAck: true }));
    expect(m.content.toString()).toBe('x');
    await conn.close();
  });

  it('refuses configure on a queue outside the rules with 403', async () => {
    expect(await refusal((ch) => ch.assertQueue('secret.q'))).toContain(
      "ACCESS_REFUSED - access to queue 'secret.q' in vhost '/' refused for user 'guest'",
    );
  });

  it('refuses a publish to an exchange the user may not write to', async () => {
    const text = await refusal(async (ch) => {
      ch.publish('amq.direct', 'k', Buffer.from('x'));
    });
    expect(text).toContain("ACCESS_REFUSED - access to exchange 'amq.direct' in vhost '/' refused for user 'guest'");
  });
});
