// The AMQPS listener: a TLS server whose established sockets become ordinary Connections (a
// TLSSocket reads and writes like a TCP socket, so the frame parser takes its chunks as they come,
// with no extra copy). Refusals and failed handshakes are handled (and logged) by guardTlsServer.

import { createServer as createTlsServer, type Server as TlsServer, type TLSSocket } from 'node:tls';
import type { Broker } from '../broker/broker.js';
import type { TlsSettings } from '../tls/tls-settings.js';
import { guardTlsServer } from '../tls/tls-server.js';

export function createAmqpsListener(tls: TlsSettings, broker: Broker, accept: (socket: TLSSocket) => void): TlsServer {
  const server = createTlsServer({ ...tls.serverOptions(), noDelay: true });
  guardTlsServer(server, tls, broker.log, 'amqps');
  server.on('secureConnection', (socket: TLSSocket) => {
    if (socket.destroyed) return;
    try {
      accept(socket);
    } catch (err) {
      // A bug in setting up one connection must not take the listener (or the process) down.
      broker.log.error({ err, listener: 'amqps' }, 'cannot set up TLS connection; closing it');
      socket.destroy();
    }
  });
  return server;
}
