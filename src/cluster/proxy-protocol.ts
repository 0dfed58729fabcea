// The leader's side of follower proxying: a listener (AMQP, AMQPS or HTTP — any net.Server) that
// accepts a PROXY protocol v1 line at the start of connections from cluster nodes, takes the client
// address from it (socket.remoteAddress/remotePort then report the real client, for logs, the
// management API and loopback-only users), and hands the rest of the stream to the listener's own
// connection handling. A PROXY line from anyone else is not trusted: the connection is closed.

import type { Server, Socket } from 'node:net';
import type { Logger } from '../log.js';

/** A v1 line is at most 107 bytes, CRLF included. */
const MAX_LINE = 107;
const SIGNATURE = Buffer.from('PROXY ');

export interface ProxiedPeer {
  address: string;
  port: number;
}

/** Parses "PROXY TCP4|TCP6|UNKNOWN src dst sport dport"; null when malformed. */
export function parseProxyLine(line: string): ProxiedPeer | 'unknown' | null {
  const parts = line.split(' ');
  if (parts[0] !== 'PROXY') return null;
  if (parts[1] === 'UNKNOWN') return 'unknown';
  if ((parts[1] !== 'TCP4' && parts[1] !== 'TCP6') || parts.length !== 6) return null;
  const port = Number(parts[4]);
  if (!Number.isInteger(port) || port < 0 || port > 65535) return null;
  return { address: parts[2]!, port };
}

/**
 * Wraps the listener's connection handling: connections from a trusted address may begin with a
 * PROXY line; everything else goes to the listener untouched (byte for byte).
 */
export function acceptProxyProtocol(server: Server, trusted: (address: string) => boolean, log: Logger): void {
  const handlers = server.listeners('connection') as ((socket: Socket) => void)[];
  server.removeAllListeners('connection');
  const handOver = (socket: Socket, rest: Buffer | null): void => {
    if (rest !== null && rest.length > 0) socket.unshift(rest);
    for (const h of handlers) h.call(server, socket);
    socket.resume();
  };
  server.on('connection', (socket: Socket) => {
    const from = socket.remoteAddress ?? '';
    if (!trusted(from)) {
      for (const h of handlers) h.call(server, socket);
      return;
    }
    let buffered: Buffer = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
      const prefix = Math.min(buffered.length, SIGNATURE.length);
      if (!buffered.subarray(0, prefix).equals(SIGNATURE.subarray(0, prefix))) {
        // Not a PROXY line: a direct client on a node's address.
        socket.off('data', onData);
        socket.pause();
        handOver(socket, buffered);
        return;
      }
      const end = buffered.indexOf('\r\n');
      if (end < 0) {
        if (buffered.length > MAX_LINE) {
          log.warn({ peer: from }, 'PROXY header too long: connection closed');
          socket.destroy();
        }
        return;
      }
      socket.off('data', onData);
      socket.pause();
      const peer = parseProxyLine(buffered.toString('latin1', 0, end));
      if (peer === null) {
        log.warn({ peer: from }, 'malformed PROXY header: connection closed');
        socket.destroy();
        return;
      }
      if (peer !== 'unknown') {
        Object.defineProperty(socket, 'remoteAddress', { value: peer.address, configurable: true });
        Object.defineProperty(socket, 'remotePort', { value: peer.port, configurable: true });
        Object.defineProperty(socket, 'remoteFamily', { value: peer.address.includes(':') ? 'IPv6' : 'IPv4', configurable: true });
      }
      handOver(socket, buffered.subarray(end + 2));
    };
    socket.on('data', onData);
  });
}
