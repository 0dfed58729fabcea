// The AMQP listeners (plain TCP, and AMQPS when TLS is configured): accept sockets, create a
// Connection for each, keep one registry of live connections whichever listener they came from,
// and close them all on shutdown with connection.close 320 CONNECTION_FORCED.

import { createServer, type Server, type Socket } from 'node:net';
import type { Broker } from '../broker/broker.js';
import type { TlsSettings } from '../tls/tls-settings.js';
import { Connection } from './connection.js';
import { createAmqpsListener } from './tls-listener.js';

/** Connections beyond --max-connections held waiting; more are closed at once. */
const MAX_WAITING = 1024;

export class AmqpServer {
  /** every open AMQP connection, plain and TLS (connection.tls tells them apart) */
  readonly connections = new Set<Connection>();
  private readonly listeners: Server[] = [];
  /** sockets accepted beyond --max-connections, oldest first, not yet served */
  private readonly waiting = new Set<Socket>();
  private limitLogged = false;
  /** every served socket until it closes, including those left open after close-ok (see Connection) */
  private readonly sockets = new Set<Socket>();

  constructor(private readonly broker: Broker) {}

  /** The listening sockets (a cluster leader accepts PROXY headers on them from its followers). */
  get netServers(): readonly Server[] {
    return this.listeners;
  }

  /** Starts the plain AMQP listener; rejects with a readable error if the address is taken. */
  listen(host: string, port: number): Promise<number> {
    return this.start(createServer({ noDelay: true }, (socket) => this.accept(socket)), host, port, '--port');
  }

  /** Starts an AMQPS listener with these certificates. */
  listenTls(host: string, port: number, tls: TlsSettings): Promise<number> {
    return this.start(createAmqpsListener(tls, this.broker, (socket) => this.accept(socket)), host, port, '--tls-port');
  }

  private start(server: Server, host: string, port: number, portFlag: string): Promise<number> {
    return new Promise((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException): void => {
        server.off('listening', onListening);
        if (err.code === 'EADDRINUSE') {
          reject(new Error(`port ${port} on ${host} is already in use: stop the other process or choose another ${portFlag}`));
        } else if (err.code === 'EADDRNOTAVAIL') {
          reject(new Error(`cannot listen on ${host}: no such local address (check --bind)`));
        } else if (err.code === 'EACCES') {
          reject(new Error(`not allowed to listen on ${host}:${port}: choose a port above 1023 or run with the needed rights`));
        } else reject(err);
      };
      const onListening = (): void => {
        server.off('error', onError);
        server.on('error', (err) => this.broker.log.error({ err }, 'listener error'));
        this.listeners.push(server);
        const addr = server.address();
        resolve(typeof addr === 'object' && addr !== null ? addr.port : port);
      };
      server.once('error', onError);
      server.once('listening', onListening);
      server.listen({ host, port, backlog: 1024 });
    });
  }

  private accept(socket: Socket): void {
    const max = this.broker.resources.maxConnections;
    if (max > 0 && this.connections.size >= max) return this.wait(socket, max);
    this.serve(socket);
  }

  private serve(socket: Socket): void {
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
    const connection = new Connection(this.broker, socket, (c) => {
      this.connections.delete(c);
      this.broker.connections.delete(c);
      this.admitWaiting();
    });
    this.connections.add(connection);
    this.broker.connections.add(connection);
  }

  /**
   * --max-connections reached. As RabbitMQ (whose listener stops accepting at connection_max): the
   * client's connection is not served — not read, no connection.start — until another closes;
   * clients see their connection timeout if that takes too long. At most MAX_WAITING wait here
   * (the rest are closed at once, as a full listen backlog would refuse them).
   */
  private wait(socket: Socket, max: number): void {
    if (this.waiting.size >= MAX_WAITING) {
      socket.destroy();
      return;
    }
    if (!this.limitLogged) {
      this.limitLogged = true;
      this.broker.log.warn({ maxConnections: max }, 'connection limit reached: new connections wait until one closes (--max-connections)');
    }
    socket.pause();
    socket.on('error', () => {});
    socket.once('close', () => this.waiting.delete(socket));
    this.waiting.add(socket);
  }

  /** A connection closed: the longest-waiting socket, if any, is served now. */
  private admitWaiting(): void {
    const max = this.broker.resources.maxConnections;
    for (const socket of this.waiting) {
      if (max > 0 && this.connections.size >= max) return;
      this.waiting.delete(socket);
      if (socket.destroyed) continue;
      this.serve(socket);
      socket.resume();
    }
    this.limitLogged = false;
  }

  /** Stops accepting, tells every client the broker is going away, and waits (briefly) for them. */
  async close(reason = 'broker shutdown'): Promise<void> {
    const stopped = Promise.all(this.listeners.map((l) => new Promise<void>((resolve) => l.close(() => resolve()))));
    for (const socket of this.waiting) socket.destroy();
    this.waiting.clear();
    for (const c of [...this.connections]) c.forceClose(reason);
    this.broker.dispatcher.run();
    const deadline = Date.now() + 2000;
    while (this.connections.size > 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
    }
    for (const c of [...this.connections]) c.destroy();
    // Sockets of connections already closed, still waiting for their client to hang up.
    for (const s of [...this.sockets]) s.destroy();
    await stopped;
  }
}
