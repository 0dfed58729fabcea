// Child processes of the chaos checker (etcd members, Warren nodes): started with their output in
// a log file, signalled by pid, and all ended by pid on every way out of the checker — normal end,
// an exception, SIGINT (Ctrl-C), SIGTERM, SIGHUP. A process paused with SIGSTOP gets SIGCONT before
// it is asked to stop, or it would never see the signal.

import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';

/** Lines kept in memory per process (for waiting on a log line and for error messages). */
const TAIL_LINES = 200;

export class Proc {
  readonly pid: number;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  paused = false;
  private readonly tail: string[] = [];
  private readonly lineWatchers = new Set<(line: string) => void>();
  private partial = '';

  constructor(
    readonly name: string,
    readonly child: ChildProcess,
    private readonly logFile: WriteStream,
  ) {
    if (child.pid === undefined) throw new Error(`${name} could not be started`);
    this.pid = child.pid;
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.paused = false;
        resolve({ code, signal });
      });
    });
    const onData = (chunk: Buffer): void => {
      logFile.write(chunk);
      const text = this.partial + chunk.toString();
      const lines = text.split('\n');
      this.partial = lines.pop() ?? '';
      for (const line of lines) this.onLine(line);
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  private onLine(line: string): void {
    this.tail.push(line);
    if (this.tail.length > TAIL_LINES) this.tail.shift();
    for (const w of this.lineWatchers) w(line);
  }

  /** The last lines the process printed (for error messages). */
  lastLines(n = 20): string {
    return this.tail.slice(-n).join('\n');
  }

  /** Calls fn for every line printed from now on; returns the unsubscribe function. */
  watchLines(fn: (line: string) => void): () => void {
    this.lineWatchers.add(fn);
    return () => this.lineWatchers.delete(fn);
  }

  /** Whether a line matching re is among the last lines printed. */
  seen(re: RegExp): boolean {
    return this.tail.some((line) => re.test(line));
  }

  /**
   * Resolves when a line matching re is printed (or was, among the last lines, when includeTail);
   * rejects when the process exits first or after timeoutMs.
   */
  waitForLine(re: RegExp, timeoutMs: number, includeTail = false): Promise<string> {
    const already = includeTail ? this.tail.find((line) => re.test(line)) : undefined;
    if (already !== undefined) return Promise.resolve(already);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        stop();
        reject(new Error(`${this.name} did not print ${re} within ${timeoutMs} ms; last lines:\n${this.lastLines()}`));
      }, timeoutMs);
      const unwatch = this.watchLines((line) => {
        if (re.test(line)) {
          stop();
          resolve(line);
        }
      });
      const onExit = (code: number | null, signal: NodeJS.Signals | null): void => {
        stop();
        reject(new Error(`${this.name} exited (${signal ?? code}) before printing ${re}; last lines:\n${this.lastLines()}`));
      };
      this.child.once('exit', onExit);
      const stop = (): void => {
        clearTimeout(timer);
        unwatch();
        this.child.off('exit', onExit);
      };
    });
  }

  /** Sends a signal by pid (a no-op once the process is gone). */
  signal(sig: NodeJS.Signals): void {
    if (!this.running) return;
    try {
      process.kill(this.pid, sig);
      if (sig === 'SIGSTOP') this.paused = true;
      if (sig === 'SIGCONT') this.paused = false;
    } catch {
      // already gone
    }
  }

  /** SIGKILL and wait for the exit. */
  async kill(): Promise<void> {
    if (!this.running) return;
    this.signal('SIGKILL');
    await this.exited;
  }

  /** SIGTERM (after SIGCONT if paused), SIGKILL after graceMs; resolves when it has exited. */
  async stop(graceMs = 15_000): Promise<void> {
    if (!this.running) return;
    if (this.paused) this.signal('SIGCONT');
    this.signal('SIGTERM');
    const timer = setTimeout(() => this.signal('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(timer);
  }

  closeLog(): void {
    this.logFile.end();
  }
}

export class Supervisor {
  private readonly live = new Set<Proc>();
  private cleanups: (() => Promise<void> | void)[] = [];
  private finalizers: (() => void)[] = [];
  private stopped = false;
  private signalled = false;

  constructor() {
    const onSignal = (sig: NodeJS.Signals): void => {
      if (this.signalled) return;
      this.signalled = true;
      process.stderr.write(`\nchaos: ${sig} — stopping everything it started\n`);
      void this.stopAll().finally(() => process.exit(130));
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    process.on('SIGHUP', onSignal);
    // The last resort: whatever is still running when the process exits is killed, synchronously.
    process.on('exit', () => {
      for (const p of this.live) {
        try {
          process.kill(p.pid, 'SIGKILL');
        } catch {
          // gone
        }
      }
    });
  }

  /** Starts a process with stdout and stderr appended to logPath. */
  spawn(name: string, command: string, args: string[], logPath: string, env: NodeJS.ProcessEnv = process.env): Proc {
    if (this.stopped) throw new Error('the checker is stopping; not starting anything');
    const log = createWriteStream(logPath, { flags: 'a' });
    log.write(`--- ${new Date().toISOString()} ${command} ${args.join(' ')}\n`);
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], env });
    const proc = new Proc(name, child, log);
    this.live.add(proc);
    void proc.exited.then(({ code, signal }) => {
      this.live.delete(proc);
      log.end(`--- exited ${signal ?? code}\n`);
    });
    return proc;
  }

  /** Runs fn during stopAll before processes are ended (closing clients, proxies). */
  onStop(fn: () => Promise<void> | void): void {
    this.cleanups.push(fn);
  }

  /** Runs fn during stopAll after every process has ended (removing data folders). */
  afterStop(fn: () => void): void {
    this.finalizers.push(fn);
  }

  /** Ends everything started (by pid), cleanups first; safe to call more than once. */
  async stopAll(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    const cleanups = this.cleanups.reverse();
    this.cleanups = [];
    for (const fn of cleanups) {
      try {
        await fn();
      } catch (err) {
        process.stderr.write(`chaos: cleanup failed: ${(err as Error).message}\n`);
      }
    }
    await Promise.all([...this.live].map((p) => p.stop(5000)));
    for (const fn of this.finalizers.reverse()) {
      try {
        fn();
      } catch (err) {
        process.stderr.write(`chaos: cleanup failed: ${(err as Error).message}\n`);
      }
    }
    this.finalizers = [];
  }
}
