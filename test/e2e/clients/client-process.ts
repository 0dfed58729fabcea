// Runs another language's RabbitMQ client (a script of this folder, or a client's own test suite)
// as a child process against a broker, the way its users run it. Two shapes:
// - runToEnd: run, wait for the exit, return stdout/stderr (a script printing one JSON line);
// - LineProcess: a script that reports progress one line at a time (READY, BLOCKED …), which the
//   test reads while it changes the broker's state (raises and clears an alarm).
// A missing interpreter or package fails with the Debian package to install (.ci/run installs them).

import { execFile, spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync } from 'node:fs';
import { waitFor } from '../../support/wait.js';

export interface Finished {
  code: number;
  stdout: string;
  stderr: string;
}

/** Fails with a readable hint when the program a test runs is not installed. */
export function requireInstalled(path: string, debianPackages: string): void {
  if (!existsSync(path)) throw new Error(`${path} not found: apt-get install ${debianPackages} (.ci/run does)`);
}

export function runToEnd(
  command: string,
  args: string[],
  options: { cwd?: string; timeoutMs: number; env?: Record<string, string> },
): Promise<Finished> {
  return new Promise((resolve) => {
    execFile(
      command,
      args,
      {
        cwd: options.cwd,
        timeout: options.timeoutMs,
        maxBuffer: 64 * 1024 * 1024,
        env: { ...process.env, ...options.env },
      },
      (err, stdout, stderr) => {
        const code = err === null ? 0 : typeof err.code === 'number' ? err.code : -1;
        resolve({ code, stdout: String(stdout), stderr: String(stderr) });
      },
    );
  });
}

/** The last line of stdout, parsed as JSON; the error says what the script printed otherwise. */
export function lastJsonLine(run: Finished): unknown {
  const line = run.stdout.trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(line);
  } catch {
    throw new Error(`client script exited ${run.code} without a JSON line.\nstdout: ${run.stdout.slice(-3000)}\nstderr: ${run.stderr.slice(-3000)}`);
  }
}

export class LineProcess {
  readonly lines: string[] = [];
  stderr = '';
  private partial = '';
  private readonly child: ChildProcessWithoutNullStreams;
  readonly exited: Promise<number | null>;

  constructor(command: string, args: string[], options: { cwd?: string; env?: Record<string, string> } = {}) {
    this.child = spawn(command, args, { cwd: options.cwd, env: { ...process.env, ...options.env } });
    this.child.stdout.on('data', (c: Buffer) => {
      const parts = (this.partial + c.toString()).split('\n');
      this.partial = parts.pop()!;
      this.lines.push(...parts.map((l) => l.trimEnd()).filter((l) => l !== ''));
    });
    this.child.stderr.on('data', (c: Buffer) => (this.stderr += c.toString()));
    this.exited = new Promise((resolve) => this.child.on('exit', resolve));
  }

  get exitCode(): number | null {
    return this.child.exitCode;
  }

  /** Waits until a line equal to `line` was printed (or the process exited: then it fails). */
  async waitForLine(line: string, timeoutMs = 45_000): Promise<void> {
    try {
      await waitFor(() => this.lines.includes(line) || this.child.exitCode !== null, `the client to print ${line}`, timeoutMs);
    } catch {
      throw new Error(`timed out waiting for the client to print ${line}; it printed ${JSON.stringify(this.lines)}\n${this.stderr.slice(-3000)}`);
    }
    if (!this.lines.includes(line)) {
      throw new Error(`client exited ${this.child.exitCode} before printing ${line}: ${JSON.stringify(this.lines)}\n${this.stderr.slice(-3000)}`);
    }
  }

  /** Ends the process if it is still running (by its own pid). */
  kill(): void {
    if (this.child.exitCode === null) this.child.kill('SIGKILL');
  }
}
