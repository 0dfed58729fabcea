// Development only (not part of the product): serves the built UI through Warren's own static
// handler and forwards /api/ to a management API, e.g. a reference RabbitMQ's while Warren's is
// being built. Usage: npm run build && node ui/dev-server.mjs [listen-port] [api-base-url]
import http from 'node:http';
import { createStaticHandler } from '../dist/src/management/static.js';

const listenPort = Number(process.argv[2] ?? 8760);
const apiBase = new URL(process.argv[3] ?? 'http://127.0.0.1:15760');
const serveUi = createStaticHandler();

const server = http.createServer((req, res) => {
  if (req.url?.startsWith('/api/')) {
    const upstream = http.request(
      { host: apiBase.hostname, port: apiBase.port, path: req.url, method: req.method, headers: { ...req.headers, host: apiBase.host } },
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      },
    );
    upstream.on('error', (err) => {
      res.writeHead(502, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: 'bad_gateway', reason: `cannot reach ${apiBase.href}: ${err.message}` }));
    });
    req.pipe(upstream);
    return;
  }
  if (!serveUi(req, res)) {
    res.writeHead(404, { 'content-type': 'text/plain' });
    res.end('not found\n');
  }
});
server.listen(listenPort, '127.0.0.1', () => console.log(`ui dev server: http://127.0.0.1:${listenPort}/ → API ${apiBase.href}`));
