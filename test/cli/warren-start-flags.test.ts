// bin/warren starts Node with the V8 flags its header comment explains (old-generation start size,
// young-generation size): run as users run it (the file itself, through its
// `#!/usr/bin/env -S node ...` line), the broker process has them, and V8 applies the young
// generation's size.

import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { freePort, WARREN_BIN } from '../support/child-broker.js';

const EXPECTED_FLAGS = ['--initial-old-space-size=64', '--max-semi-space-size=8', '--min-semi-space-size=8'];

/** The Node flags on bin/warren's first line. */
function shebangFlags(): string[] {
  const first = readFileSync(WARREN_BIN, 'utf8').split('\n', 1)[0]!;
  expect(first.startsWith('#!/usr/bin/env -S node ')).toBe(true);
  return first.slice('#!/usr/bin/env -S node '.length).trim().split(/\s+/);
}

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

describe('bin/warren start-up flags', () => {
  it('names exactly the flags it documents', () => {
    expect(shebangFlags()).toEqual(EXPECTED_FLAGS);
  });

  it('V8 takes them: the young generation starts at 8 MB per semi-space (1 MB without them)', () => {
    const script = "const s = require('v8').getHeapSpaceStatistics().find((x) => x.space_name === 'new_space'); process.stdout.write(String(s.space_size));";
    const withFlags = spawnSync(process.execPath, [...shebangFlags(), '-e', script], { encoding: 'utf8' });
    expect(withFlags.stderr).toBe('');
    expect(Number(withFlags.stdout)).toBe(8 * 1024 * 1024);
    const without = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8' });
    expect(Number(without.stdout)).toBeLessThan(8 * 1024 * 1024);
  });

  it('the broker started as `bin/warren` runs with them', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'warren-flags-'));
    cleanups.push(() => rmSync(dataDir, { recursive: true, force: true }));
    const port = await freePort();
    const child = spawn(WARREN_BIN, ['--port', String(port), '--data-dir', dataDir, '--log-level', 'warn', '--management-port', '0', '--prometheus-port', '0'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    cleanups.push(() => child.kill('SIGKILL'));
    let output = '';
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`warren did not start in 15 s:\n${output}`)), 15_000);
      child.stdout!.on('data', (c: Buffer) => {
        output += c.toString();
        if (output.includes('listening on amqp://')) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.stderr!.on('data', (c: Buffer) => (output += c.toString()));
      void exited.then((code) => {
        clearTimeout(timer);
        reject(new Error(`warren exited with ${code} before listening:\n${output}`));
      });
    });
    const argv = readFileSync(`/proc/${child.pid}/cmdline`, 'utf8').split('\0');
    const script = argv.indexOf(WARREN_BIN);
    expect(script).toBeGreaterThan(0);
    expect(argv.slice(1, script)).toEqual(EXPECTED_FLAGS);
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
  });
});
