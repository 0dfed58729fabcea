// Memory that is given back: each test drives the broker model (no sockets) through traffic that
// used to leave something behind, and checks that what is held afterwards is bounded by what is
// live — not by what went through.

import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { Broker } from '../../src/broker/broker.js';
import { Message } from '../../src/broker/message.js';
import { TransientPersistence } from '../../src/broker/persistence.js';
import type { Queue } from '../../src/broker/queue/queue.js';
import type { VHost } from '../../src/broker/vhost.js';
import { DEFAULT_CONFIG } from '../../src/config.js';
import { createLogger } from '../../src/log.js';
import { encodeBasicProperties } from '../../src/protocol/frame-writer.js';
import type { FieldTable } from '../../src/protocol/field-table.js';

const OWNER = { id: 1 };

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** Bytes held by ArrayBuffers (message bodies) once garbage is collected. */
function retainedBufferBytes(): number {
  gc();
  gc();
  return process.memoryUsage().arrayBuffers;
}

function model(): VHost {
  const broker = new Broker({ ...DEFAULT_CONFIG, dataDir: '/nonexistent', logLevel: 'silent' }, new TransientPersistence(), createLogger('silent'));
  return broker.addVHost('/');
}

function declare(vhost: VHost, name: string, args: FieldTable = {}): Queue {
  return vhost.declareQueue({ name, passive: false, durable: false, exclusive: false, autoDelete: false, args }, OWNER);
}

const PLAIN = encodeBasicProperties({});

function publish(vhost: VHost, queue: string, body: Buffer, props = PLAIN): void {
  const now = Date.now();
  vhost.publish(vhost.defaultExchange, new Message('', queue, props, body, now), null, now);
}

describe('TTL queues release consumed messages at once', () => {
  const ONE_HOUR = 3_600_000;

  it('100,000 consumed 1 KiB messages with a one-hour TTL: their bodies are freed (not held until the TTL)', () => {
    const vhost = model();
    const q = declare(vhost, 'ttl-bodies', { 'x-message-ttl': ONE_HOUR });
    const before = retainedBufferBytes();
    for (let i = 0; i < 100_000; i++) {
      publish(vhost, 'ttl-bodies', Buffer.allocUnsafeSlow(1024));
      q.settle(q.take(Date.now())!);
    }
    const grown = retainedBufferBytes() - before;
    expect(q.messageCount).toBe(0);
    // 100,000 KiB if they were kept; a few MiB of noise at most otherwise.
    expect(grown).toBeLessThan(8 * 1024 * 1024);
  });

  it('100,000 messages through a queue with x-message-ttl of one hour: none is held after it is consumed', () => {
    const vhost = model();
    const q = declare(vhost, 'ttl', { 'x-message-ttl': ONE_HOUR });
    const body = Buffer.alloc(1024);
    for (let i = 0; i < 100_000; i++) {
      publish(vhost, 'ttl', body);
      const entry = q.take(Date.now())!;
      q.settle(entry);
    }
    expect(q.messageCount).toBe(0);
    expect(q.expiringCount).toBe(0);
  });

  it('per-message expiration: consumed in bursts, the watched set is only what is still ready', () => {
    const vhost = model();
    const q = declare(vhost, 'pm');
    const props = encodeBasicProperties({ expiration: String(ONE_HOUR) });
    for (let round = 0; round < 100; round++) {
      for (let i = 0; i < 1000; i++) publish(vhost, 'pm', Buffer.alloc(16), props);
      for (let i = 0; i < 990; i++) q.settle(q.take(Date.now())!);
    }
    expect(q.messageCount).toBe(1000);
    expect(q.expiringCount).toBe(1000);
  });

  it('a requeued message is watched again, and consumed again it is forgotten', () => {
    const vhost = model();
    const q = declare(vhost, 'rq', { 'x-message-ttl': ONE_HOUR });
    for (let i = 0; i < 10; i++) publish(vhost, 'rq', Buffer.alloc(16));
    const taken = Array.from({ length: 10 }, () => q.take(Date.now())!);
    expect(q.expiringCount).toBe(0);
    for (const e of taken.reverse()) q.requeue(e, Date.now());
    expect(q.expiringCount).toBe(10);
    for (let i = 0; i < 10; i++) q.settle(q.take(Date.now())!);
    expect(q.expiringCount).toBe(0);
  });
});
