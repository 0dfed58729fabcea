// The npm package as a user gets it: `npm pack` holds what a user needs (built code, the UI, bin,
// README, LICENSE) and nothing else; installed into an empty folder without the network (npm ci
// --offline from the npm cache, with a lock file made from the repository's), it gives a working
// `npx warren`, `npx warrenctl` and `import { startBroker } from 'warren'`.

import { execFile, spawn } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../support/broker.js';
import { freePort } from '../support/child-broker.js';
import { waitFor } from '../support/wait.js';

const run = promisify(execFile);
const repo = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const pkg = JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8'));
const work = tempDir('warren-pack-');
const app = join(work, 'app');
let tarball: string;
let files: string[];

/** A lock file for an app depending on the tarball: the runtime packages exactly as the repository locks them. */
function appLockFile(tarballName: string): object {
  const lock = JSON.parse(readFileSync(join(repo, 'package-lock.json'), 'utf8'));
  const spec = `file:../${tarballName}`;
  const packages: Record<string, unknown> = { '': { name: 'app', version: '1.0.0', dependencies: { warren: spec } } };
  for (const [path, entry] of Object.entries(lock.packages as Record<string, { dev?: boolean }>)) {
    if (path === '' || !path.startsWith('node_modules/') || entry.dev === true) continue;
    packages[path] = entry;
  }
  packages['node_modules/warren'] = {
    version: pkg.version,
    resolved: spec,
    license: pkg.license,
    dependencies: pkg.dependencies,
    bin: pkg.bin,
    engines: pkg.engines,
  };
  return { name: 'app', version: '1.0.0', lockfileVersion: 3, requires: true, packages };
}

beforeAll(async () => {
  // The code is built already (npm ci runs the build); packing must not rebuild it.
  const { stdout } = await run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', work], { cwd: repo, timeout: 120_000 });
  const [info] = JSON.parse(stdout) as { filename: string; files: { path: string }[] }[];
  tarball = info!.filename;
  files = info!.files.map((f) => f.path);
  await run('mkdir', ['-p', app]);
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true, type: 'module', dependencies: { warren: `file:../${tarball}` } }));
  writeFileSync(join(app, 'package-lock.json'), JSON.stringify(appLockFile(tarball)));
  await run('npm', ['ci', '--offline', '--no-audit', '--no-fund', '--loglevel', 'error'], { cwd: app, timeout: 180_000 });
}, 300_000);

describe('npm pack', () => {
  it('holds what a user needs and nothing else', () => {
    for (const f of ['package.json', 'README.md', 'LICENSE', 'bin/warren', 'bin/warrenctl', 'dist/src/index.js', 'dist/src/index.d.ts', 'dist/src/cli/warrenctl-main.js', 'dist/ui/index.html']) {
      expect(files, f).toContain(f);
    }
    const unwanted = files.filter((f) => /^(dist\/test|dist\/spec|\.ci|src|test|spec|ui|grafana|node_modules)\//.test(f) || f.endsWith('.map'));
    expect(unwanted).toEqual([]);
  });

  it('has a LICENSE matching package.json', () => {
    expect(pkg.license).toBe('MIT');
    expect(readFileSync(join(repo, 'LICENSE'), 'utf8')).toMatch(/^MIT License\n/);
  });
});

describe('installed into an empty folder, offline', () => {
  it('npx warren --help and npx warrenctl help work', async () => {
    const warren = await run('npx', ['--offline', 'warren', '--help'], { cwd: app, timeout: 60_000 });
    expect(warren.stdout).toMatch(/^Usage: warren \[options\]/);
    const ctl = await run('npx', ['--offline', 'warrenctl', 'help'], { cwd: app, timeout: 60_000 });
    expect(ctl.stdout).toMatch(/^Usage: warrenctl /);
  });

  it('npx warren runs a broker that npx warrenctl manages', async () => {
    const [amqpPort, httpPort] = [await freePort(), await freePort()];
    const child = spawn('npx', ['--offline', 'warren', '--port', String(amqpPort), '--management-port', String(httpPort), '--prometheus-port', '0', '--data-dir', join(work, 'data'), '--log-level', 'warn'], {
      cwd: app,
      stdio: ['ignore', 'pipe', 'pipe'],
      // its own process group: npx runs warren as a child, and both are stopped together below
      detached: true,
    });
    let output = '';
    child.stdout!.on('data', (c: Buffer) => (output += c.toString()));
    child.stderr!.on('data', (c: Buffer) => (output += c.toString()));
    try {
      await waitFor(() => output.includes('management API on'), `warren to start (${output})`, 30_000);
      const env = { ...process.env, WARREN_MANAGEMENT_URL: `http://127.0.0.1:${httpPort}` };
      const { stdout } = await run('npx', ['--offline', 'warrenctl', 'list_vhosts'], { cwd: app, env, timeout: 60_000 });
      expect(stdout).toBe('Listing vhosts ...\nname\n/\n');
    } finally {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      process.kill(-child.pid!, 'SIGTERM');
      await exited;
      await waitFor(() => {
        try {
          process.kill(-child.pid!, 0);
          return false;
        } catch {
          return true; // the whole group is gone
        }
      }, 'warren to stop', 15_000);
    }
  });

  it("import { startBroker } from 'warren' starts an embedded broker that prints nothing", async () => {
    const script = join(app, 'embed.mjs');
    writeFileSync(
      script,
      `import { startBroker } from 'warren';
const broker = await startBroker({ port: 0, dataDir: ${JSON.stringify(join(work, 'embedded'))} });
if (!(broker.port > 0) || broker.management !== null) throw new Error('unexpected broker ' + broker.port);
await broker.close();
`,
    );
    const { stdout, stderr } = await run(process.execPath, [script], { cwd: app, timeout: 60_000 });
    expect({ stdout, stderr }).toEqual({ stdout: '', stderr: '' });
  });
});

afterAll(() => {
  rmSync(work, { recursive: true, force: true });
});
