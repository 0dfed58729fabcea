// amqplib helpers every test shares: unique names, AMQP failures as {code, text}, connections and
// channels that record their errors instead of throwing them, and a consumer that collects what it
// receives. Connections made through Clients are closed after each test.

import { randomBytes } from 'node:crypto';
import amqp from 'amqplib';
import { afterAll, afterEach } from 'vitest';
import { waitFor } from './wait.js';

export type Connection = amqp.ChannelModel;
export type Channel = amqp.Channel;
export type ConfirmChannel = amqp.ConfirmChannel;
export type Message = amqp.ConsumeMessage;
export type GetMessage = amqp.GetMessage;

/** Unique name for a queue or exchange: prefix + random suffix. */
export function uniqueName(prefix: string): string {
  return `${prefix}-${randomBytes(6).toString('hex')}`;
}

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
    await p.then((v) => (value = v));
  } catch (err) {
    return failure(err);
  }
  throw new Error(`expected the operation to fail, it returned ${JSON.stringify(value)}`);
}

/** Something that records the AMQP errors it emitted and whether it closed. */
export interface Recording {
  errors: AmqpFailure[];
  closed: boolean;
}
export type RecordedConnection = Connection & Recording;
export type RecordedChannel = Channel & Recording;
export type RecordedConfirmChannel = ConfirmChannel & Recording;

function record<T extends { on(event: string, f: (...args: never[]) => void): unknown }>(emitter: T): T & Recording {
  const r = emitter as T & Recording;
  r.errors = [];
  r.closed = false;
  emitter.on('error', ((e: unknown) => r.errors.push(failure(e))) as never);
  emitter.on('close', (() => (r.closed = true)) as never);
  return r;
}

/** A channel on conn whose errors are recorded, never thrown as 'error' events. */
export async function recordedChannel(conn: Connection): Promise<RecordedChannel> {
  return record(await conn.createChannel());
}

export async function recordedConfirmChannel(conn: Connection): Promise<RecordedConfirmChannel> {
  return record(await conn.createConfirmChannel());
}

/** Waits for the first error recorded on a channel or connection and returns it. */
export async function firstError(emitter: { errors: AmqpFailure[] }, timeoutMs = 5000): Promise<AmqpFailure> {
  await waitFor(() => emitter.errors.length > 0, 'an AMQP error', timeoutMs);
  return emitter.errors[0]!;
}

/**
 * The amqplib connections a test file opens: each records its errors; all still open are closed
 * after every test (bounded, so a dead broker cannot hang the suite).
 */
export class Clients {
  readonly open = new Set<RecordedConnection>();

  /** url: the broker to connect to by default (read when connecting, so it may be set later) */
  constructor(private readonly defaultUrl: () => string) {}

  async connect(url = this.defaultUrl(), socketOptions?: object): Promise<RecordedConnection> {
    const conn = record(await amqp.connect(url, socketOptions));
    this.open.add(conn);
    conn.on('close', () => this.open.delete(conn));
    return conn;
  }

  /** a channel on conn, or on a new connection */
  async channel(conn?: Connection): Promise<RecordedChannel> {
    return recordedChannel(conn ?? (await this.connect()));
  }

  async confirmChannel(conn?: Connection): Promise<RecordedConfirmChannel> {
    return recordedConfirmChannel(conn ?? (await this.connect()));
  }

  /** Closes every connection still open (each given at most timeoutMs). */
  async closeAll(timeoutMs = 1000): Promise<void> {
    const all = [...this.open];
    this.open.clear();
    await Promise.all(
      all.map((c) => Promise.race([c.close().catch(() => {}), new Promise<void>((r) => setTimeout(r, timeoutMs))])),
    );
  }
}

/** Clients for this test file, closed after each test. */
export function useClients(defaultUrl: () => string): Clients {
  const clients = new Clients(defaultUrl);
  afterEach(() => clients.closeAll());
  afterAll(() => clients.closeAll());
  return clients;
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
      await waitFor(() => c.messages.length >= n, `${n} messages (have ${c.messages.length})`, timeoutMs);
      return c.messages;
    },
    bodies() {
      return c.messages.map((m) => m.content.toString());
    },
  };
  return c;
}

// ---- Publishing many -----------------------------------------------------------------------------

/**
 * Publishes `count` copies of body to queue q on a confirm channel and waits until all are
 * confirmed: it waits for 'drain' when the socket buffer is full, and for the confirms every 5000
 * messages, so that a flood of any size holds a bounded amount in the client.
 */
export async function publishConfirmed(ch: ConfirmChannel, q: string, body: Buffer, count: number): Promise<void> {
  for (let i = 0; i < count; i++) {
    if (!ch.sendToQueue(q, body)) await new Promise((r) => ch.once('drain', r));
    if (i % 5000 === 4999) await ch.waitForConfirms();
  }
  await ch.waitForConfirms();
}

// ---- What is in a queue, by basic.get ------------------------------------------------------------

/** Every ready message of q, taken with basic.get no-ack, in order. */
export async function getAll(ch: Channel, q: string): Promise<GetMessage[]> {
  const out: GetMessage[] = [];
  for (;;) {
    const m = await ch.get(q, { noAck: true });
    if (m === false) return out;
    out.push(m);
  }
}

/** The next n messages of q by basic.get with manual ack (they stay unacked); throws when q runs out. */
export async function getN(ch: Channel, q: string, n: number): Promise<GetMessage[]> {
  const out: GetMessage[] = [];
  for (let i = 0; i < n; i++) {
    const m = await ch.get(q, { noAck: false });
    if (m === false) throw new Error('queue empty');
    out.push(m);
  }
  return out;
}

/** The bodies of messages, as text. */
export const bodiesOf = (ms: readonly { content: Buffer }[]): string[] => ms.map((m) => m.content.toString());

/** [body, redelivered] of each message. */
export const bodiesAndRedelivered = (ms: readonly GetMessage[]): [string, boolean][] => ms.map((m) => [m.content.toString(), m.fields.redelivered]);
