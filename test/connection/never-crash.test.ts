// A bug in one connection's handling must cost that connection only: the error is logged with its
// stack, the connection gets 541 INTERNAL_ERROR (or is dropped when nothing can be said), and the
// process and every other client carry on. Bugs are planted in a live broker by replacing one
// method of one object for the duration of a test (there is no other way to make correct code
// fail on purpose); everything else is the real broker.

import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import type { Queue } from '../../src/broker/queue/queue.js';
import * as M from '../../src/protocol/generated/amqp.js';
import { uniqueName, waitFor } from '../support/harness.js';
import { RawClient } from '../support/raw-client.js';
import { useTestBroker } from '../support/test-broker.js';

const logged: { level: number; msg: string; err?: { stack?: string; message?: string }; in?: string }[] = [];
const logger = pino({ level: 'error' }, { write: (line: string) => void logged.push(JSON.parse(line)) });
const broker = useTestBroker({ logger });
const clients = broker.clients;

/** Replaces obj[key] with a function that throws, until the returned undo is called. */
function plantBug<T extends object>(obj: T, key: keyof T & string, when: (...args: never[]) => boolean = () => true): () => void {
  const original = obj[key] as unknown as (...args: unknown[]) => unknown;
  (obj as Record<string, unknown>)[key] = function (this: unknown, ...args: unknown[]) {
    if ((when as (...a: unknown[]) => boolean)(...args)) throw new TypeError(`planted bug in ${key}`);
    return original.apply(this, args);
  };
  return () => {
    (obj as Record<string, unknown>)[key] = original;
  };
}

/** A bystander round trip: publish with a confirm and get it back. */
async function bystanderWorks(): Promise<void> {
  const ch = await clients.confirmChannel();
  const q = uniqueName('bystander');
  await ch.assertQueue(q, { exclusive: true });
  ch.sendToQueue(q, Buffer.from('still here'));
  await ch.waitForConfirms();
  const m = await ch.get(q, { noAck: true });
  expect(m && m.content.toString()).toBe('still here');
}

const vhost = () => broker.broker.vhosts.get('/')!;

describe('an unexpected error', () => {
  it('in a method handler: 541 INTERNAL_ERROR for that connection, stack logged, others unaffected', async () => {
    const undo = plantBug(vhost(), 'declareQueue', (d: { name: string }) => d.name === 'boom');
    try {
      const raw = await RawClient.handshake(broker.port);
      await raw.openChannel(1);
      raw.send(1, { id: M.QUEUE_DECLARE, reserved1: 0, queue: 'boom', passive: false, durable: false, exclusive: false, autoDelete: false, noWait: false, arguments: {} });
      expect(await raw.expectConnectionClose()).toEqual({
        id: M.CONNECTION_CLOSE,
        replyCode: 541,
        replyText: 'INTERNAL_ERROR - an internal error occurred; see the broker log',
        classId: 0,
        methodId: 0,
      });
      raw.send(0, { id: M.CONNECTION_CLOSE_OK });
      await raw.waitClosed();
    } finally {
      undo();
    }
    const entry = logged.find((l) => l.err?.message === 'planted bug in declareQueue');
    expect(entry?.msg).toBe('internal error; closing connection');
    expect(entry?.err?.stack).toContain('TypeError: planted bug in declareQueue');
    await bystanderWorks();
  });

  it('in the close teardown (requeueing): the rest of the teardown still runs, the process lives', async () => {
    const q = uniqueName('teardown');
    const ch = await clients.channel();
    await ch.assertQueue(q, { durable: false });
    for (let i = 0; i < 3; i++) ch.sendToQueue(q, Buffer.from(`m${i}`));
    const connectionsBefore = broker.server.connections.size;
    const raw = await RawClient.handshake(broker.port);
    await raw.openChannel(1);
    raw.send(1, { id: M.QUEUE_DECLARE, reserved1: 0, queue: '', passive: false, durable: false, exclusive: true, autoDelete: false, noWait: false, arguments: {} });
    const own = ((await raw.waitForMethod(M.QUEUE_DECLARE_OK, 1)) as M.QueueDeclareOk).queue;
    raw.send(1, { id: M.BASIC_CONSUME, reserved1: 0, queue: q, consumerTag: 'c', noLocal: false, noAck: false, exclusive: false, noWait: false, arguments: {} });
    await waitFor(() => raw.frames.filter((f) => f.method?.id === M.BASIC_DELIVER).length === 3, 'three deliveries');
    const queue = vhost().queues.get(q)! as Queue;
    const undo = plantBug(queue, 'requeue');
    const before = logged.length;
    try {
      raw.destroy(); // the socket closes with 3 unacked deliveries: their requeue throws
      await waitFor(() => !vhost().queues.has(own), 'the exclusive queue to be deleted all the same');
      await waitFor(() => broker.server.connections.size === connectionsBefore, 'the connection to be gone');
    } finally {
      undo();
    }
    expect(logged.slice(before).some((l) => l.err?.message === 'planted bug in requeue')).toBe(true);
    await bystanderWorks();
  });

  it('in the heartbeat timer: that connection is closed with 541, nothing else', async () => {
    const raw = await RawClient.handshake(broker.port, { heartbeat: 1 });
    const server = await waitFor(() => [...broker.server.connections].find((c) => c.heartbeatSec === 1), 'the server side');
    plantBug(server.outbound, 'writeRaw'); // heartbeats are written raw; the connection is doomed anyway
    const close = await raw.expectConnectionClose(5000);
    expect(close).toMatchObject({ replyCode: 541, replyText: 'INTERNAL_ERROR - an internal error occurred; see the broker log' });
    expect(logged.some((l) => l.in === 'heartbeat' && l.err?.message === 'planted bug in writeRaw')).toBe(true);
    raw.destroy();
    await bystanderWorks();
  });
});
