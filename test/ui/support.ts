// What the web UI browser tests share: the broker and page under test, and a real headless
// Chromium (Debian's /usr/bin/chromium driven by playwright-core, which downloads no browser).
//
// Target: by default a Warren started in-process with its management listener on a free loopback
// port; the page is served by that listener. For differential runs, WARREN_TEST_MGMT_URL (with
// WARREN_TEST_AMQP_URL) points at another management API, e.g. a reference RabbitMQ's: the test
// then serves the built page itself (Warren's static handler) and forwards /api/ there.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { createStaticHandler } from '../../src/management/static.js';
import type { TestBroker } from '../support/broker.js';
import { externalAmqpUrl } from '../support/harness.js';

export const EXTERNAL_MGMT = (process.env['WARREN_TEST_MGMT_URL'] ?? '') !== '';

/** Screenshots of every page land here (git-ignored); CI keeps them as artifacts. */
export const ARTIFACTS_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), 'artifacts');

export interface UiTarget {
  /** http://127.0.0.1:PORT/ — where the page is served */
  readonly baseUrl: string;
  /** the management API base, http://127.0.0.1:PORT */
  readonly apiUrl: string;
  readonly amqpUrl: string;
  readonly warren: TestBroker | null;
  stop(): Promise<void>;
}

function proxyServer(apiUrl: string): Promise<{ url: string; close: () => Promise<void> }> {
  const api = new URL(apiUrl);
  const serveUi = createStaticHandler();
  const server = http.createServer((req, res) => {
    if (req.url?.startsWith('/api/') === true) {
      const upstream = http.request(
        { host: api.hostname, port: api.port, path: req.url, method: req.method, headers: { ...req.headers, host: api.host } },
        (up) => {
          res.writeHead(up.statusCode ?? 502, up.headers);
          up.pipe(res);
        },
      );
      upstream.on('error', () => {
        res.writeHead(502);
        res.end();
      });
      req.pipe(upstream);
      return;
    }
    if (!serveUi(req, res)) {
      res.writeHead(404);
      res.end();
    }
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      resolve({
        url: `http://127.0.0.1:${port}/`,
        close: () => new Promise((r) => {
          server.closeAllConnections();
          server.close(() => r());
        }),
      });
    });
  });
}

export async function startUiTarget(): Promise<UiTarget> {
  const external = process.env['WARREN_TEST_MGMT_URL'];
  if (external !== undefined && external !== '') {
    const proxy = await proxyServer(external);
    return {
      baseUrl: proxy.url,
      apiUrl: external.replace(/\/$/, ''),
      amqpUrl: externalAmqpUrl(),
      warren: null,
      stop: proxy.close,
    };
  }
  const { startTestBroker } = await import('../support/broker.js');
  const options: Record<string, unknown> = { managementOnFreePort: true };
  const broker = await startTestBroker(options);
  const port = (broker as unknown as { management: { port: number } | null }).management?.port;
  if (port === undefined) throw new Error('this Warren has no management listener (managementPort)');
  return {
    baseUrl: `http://127.0.0.1:${port}/`,
    apiUrl: `http://127.0.0.1:${port}`,
    amqpUrl: broker.url,
    warren: broker,
    stop: () => broker.stop(),
  };
}

/** The Chromium flags that keep it off every network but the page's (no updates, sync, QUIC…). */
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export interface Browser {
  context: BrowserContext;
  /** A new tab that records console errors and every request it makes. */
  newPage(): Promise<Page & { errors: string[]; seenRequests: string[] }>;
  close(): Promise<void>;
}

export async function launchBrowser(): Promise<Browser> {
  const profile = mkdtempSync(path.join(tmpdir(), 'warren-ui-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env['WARREN_TEST_CHROMIUM'] ?? '/usr/bin/chromium',
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: { width: 1280, height: 860 },
    timeout: 30_000,
  });
  mkdirSync(ARTIFACTS_DIR, { recursive: true });
  return {
    context,
    async newPage() {
      const page = (await context.newPage()) as Page & { errors: string[]; seenRequests: string[] };
      page.errors = [];
      page.seenRequests = [];
      page.on('pageerror', (e) => page.errors.push(e.message));
      page.on('console', (m) => {
        if (m.type() === 'error') page.errors.push(m.text());
      });
      page.on('request', (r) => page.seenRequests.push(r.url()));
      page.setDefaultTimeout(15_000);
      return page;
    },
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** Logs in through the form and waits for the navigation bar to name the user. */
export async function logIn(page: Page, baseUrl: string, username: string, password: string): Promise<void> {
  await page.goto(baseUrl);
  await page.fill('input[name=username]', username);
  await page.fill('input[name=password]', password);
  await page.click('button[type=submit]');
  await page.waitForSelector(`[data-user="${username}"]`);
}

/** The README's pictures, refreshed by running the browser tests with WARREN_UI_README_SCREENSHOTS=1. */
export const README_SCREENSHOTS_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'ui', 'screenshots');

export async function screenshot(page: Page, name: string, readme: 'viewport' | 'full' | undefined = undefined): Promise<void> {
  await page.screenshot({ path: path.join(ARTIFACTS_DIR, `${name}.png`), fullPage: true });
  if (readme !== undefined && process.env['WARREN_UI_README_SCREENSHOTS'] === '1') {
    mkdirSync(README_SCREENSHOTS_DIR, { recursive: true });
    await page.screenshot({ path: path.join(README_SCREENSHOTS_DIR, `${name}.png`), fullPage: readme === 'full' });
  }
}

/** Basic-auth JSON call to the management API, for test setup and checks. */
export async function apiCall<T = unknown>(apiUrl: string, method: string, pathName: string, body?: unknown, auth = 'guest:guest'): Promise<T> {
  const res = await fetch(`${apiUrl}/api${pathName}`, {
    method,
    headers: { authorization: `Basic ${Buffer.from(auth).toString('base64')}`, 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${pathName}: ${res.status} ${text}`);
  return (text === '' ? undefined : JSON.parse(text)) as T;
}
