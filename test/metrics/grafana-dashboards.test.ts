// Every PromQL expression in grafana/dashboards/*.json, with its template variables substituted,
// returns data from a real Prometheus scraping a real Warren after real traffic. The test walks the
// dashboard JSON (panels, rows, template variable queries), so a panel added later is checked too.

import amqp from 'amqplib';
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestBroker, type TestBroker } from '../support/broker.js';
import { waitFor } from '../support/wait.js';
import { PrometheusServer } from './prometheus-server.js';

const DASHBOARDS = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'grafana', 'dashboards');

/** What Grafana would put in place of the dashboard's variables for this Prometheus. */
const VARIABLES: Record<string, string> = {
  per_object_job: 'warren-per-object',
  job: 'warren',
  __rate_interval: '20s',
  __interval: '15s',
  __range: '5m',
};

function substitute(expr: string): string {
  // Longest names first, so $job does not eat the start of $job_something.
  let out = expr;
  for (const name of Object.keys(VARIABLES).sort((a, b) => b.length - a.length)) {
    out = out.split(`\${${name}}`).join(VARIABLES[name]!).split(`$${name}`).join(VARIABLES[name]!);
  }
  return out;
}

interface Found {
  dashboard: string;
  panel: string;
  expr: string;
}

/** Every target expression in a dashboard, nested rows included. */
function expressions(dashboard: string, node: unknown, panel = ''): Found[] {
  if (Array.isArray(node)) return node.flatMap((n) => expressions(dashboard, n, panel));
  if (node === null || typeof node !== 'object') return [];
  const o = node as Record<string, unknown>;
  const title = typeof o['title'] === 'string' && o['type'] !== undefined ? (o['title'] as string) : panel;
  const found: Found[] = [];
  if (typeof o['expr'] === 'string' && o['expr'] !== '') found.push({ dashboard, panel: title, expr: o['expr'] as string });
  for (const [key, value] of Object.entries(o)) if (key !== 'templating') found.push(...expressions(dashboard, value, title));
  return found;
}

/** label_values(selector, label) template queries. */
function variableQueries(dashboard: unknown): { name: string; selector: string; label: string }[] {
  const list = ((dashboard as { templating?: { list?: unknown[] } }).templating?.list ?? []) as { name: string; type: string; query: unknown }[];
  const out: { name: string; selector: string; label: string }[] = [];
  for (const v of list) {
    if (v.type !== 'query') continue;
    const q = typeof v.query === 'string' ? v.query : (v.query as { query?: string }).query ?? '';
    const m = /^label_values\((.*),\s*([a-zA-Z_]+)\)$/.exec(q.trim());
    if (m !== null) out.push({ name: v.name, selector: m[1]!, label: m[2]! });
  }
  return out;
}

let broker: TestBroker;
let prometheus: PrometheusServer;

beforeAll(async () => {
  broker = await startTestBroker({ metricsOnFreePort: true });
  const address = `127.0.0.1:${broker.metrics!.port}`;
  prometheus = await PrometheusServer.start([
    { job: 'warren', address, path: '/metrics' },
    { job: 'warren-per-object', address, path: '/metrics/per-object' },
  ]);
}, 60_000);

afterAll(async () => {
  await prometheus?.stop();
  await broker?.stop();
});

describe('Grafana dashboards', () => {
  let conn: amqp.ChannelModel;

  beforeAll(async () => {
    // Traffic that gives every panel something: persistent confirmed publishes (store commits,
    // confirm latency), consumers, a waiting message (oldest age), a dead-lettered one, churn.
    conn = await amqp.connect(broker.url);
    const ch = await conn.createConfirmChannel();
    await ch.assertQueue('dash.work', { durable: true, arguments: { 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': 'dash.dead' } });
    await ch.assertQueue('dash.dead', { durable: true });
    await ch.assertQueue('dash.waiting', { durable: true });
    const consumer = await conn.createChannel();
    await consumer.prefetch(50);
    let rejected = false;
    await consumer.consume('dash.work', (m) => {
      if (m === null) return;
      if (!rejected) {
        rejected = true;
        consumer.nack(m, false, false);
      } else consumer.ack(m);
    });
    ch.sendToQueue('dash.waiting', Buffer.from('waits'), { persistent: true });
    // Keep publishing for a few scrapes, so rates have two samples to work with.
    const until = Date.now() + 4_000;
    while (Date.now() < until) {
      for (let i = 0; i < 20; i++) ch.sendToQueue('dash.work', Buffer.alloc(64 + i * 50), { persistent: true });
      ch.publish('amq.direct', 'nowhere', Buffer.from('x'));
      await ch.waitForConfirms();
      const other = await amqp.connect(broker.url);
      await other.close();
    }
    await prometheus.scrapedAfter(Date.now());
  }, 60_000);

  afterAll(async () => {
    await conn?.close();
  });

  const files = readdirSync(DASHBOARDS).filter((f) => f.endsWith('.json'));

  it('there are dashboards to check', () => {
    expect(files).toContain('warren-overview.json');
  });

  for (const file of files) {
    it(`every expression in ${file} returns data`, async () => {
      const json = JSON.parse(readFileSync(join(DASHBOARDS, file), 'utf8')) as unknown;
      const found = expressions(file, (json as { panels: unknown }).panels);
      expect(found.length).toBeGreaterThan(10);
      const empty: string[] = [];
      for (const f of found) {
        const expr = substitute(f.expr);
        expect(expr).not.toMatch(/\$[a-zA-Z_{]/); // every variable substituted
        const samples = await prometheus.query(expr);
        if (samples.length === 0) empty.push(`${f.panel}: ${expr}`);
      }
      expect(empty).toEqual([]);
    });

    it(`the template variables of ${file} have values`, async () => {
      const json = JSON.parse(readFileSync(join(DASHBOARDS, file), 'utf8')) as unknown;
      for (const v of variableQueries(json)) {
        const res = await fetch(`${prometheus.url}/api/v1/label/${v.label}/values?match[]=${encodeURIComponent(v.selector)}`);
        const body = (await res.json()) as { data: string[] };
        expect({ variable: v.name, values: body.data }).toEqual({ variable: v.name, values: [VARIABLES[v.name]] });
      }
    });
  }

  it('the oldest-message panel sees the message left waiting', async () => {
    const age = await waitFor(async () => {
      const s = await prometheus.query('warren_queue_head_message_age_seconds{job="warren-per-object",queue="dash.waiting"}');
      return s.length === 1 && s[0]!.value > 0 ? s[0]!.value : 0;
    }, 'a positive age for dash.waiting', 10_000);
    expect(age).toBeGreaterThan(0);
  });
});
