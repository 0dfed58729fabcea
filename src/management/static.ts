// Serves the management web UI's built assets (dist/ui, made by ui/build.mjs) from the management
// HTTP listener. The listener calls serveUi(req, res) for every path outside /api/; it answers
// GET/HEAD for the page and its assets and returns false for anything else (the caller then
// answers 404/405 as for any unknown path).
//
// Caching: asset file names carry a content hash, so they are sent as immutable for a year;
// index.html is sent with no-cache and an ETag, so a new build is picked up on the next load
// while an unchanged one costs a 304. Files are read once, at first use, and kept in memory
// (with their pre-compressed .gz twins): a request never touches the disk.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export type StaticHandler = (req: IncomingMessage, res: ServerResponse) => boolean;

interface Asset {
  body: Buffer;
  gzip: Buffer | undefined;
  contentType: string;
  cacheControl: string;
  etag: string;
}

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
};

const IMMUTABLE = 'public, max-age=31536000, immutable';
const REVALIDATE = 'no-cache';

// The page talks only to this server: no CDN, no fonts or scripts from elsewhere. uPlot and
// Preact set element styles, hence 'unsafe-inline' for styles only.
const SECURITY_HEADERS: Record<string, string> = {
  'Content-Security-Policy':
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'",
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
};

/**
 * The folder ui/build.mjs writes: dist/ui. Compiled, this file is dist/src/management/static.js;
 * run from source (tests), it is src/management/static.ts and the build output is still dist/ui.
 */
export const DEFAULT_UI_DIR = ((): string => {
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
  return path.basename(root) === 'dist' ? path.join(root, 'ui') : path.join(root, 'dist', 'ui');
})();

function loadAssets(dir: string): Map<string, Asset> {
  const assets = new Map<string, Asset>();
  const add = (urlPath: string, file: string, cacheControl: string): void => {
    const body = readFileSync(file);
    const gz = `${file}.gz`;
    assets.set(urlPath, {
      body,
      gzip: existsSync(gz) ? readFileSync(gz) : undefined,
      contentType: CONTENT_TYPES[path.extname(file)] ?? 'application/octet-stream',
      cacheControl,
      etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"`,
    });
  };
  const index = path.join(dir, 'index.html');
  if (!existsSync(index)) return assets;
  add('/', index, REVALIDATE);
  add('/index.html', index, REVALIDATE);
  const assetsDir = path.join(dir, 'assets');
  if (existsSync(assetsDir)) {
    for (const name of readdirSync(assetsDir)) {
      if (name.endsWith('.gz')) continue;
      add(`/assets/${name}`, path.join(assetsDir, name), IMMUTABLE);
    }
  }
  return assets;
}

const NOT_BUILT =
  'The Warren web UI is not built in this installation (dist/ui is missing).\n' +
  'Run `npm run build` in the Warren folder, or use the HTTP API under /api/ and warrenctl.\n';

/** A handler serving the UI built into `dir`; assets are loaded on first use. */
export function createStaticHandler(dir: string = DEFAULT_UI_DIR): StaticHandler {
  let assets: Map<string, Asset> | undefined;
  return (req, res) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') return false;
    const urlPath = (req.url ?? '/').split('?', 1)[0] ?? '/';
    if (urlPath.startsWith('/api/') || urlPath === '/api') return false;
    assets ??= loadAssets(dir);
    const asset = assets.get(urlPath);
    if (asset === undefined) {
      if (urlPath !== '/' || assets.size > 0) return false;
      res.writeHead(503, { 'Content-Type': 'text/plain; charset=utf-8', 'Cache-Control': REVALIDATE });
      res.end(req.method === 'HEAD' ? undefined : NOT_BUILT);
      return true;
    }
    const headers: Record<string, string> = {
      ...SECURITY_HEADERS,
      'Content-Type': asset.contentType,
      'Cache-Control': asset.cacheControl,
      ETag: asset.etag,
      Vary: 'Accept-Encoding',
    };
    if (req.headers['if-none-match'] === asset.etag) {
      res.writeHead(304, headers);
      res.end();
      return true;
    }
    const acceptsGzip = /\bgzip\b/.test(String(req.headers['accept-encoding'] ?? ''));
    const body = acceptsGzip && asset.gzip !== undefined ? asset.gzip : asset.body;
    if (body === asset.gzip) headers['Content-Encoding'] = 'gzip';
    headers['Content-Length'] = String(body.length);
    res.writeHead(200, headers);
    res.end(req.method === 'HEAD' ? undefined : body);
    return true;
  };
}

/** The management listener's hook: serves dist/ui for every non-/api/ path it knows. */
export const serveUi: StaticHandler = createStaticHandler();
