// The AMQPS listener: a TLS server whose established sockets become ordinary Connections (a
// TLSSocket reads and writes like a TCP socket, so the frame parser takes its chunks as they come,
// with no extra copy). Everything that goes wrong before that — a client that does not speak TLS,
// a handshake that stalls, a client certificate that is missing, expired or from an unknown CA —
// closes that one socket with one log line saying why; nothing else is affected.

import { createServer as createTlsServer, type Server as TlsServer, type TLSSocket } from 'node:tls';
import type { Socket } from 'node:net';
import type { Broker } from '../broker/broker.js';
import { describeHandshakeError, type TlsSettings } from '../tls/tls-settings.js';

function peerOf(socket: Socket): string {
  return `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`;
}

export function createAmqpsListener(tls: TlsSettings, broker: Broker, accept: (socket: TLSSocket) => void): TlsServer {
  const server = createTlsServer({ ...tls.serverOptions(), noDelay: true });
  tls.attach(server);
  server.on('secureConnection', (socket: TLSSocket) => {
    const refusal = tls.checkPeer(socket);
    if (refusal !== null) {
      broker.log.warn({ peer: peerOf(socket), reason: refusal }, 'TLS client certificate refused; closing connection');
      socket.destroy();
      return;
    }
    accept(socket);
  });
  server.on('tlsClientError', (err: NodeJS.ErrnoException, socket: TLSSocket) => {
    const reason = describeHandshakeError(err, broker.config.handshakeTimeoutMs);
    // A client that connects and goes away (a port check) is routine; everything else is worth a warning.
    const level = err.code === 'ECONNRESET' ? 'info' : 'warn';
    broker.log[level]({ peer: peerOf(socket), reason, code: err.code }, 'TLS handshake failed; closing connection');
    socket.destroy();
  });
  return server;
}
