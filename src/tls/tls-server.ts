// What every Warren TLS listener (AMQPS; HTTPS management and metrics through src/http/listener.ts)
// does around Node's TLS server: takes its certificates from the shared TlsSettings (so SIGHUP
// reaches it), refuses a client certificate that is missing, expired or from an unknown CA right
// after the handshake, and logs one line for each client turned away — including a client that
// does not speak TLS or lets the handshake stall. Nothing here knows which protocol runs on top.

import type { Socket } from 'node:net';
import type { Server as TlsServer, TLSSocket } from 'node:tls';
import type { Logger } from '../log.js';
import { describeHandshakeError, type TlsSettings } from './tls-settings.js';

function peerOf(socket: Socket): string {
  return `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`;
}

/**
 * Wires a TLS server to Warren's settings and logging. `listener` names it in log lines ("amqps",
 * "management https"). A refused socket is destroyed before any later 'secureConnection' listener
 * runs (those should skip destroyed sockets).
 */
export function guardTlsServer(server: TlsServer, tls: TlsSettings, log: Logger, listener: string): void {
  tls.attach(server);
  server.prependListener('secureConnection', (socket: TLSSocket) => {
    let refusal: string | null;
    try {
      refusal = tls.checkPeer(socket);
    } catch (err) {
      refusal = `the client certificate could not be checked (${(err as Error).message})`;
    }
    if (refusal === null) return;
    log.warn({ listener, peer: peerOf(socket), reason: refusal }, 'TLS client certificate refused; closing connection');
    socket.destroy();
  });
  server.on('tlsClientError', (err: NodeJS.ErrnoException, socket: TLSSocket) => {
    const reason = describeHandshakeError(err, tls.handshakeTimeoutMs);
    // A client that connects and goes away (a port check) is routine; everything else is worth a warning.
    const level = err.code === 'ECONNRESET' ? 'info' : 'warn';
    log[level]({ listener, peer: peerOf(socket), reason, code: err.code }, 'TLS handshake failed; closing connection');
    socket.destroy();
  });
}
