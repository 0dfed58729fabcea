// Network faults without privileges: a TCP proxy in front of a port that can hold (partition) or
// delay traffic between named endpoints. The chaos checker needs partitions between cluster nodes
// and between a node and etcd; iptables/nftables are not available everywhere (and need root), so
// every link that a partition may cut is routed through one of these proxies instead.
//
// A partition holds bytes rather than dropping them: during a cut nothing crosses in either
// direction (not even a close), the sender is paused once a bounded amount is queued (as a full TCP
// window would), and on heal the queued bytes flow on — what TCP does after a partition shorter
// than its retransmission timeout. Applications notice the cut the way they would on a real
// network: their own timeouts (heartbeats, leases) expire. A new connection across a cut waits
// (like unanswered SYNs) until the cut heals or the client gives up.
//
// FaultNetwork holds the rules (which pairs are cut, which pairs are delayed); every FaultProxy
// asks it per connection, and re-checks its queued traffic when the rules change.

import { createServer, connect, type Server, type Socket } from 'node:net';

/** Bytes queued per direction before the sending side is paused. */
const HOLD_HIGH_BYTES = 512 * 1024;

function pairKey(a: string, b: string): string {
  return a < b ? `${a}|${b}` : `${b}|${a}`;
}

export class FaultNetwork {
  private readonly cut = new Set<string>();
  private readonly delays = new Map<string, number>();
  private readonly listeners = new Set<() => void>();

  /** Whether traffic between a and b is held. */
  blocked(a: string, b: string): boolean {
    return this.cut.has(pairKey(a, b));
  }

  /** Added one-way latency between a and b, ms. */
  delayMs(a: string, b: string): number {
    return this.delays.get(pairKey(a, b)) ?? 0;
  }

  /** Cuts every link between a member of one group and a member of another. */
  partition(groups: string[][]): void {
    for (let i = 0; i < groups.length; i++) {
      for (let j = i + 1; j < groups.length; j++) {
        for (const a of groups[i]!) for (const b of groups[j]!) this.cut.add(pairKey(a, b));
      }
    }
    this.changed();
  }

  /** Adds latency to every link between a and each of others. */
  delay(a: string, others: string[], ms: number): void {
    for (const b of others) this.delays.set(pairKey(a, b), ms);
    this.changed();
  }

  /** Removes every cut and delay. */
  heal(): void {
    this.cut.clear();
    this.delays.clear();
    this.changed();
  }

  /** Describes the current faults ('' when none). */
  describe(): string {
    const parts: string[] = [];
    if (this.cut.size > 0) parts.push(`cut ${[...this.cut].join(', ')}`);
    if (this.delays.size > 0) parts.push(`delayed ${[...this.delays].map(([k, ms]) => `${k} ${ms} ms`).join(', ')}`);
    return parts.join('; ');
  }

  onChange(fn: () => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  private changed(): void {
    for (const fn of this.listeners) fn();
  }
}

type Item = { data: Buffer; due: number } | { data: null; due: number };

/** One direction of a proxied connection: bytes from src are written to dst when the rules allow. */
class Pipe {
  private readonly queue: Item[] = [];
  private queuedBytes = 0;
  private timer: NodeJS.Timeout | null = null;
  private waitingForDrain = false;
  private srcPaused = false;
  private ended = false;
  private lastDue = 0;

  constructor(
    private readonly src: Socket,
    private readonly dst: () => Socket | null,
    private readonly from: string,
    private readonly to: string,
    private readonly network: FaultNetwork,
  ) {
    src.on('data', (chunk: Buffer) => this.push(chunk));
    src.on('end', () => this.finish());
    src.on('close', () => this.finish());
  }

  private finish(): void {
    if (this.ended) return;
    this.ended = true;
    this.enqueue(null);
  }

  private push(chunk: Buffer): void {
    this.enqueue(chunk);
    this.queuedBytes += chunk.length;
    if (this.queuedBytes > HOLD_HIGH_BYTES && !this.srcPaused) {
      this.srcPaused = true;
      this.src.pause();
    }
  }

  private enqueue(data: Buffer | null): void {
    // Order is kept: a later chunk is never due before an earlier one, even when the delay shrinks.
    const due = Math.max(this.lastDue, Date.now() + this.network.delayMs(this.from, this.to));
    this.lastDue = due;
    this.queue.push(data === null ? { data: null, due } : { data, due });
    this.pump();
  }

  /** Delivers what is due and allowed; called on new data, on drain, on timers and on rule changes. */
  pump(): void {
    const dst = this.dst();
    if (dst === null || this.waitingForDrain) return;
    if (this.network.blocked(this.from, this.to)) return;
    while (this.queue.length > 0) {
      const head = this.queue[0]!;
      const wait = head.due - Date.now();
      if (wait > 0) {
        if (this.timer === null) {
          this.timer = setTimeout(() => {
            this.timer = null;
            this.pump();
          }, wait);
        }
        return;
      }
      this.queue.shift();
      if (head.data === null) {
        dst.end();
        return;
      }
      this.queuedBytes -= head.data.length;
      const more = dst.write(head.data);
      if (!more) {
        this.waitingForDrain = true;
        dst.once('drain', () => {
          this.waitingForDrain = false;
          this.pump();
        });
        return;
      }
    }
    if (this.srcPaused && this.queuedBytes < HOLD_HIGH_BYTES / 2) {
      this.srcPaused = false;
      this.src.resume();
    }
  }

  dispose(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.queue.length = 0;
  }
}

export interface FaultProxyOptions {
  listenHost: string;
  listenPort: number;
  targetHost: string;
  targetPort: number;
  /** the endpoint behind this proxy (the name partitions use) */
  to: string;
  /** the endpoint a connection comes from, by its remote address */
  from: (remoteAddress: string) => string;
  /** the local address to connect to the target from (so that the target sees a known peer) */
  localAddress?: (remoteAddress: string) => string | undefined;
  network: FaultNetwork;
}

/** One proxied connection: the accepted socket and, once the rules let it through, the upstream one. */
class Link {
  upstream: Socket | null = null;
  private readonly pipes: Pipe[] = [];
  private closed = false;

  constructor(
    readonly downstream: Socket,
    readonly from: string,
    private readonly o: FaultProxyOptions,
    private readonly onClosed: (link: Link) => void,
  ) {
    downstream.setNoDelay(true);
    downstream.on('error', () => this.close());
    this.pipes.push(new Pipe(downstream, () => this.upstream, from, o.to, o.network));
    this.tryConnect();
  }

  /** Connects upstream unless the link is cut (then retried on the next rule change). */
  tryConnect(): void {
    if (this.closed || this.upstream !== null || this.o.network.blocked(this.from, this.o.to)) return;
    const remote = this.downstream.remoteAddress ?? '';
    const localAddress = this.o.localAddress?.(remote);
    const up = connect({ allowHalfOpen: true, host: this.o.targetHost, port: this.o.targetPort, noDelay: true, ...(localAddress !== undefined ? { localAddress } : {}) });
    this.upstream = up;
    // A refused or reset upstream ends the client's connection too, as it would without the proxy.
    up.on('error', () => this.close());
    up.once('close', () => {
      if (this.downstream.destroyed) this.close();
    });
    up.once('connect', () => {
      this.pipes.push(new Pipe(up, () => (this.closed ? null : this.downstream), this.o.to, this.from, this.o.network));
      this.pump();
    });
  }

  pump(): void {
    this.tryConnect();
    for (const p of this.pipes) p.pump();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const p of this.pipes) p.dispose();
    this.downstream.destroy();
    this.upstream?.destroy();
    this.onClosed(this);
  }
}

export class FaultProxy {
  private server: Server | null = null;
  private readonly links = new Set<Link>();
  private readonly unsubscribe: () => void;

  constructor(readonly options: FaultProxyOptions) {
    this.unsubscribe = options.network.onChange(() => {
      for (const link of this.links) link.pump();
    });
  }

  get address(): string {
    return `${this.options.listenHost}:${this.options.listenPort}`;
  }

  listen(): Promise<void> {
    // Half-open allowed on both sides: a close crosses only when the rules let it (see Pipe).
    const server = createServer({ allowHalfOpen: true }, (socket) => {
      const from = this.options.from(socket.remoteAddress ?? '');
      const link = new Link(socket, from, this.options, (l) => this.links.delete(l));
      this.links.add(link);
      // Both halves closed: forget the link.
      socket.once('close', () => {
        if (link.upstream === null || link.upstream.destroyed) link.close();
      });
    });
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.options.listenPort, this.options.listenHost, () => {
        server.off('error', reject);
        resolve();
      });
    });
  }

  /** Stops listening and ends every proxied connection. */
  async close(): Promise<void> {
    this.unsubscribe();
    for (const link of [...this.links]) link.close();
    const server = this.server;
    this.server = null;
    if (server !== null) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
