// The management API's HTTP and HTTPS listeners (the shared src/http/listener.ts, so the same
// guards against hostile requests as the metrics endpoint): /api/* goes to the API router (RabbitMQ's paths and JSON); any
// other path goes to the web UI's static-asset handler when one is mounted, else 404. One catch
// turns every failure into RabbitMQ's {"error", "reason"} body; a bug in a handler is a logged 500,
// never a crashed process.

import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Logger } from '../log.js';
import { AmqpException } from '../protocol/errors.js';
import { Caller, isLoopback, loginFailed, readCredentials } from './auth.js';
import { HttpError, badRequest, fromAdmin, fromAmqp, notFound } from './http-error.js';
import { AdminError } from '../broker/admin.js';
import { Reply, type ApiRequest, type Method, type Router } from './router.js';
import type { UserDirectory } from './context.js';

import type { StaticHandler } from './static.js';
import type { TlsSettings } from '../tls/tls-settings.js';
import { HttpListener, type HttpListenerOptions } from '../http/listener.js';

/** Largest request body accepted (definitions files can be big, but not unbounded). */
export const MAX_BODY_BYTES = 64 * 1024 * 1024;
/** A request (a definitions upload included) must arrive within this time. */
const REQUEST_TIMEOUT_MS = 60_000;

export class ManagementServer {
  /** the HTTP listener (--management-port) and the HTTPS one (--management-tls-port), when on */
  private http: HttpListener | null = null;
  private https: HttpListener | null = null;
  /** the web UI (its static assets); non-API paths it does not serve are 404 */
  staticHandler: StaticHandler | null = null;

  constructor(
    private readonly router: Router,
    private readonly users: UserDirectory,
    private readonly log: Logger,
  ) {}

  /** Every failure, a handler's bug included, is answered here in RabbitMQ's error format. */
  private readonly onRequest = (req: IncomingMessage, res: ServerResponse): Promise<void> =>
    this.handle(req, res).catch((err: unknown) => this.fail(res, err));

  private listenerOptions(name: string, portFlag: string, tls: TlsSettings | null): HttpListenerOptions {
    return {
      name,
      portFlag,
      bindFlag: '--management-bind',
      log: this.log,
      handler: this.onRequest,
      requestTimeoutMs: REQUEST_TIMEOUT_MS,
      handlerReadsBody: true,
      tls,
    };
  }

  /** The listening sockets (a cluster leader accepts PROXY headers on them from its followers). */
  get netServers(): Server[] {
    return [this.http, this.https].filter((l): l is HttpListener => l !== null).map((l) => l.netServer);
  }

  /** Starts listening; rejects with a readable message if the port is taken. */
  async listen(host: string, port: number): Promise<number> {
    this.http = await HttpListener.listen(host, port, this.listenerOptions('management', '--management-port', null));
    return this.http.port;
  }

  /** Starts the HTTPS listener (same API, same UI) with Warren's TLS settings. */
  async listenTls(host: string, port: number, tls: TlsSettings): Promise<number> {
    this.https = await HttpListener.listen(host, port, this.listenerOptions('management https', '--management-tls-port', tls));
    return this.https.port;
  }

  async close(): Promise<void> {
    await Promise.all([this.http?.close(), this.https?.close()]);
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
