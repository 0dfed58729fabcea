// The static handler that serves the built web UI: cache headers (hashed assets immutable,
// index.html revalidated with an ETag), pre-compressed bodies, and handing back (false) every
// path it does not own. Served from a real HTTP server on a loopback port, read with fetch.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, readdirSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { createStaticHandler, DEFAULT_UI_DIR } from '../../src/management/static.js';

function serve(handler: ReturnType<typeof createStaticHandler>): Promise<{ base: string; close: () => Promise<void> }> {
  const server = http.createServer((req, res) => {
    if (!handler(req, res)) {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('not mine');
    }
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      resolve({ base: `http://127.0.0.1:${port}`, close: () => new Promise((r) => server.close(() => r())) });
    });
  });
}

describe('web UI static handler', () => {
  let base = '';
  let close: () => Promise<void> = async () => {};
  beforeAll(async () => {
    ({ base, close } = await serve(createStaticHandler()));
  });
  afterAll(() => close());

  it('is built by npm run build into dist/ui with hashed asset names', () => {
    expect(existsSync(path.join(DEFAULT_UI_DIR, 'index.html'))).toBe(true);
    const assets = readdirSync(path.join(DEFAULT_UI_DIR, 'assets'));
    expect(assets.filter((f) => /^app-[A-Z0-9]+\.js$/.test(f))).toHaveLength(1);
    expect(assets.filter((f) => /^app-[A-Z0-9]+\.css$/.test(f))).toHaveLength(1);
  });

  it('serves index.html with no-cache and an ETag, answering 304 when unchanged', async () => {
    const res = await fetch(`${base}/`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(res.headers.get('cache-control')).toBe('no-cache');
    expect(res.headers.get('content-security-policy')).toContain("default-src 'none'");
    const etag = res.headers.get('etag');
    expect(etag).toMatch(/^"[\w-]{22}"$/);
    const html = await res.text();
    expect(html).toBe(readFileSync(path.join(DEFAULT_UI_DIR, 'index.html'), 'utf8'));
    const again = await fetch(`${base}/index.html`, { headers: { 'if-none-match': etag ?? '' } });
    expect(again.status).toBe(304);
  });

  it('serves every asset index.html names as immutable, gzipped when asked', async () => {
    const html = await (await fetch(`${base}/`)).text();
    const names = [...html.matchAll(/(?:src|href)="(assets\/[^"]+)"/g)].map((m) => m[1]);
    expect(names).toHaveLength(2);
    for (const name of names) {
      const res = await fetch(`${base}/${name}`); // fetch sends Accept-Encoding: gzip and inflates
      expect(res.status).toBe(200);
      expect(res.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
      expect(res.headers.get('content-encoding')).toBe('gzip');
      expect(await res.text()).toBe(readFileSync(path.join(DEFAULT_UI_DIR, name!), 'utf8'));
    }
    const raw = await new Promise<{ headers: http.IncomingHttpHeaders; body: Buffer }>((resolve, reject) => {
      http.get(`${base}/${names[0]}`, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ headers: res.headers, body: Buffer.concat(chunks) }));
      }).on('error', reject);
    });
    expect(raw.headers['content-encoding']).toBeUndefined(); // no Accept-Encoding: plain body
    expect(raw.body.equals(readFileSync(path.join(DEFAULT_UI_DIR, names[0]!)))).toBe(true);
    expect(gunzipSync(readFileSync(path.join(DEFAULT_UI_DIR, `${names[0]}.gz`))).equals(raw.body)).toBe(true);
  });

  it('returns false for /api/ paths, unknown paths and methods other than GET/HEAD', async () => {
    for (const p of ['/api/overview', '/api', '/assets/nope.js', '/etc/passwd', '/assets/../index.html.gz']) {
      const res = await fetch(`${base}${p}`);
      expect([p, res.status, await res.text()]).toEqual([p, 404, 'not mine']);
    }
    const post = await fetch(`${base}/`, { method: 'POST', body: 'x' });
    expect(post.status).toBe(404);
    const head = await fetch(`${base}/`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(await head.text()).toBe('');
  });

  it('says how to build the UI when dist/ui is missing', async () => {
    const empty = await serve(createStaticHandler(mkdtempSync(path.join(tmpdir(), 'warren-no-ui-'))));
    try {
      const res = await fetch(`${empty.base}/`);
      expect(res.status).toBe(503);
      expect(await res.text()).toContain('Run `npm run build`');
      expect((await fetch(`${empty.base}/assets/app.js`)).status).toBe(404);
    } finally {
      await empty.close();
    }
  });
});
