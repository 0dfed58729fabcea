// Starts a real Warren broker in-process on a loopback port with a fresh temporary data folder.
// Tests talk to it with real clients; nothing under test is mocked.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startBroker, type RunningBroker, type StartOptions } from '../../src/index.js';

export interface TestBroker extends RunningBroker {
  readonly url: string;
  readonly dataDir: string;
  /** close the broker and remove its data folder */
  stop(): Promise<void>;
}

/** Folders made by tempDir in this test process, removed when it exits. */
const madeTempDirs = new Set<string>();
let removeOnExitRegistered = false;

/**
 * A fresh folder under the OS temp folder. It is removed when the test process exits (each test
 * file runs in its own process), so tests that keep a data folder across restarts need not clean
 * up, and an early failure leaves nothing behind.
 */
export function tempDir(prefix = 'warren-test-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  madeTempDirs.add(dir);
  if (!removeOnExitRegistered) {
    removeOnExitRegistered = true;
    process.once('exit', () => {
      for (const made of madeTempDirs) rmSync(made, { recursive: true, force: true });
    });
  }
  return dir;
}

export async function startTestBroker(options: StartOptions = {}): Promise<TestBroker> {
  const dataDir = options.dataDir ?? tempDir();
  const running = await startBroker({
    bind: '127.0.0.1',
    port: 0,
    // AMQPS (when a test gives a certificate) on a free port: never the fixed default 5671.
    tlsPort: 0,
    // The management API listens only when a test asks for it (with a free port).
    managementPort: 0,
    logLevel: (process.env['WARREN_TEST_LOG'] as StartOptions['logLevel']) ?? 'silent',
    ...options,
    dataDir,
  });
  return Object.assign(running, {
    url: `amqp://guest:guest@127.0.0.1:${running.port}`,
    dataDir,
    async stop() {
      await running.close();
      if (options.dataDir === undefined) rmSync(dataDir, { recursive: true, force: true });
    },
  });
}

// sleep and waitFor live in wait.ts; re-exported here for tests that import them from this file.
export { sleep, waitFor } from './wait.js';
