// `npm run chaos` as CI runs it (a few rounds, bounded in time): the checker passes against a
// broker that keeps its promises, fails (exit 1, lost > 0) against one that loses confirmed messages
// on purpose, and stops everything it started — by pid — when interrupted with Ctrl-C.
// The checker runs from the build (dist/test/chaos/run.js), as `npm run chaos` runs it.

import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { waitFor } from '../support/wait.js';

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const CHAOS = join(repoRoot, 'dist', 'test', 'chaos', 'run.js');
const FINAL_LINE = /^rounds (\d+), confirmed (\d+), lost (\d+), unexpected (\d+), duplicated (\d+)$/;

const started = new Set<ChildProcess>();
const runFolders = new Set<string>();
afterAll(() => {
  for (const c of started) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  // A failing or interrupted run keeps its folder for a human; the tests remove theirs.
  for (const dir of runFolders) rmSync(dir, { recursive: true, force: true });
});

interface Run {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

function chaos(args: string[]): Run {
  if (!existsSync(CHAOS)) throw new Error(`${CHAOS} is missing: run npm run build first`);
  const child = spawn(process.execPath, [CHAOS, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  started.add(child);
  let out = '';
  child.stdout!.on('data', (c: Buffer) => {
    out += c.toString();
    const folder = /logs in (\S+)\/logs/.exec(out);
    if (folder !== null) runFolders.add(folder[1]!);
  });
  child.stderr!.on('data', (c: Buffer) => (out += c.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, output: () => out, exited };
}

function lastLine(text: string): string {
  return text.trimEnd().split('\n').pop() ?? '';
}

/** Pids of the processes whose parent is pid (from /proc). */
function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // pid (comm) state ppid …; comm may hold spaces and parentheses: split after the last ')'.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) out.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('npm run chaos (single node: proving the checker)', () => {
  it('3 rounds of kill -9, SIGSTOP and restart: nothing lost, nothing unexpected, exit 0', { timeout: 120_000 }, async () => {
    const run = chaos(['--single', '--rounds', '3', '--seed', '7']);
    const code = await run.exited;
    const out = run.output();
    expect(code, out).toBe(0);
    const m = FINAL_LINE.exec(lastLine(out));
    expect(m, out).not.toBeNull();
    const [, rounds, confirmed, lost, unexpected] = m!.map(Number);
    expect(rounds).toBe(3);
    // The 200 ballast messages and the publishers' confirmed ones.
    expect(confirmed).toBeGreaterThan(200);
    expect(lost).toBe(0);
    expect(unexpected).toBe(0);
    expect(out).toMatch(/^round 3\/3 /m);
  });

  it('a broker that loses its data: the checker reports the loss and exits 1', { timeout: 120_000 }, async () => {
    const run = chaos(['--single', '--rounds', '1', '--faults', 'lose-data']);
    const code = await run.exited;
    const out = run.output();
    expect(code, out).toBe(1);
    const m = FINAL_LINE.exec(lastLine(out));
    expect(m, out).not.toBeNull();
    // At least the ballast, confirmed and still queued when the data went.
    expect(Number(m![3])).toBeGreaterThanOrEqual(200);
    expect(out).toMatch(/LOST \(confirmed, never received\), first ones: 1 \(round 0, set-up\)/);
    expect(out).toMatch(/MISSING at the end \(declared durable, now gone\): chaos-ballast/);
  });

  it('Ctrl-C (SIGINT): every process it started is stopped, exit 130', { timeout: 120_000 }, async () => {
    const run = chaos(['--single', '--rounds', '50']);
    await waitFor(() => /^round 1\/50 /m.test(run.output()), 'the first round', 90_000);
    const children = childrenOf(run.child.pid!);
    expect(children.length).toBeGreaterThan(0);
    run.child.kill('SIGINT');
    expect(await run.exited).toBe(130);
    for (const pid of children) expect(alive(pid), `pid ${pid}`).toBe(false);
    expect(run.output()).toMatch(/SIGINT — stopping everything it started/);
  });
});
