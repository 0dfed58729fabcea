// One broker per data folder: a second bin/warren on a folder a running Warren uses prints one line
// naming the folder and the running broker's pid and exits non-zero, while the first goes on
// serving; a lock left behind by a killed broker does not stop the next start; a clean stop
// removes it; an embedded broker is refused the same way.

import { spawn } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import amqp from 'amqplib';
import { afterAll, describe, expect, it } from 'vitest';
import { DataFolderLocked, LOCK_FILE } from '../../src/data-lock.js';
import { startTestBroker, tempDir } from '../support/broker.js';
import { ChildBroker, freePort, WARREN_BIN } from '../support/child-broker.js';

const folders: string[] = [];
const live = new Set<ChildBroker>();

afterAll(async () => {
  for (const b of live) await b.kill();
  for (const d of folders) rmSync(d, { recursive: true, force: true });
});

function folder(): string {
  const d = tempDir('warren-lock-');
  folders.push(d);
  return d;
}

/** Runs bin/warren to its exit (it must not start); returns exit code and output. */
async function runToExit(dataDir: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const port = await freePort();
  const child = spawn(process.execPath, [WARREN_BIN, '--port', String(port), '--management-port', '0', '--prometheus-port', '0', '--data-dir', dataDir, '--log-level', 'warn'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  clearTimeout(timer);
  return { code, stdout, stderr };
}

async function serves(broker: ChildBroker): Promise<void> {
  const conn = await amqp.connect(broker.url);
  const ch = await conn.createChannel();
  await ch.checkQueue('kept');
  await conn.close();
}

describe('data folder lock', () => {
  it('a second bin/warren on the same folder says who holds it and exits 1; the first goes on', async () => {
    const dir = folder();
    const first = await ChildBroker.start(dir);
    live.add(first);
    const conn = await amqp.connect(first.url);
    await (await conn.createChannel()).assertQueue('kept', { durable: true });
    await conn.close();

    const second = await runToExit(dir);
    expect(second.code).toBe(1);
    expect(second.stdout).toBe('');
    expect(second.stderr).toBe(
      `warren: the data folder ${dir} is in use by another running Warren (pid ${first.process.pid}); stop that broker first or choose another --data-dir\n`,
    );
    await serves(first);
    expect(first.process.exitCode).toBeNull();

    // A clean stop gives the folder back.
    expect(await first.stop()).toBe(0);
    live.delete(first);
    expect(existsSync(join(dir, LOCK_FILE))).toBe(false);
  });

  it('a lock left by a broker killed with SIGKILL does not stop the next start', async () => {
    const dir = folder();
    const first = await ChildBroker.start(dir);
    live.add(first);
    const conn = await amqp.connect(first.url);
    conn.on('error', () => {});
    await (await conn.createChannel()).assertQueue('kept', { durable: true });
    await first.kill();
    live.delete(first);
    expect(existsSync(join(dir, LOCK_FILE))).toBe(true);
    const again = await ChildBroker.start(dir);
    live.add(again);
    await serves(again);
    await again.stop();
    live.delete(again);
  });

  it('an embedded broker is refused a folder this process already serves', async () => {
    const dir = folder();
    const first = await startTestBroker({ dataDir: dir });
    try {
      const err = await startTestBroker({ dataDir: dir }).then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(DataFolderLocked);
      expect((err as DataFolderLocked).ownerPid).toBe(process.pid);
    } finally {
      await first.close();
    }
    // Closed: the folder can be used again.
    const second = await startTestBroker({ dataDir: dir });
    await second.close();
  });
});
