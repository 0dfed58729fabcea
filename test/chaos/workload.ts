// The chaos checker's clients (amqplib, as an application would use it): publishers that publish
// unique values with publisher confirms and consumers that ack manually, each reconnecting through
// any node of the cluster (a random one of the list, as a client with a host list does) whenever
// its connection breaks. Everything they see goes into the History.

import amqp, { type Channel, type ChannelModel, type ConfirmChannel } from 'amqplib';
import { bodyOf, valueOf, type History } from './history.js';
import { sleep } from './net.js';

/** Client heartbeat, seconds: how soon a client notices a paused or cut-off node. */
const HEARTBEAT_SEC = 4;
const CONNECT_TIMEOUT_MS = 5000;

export interface WorkloadOptions {
  /** amqp:// URLs of every node (clients pick one at random on each connect) */
  urls: () => string[];
  queues: string[];
  publishers: number;
  consumers: number;
  /** publishes per second, all publishers together */
  rate: number;
  /** unconfirmed publishes a publisher may have in flight */
  window: number;
  prefetch: number;
  history: History;
  /** one line of progress / trouble (not per message) */
  note: (line: string) => void;
}

function withHeartbeat(url: string): string {
  return `${url}${url.includes('?') ? '&' : '?'}heartbeat=${HEARTBEAT_SEC}`;
}

/** Connects with a bound on the whole handshake (a paused node accepts but never answers). */
export async function connectBounded(url: string, timeoutMs = CONNECT_TIMEOUT_MS): Promise<ChannelModel> {
  let timedOut = false;
  const attempt = amqp.connect(withHeartbeat(url), { timeout: timeoutMs });
  const timer = new Promise<never>((_, reject) =>
    setTimeout(() => {
      timedOut = true;
      reject(new Error(`no connection within ${timeoutMs} ms`));
    }, timeoutMs),
  );
  try {
    const conn = await Promise.race([attempt, timer]);
    // Errors also end in 'close', which the loops watch; an 'error' without a listener would throw.
    conn.on('error', () => {});
    return conn;
  } finally {
    if (timedOut) void attempt.then((c) => c.close()).catch(() => {});
  }
}

function pick<T>(list: T[]): T {
  return list[Math.floor(Math.random() * list.length)]!;
}

/** Resolves when the connection closes or errors. */
function closed(conn: ChannelModel): Promise<void> {
  return new Promise((resolve) => {
    conn.once('close', () => resolve());
    conn.once('error', () => resolve());
  });
}

export class Workload {
  private publishing = true;
  private consuming = true;
  private readonly conns = new Set<ChannelModel>();
  private readonly loops: Promise<void>[] = [];
  private readonly publisherLoops: Promise<void>[] = [];
  /** connections made (the first per client and every reconnect) */
  connects = 0;
  /** values published and not yet confirmed or nacked, all publishers */
  private readonly inFlight = new Set<number>();

  constructor(private readonly o: WorkloadOptions) {}

  /** Declares the queues (durable) through any node, retrying until one answers. */
  async declare(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        const conn = await connectBounded(pick(this.o.urls()));
        try {
          const ch = await conn.createChannel();
          for (const q of this.o.queues) await ch.assertQueue(q, { durable: true });
          return;
        } finally {
          await conn.close().catch(() => {});
        }
      } catch (err) {
        if (Date.now() > deadline) throw new Error(`could not declare the queues: ${(err as Error).message}`);
        await sleep(500);
      }
    }
  }

  start(): void {
    const perPublisher = this.o.rate / Math.max(1, this.o.publishers);
    for (let i = 0; i < this.o.publishers; i++) this.publisherLoops.push(this.publisherLoop(i, perPublisher));
    for (let i = 0; i < this.o.consumers; i++) this.loops.push(this.consumerLoop(i));
  }

  /** Publishes count values of size bytes to queue once (confirmed), for a store worth snapshotting. */
  async ballast(queue: string, count: number, size: number, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let sent = 0;
    while (sent < count) {
      if (Date.now() > deadline) throw new Error(`ballast: only ${sent} of ${count} confirmed in ${timeoutMs} ms`);
      let conn: ChannelModel | null = null;
      try {
        conn = await connectBounded(pick(this.o.urls()));
        const ch = await conn.createConfirmChannel();
        await ch.assertQueue(queue, { durable: true });
        while (sent < count) {
          const batch: number[] = [];
          for (let i = 0; i < 100 && sent + batch.length < count; i++) {
            const v = this.o.history.publish();
            batch.push(v);
            ch.publish('', queue, bodyOf(v, size), { persistent: true });
          }
          try {
            await ch.waitForConfirms();
            for (const v of batch) this.o.history.settle(v, 'confirmed');
            sent += batch.length;
          } catch (err) {
            for (const v of batch) this.o.history.settle(v, 'unknown');
            throw err;
          }
        }
      } catch (err) {
        this.o.note(`ballast: ${(err as Error).message}; retrying`);
        await sleep(500);
      } finally {
        await conn?.close().catch(() => {});
      }
    }
  }

  private async publisherLoop(id: number, perSecond: number): Promise<void> {
    const gapMs = 1000 / Math.max(1, perSecond);
    while (this.publishing) {
      let conn: ChannelModel | null = null;
      const mine = new Set<number>();
      try {
        conn = await connectBounded(pick(this.o.urls()));
        this.connects++;
        this.conns.add(conn);
        const isClosed = closed(conn);
        let open = true;
        void isClosed.then(() => (open = false));
        const ch: ConfirmChannel = await conn.createConfirmChannel();
        ch.on('error', () => {});
        // Returned (unroutable: the queue is gone) comes before the ack: it is not a confirm.
        ch.on('return', (msg: { content: Buffer }) => {
          const v = valueOf(msg.content);
          if (v !== null) this.o.history.settle(v, 'returned');
        });
        for (const q of this.o.queues) await ch.assertQueue(q, { durable: true });
        let next = Date.now();
        while (this.publishing && open) {
          if (mine.size >= this.o.window) {
            await Promise.race([sleep(20), isClosed]);
            continue;
          }
          const wait = next - Date.now();
          if (wait > 0) await Promise.race([sleep(wait), isClosed]);
          if (!open || !this.publishing) break;
          next = Math.max(next + gapMs, Date.now() - 1000);
          const value = this.o.history.publish();
          const queue = this.o.queues[value % this.o.queues.length]!;
          mine.add(value);
          this.inFlight.add(value);
          ch.publish('', queue, bodyOf(value), { persistent: true, mandatory: true }, (err) => {
            mine.delete(value);
            this.inFlight.delete(value);
            if (err === null || err === undefined) this.o.history.settle(value, 'confirmed');
            else this.o.history.settle(value, /nack/i.test((err as Error).message) ? 'nacked' : 'unknown');
          });
        }
        // Stopping: wait (bounded) for the confirms still owed, then close.
        const deadline = Date.now() + 30_000;
        while (open && mine.size > 0 && Date.now() < deadline) await Promise.race([sleep(50), isClosed]);
      } catch (err) {
        if (this.publishing) this.o.note(`publisher ${id}: ${(err as Error).message}`);
      } finally {
        if (conn !== null) {
          this.conns.delete(conn);
          await conn.close().catch(() => {});
        }
        // Whatever was not confirmed or nacked by now may or may not be in a queue.
        for (const v of mine) {
          this.inFlight.delete(v);
          this.o.history.settle(v, 'unknown');
        }
      }
      if (this.publishing) await sleep(200 + Math.random() * 300);
    }
  }

  private async consumerLoop(id: number): Promise<void> {
    while (this.consuming) {
      let conn: ChannelModel | null = null;
      try {
        conn = await connectBounded(pick(this.o.urls()));
        this.connects++;
        this.conns.add(conn);
        const isClosed = closed(conn);
        const ch: Channel = await conn.createChannel();
        ch.on('error', () => {});
        for (const q of this.o.queues) await ch.assertQueue(q, { durable: true });
        await ch.prefetch(this.o.prefetch);
        for (const q of this.o.queues) {
          await ch.consume(
            q,
            (msg) => {
              if (msg === null) return; // consumer cancelled by the broker: the connection loop reconnects
              this.o.history.deliver(msg.content, msg.fields.redelivered);
              try {
                ch.ack(msg);
              } catch {
                // the channel closed: the broker requeues the message, which comes back redelivered
              }
            },
            { noAck: false },
          );
        }
        await Promise.race([isClosed, this.untilConsumersStop()]);
      } catch (err) {
        if (this.consuming) this.o.note(`consumer ${id}: ${(err as Error).message}`);
      } finally {
        if (conn !== null) {
          this.conns.delete(conn);
          await conn.close().catch(() => {});
        }
      }
      if (this.consuming) await sleep(200 + Math.random() * 300);
    }
  }

  private stopConsumersWaiters: (() => void)[] = [];

  private untilConsumersStop(): Promise<void> {
    return new Promise((resolve) => {
      if (!this.consuming) resolve();
      else this.stopConsumersWaiters.push(resolve);
    });
  }

  /** Unconfirmed publishes right now. */
  get unconfirmed(): number {
    return this.inFlight.size;
  }

  /** Stops publishing; resolves when every publisher has settled (or given up on) its publishes. */
  async stopPublishing(): Promise<void> {
    this.publishing = false;
    await Promise.all(this.publisherLoops);
  }

  /** Stops the consumers and closes every connection. */
  async stop(): Promise<void> {
    this.publishing = false;
    this.consuming = false;
    for (const w of this.stopConsumersWaiters.splice(0)) w();
    for (const c of this.conns) void c.close().catch(() => {});
    await Promise.all([...this.publisherLoops, ...this.loops]);
  }

  /** Ready messages and consumers of each queue (passive declare through any node); null: no such queue. */
  async depths(queues: string[]): Promise<Map<string, { messages: number; consumers: number } | null>> {
    const conn = await connectBounded(pick(this.o.urls()));
    try {
      const out = new Map<string, { messages: number; consumers: number } | null>();
      for (const q of queues) {
        // A channel per queue: a missing queue closes the channel (404).
        const ch = await conn.createChannel();
        ch.on('error', () => {});
        try {
          const ok = await ch.checkQueue(q);
          out.set(q, { messages: ok.messageCount, consumers: ok.consumerCount });
          await ch.close();
        } catch (err) {
          if ((err as { code?: number }).code !== 404) throw err;
          out.set(q, null);
        }
      }
      return out;
    } finally {
      await conn.close().catch(() => {});
    }
  }

  /** Takes (basic.get, ack) whatever is left in the queues that exist, into the history; returns how many. */
  async getRemaining(queues: string[]): Promise<number> {
    const depths = await this.depths(queues);
    const conn = await connectBounded(pick(this.o.urls()));
    let n = 0;
    try {
      const ch = await conn.createChannel();
      ch.on('error', () => {});
      for (const q of queues) {
        if (depths.get(q) === null) continue;
        for (;;) {
          const msg = await ch.get(q, { noAck: false });
          if (msg === false) break;
          this.o.history.deliver(msg.content, msg.fields.redelivered);
          ch.ack(msg);
          n++;
        }
      }
      return n;
    } finally {
      await conn.close().catch(() => {});
    }
  }
}
