// Small helpers of the chaos checker: free ports on a given loopback address, waiting for a port,
// bounded polling. Ports come from 26000–29999 (not the kernel's ephemeral range, where outgoing
// connections would take them back between our check and the listener's bind).

import { connect, createServer } from 'node:net';

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const taken = new Set<number>();

/** Whether port is free on every one of hosts right now. */
function freeOnAll(port: number, hosts: string[]): Promise<boolean> {
  return hosts.reduce<Promise<boolean>>(
    (acc, host) =>
      acc.then(
        (ok) =>
          ok &&
          new Promise<boolean>((resolve) => {
            const srv = createServer();
            srv.once('error', () => resolve(false));
            srv.listen(port, host, () => srv.close(() => resolve(true)));
          }),
      ),
    Promise.resolve(true),
  );
}

/** A port free a moment ago on every one of hosts (and not handed out before by this process). */
export async function freePortOn(...hosts: string[]): Promise<number> {
  for (let attempt = 0; attempt < 500; attempt++) {
    const port = 26000 + Math.floor(Math.random() * 4000);
    if (taken.has(port)) continue;
    if (await freeOnAll(port, hosts)) {
      taken.add(port);
      return port;
    }
  }
  throw new Error(`no free port in 26000-29999 on ${hosts.join(', ')}`);
}

/** Whether something accepts TCP connections on host:port. */
export function accepts(host: string, port: number, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const done = (ok: boolean): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/** Polls check until it returns a truthy value; throws after timeoutMs naming what it waited for. */
export async function waitUntil<T>(check: () => Promise<T> | T, what: string, timeoutMs: number, everyMs = 200): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let value: T | undefined;
    try {
      value = await check();
    } catch {
      value = undefined;
    }
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}
