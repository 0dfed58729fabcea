// Measures the web UI's first render with many queues (not a test: a number for the notes).
// Starts Warren (built, from dist/) with its management listener on a free loopback port,
// declares N queues over AMQP, then times in headless Chromium, from navigation to pixels:
// the login page, the overview, and the queues page showing its first 100 rows.
// Usage: npm run build && node ui/measure-first-render.mjs [queues=10000]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import net from 'node:net';
import amqp from 'amqplib';
import { chromium } from 'playwright-core';
import { startBroker } from '../dist/src/index.js';

const queueCount = Number(process.argv[2] ?? 10_000);
const freePort = () => new Promise((resolve) => {
  const s = net.createServer().listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
});

const dataDir = mkdtempSync(path.join(tmpdir(), 'warren-ui-measure-'));
const broker = await startBroker({ bind: '127.0.0.1', port: 0, managementPort: await freePort(), dataDir, logLevel: 'silent' });
const base = `http://127.0.0.1:${broker.management.port}/`;
const profile = mkdtempSync(path.join(tmpdir(), 'warren-ui-measure-chromium-'));
let context;
try {
  const conn = await amqp.connect(`amqp://guest:guest@127.0.0.1:${broker.port}`);
  const ch = await conn.createChannel();
  const t0 = performance.now();
  for (let i = 0; i < queueCount; i += 500) {
    await Promise.all(Array.from({ length: Math.min(500, queueCount - i) }, (_, j) => ch.assertQueue(`q-${String(i + j).padStart(5, '0')}`, { durable: false })));
  }
  console.log(`declared ${queueCount} queues in ${Math.round(performance.now() - t0)} ms`);

  context = await chromium.launchPersistentContext(profile, {
    executablePath: '/usr/bin/chromium', headless: true, viewport: { width: 1280, height: 860 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const page = await context.newPage();
  const timed = async (label, url, selector) => {
    const start = performance.now();
    await page.goto(url);
    await page.waitForSelector(selector);
    await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => r(undefined))));
    const ms = Math.round(performance.now() - start);
    console.log(`${label}: ${ms} ms`);
    return ms;
  };
  await timed('login page (cold cache)', base, 'input[name=username]');
  await page.fill('input[name=username]', 'guest');
  await page.fill('input[name=password]', 'guest');
  await page.click('button[type=submit]');
  await page.waitForSelector('[data-user="guest"]');
  const runs = [];
  for (let i = 0; i < 5; i++) {
    await page.goto('about:blank');
    runs.push(await timed(`queues page, ${queueCount} queues, first 100 rows (run ${i + 1})`, `${base}#/queues`, '.paged tbody tr:nth-child(100)'));
  }
  await page.goto('about:blank');
  await timed('overview page', `${base}#/`, '.overview .total-value');
  runs.sort((a, b) => a - b);
  console.log(`queues page median: ${runs[2]} ms (min ${runs[0]}, max ${runs[4]})`);
  await conn.close();
} finally {
  await context?.close();
  await broker.close();
  rmSync(dataDir, { recursive: true, force: true });
  rmSync(profile, { recursive: true, force: true });
}
