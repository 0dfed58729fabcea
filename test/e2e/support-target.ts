// The broker the core end-to-end tests talk to, and small helpers they share.
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

import { randomBytes } from 'node:crypto';
import amqp from 'amqplib';
import { afterAll, afterEach, beforeAll } from 'vitest';

export type Connection = amqp.ChannelModel;
export type Channel = amqp.Channel;
export type Message = amqp.ConsumeMessage;

/** True when the tests run against an external broker given by WARREN_TEST_AMQP_URL. */
export const EXTERNAL = process.env['WARREN_TEST_AMQP_URL'] !== undefined && process.env['WARREN_TEST_AMQP_URL'] !== '';

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
  const { startTestBroker } = await import('../support/broker.js');
  const broker = await startTestBroker();
  return { url: broker.url, host: '127.0.0.1', port: broker.port, stop: () => broker.stop() };
}

/** Unique name for a queue or exchange: prefix + random suffix. */
export function uniqueName(prefix: string): string {
  return `${prefix}-${randomBytes(6).toString('hex')}`;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export type Truthy<T> = Exclude<T, undefined | null | false | 0 | ''>;

/** Polls until check() is truthy and returns that value; throws after timeoutMs. */
export async function until<T>(check: () => T | Promise<T>, what: string, timeoutMs = 5000): Promise<Truthy<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value as Truthy<T>;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

/** How long a test waits to be sure that something does NOT happen. */
export const QUIET_MS = 150;

export interface AmqpFailure {
  code: number;
  text: string;
  classId?: number;
  methodId?: number;
  message: string;
}

/** Turns an amqplib close error ('... 404 (NOT-FOUND) with message "NOT_FOUND - ..."') into parts. */
export function failure(err: unknown): AmqpFailure {
  if (!(err instanceof Error)) throw new Error(`expected an Error, got ${String(err)}`);
  const e = err as Error & { code?: number; classId?: number; methodId?: number };
  const m = /with message "(.*)"$/s.exec(e.message);
  const out: AmqpFailure = { code: typeof e.code === 'number' ? e.code : NaN, text: m ? m[1]! : '', message: e.message };
  if (e.classId !== undefined) out.classId = e.classId;
  if (e.methodId !== undefined) out.methodId = e.methodId;
  return out;
}

/** Awaits a promise that must reject with an AMQP close; returns code and reply text. */
export async function rejection(p: Promise<unknown>): Promise<AmqpFailure> {
  let value: unknown;
  try {
    value = await p;
  } catch (err) {
    return failure(err);
  }
  throw new Error(`expected the operation to fail, it returned ${JSON.stringify(value)}`);
}

/** A collected consumer: messages in arrival order, plus the null amqplib passes on basic.cancel. */
export interface Collector {
  readonly messages: Message[];
  cancelled: boolean;
  readonly onMessage: (msg: Message | null) => void;
  /** waits until at least n messages arrived */
  waitFor(n: number, timeoutMs?: number): Promise<Message[]>;
  bodies(): string[];
}

export function collector(onEach?: (msg: Message) => void): Collector {
  const c: Collector = {
    messages: [],
    cancelled: false,
    onMessage(msg) {
      if (msg === null) {
        c.cancelled = true;
        return;
      }
      c.messages.push(msg);
      onEach?.(msg);
    },
    async waitFor(n, timeoutMs = 5000) {
      await until(() => c.messages.length >= n, `${n} messages (have ${c.messages.length})`, timeoutMs);
      return c.messages;
    },
    bodies() {
      return c.messages.map((m) => m.content.toString());
    },
  };
  return c;
}

/**
 * Per-file harness: registers beforeAll/afterAll (broker) and afterEach (close the test's
 * connections, delete the queues and exchanges it named).
 */
export function useBroker() {
  let target: (Target & { stop(): Promise<void> }) | undefined;
  const connections = new Set<Connection>();
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
    for (const c of [...connections]) {
      await c.close().catch(() => {});
    }
    connections.clear();
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
    async connect(): Promise<Connection & { errors: AmqpFailure[]; closed: boolean }> {
      const conn = (await amqp.connect(target!.url)) as Connection & { errors: AmqpFailure[]; closed: boolean };
      conn.errors = [];
      conn.closed = false;
      conn.on('error', (e: unknown) => conn.errors.push(failure(e)));
      conn.on('close', () => {
        conn.closed = true;
        connections.delete(conn);
      });
      connections.add(conn);
      return conn;
    },
    /** a channel on conn (or on a new connection); channel errors are recorded, never thrown */
    async channel(conn?: Connection): Promise<Channel & { errors: AmqpFailure[]; closed: boolean }> {
      const c = conn ?? (await h.connect());
      const ch = (await c.createChannel()) as Channel & { errors: AmqpFailure[]; closed: boolean };
      ch.errors = [];
      ch.closed = false;
      ch.on('error', (e: unknown) => ch.errors.push(failure(e)));
      ch.on('close', () => (ch.closed = true));
      return ch;
    },
    /** waits for the first channel or connection error recorded on ch/conn and returns it */
    async firstError(emitter: { errors: AmqpFailure[] }, timeoutMs = 5000): Promise<AmqpFailure> {
      await until(() => emitter.errors.length > 0, 'an AMQP error', timeoutMs);
      return emitter.errors[0]!;
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
