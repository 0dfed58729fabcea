// The chaos checker's network faults (test/chaos/fault-proxy.ts) on real loopback sockets: bytes
// pass through untouched; a partition holds them (nothing crosses, not even a close) and delivers
// them in order when it heals; a new connection across a cut waits; a delay delays; the target sees
// the mapped source address; a refused target ends the client's connection.

import { connect, createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { FaultNetwork, FaultProxy } from '../chaos/fault-proxy.js';
import { freePortOn } from '../chaos/net.js';
import { QUIET_MS, sleep, waitFor } from '../support/wait.js';

const HOST = '127.0.2.201';
const CLIENT_HOST = '127.0.2.202';
const FACE_HOST = '127.0.2.203';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

interface Echo {
  port: number;
  peers: string[];
  received: Buffer[];
  server: Server;
}

/** A server that records what it receives and the peer addresses, and echoes everything back. */
async function echoServer(): Promise<Echo> {
  const port = await freePortOn(HOST);
  const e: Echo = { port, peers: [], received: [], server: createServer() };
  const sockets = new Set<Socket>();
  e.server.on('connection', (s) => {
    sockets.add(s);
    e.peers.push(s.remoteAddress ?? '');
    s.on('data', (c: Buffer) => {
      e.received.push(c);
      s.write(c);
    });
    s.on('end', () => s.end());
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
  });
  await new Promise<void>((r) => e.server.listen(port, HOST, r));
  cleanups.push(
    () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        e.server.close(() => r());
      }),
  );
  return e;
}

async function proxyTo(targetPort: number, network: FaultNetwork): Promise<FaultProxy> {
  const listenPort = await freePortOn(HOST);
  const proxy = new FaultProxy({
    listenHost: HOST,
    listenPort,
    targetHost: HOST,
    targetPort,
    to: 'server',
    from: (address) => (address === CLIENT_HOST ? 'a' : 'other'),
    localAddress: (address) => (address === CLIENT_HOST ? FACE_HOST : undefined),
    network,
  });
  await proxy.listen();
  cleanups.push(() => proxy.close());
  return proxy;
}

interface Client {
  socket: Socket;
  received: () => string;
  ended: () => boolean;
}

function client(port: number): Promise<Client> {
  const socket = connect({ host: HOST, port, localAddress: CLIENT_HOST });
  const chunks: Buffer[] = [];
  let ended = false;
  socket.on('data', (c: Buffer) => chunks.push(c));
  socket.on('end', () => (ended = true));
  socket.on('close', () => (ended = true));
  socket.on('error', () => {});
  cleanups.push(() => void socket.destroy());
  return new Promise((resolve, reject) => {
    socket.once('connect', () => resolve({ socket, received: () => Buffer.concat(chunks).toString(), ended: () => ended }));
    socket.once('error', reject);
  });
}

describe('fault proxy', () => {
  it('passes bytes both ways and shows the target the mapped source address', async () => {
    const echo = await echoServer();
    const network = new FaultNetwork();
    const proxy = await proxyTo(echo.port, network);
    const c = await client(proxy.options.listenPort);
    c.socket.write('hello');
    await waitFor(() => c.received() === 'hello', 'the echo');
    expect(echo.peers).toEqual([FACE_HOST]);
    c.socket.end();
    await waitFor(() => c.ended(), 'the close to come back through the proxy');
  });

  it('a partition holds bytes and closes in both directions, and delivers them in order on heal', async () => {
    const echo = await echoServer();
    const network = new FaultNetwork();
    const proxy = await proxyTo(echo.port, network);
    const c = await client(proxy.options.listenPort);
    c.socket.write('before ');
    await waitFor(() => c.received() === 'before ', 'the first echo');
    network.partition([['a'], ['server']]);
    expect(network.blocked('server', 'a')).toBe(true);
    expect(network.describe()).toBe('cut a|server');
    c.socket.write('during-1 ');
    c.socket.write('during-2');
    c.socket.end();
    await sleep(QUIET_MS);
    expect(Buffer.concat(echo.received).toString()).toBe('before ');
    expect(c.ended()).toBe(false);
    network.heal();
    expect(network.describe()).toBe('');
    await waitFor(() => c.received() === 'before during-1 during-2', 'the held bytes, echoed');
    await waitFor(() => c.ended(), 'the held close');
  });

  it('a new connection across a cut reaches the target only after the heal; other sources pass', async () => {
    const echo = await echoServer();
    const network = new FaultNetwork();
    const proxy = await proxyTo(echo.port, network);
    network.partition([['a'], ['server']]);
    const c = await client(proxy.options.listenPort);
    c.socket.write('x');
    await sleep(QUIET_MS);
    expect(echo.peers).toEqual([]);
    // A connection from another source is not cut.
    const other = connect({ host: HOST, port: proxy.options.listenPort });
    other.on('error', () => {});
    cleanups.push(() => void other.destroy());
    await waitFor(() => echo.peers.length === 1, 'the other source to get through');
    expect(echo.peers).toEqual(['127.0.0.1']);
    network.heal();
    await waitFor(() => c.received() === 'x', 'the echo after the heal');
    expect(echo.peers).toEqual(['127.0.0.1', FACE_HOST]);
  });

  it('a delay delays every chunk and keeps their order', async () => {
    const echo = await echoServer();
    const network = new FaultNetwork();
    const proxy = await proxyTo(echo.port, network);
    const c = await client(proxy.options.listenPort);
    network.delay('a', ['server'], 150);
    expect(network.delayMs('server', 'a')).toBe(150);
    const start = Date.now();
    c.socket.write('1');
    c.socket.write('2');
    c.socket.write('3');
    await waitFor(() => c.received() === '123', 'the delayed echo');
    // 150 ms each way.
    expect(Date.now() - start).toBeGreaterThanOrEqual(290);
  });

  it('a refused target ends the client connection', async () => {
    const network = new FaultNetwork();
    const closedPort = await freePortOn(HOST);
    const proxy = await proxyTo(closedPort, network);
    const c = await client(proxy.options.listenPort);
    await waitFor(() => c.ended(), 'the client connection to end');
  });
});
