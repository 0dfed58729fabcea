// Quorum queues keep every message on disk, whatever its delivery mode (bin/warren as a child
// process, amqplib): transient and persistent messages both come back after a clean stop and after
// kill -9, in order; a classic durable queue beside it loses its transient ones, as RabbitMQ's do.

import { describe, expect, it } from 'vitest';
import { tempDir } from '../support/broker.js';
import { ChildBroker } from '../support/child-broker.js';
import { useChildBrokers } from '../support/child-brokers.js';

const { live, folders, clients } = useChildBrokers();

async function drain(broker: ChildBroker, q: string): Promise<string[]> {
  const ch = await (await clients.connect(broker.url)).createChannel();
  const out: string[] = [];
  for (;;) {
    const m = await ch.get(q, { noAck: true });
    if (m === false) return out;
    out.push(m.content.toString());
  }
}

describe('quorum queue durability', () => {
  for (const how of ['stop', 'kill'] as const) {
    it(`transient and persistent messages both survive a ${how === 'stop' ? 'clean stop' : 'kill -9'}`, { timeout: 60_000 }, async () => {
      const dataDir = tempDir('warren-qq-');
      folders.push(dataDir);
      let broker = await ChildBroker.start(dataDir);
      live.add(broker);
      const ch = await (await clients.connect(broker.url)).createConfirmChannel();
      await ch.assertQueue('qq', { durable: true, arguments: { 'x-queue-type': 'quorum' } });
      await ch.assertQueue('classic', { durable: true });
      const bodies = ['t1', 'p1', 't2', 'p2', 't3'];
      for (const b of bodies) {
        const options = { persistent: b.startsWith('p') };
        ch.sendToQueue('qq', Buffer.from(b), options);
        ch.sendToQueue('classic', Buffer.from(b), options);
      }
      await ch.waitForConfirms();
      await clients.closeAll(200);
      await (how === 'stop' ? broker.stop() : broker.kill());
      live.delete(broker);

      broker = await ChildBroker.start(dataDir);
      live.add(broker);
      expect(await drain(broker, 'qq')).toEqual(bodies);
      expect(await drain(broker, 'classic')).toEqual(['p1', 'p2']);
      await clients.closeAll(200);
      await broker.stop();
      live.delete(broker);
    });
  }
});
