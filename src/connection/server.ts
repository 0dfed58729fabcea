// The AMQP listener: accepts sockets, creates a Connection for each, keeps the registry of live
// connections, and closes them all on shutdown with connection.close 320 CONNECTION_FORCED.

import { createServer, type Server, type Socket } from 'node:net';
import type { Broker } from '../broker/broker.js';
import { Connection } from './connection.js';

export class AmqpServer {
  readonly connections = new Set<Connection>();
  private readonly server: Server;

  constructor(private readonly broker: Broker) {
    this.server = createServer({ noDelay: true }, (socket) => this.accept(socket));
  }

  /** Starts listening; rejects with a readable error if the address is taken. */
  listen(host: string, port: number): Promise<number> {
    return new Promise((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException): void => {
        this.server.off('listening', onListening);
        if (err.code === 'EADDRINUSE') {
          reject(new Error(`port ${port} on ${host} is already in use: stop the other process or choose another --port`));
        } else if (err.code === 'EADDRNOTAVAIL') {
          reject(new Error(`cannot listen on ${host}: no such local address (check --bind)`));
        } else if (err.code === 'EACCES') {
          reject(new Error(`not allowed to listen on ${host}:${port}: choose a port above 1023 or run with the needed rights`));
        } else reject(err);
      };
      const onListening = (): void => {
        this.server.off('error', onError);
        this.server.on('error', (err) => this.broker.log.error({ err }, 'listener error'));
        const addr = this.server.address();
        resolve(typeof addr === 'object' && addr !== null ? addr.port : port);
      };
      this.server.once('error', onError);
      this.server.once('listening', onListening);
      this.server.listen({ host, port, backlog: 1024 });
    });
  }

  private accept(socket: Socket): void {
    const connection = new Connection(this.broker, socket, (c) => {
      this.connections.delete(c);
      this.broker.connections.delete(c);
    });
    this.connections.add(connection);
    this.broker.connections.add(connection);
  }

  /** Stops accepting, tells every client the broker is going away, and waits (briefly) for them. */
  async close(reason = 'broker shutdown'): Promise<void> {
    const stopped = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const c of [...this.connections]) c.forceClose(reason);
    this.broker.dispatcher.run();
    const deadline = Date.now() + 2000;
    while (this.connections.size > 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
    }
    for (const c of [...this.connections]) c.destroy();
    await stopped;
  }
}
