// A TCP link the chaos checker puts between two parts of the cluster (a follower and the leader's
// replication port, a node and an etcd member) where iptables and network namespaces are not used:
// it forwards bytes, or holds them (a partition: nothing gets through and both ends see a silent
// connection; once healed, what was held arrives, as TCP retransmits — unless an end gave up and
// closed meanwhile), or delays them.

import { connect, createServer, type Server, type Socket } from 'node:net';

export type LinkMode = 'pass' | 'blackhole';

export class FaultyLink {
  private currentMode: LinkMode = 'pass';
  delayMs = 0;
  private readonly sockets = new Set<Socket>();

  private constructor(
    private readonly server: Server,
    readonly host: string,
    readonly port: number,
  ) {}

  static listen(host: string, port: number, targetHost: string, targetPort: number): Promise<FaultyLink> {
    return new Promise((resolve, reject) => {
      let link: FaultyLink | null = null;
      const server = createServer({ pauseOnConnect: true }, (client) => link?.accept(client, targetHost, targetPort));
      server.once('error', reject);
      server.listen(port, host, () => {
        link = new FaultyLink(server, host, port);
        resolve(link);
      });
    });
  }

  private accept(client: Socket, targetHost: string, targetPort: number): void {
    const upstream = connect({ host: targetHost, port: targetPort });
    this.sockets.add(client);
    this.sockets.add(upstream);
    const drop = (): void => {
      client.destroy();
      upstream.destroy();
      this.sockets.delete(client);
      this.sockets.delete(upstream);
    };
    for (const s of [client, upstream]) {
      s.on('error', drop);
      s.on('close', drop);
    }
    this.forward(client, upstream);
    this.forward(upstream, client);
    if (this.currentMode === 'pass') client.resume();
  }

  get mode(): LinkMode {
    return this.currentMode;
  }

  /** blackhole: stop reading on both sides of every connection (and of new ones) until 'pass'. */
  set mode(mode: LinkMode) {
    this.currentMode = mode;
    for (const s of this.sockets) {
      if (mode === 'blackhole') s.pause();
      else s.resume();
    }
  }

  private forward(from: Socket, to: Socket): void {
    if (this.currentMode === 'blackhole') from.pause();
    from.on('data', (chunk: Buffer) => {
      if (this.delayMs > 0) setTimeout(() => to.write(chunk), this.delayMs);
      else to.write(chunk);
    });
  }

  /** Cuts every connection through the link (a reset, as when a process dies). */
  reset(): void {
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
  }

  async close(): Promise<void> {
    this.reset();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
