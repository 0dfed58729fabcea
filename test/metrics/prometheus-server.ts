// A real Prometheus (Debian's `prometheus` package) started by a test: it scrapes the given
// targets every second into a temporary TSDB, answers instant queries over its HTTP API, and is
// stopped (by pid) and its folder removed at the end. Nothing about Prometheus is imitated.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../support/child-broker.js';
import { waitFor } from '../support/wait.js';

export interface ScrapeTarget {
  job: string;
  /** host:port */
  address: string;
  path: string;
  /** scrape over https with these files (Prometheus' tls_config): ca_file, cert_file, key_file */
  https?: { caFile?: string; certFile?: string; keyFile?: string };
  /** false for a target the test expects Prometheus to fail on (start() does not wait for it) */
  expectUp?: boolean;
}

/** One target as Prometheus reports it (GET /api/v1/targets). */
export interface TargetState {
  job: string;
  health: string;
  lastError: string;
  lastScrape: number;
}

export interface InstantSample {
  metric: Record<string, string>;
  value: number;
}

const BINARY = 'prometheus';

/** Fails with what to do when the Prometheus binary is missing (CI installs it: see .ci/run). */
export function assertPrometheusInstalled(): void {
  const r = spawnSync(BINARY, ['--version'], { encoding: 'utf8' });
  if (r.error !== undefined || r.status !== 0) {
    throw new Error("the 'prometheus' binary is not installed: apt-get install prometheus (.ci/run does this)");
  }
}

/** Runs promtool's linter on an exposition; returns its output and exit code. */
export function promtoolCheckMetrics(text: string): { status: number; output: string } {
  const r = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
  if (r.error !== undefined) throw new Error(`promtool could not run: ${r.error.message} (apt-get install prometheus)`);
  return { status: r.status ?? -1, output: `${r.stdout}${r.stderr}` };
}

export class PrometheusServer {
  private constructor(
    private readonly child: ChildProcess,
    private readonly dir: string,
    readonly url: string,
    private readonly output: string[],
  ) {}

  static async start(targets: readonly ScrapeTarget[]): Promise<PrometheusServer> {
    assertPrometheusInstalled();
    const dir = mkdtempSync(join(tmpdir(), 'warren-prometheus-'));
    const config = [
      'global:',
      '  scrape_interval: 1s',
      '  scrape_timeout: 1s',
      'scrape_configs:',
      ...targets.flatMap((t) => [
        `  - job_name: ${JSON.stringify(t.job)}`,
        `    metrics_path: ${JSON.stringify(t.path)}`,
        ...(t.https === undefined
          ? []
          : [
              '    scheme: https',
              '    tls_config:',
              ...(t.https.caFile === undefined ? [] : [`      ca_file: ${JSON.stringify(t.https.caFile)}`]),
              ...(t.https.certFile === undefined ? [] : [`      cert_file: ${JSON.stringify(t.https.certFile)}`]),
              ...(t.https.keyFile === undefined ? [] : [`      key_file: ${JSON.stringify(t.https.keyFile)}`]),
            ]),
        '    static_configs:',
        `      - targets: [${JSON.stringify(t.address)}]`,
      ]),
    ].join('\n');
    writeFileSync(join(dir, 'prometheus.yml'), config);
    const port = await freePort();
    const child = spawn(
      BINARY,
      [
        `--config.file=${join(dir, 'prometheus.yml')}`,
        `--storage.tsdb.path=${join(dir, 'data')}`,
        `--web.listen-address=127.0.0.1:${port}`,
        '--log.level=warn',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const output: string[] = [];
    child.stdout!.on('data', (c: Buffer) => output.push(c.toString()));
    child.stderr!.on('data', (c: Buffer) => output.push(c.toString()));
    const server = new PrometheusServer(child, dir, `http://127.0.0.1:${port}`, output);
    const mustBeUp = targets.filter((t) => t.expectUp !== false).map((t) => t.job);
    try {
      await waitFor(async () => {
        if (child.exitCode !== null) throw new Error(`prometheus exited (${child.exitCode}):\n${output.join('')}`);
        try {
          return (await fetch(`${server.url}/-/ready`)).ok;
        } catch {
          return false;
        }
      }, 'prometheus to be ready', 30_000);
      // Prometheus hands new targets to its scrapers after a few seconds: wait for the first scrape
      // of each, so a test's traffic is seen by several scrapes.
      await server.scrapedAfter(0, 30_000, mustBeUp);
    } catch (err) {
      await server.stop();
      throw err;
    }
    return server;
  }

  /** What Prometheus printed (warnings and errors), for failure messages. */
  get log(): string {
    return this.output.join('');
  }

  /** An instant query; throws with Prometheus' error text when the expression is refused. */
  async query(expr: string): Promise<InstantSample[]> {
    const res = await fetch(`${this.url}/api/v1/query?query=${encodeURIComponent(expr)}`);
    const body = (await res.json()) as { status: string; error?: string; data?: { resultType: string; result: unknown } };
    if (body.status !== 'success') throw new Error(`query ${expr} failed: ${body.error}`);
    const data = body.data!;
    if (data.resultType === 'scalar') {
      const [, v] = data.result as [number, string];
      return [{ metric: {}, value: Number(v) }];
    }
    return (data.result as { metric: Record<string, string>; value: [number, string] }[]).map((r) => ({ metric: r.metric, value: Number(r.value[1]) }));
  }

  /** The single value of an expression (fails unless exactly one series answers). */
  async value(expr: string): Promise<number> {
    const samples = await this.query(expr);
    if (samples.length !== 1) throw new Error(`expected one series for ${expr}, got ${samples.length}`);
    return samples[0]!.value;
  }

  /** Every target with its health and last error, as Prometheus reports them. */
  async targets(): Promise<TargetState[]> {
    const res = await fetch(`${this.url}/api/v1/targets`);
    const body = (await res.json()) as {
      data: { activeTargets: { labels: Record<string, string>; health: string; lastError: string; lastScrape: string }[] };
    };
    return body.data.activeTargets.map((t) => ({
      job: t.labels['job'] ?? '',
      health: t.health,
      lastError: t.lastError,
      lastScrape: Date.parse(t.lastScrape),
    }));
  }

  /**
   * Resolves once every target (or every one of `jobs`) has been scraped successfully after
   * `since` (epoch ms).
   */
  async scrapedAfter(since: number, timeoutMs = 20_000, jobs?: readonly string[]): Promise<void> {
    await waitFor(async () => {
      const targets = (await this.targets()).filter((t) => jobs === undefined || jobs.includes(t.job));
      return targets.length > 0 && targets.every((t) => t.health === 'up' && t.lastScrape > since);
    }, `prometheus to scrape every target (its log: ${this.log.slice(-500)})`, timeoutMs);
  }

  async stop(): Promise<void> {
    if (this.child.exitCode === null) {
      const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
      this.child.kill('SIGTERM');
      const timer = setTimeout(() => this.child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
