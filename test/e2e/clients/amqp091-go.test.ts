// amqp091-go's own integration test suite (RabbitMQ's Go client, from Debian's
// golang-github-rabbitmq-amqp091-go-dev, built with Debian's golang-go) run against a real Warren.
// The suite is the client's, unchanged but for one thing: it runs its RabbitMQ-specific tests
// (TestRabbitMQ*, basic.recover requeue=false) only when the server's product is "RabbitMQ", so a
// copy made at test time also accepts "Warren". The same suite against RabbitMQ 3.10:
// `AMQP_URL=amqp://guest:guest@127.0.0.1:PORT/ go test -tags integration` in that folder.

import { execFile } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestBroker, type TestBroker } from '../../support/broker.js';

const DEBIAN_GOPATH = '/usr/share/gocode';
const SOURCE = `${DEBIAN_GOPATH}/src/github.com/rabbitmq/amqp091-go`;
const INSTALL_HINT = 'apt-get install golang-go golang-github-rabbitmq-amqp091-go-dev (.ci/run does)';

let broker: TestBroker;
let work: string;

beforeAll(async () => {
  broker = await startTestBroker();
  work = mkdtempSync(join(tmpdir(), 'warren-amqp091-go-'));
});
afterAll(async () => {
  await broker?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

/** Test functions of the files built only with the `integration` tag (the ones that need a broker). */
function integrationTests(dir: string): string[] {
  const names: string[] = [];
  for (const file of readdirSync(dir).filter((f) => f.endsWith('_test.go'))) {
    const text = readFileSync(join(dir, file), 'utf8');
    if (!/^\/\/go:build integration$/m.test(text)) continue;
    for (const m of text.matchAll(/^func (Test\w+)\(t \*testing\.T\)/gm)) names.push(m[1]!);
  }
  return names.sort();
}

/** Copies the package into a GOPATH of its own, letting the RabbitMQ-only tests run against Warren. */
function preparedCopy(): string {
  const dir = join(work, 'gopath', 'src', 'github.com', 'rabbitmq', 'amqp091-go');
  mkdirSync(dir, { recursive: true });
  cpSync(SOURCE, dir, { recursive: true });
  const file = join(dir, 'integration_test.go');
  const before = readFileSync(file, 'utf8');
  const after = before
    .replace('product.(string) == "RabbitMQ"', '(product.(string) == "RabbitMQ" || product.(string) == "Warren")')
    .replace('server == "RabbitMQ"', '(server == "RabbitMQ" || server == "Warren")');
  // Both product checks must have been found, or the RabbitMQ-specific tests would silently not run.
  expect((after.match(/"Warren"/g) ?? []).length).toBe(2);
  writeFileSync(file, after);
  return dir;
}

function goTest(dir: string, amqpUrl: string): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    execFile(
      'go',
      ['test', '-tags', 'integration', '-count=1', '-v', '-timeout', '180s', '.'],
      {
        cwd: dir,
        timeout: 240_000,
        maxBuffer: 64 * 1024 * 1024,
        env: {
          ...process.env,
          AMQP_URL: amqpUrl,
          GO111MODULE: 'off',
          GOFLAGS: '',
          GOPATH: `${join(work, 'gopath')}:${DEBIAN_GOPATH}`,
          GOCACHE: join(tmpdir(), 'warren-test-gocache'),
        },
      },
      (err, stdout, stderr) => {
        const code = err === null ? 0 : typeof err.code === 'number' ? err.code : -1;
        resolve({ code, output: `${stdout}${stderr}` });
      },
    );
  });
}

describe('amqp091-go integration suite against Warren', () => {
  it('passes every test of the client’s own integration suite', { timeout: 300_000 }, async () => {
    if (!existsSync(SOURCE)) throw new Error(`amqp091-go source not found at ${SOURCE}: ${INSTALL_HINT}`);
    const expected = integrationTests(SOURCE);
    expect(expected.length).toBeGreaterThan(50);
    const dir = preparedCopy();

    const { code, output } = await goTest(dir, `${broker.url}/`);
    if (/executable file not found|ENOENT/.test(output) && code !== 0) throw new Error(`go not found: ${INSTALL_HINT}`);

    const passed = new Set([...output.matchAll(/^\s*--- PASS: (\w+)/gm)].map((m) => m[1]!));
    const failed = [...output.matchAll(/^\s*--- FAIL: (\w+)/gm)].map((m) => m[1]!);
    const report = output.split('\n').filter((l) => /FAIL|panic|goleak|Error/.test(l)).slice(0, 40).join('\n');
    expect(failed, report).toEqual([]);
    expect(expected.filter((name) => !passed.has(name)), report).toEqual([]);
    // goleak (the suite's TestMain) fails the run when a connection of a test is left open.
    expect(code, report).toBe(0);
    expect(output).toMatch(/^ok\s+github\.com\/rabbitmq\/amqp091-go/m);
  });
});
