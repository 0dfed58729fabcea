// Child processes and ports of the multi-process tests (etcd members, Warren nodes of a cluster):
// a free port on a given loopback address, and a graceful stop by pid that cannot hang.

import type { ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';

/**
 * A port in 23000–23999 free on this address a moment ago. Outside the kernel's ephemeral range,
 * so outgoing connections do not take it back between this check and the listener's bind.
 */
export async function freePortOn(host: string): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = 23000 + Math.floor(Math.random() * 1000);
    const ok = await new Promise<boolean>((resolve) => {
      const srv = createServer();
      srv.once('error', () => resolve(false));
      srv.listen(port, host, () => srv.close(() => resolve(true)));
    });
    if (ok) return port;
  }
  throw new Error(`no free port in 23000-23999 on ${host}`);
}

/** SIGTERM (after SIGCONT, in case it is paused), SIGKILL after killAfterMs; resolves once it has exited. */
export async function stopChild(child: ChildProcess, killAfterMs = 10_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  await new Promise<void>((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), killAfterMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGCONT');
    child.kill('SIGTERM');
  });
}
