// Followers serve no clients themselves: each of their client ports (AMQP, AMQPS, management, metrics)
// forwards TCP to the same service on the leader, starting with a PROXY protocol v1 line so that
// the leader sees — and logs, and applies loopback-only rules to — the real client address. When
// the leader changes, every forwarded connection is dropped (clients reconnect, as after any
// failover); while no leader is known, new connections are closed at once.

import { connect, createServer, isIPv6, type Server, type Socket } from 'node:net';
import type { Logger } from '../log.js';
import type { LeaderInfo } from './coordinator.js';

export type ProxiedService = 'amqp' | 'amqps' | 'management' | 'metrics';

interface Listener {
  service: ProxiedService;
  server: Server;
}

function targetPort(leader: LeaderInfo, service: ProxiedService): number {
  if (service === 'amqp') return leader.amqpPort;
  if (service === 'amqps') return leader.amqpTlsPort;
  if (service === 'metrics') return leader.metricsPort;
  return leader.managementPort;
}

/** The PROXY protocol v1 header for a client connection accepted on `socket`. */
export function proxyHeader(socket: Socket): string {
  const src = socket.remoteAddress ?? '';
  const dst = socket.localAddress ?? '';
  if (src === '' || dst === '') return 'PROXY UNKNOWN\r\n';
  const family = isIPv6(src) ? 'TCP6' : 'TCP4';
  const plain = (a: string): string => (a.startsWith('::ffff:') && family === 'TCP4' ? a.slice(7) : a);
  return `PROXY ${family} ${plain(src)} ${plain(dst)} ${socket.remotePort ?? 0} ${socket.localPort ?? 0}\r\n`;
}

export class LeaderProxy {
  private readonly listeners: Listener[] = [];
  private readonly pairs = new Set<Socket>();
  private leader: LeaderInfo | null = null;
  /** connections forwarded (metrics) */
  forwarded = 0;

  constructor(
    private readonly logger: Logger,
    /** the address outgoing connections leave from (the leader trusts PROXY lines from it) */
    private readonly localAddress: string | undefined,
  ) {}

  listen(service: ProxiedService, host: string, port: number): Promise<number> {
    const server = createServer({ noDelay: true, pauseOnConnect: true }, (socket) => this.accept(service, socket));
    return new Promise((resolve, reject) => {
      server.once('error', (err: NodeJS.ErrnoException) =>
        reject(err.code === 'EADDRINUSE' ? new Error(`port ${port} on ${host} is already in use: stop the other process or choose another port for ${service}`) : err),
      );
      server.listen({ host, port, backlog: 1024 }, () => {
        server.on('error', (err) => this.logger.error({ err, service }, 'proxy listener error'));
        this.listeners.push({ service, server });
        const addr = server.address();
        resolve(typeof addr === 'object' && addr !== null ? addr.port : port);
      });
    });
  }

  /** Points the proxy at a new leader (or none): connections to the old one are dropped. */
  setLeader(leader: LeaderInfo | null): void {
    const same = leader !== null && this.leader !== null && leader.id === this.leader.id && leader.epoch === this.leader.epoch;
    this.leader = leader;
    if (same) return;
    for (const s of this.pairs) s.destroy();
    this.pairs.clear();
  }

  private accept(service: ProxiedService, client: Socket): void {
    const leader = this.leader;
    const port = leader === null ? 0 : targetPort(leader, service);
    if (leader === null || port === 0) {
      client.destroy();
      return;
    }
    this.forwarded++;
    const upstream = connect({
      host: leader.host,
      port,
      noDelay: true,
      ...(this.localAddress !== undefined ? { localAddress: this.localAddress } : {}),
    });
    upstream.write(proxyHeader(client));
    this.pairs.add(client);
    this.pairs.add(upstream);
    const drop = (): void => {
      this.pairs.delete(client);
      this.pairs.delete(upstream);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', drop);
    upstream.on('error', drop);
    client.on('close', drop);
    upstream.on('close', drop);
    client.pipe(upstream);
    upstream.pipe(client);
    client.resume();
  }

  get connections(): number {
    return this.pairs.size / 2;
  }

  async close(): Promise<void> {
    for (const s of this.pairs) s.destroy();
    this.pairs.clear();
    await Promise.all(this.listeners.map((l) => new Promise<void>((resolve) => l.server.close(() => resolve()))));
    this.listeners.length = 0;
  }
}
