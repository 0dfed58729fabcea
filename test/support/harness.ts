// The broker the end-to-end tests talk to (useBroker: one per test file), and what they share.
//
// Differential testing: when WARREN_TEST_AMQP_URL is set (for example to a real RabbitMQ started
// with ../shared/tools/reference-broker.sh), the tests run against that broker and Warren is not
// started at all. Otherwise a fresh Warren is started in-process for the test file and stopped
// after it. Tests use only the AMQP connection (amqplib, @cloudamqp/amqp-client or a raw socket),
// never Warren's internals, so the very same expectations hold against both brokers.
//
// The raw-socket tests (test/support/raw-client.ts) connect to 127.0.0.1 on the URL's port as
// guest/guest, so an external broker must listen on loopback and allow guest from there.
//
// Names are unique per test (random suffix), and what a test declares is deleted after it, so
// tests do not collide on a shared external broker.

import amqp from 'amqplib';
import { afterAll, afterEach, beforeAll } from 'vitest';
import { Clients, firstError, uniqueName, type Channel, type Connection, type RecordedChannel, type RecordedConnection } from './amqp.js';
import { waitFor } from './wait.js';

export * from './amqp.js';
export * from './wait.js';

/** True when the tests run against an external broker given by WARREN_TEST_AMQP_URL. */
export const EXTERNAL = process.env['WARREN_TEST_AMQP_URL'] !== undefined && process.env['WARREN_TEST_AMQP_URL'] !== '';

/**
 * The AMQP URL of the external broker of a differential management or UI run (WARREN_TEST_MGMT_URL
 * set): WARREN_TEST_AMQP_URL, required then — no guessed default port, which could be another's broker.
 */
export function externalAmqpUrl(): string {
  const url = process.env['WARREN_TEST_AMQP_URL'];
  if (url === undefined || url === '') throw new Error('WARREN_TEST_MGMT_URL is set: set WARREN_TEST_AMQP_URL to the same broker\'s AMQP URL too');
  return url;
}

export interface Target {
  /** amqp://guest:guest@127.0.0.1:PORT of the broker under test */
  readonly url: string;
  readonly host: string;
  readonly port: number;
}

/**
 * Returns the URL of the broker to test against: WARREN_TEST_AMQP_URL as is when set (nothing is
 * started), otherwise a Warren started with startTestBroker(); the returned stop() stops it.
 */
export async function startTarget(): Promise<Target & { stop(): Promise<void> }> {
  const external = process.env['WARREN_TEST_AMQP_URL'];
  if (external !== undefined && external !== '') {
    const u = new URL(external);
    return { url: external, host: u.hostname, port: Number(u.port || 5672), stop: async () => {} };
  }
  // Imported lazily so that nothing of Warren is even loaded when testing an external broker.
  const { startTestBroker } = await import('./broker.js');
  const broker = await startTestBroker();
  return { url: broker.url, host: '127.0.0.1', port: broker.port, stop: () => broker.stop() };
}

/**
 * Per-file harness: registers beforeAll/afterAll (broker) and afterEach (close the test's
 * connections, delete the queues and exchanges it named).
 */
export function useBroker() {
  let target: (Target & { stop(): Promise<void> }) | undefined;
  const clients = new Clients(() => target!.url);
  const queues = new Set<string>();
  const exchanges = new Set<string>();
  const cleanups: (() => Promise<void> | void)[] = [];

  beforeAll(async () => {
    target = await startTarget();
  });
  afterEach(async () => {
    for (const f of cleanups.splice(0)) {
      try {
        await f();
      } catch {
        /* best effort */
      }
    }
    await clients.closeAll();
    if (queues.size === 0 && exchanges.size === 0) return;
    const conn = await amqp.connect(target!.url);
    conn.on('error', () => {});
    for (const q of queues) {
      const ch = await conn.createChannel();
      ch.on('error', () => {});
      await ch.deleteQueue(q).catch(() => {});
      await ch.close().catch(() => {});
    }
    for (const x of exchanges) {
      const ch = await conn.createChannel();
      ch.on('error', () => {});
      await ch.deleteExchange(x).catch(() => {});
      await ch.close().catch(() => {});
    }
    queues.clear();
    exchanges.clear();
    await conn.close().catch(() => {});
  });
  afterAll(async () => {
    await target?.stop();
  });

  const h = {
    get url(): string {
      return target!.url;
    },
    get port(): number {
      return target!.port;
    },
    get host(): string {
      return target!.host;
    },
    /** a unique queue name, deleted after the test */
    queue(prefix = 'core-q'): string {
      const n = uniqueName(prefix);
      queues.add(n);
      return n;
    },
    /** a unique exchange name, deleted after the test */
    exchange(prefix = 'core-x'): string {
      const n = uniqueName(prefix);
      exchanges.add(n);
      return n;
    },
    /** remember a name the broker chose (e.g. amq.gen-…) for deletion after the test */
    trackQueue(name: string): void {
      queues.add(name);
    },
    trackExchange(name: string): void {
      exchanges.add(name);
    },
    /** registers something to run after the test, before connections are closed */
    cleanup(f: () => Promise<void> | void): void {
      cleanups.push(f);
    },
    /** an amqplib connection closed after the test; connection-level errors are recorded */
    connect(): Promise<RecordedConnection> {
      return clients.connect();
    },
    /** a channel on conn (or on a new connection); channel errors are recorded, never thrown */
    channel(conn?: Connection): Promise<RecordedChannel> {
      return clients.channel(conn);
    },
    /** waits for the first channel or connection error recorded on ch/conn and returns it */
    firstError,
    /** A new queue (deleted after the test) holding bodies m0..m(n-1), all there when it returns. */
    async filledQueue(ch: Channel, n: number): Promise<string> {
      const q = h.queue();
      await ch.assertQueue(q, { durable: false });
      for (let i = 0; i < n; i++) ch.sendToQueue(q, Buffer.from(`m${i}`));
      await waitFor(async () => (await ch.checkQueue(q)).messageCount === n, `${n} messages`);
      return q;
    },
    /**
     * Publishes each (exchange, routingKey, headers) on a confirm channel with the label as body,
     * waits for the confirms, then drains every queue with basic.get: returns the bodies per queue.
     */
    async route(
      conn: Connection,
      publishes: { exchange: string; key: string; label: string; headers?: Record<string, unknown> }[],
      queues: string[],
    ): Promise<Record<string, string[]>> {
      const pub = await conn.createConfirmChannel();
      pub.on('error', () => {});
      for (const p of publishes) {
        pub.publish(p.exchange, p.key, Buffer.from(p.label), p.headers ? { headers: p.headers } : {});
      }
      await pub.waitForConfirms();
      const out: Record<string, string[]> = {};
      for (const q of queues) {
        out[q] = [];
        for (;;) {
          const m = await pub.get(q, { noAck: true });
          if (m === false) break;
          out[q]!.push(m.content.toString());
        }
      }
      await pub.close();
      return out;
    },
  };
  return h;
}

export type Harness = ReturnType<typeof useBroker>;
