// Readers of one stream take turns (broker model, no sockets: consumers on a recording channel).
// Five readers replay the same 5,000-message backlog, one dispatcher run at a time: every reader
// gets deliveries within the first few runs, none waits until another has finished, and each
// gets every message exactly once, in order.

import { rmSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { Broker } from '../../src/broker/broker.js';
import { Message } from '../../src/broker/message.js';
import { TransientPersistence } from '../../src/broker/persistence.js';
import { Consumer, type ConsumerChannel } from '../../src/broker/queue/consumers.js';
import type { QueueEntry } from '../../src/broker/queue/entry.js';
import type { StreamQueue } from '../../src/broker/stream/stream-queue.js';
import { DEFAULT_CONFIG } from '../../src/config.js';
import { createLogger } from '../../src/log.js';
import { tempDir } from '../support/broker.js';

const OWNER = { id: 1 };
const folders: string[] = [];
afterEach(() => {
  for (const dir of folders.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** A channel that always has room and records what it is given. */
class RecordingChannel implements ConsumerChannel {
  readonly offsets = new Map<Consumer, number[]>();
  canSend(): boolean {
    return true;
  }
  deliver(consumer: Consumer, entry: QueueEntry): void {
    consumer.unacked++;
    let list = this.offsets.get(consumer);
    if (list === undefined) this.offsets.set(consumer, (list = []));
    list.push(entry.seq);
  }
  consumerCancelledByServer(): void {}
}

describe('stream readers take turns', () => {
  it('five readers replaying one backlog all progress in the first runs', () => {
    const dataDir = tempDir('warren-fair-');
    folders.push(dataDir);
    const broker = new Broker({ ...DEFAULT_CONFIG, dataDir, logLevel: 'silent' }, new TransientPersistence(), createLogger('silent'));
    const vhost = broker.addVHost('/');
    const stream = vhost.declareQueue(
      { name: 's', passive: false, durable: true, exclusive: false, autoDelete: false, args: { 'x-queue-type': 'stream' } },
      OWNER,
    ) as StreamQueue;
    const props = Buffer.from([0, 0]);
    for (let i = 0; i < 5000; i++) stream.enqueue(new Message('', 's', props, Buffer.from(`m${i}`), Date.now()), Date.now());
    const channel = new RecordingChannel();
    const consumers = Array.from({ length: 5 }, (_, i) => new Consumer(`c${i}`, channel, stream, false, false, 0, 10_000, { 'x-stream-offset': 'first' }));
    for (const c of consumers) stream.addConsumer(c);
    const received = (c: Consumer): number => channel.offsets.get(c)?.length ?? 0;

    // The dispatcher's budget per queue per run is 512 deliveries.
    for (let run = 0; run < 3; run++) stream.deliverToReaders(512);
    for (const c of consumers) expect(received(c)).toBeGreaterThan(0);
    expect(Math.max(...consumers.map(received))).toBeLessThan(5000);

    while (stream.deliverToReaders(512)) {
      // keep running, as the dispatcher does while a queue has work left
    }
    for (const c of consumers) expect(channel.offsets.get(c)).toEqual(Array.from({ length: 5000 }, (_, i) => i));
    vhost.removeQueue(stream);
  });
});
