// A connection keeps track of its own exclusive queues: closing it deletes exactly those, without
// walking the other queues of the virtual host (a broker with many queues and many short-lived
// connections would pay for every close otherwise), and the record stays bounded by the queues
// that still exist however many come and go.

import { describe, expect, it } from 'vitest';
import { uniqueName, waitFor } from '../support/harness.js';
import { useTestBroker } from '../support/test-broker.js';

const broker = useTestBroker();
const clients = broker.clients;


const vhost = () => broker.broker.vhosts.get('/')!;

describe('exclusive queues and connection close', () => {
  it('closing deletes exactly its exclusive queues, without iterating the vhost’s queues', async () => {
    const setup = await clients.channel();
    const others: string[] = [];
    for (let i = 0; i < 200; i++) {
      const q = uniqueName('other');
      others.push(q);
      await setup.assertQueue(q, { durable: false });
    }
    const conn = await clients.connect();
    const ch = await clients.channel(conn);
    const ch2 = await clients.channel(conn);
    const mine = [uniqueName('excl'), uniqueName('excl'), uniqueName('excl')];
    await ch.assertQueue(mine[0]!, { exclusive: true });
    await ch2.assertQueue(mine[1]!, { exclusive: true });
    await ch.assertQueue(mine[2]!, { exclusive: true });
    await ch.assertQueue(mine[0]!, { exclusive: true }); // redeclared: still one
    await ch2.deleteQueue(mine[2]!); // gone before the close
    const { queue: named } = await ch.assertQueue('', { exclusive: true }); // server-named

    // Any walk over the vhost's queues during the close is counted.
    const queues = vhost().queues;
    let walks = 0;
    const values = queues.values.bind(queues);
    const iterate = queues[Symbol.iterator].bind(queues);
    queues.values = () => (walks++, values());
    queues[Symbol.iterator] = () => (walks++, iterate());
    try {
      await conn.close();
      await waitFor(() => !queues.has(mine[0]!) && !queues.has(mine[1]!) && !queues.has(named), 'the exclusive queues to go');
    } finally {
      delete (queues as unknown as Record<string, unknown>)['values'];
      delete (queues as unknown as Record<string | symbol, unknown>)[Symbol.iterator];
    }
    expect(walks).toBe(0);
    for (const q of others) expect(queues.has(q)).toBe(true);
    for (const q of others) await setup.deleteQueue(q);
  });

  it('the record of exclusive queues stays bounded while queues come and go', async () => {
    const conn = await clients.connect();
    const ch = await clients.channel(conn);
    for (let i = 0; i < 600; i++) {
      const { queue } = await ch.assertQueue('', { exclusive: true });
      await ch.deleteQueue(queue);
    }
    const record = (broker.serverSide(conn) as unknown as { exclusiveQueues: Set<unknown> }).exclusiveQueues;
    expect(record.size).toBeLessThanOrEqual(128);
    await conn.close();
  });
});
