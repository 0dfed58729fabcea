// Runs bin/warren as a child process (the way users run it) on a free loopback port with a given
// data folder, for restart and crash tests. Stops it with SIGTERM (graceful) or SIGKILL (crash).

import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const WARREN_BIN = join(repoRoot, 'bin', 'warren');

/** A port that was free a moment ago. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

export class ChildBroker {
  private constructor(
    readonly process: ChildProcess,
    readonly port: number,
    readonly dataDir: string,
    readonly output: string[],
  ) {}

  get url(): string {
    return `amqp://guest:guest@127.0.0.1:${this.port}`;
  }

  /**
   * Starts bin/warren and waits until it prints that it listens (or fails). Without a port it takes
   * a free one; as another process may take that port before Warren binds it, a start refused for
   * "already in use" is tried again on another free port (a few times).
   */
  static async start(dataDir: string, port?: number, extraArgs: string[] = []): Promise<ChildBroker> {
    if (port !== undefined) return ChildBroker.startOn(dataDir, port, extraArgs);
    for (let attempt = 1; ; attempt++) {
      try {
        return await ChildBroker.startOn(dataDir, await freePort(), extraArgs);
      } catch (err) {
        if (attempt >= 5 || !(err instanceof Error) || !err.message.includes('is already in use')) throw err;
      }
    }
  }

  private static async startOn(dataDir: string, p: number, extraArgs: string[]): Promise<ChildBroker> {
    // The management API and the Prometheus listeners (HTTPS ones included: their defaults are
    // fixed ports) are off unless a test passes their port flag.
    const off = ['--prometheus-port', '--management-tls-port', '--prometheus-tls-port'].flatMap((flag) => (extraArgs.includes(flag) ? [] : [flag, '0']));
    const args = [WARREN_BIN, '--port', String(p), '--data-dir', dataDir, '--log-level', 'warn', '--management-port', '0', ...off, ...extraArgs];
    const child = spawn(process.execPath, args, {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const output: string[] = [];
    const broker = new ChildBroker(child, p, dataDir, output);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`warren did not start in 15 s:\n${output.join('')}`)), 15_000);
      const onData = (chunk: Buffer): void => {
        output.push(chunk.toString());
        if (/listening on amqps?:\/\//.test(output.join(''))) {
          clearTimeout(timer);
          resolve();
        }
      };
      child.stdout!.on('data', onData);
      child.stderr!.on('data', (c: Buffer) => output.push(c.toString()));
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`warren exited with ${code} before listening:\n${output.join('')}`));
      });
    });
    return broker;
  }

  /** SIGTERM and wait for a clean exit; resolves with the exit code. */
  stop(): Promise<number | null> {
    return this.signal('SIGTERM');
  }

  /** SIGKILL: a crash at this very moment. */
  kill(): Promise<number | null> {
    return this.signal('SIGKILL');
  }

  private signal(sig: NodeJS.Signals): Promise<number | null> {
    if (this.process.exitCode !== null || this.process.signalCode !== null) return Promise.resolve(this.process.exitCode);
    return new Promise((resolve) => {
      const timer = setTimeout(() => this.process.kill('SIGKILL'), 10_000);
      this.process.once('exit', (code) => {
        clearTimeout(timer);
        resolve(code);
      });
      this.process.kill(sig);
    });
  }
}
