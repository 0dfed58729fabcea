// The management HTTP listener: /api/* goes to the API router (RabbitMQ's paths and JSON); any
// other path goes to the web UI's static-asset handler when one is mounted, else 404. One catch
// turns every failure into RabbitMQ's {"error", "reason"} body; a bug in a handler is a logged 500,
// never a crashed process.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Logger } from '../log.js';
import { AmqpException } from '../protocol/errors.js';
import { Caller, isLoopback, loginFailed, readCredentials } from './auth.js';
import { HttpError, badRequest, fromAdmin, fromAmqp, notFound } from './http-error.js';
import { AdminError } from '../broker/admin.js';
import { Reply, type ApiRequest, type Method, type Router } from './router.js';
import type { UserDirectory } from './context.js';

import type { StaticHandler } from './static.js';
import type { Server as HttpsServer } from 'node:https';
import type { TlsSettings } from '../tls/tls-settings.js';
import { createGuardedHttpsServer } from '../tls/tls-server.js';

/** Largest request body accepted (definitions files can be big, but not unbounded). */
export const MAX_BODY_BYTES = 64 * 1024 * 1024;

export class ManagementServer {
  private readonly server: Server;
  /** the HTTPS listener (--management-tls-port), when TLS is configured */
  private tlsServer: HttpsServer | null = null;
  /** the web UI (its static assets); non-API paths it does not serve are 404 */
  staticHandler: StaticHandler | null = null;

  constructor(
    private readonly router: Router,
    private readonly users: UserDirectory,
    private readonly log: Logger,
  ) {
    this.server = createServer(this.onRequest);
    this.setTimeouts(this.server);
  }

  private readonly onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    this.handle(req, res).catch((err: unknown) => this.fail(res, err));
  };

  private setTimeouts(server: Server): void {
    server.keepAliveTimeout = 5000;
    server.headersTimeout = 10_000;
    server.requestTimeout = 60_000;
  }

  /** The listening sockets (a cluster leader accepts PROXY headers on them from its followers). */
  get netServers(): (Server | HttpsServer)[] {
    return this.tlsServer === null ? [this.server] : [this.server, this.tlsServer];
  }

  /** Starts listening; rejects with a readable message if the port is taken. */
  listen(host: string, port: number): Promise<number> {
    return this.start(this.server, host, port, '--management-port');
  }

  /** Starts the HTTPS listener (same API, same UI) with Warren's TLS settings. */
  listenTls(host: string, port: number, tls: TlsSettings): Promise<number> {
    this.tlsServer = createGuardedHttpsServer(tls, this.log, 'management https', {}, this.onRequest);
    this.setTimeouts(this.tlsServer);
    return this.start(this.tlsServer, host, port, '--management-tls-port');
  }

  private start(server: Server, host: string, port: number, portFlag: string): Promise<number> {
    return new Promise((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException): void => {
        if (err.code === 'EADDRINUSE') {
          reject(new Error(`management port ${port} on ${host} is already in use: stop the other process or choose another ${portFlag} (0 turns it off)`));
        } else if (err.code === 'EADDRNOTAVAIL') {
          reject(new Error(`cannot listen on ${host}: no such local address (check --management-bind)`));
        } else reject(err);
      };
      server.once('error', onError);
      server.listen({ host, port }, () => {
        server.off('error', onError);
        server.on('error', (err) => this.log.error({ err }, 'management listener error'));
        const addr = server.address();
        resolve(typeof addr === 'object' && addr !== null ? addr.port : port);
      });
    });
  }

  close(): Promise<void> {
    const servers = this.tlsServer === null ? [this.server] : [this.server, this.tlsServer];
    return Promise.all(
      servers.map(
        (server) =>
          new Promise<void>((resolve) => {
            server.close(() => resolve());
            server.closeAllConnections();
          }),
      ),
    ).then(() => undefined);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q < 0 ? url : url.slice(0, q);
    const query = new URLSearchParams(q < 0 ? '' : url.slice(q + 1));
    if (path !== '/api' && !path.startsWith('/api/')) {
      if (this.staticHandler !== null && this.staticHandler(req, res)) return;
      throw notFound();
    }
    const { route, params } = this.router.match(req.method ?? 'GET', path);
    const caller = this.authenticate(req);
    caller.require(route.requirement);
    const request: ApiRequest = {
      method: route.method as Method,
      params,
      query,
      caller,
      raw: req,
      body: () => readJsonBody(req),
    };
    const result = await route.handle(request);
    if (result instanceof Reply) this.send(res, result.status, result.body, result.headers);
    else this.send(res, 200, result);
  }

  private authenticate(req: IncomingMessage): Caller {
    const { username, password } = readCredentials(req);
    const user = this.users.authenticate(username, password);
    if (user === undefined) throw loginFailed();
    if (this.users.isLoopbackOnly(user.name) && !isLoopback(req.socket.remoteAddress)) throw loginFailed();
    return new Caller(user);
  }

  private send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
    if (res.headersSent) return;
    if (body === undefined) {
      res.writeHead(status, { ...headers, 'content-length': 0 });
      res.end();
      return;
    }
    const text = JSON.stringify(body, jsonReplacer);
    res.writeHead(status, {
      ...headers,
      'content-type': 'application/json',
      'cache-control': 'no-cache',
      vary: 'accept, accept-encoding, origin',
      'content-length': Buffer.byteLength(text),
    });
    res.end(text);
  }

  private fail(res: ServerResponse, err: unknown): void {
    let httpError: HttpError;
    if (err instanceof HttpError) httpError = err;
    else if (err instanceof AmqpException) httpError = fromAmqp(err);
    else if (err instanceof AdminError) httpError = fromAdmin(err);
    else {
      this.log.error({ err }, 'management request failed');
      httpError = new HttpError(500, 'internal_error', 'an internal error occurred; see the broker log');
    }
    if (httpError.status === 405 || (httpError.status === 401 && httpError.error === '')) {
      this.send(res, httpError.status, undefined, httpError.headers);
      return;
    }
    this.send(res, httpError.status, { error: httpError.error, reason: httpError.reason }, httpError.headers);
  }
}

/** bigint values (64-bit AMQP integers beyond 2^53) go out as JSON numbers, not strings. */
function jsonReplacer(_key: string, value: unknown): unknown {
  return typeof value === 'bigint' ? Number(value) : value;
}

async function readJsonBody(req: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) throw new HttpError(413, 'bad_request', `request body larger than ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk as Buffer);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '') return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw badRequest('not_json');
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw badRequest('not_json');
  if (nestingDepth(parsed) > MAX_JSON_DEPTH) throw badRequest(`JSON nested deeper than ${MAX_JSON_DEPTH} levels`);
  return parsed as Record<string, unknown>;
}

/** Deeper bodies are refused: nothing legitimate nests this far, and the model recurses on it. */
export const MAX_JSON_DEPTH = 64;

/** How deeply a parsed JSON value nests (iteratively: a hostile body cannot overflow the stack here). */
function nestingDepth(root: unknown): number {
  let max = 0;
  const stack: [unknown, number][] = [[root, 1]];
  while (stack.length > 0) {
    const [value, depth] = stack.pop()!;
    if (value === null || typeof value !== 'object') continue;
    if (depth > max) max = depth;
    if (max > MAX_JSON_DEPTH) return max;
    for (const v of Object.values(value as Record<string, unknown>)) stack.push([v, depth + 1]);
  }
  return max;
}
