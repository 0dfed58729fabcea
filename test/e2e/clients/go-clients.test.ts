// The Go clients' own integration test suites run against a real Warren: amqp091-go (RabbitMQ's Go
// client) and streadway/amqp (its predecessor, still in many programs), from Debian's
// golang-github-rabbitmq-amqp091-go-dev and golang-github-streadway-amqp-dev, built with Debian's
// golang-go. Each suite is the client's, unchanged but for one thing: it runs its RabbitMQ-specific
// tests (TestRabbitMQ*, basic.recover requeue=false) only when the server's product is "RabbitMQ",
// so a copy made at test time also accepts "Warren". The same suites against RabbitMQ 3.10:
// `AMQP_URL=amqp://guest:guest@127.0.0.1:PORT/ GO111MODULE=off GOPATH=/usr/share/gocode go test
// -tags integration` in the package's folder under /usr/share/gocode/src.

import { execFile } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestBroker, type TestBroker } from '../../support/broker.js';

const DEBIAN_GOPATH = '/usr/share/gocode';

interface GoSuite {
  /** import path, also the folder under $GOPATH/src */
  readonly importPath: string;
  readonly debianPackage: string;
}

const SUITES: GoSuite[] = [
  { importPath: 'github.com/rabbitmq/amqp091-go', debianPackage: 'golang-github-rabbitmq-amqp091-go-dev' },
  { importPath: 'github.com/streadway/amqp', debianPackage: 'golang-github-streadway-amqp-dev' },
];

let broker: TestBroker;
let work: string;

beforeAll(async () => {
  broker = await startTestBroker();
  work = mkdtempSync(join(tmpdir(), 'warren-go-clients-'));
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
    if (!/^\/\/(go:build| \+build) integration$/m.test(text)) continue;
    for (const m of text.matchAll(/^func (Test\w+)\(t \*testing\.T\)/gm)) names.push(m[1]!);
  }
  return names.sort();
}

/** Copies the package into a GOPATH of its own, letting the RabbitMQ-only tests run against Warren. */
function preparedCopy(suite: GoSuite): string {
  const dir = join(work, 'gopath', 'src', suite.importPath);
  mkdirSync(dir, { recursive: true });
  cpSync(join(DEBIAN_GOPATH, 'src', suite.importPath), dir, { recursive: true });
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

describe.each(SUITES)('$importPath integration suite against Warren', (suite) => {
  it('passes every test of the client’s own integration suite', { timeout: 300_000 }, async () => {
    const installHint = `apt-get install golang-go ${suite.debianPackage} (.ci/run does)`;
    const source = join(DEBIAN_GOPATH, 'src', suite.importPath);
    if (!existsSync(source)) throw new Error(`${suite.importPath} source not found at ${source}: ${installHint}`);
    const expected = integrationTests(source);
    expect(expected.length).toBeGreaterThan(40);
    const dir = preparedCopy(suite);

    const { code, output } = await goTest(dir, `${broker.url}/`);
    if (/executable file not found|ENOENT/.test(output) && code !== 0) throw new Error(`go not found: ${installHint}`);

    const passed = new Set([...output.matchAll(/^\s*--- PASS: (\w+)/gm)].map((m) => m[1]!));
    const failed = [...output.matchAll(/^\s*--- FAIL: (\w+)/gm)].map((m) => m[1]!);
    const report = output.split('\n').filter((l) => /FAIL|panic|goleak|Error/.test(l)).slice(0, 40).join('\n');
    expect(failed, report).toEqual([]);
    expect(expected.filter((name) => !passed.has(name)), report).toEqual([]);
    // amqp091-go's TestMain (goleak) also fails the run when a test leaves a connection open.
    expect(code, report).toBe(0);
    const summary = output.split('\n').find((l) => l.split(/\s+/)[1] === suite.importPath);
    expect(summary?.split(/\s+/)[0]).toBe('ok');
  });
});
