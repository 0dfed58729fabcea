// The route memo (src/broker/exchange/route-memo.ts): the queues a routing key reached through an
// exchange, kept on the publish decoder's entry for the exchange and routing-key bytes so that a
// publisher repeating a key skips the exchange's match. Each case publishes the same exchange and
// key on one channel before and after a change, so the second publish would be answered from the
// memo; each fails if the check that voids the memo for that change is removed.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useTestBroker } from '../support/test-broker.js';
import { uniqueName, type Channel, type ConfirmChannel, type Connection } from '../support/amqp.js';
import amqp from 'amqplib';

const b = useTestBroker();
// One publishing channel for the whole file (its decoder's memo is what the cases exercise), so
// not the per-test connections of b.clients.
let conn: Connection;
let ch: ConfirmChannel;
let admin: Channel;

beforeAll(async () => {
  conn = await amqp.connect(b.url);
  ch = await conn.createConfirmChannel();
  admin = await conn.createChannel();
});
afterAll(async () => {
  await conn.close();
});

/** Publishes (confirmed, so routed) on the one publishing channel. */
async function publish(on: ConfirmChannel, exchange: string, key: string, options: amqp.Options.Publish = {}): Promise<void> {
  on.publish(exchange, key, Buffer.from('m'), options);
  await on.waitForConfirms();
}

async function counts(queues: readonly string[], on: Channel = admin): Promise<number[]> {
  const out: number[] = [];
  for (const q of queues) out.push((await on.checkQueue(q)).messageCount);
  return out;
}

async function queues(n: number, on: Channel = admin): Promise<string[]> {
  const names: string[] = [];
  for (let i = 0; i < n; i++) {
    const q = uniqueName(`memo-q${i}`);
    await on.assertQueue(q, { autoDelete: false });
    names.push(q);
  }
  return names;
}

describe('route memo', () => {
  it('a bind and an unbind between two publishes of the same key take effect at once (topic)', async () => {
    const x = uniqueName('memo-topic');
    await admin.assertExchange(x, 'topic', { autoDelete: false });
    const [a, c] = await queues(2);
    await admin.bindQueue(a!, x, 'orders.*');
    await publish(ch, x, 'orders.eu');
    await publish(ch, x, 'orders.eu');
    expect(await counts([a!, c!])).toEqual([2, 0]);
    await admin.bindQueue(c!, x, 'orders.#');
    await publish(ch, x, 'orders.eu');
    expect(await counts([a!, c!])).toEqual([3, 1]);
    await admin.unbindQueue(a!, x, 'orders.*');
    await publish(ch, x, 'orders.eu');
    expect(await counts([a!, c!])).toEqual([3, 2]);
  });

  it('bind and unbind take effect at once on direct and fanout exchanges too', async () => {
    for (const type of ['direct', 'fanout']) {
      const x = uniqueName(`memo-${type}`);
      await admin.assertExchange(x, type, { autoDelete: false });
      const [a, c] = await queues(2);
      await admin.bindQueue(a!, x, 'k');
      await publish(ch, x, 'k');
      await admin.bindQueue(c!, x, 'k');
      await publish(ch, x, 'k');
      await admin.unbindQueue(a!, x, 'k');
      await publish(ch, x, 'k');
      expect(await counts([a!, c!])).toEqual([2, 2]);
    }
  });

  it('an exchange deleted and declared again with the same name routes by its new bindings', async () => {
    const x = uniqueName('memo-redeclared');
    const [a, c] = await queues(2);
    await admin.assertExchange(x, 'topic', { autoDelete: false });
    await admin.bindQueue(a!, x, 'k.*');
    await publish(ch, x, 'k.1');
    await admin.deleteExchange(x);
    await admin.assertExchange(x, 'topic', { autoDelete: false });
    // One binding, as before the delete: the new exchange's binding version equals the old one's.
    await admin.bindQueue(c!, x, 'k.*');
    await publish(ch, x, 'k.1');
    expect(await counts([a!, c!])).toEqual([1, 1]);
  });

  it('a deleted queue is no longer routed to: the next publish is returned as unroutable', async () => {
    const x = uniqueName('memo-queue-deleted');
    await admin.assertExchange(x, 'topic', { autoDelete: false });
    const [a] = await queues(1);
    await admin.bindQueue(a!, x, 'k.#');
    const returned: string[] = [];
    ch.on('return', (m: amqp.Message) => returned.push(m.fields.routingKey));
    await publish(ch, x, 'k.z', { mandatory: true });
    await admin.deleteQueue(a!);
    await publish(ch, x, 'k.z', { mandatory: true });
    expect(returned).toEqual(['k.z']);
  });

  it('the same exchange name in two vhosts: each publish goes to its own vhost’s queues', async () => {
    const vhost = uniqueName('memo-vhost');
    await b.broker.admin.putVhost(vhost, {}, 'guest');
    const other = await amqp.connect(`${b.url}/${encodeURIComponent(vhost)}`);
    try {
      const otherAdmin = await other.createChannel();
      const otherPub = await other.createConfirmChannel();
      const x = uniqueName('memo-shared-name');
      const q = uniqueName('memo-shared-q');
      for (const on of [admin, otherAdmin]) {
        await on.assertExchange(x, 'topic', { autoDelete: false });
        await on.assertQueue(q, { autoDelete: false });
        await on.bindQueue(q, x, 'same.key');
      }
      // The decoder's shared cache finds the same entry for both channels: one binding each, so
      // both exchanges are at the same binding version.
      await publish(ch, x, 'same.key');
      await publish(otherPub, x, 'same.key');
      await publish(otherPub, x, 'same.key');
      await publish(ch, x, 'same.key');
      expect(await counts([q])).toEqual([2]);
      expect(await counts([q], otherAdmin)).toEqual([2]);
    } finally {
      await other.close();
      await b.broker.admin.deleteVhost(vhost);
    }
  });

  it('a key that matched nothing reaches an alternate exchange set by a policy afterwards', async () => {
    const x = uniqueName('memo-ae-src');
    const ae = uniqueName('memo-ae');
    await admin.assertExchange(x, 'topic', { autoDelete: false });
    await admin.assertExchange(ae, 'fanout', { autoDelete: false });
    const [caught] = await queues(1);
    await admin.bindQueue(caught!, ae, '');
    await publish(ch, x, 'nothing.here');
    await b.broker.admin.putPolicy('/', 'memo-ae', { pattern: `^${x}$`, definition: { 'alternate-exchange': ae }, 'apply-to': 'exchanges' });
    try {
      await publish(ch, x, 'nothing.here');
      expect(await counts([caught!])).toEqual([1]);
    } finally {
      await b.broker.admin.deletePolicy('/', 'memo-ae');
    }
  });

  it('CC keys are routed every time, not answered from the memo of the routing key', async () => {
    const x = uniqueName('memo-cc');
    await admin.assertExchange(x, 'topic', { autoDelete: false });
    const [a, c] = await queues(2);
    await admin.bindQueue(a!, x, 'main');
    await admin.bindQueue(c!, x, 'copy');
    await publish(ch, x, 'main');
    await publish(ch, x, 'main', { CC: ['copy'] });
    expect(await counts([a!, c!])).toEqual([2, 1]);
  });

  it('a headers exchange matches each message’s headers, whatever its routing key', async () => {
    const x = uniqueName('memo-headers');
    await admin.assertExchange(x, 'headers', { autoDelete: false });
    const [a] = await queues(1);
    await admin.bindQueue(a!, x, '', { 'x-match': 'all', colour: 'red' });
    await publish(ch, x, 'k', { headers: { colour: 'red' } });
    await publish(ch, x, 'k', { headers: { colour: 'blue' } });
    expect(await counts([a!])).toEqual([1]);
  });

  it('the default exchange finds a queue deleted and declared again under the same name', async () => {
    const q = uniqueName('memo-default');
    await admin.assertQueue(q, { autoDelete: false });
    await publish(ch, '', q);
    await admin.deleteQueue(q);
    await admin.assertQueue(q, { autoDelete: false });
    await publish(ch, '', q);
    expect(await counts([q])).toEqual([1]);
  });

  it('a change to the bindings of an exchange bound to the exchange takes effect at once', async () => {
    const x = uniqueName('memo-e2e-src');
    const y = uniqueName('memo-e2e-dst');
    await admin.assertExchange(x, 'topic', { autoDelete: false });
    await admin.assertExchange(y, 'fanout', { autoDelete: false });
    const [a, c] = await queues(2);
    await admin.bindExchange(y, x, 'k.*');
    await admin.bindQueue(a!, y, '');
    await publish(ch, x, 'k.1');
    await admin.bindQueue(c!, y, '');
    await publish(ch, x, 'k.1');
    expect(await counts([a!, c!])).toEqual([2, 1]);
  });
});
