// The one HTTP(S) listener behind Warren's HTTP surfaces (Prometheus metrics and the management
// API, each plain and over TLS): listen with readable errors (a busy port names the flag to change),
// answer hostile or broken requests with a status instead of crashing, keep slow clients from
// holding sockets forever, and close cleanly (open keep-alive sockets included). With `tls` it is
// an HTTPS server on the broker's certificates (guardTlsServer: SIGHUP reloads reach it, refused
// client certificates and failed handshakes are logged).
//
// Handlers are plain async functions; anything they throw becomes a 500 with a one-line text and
// one log line. Nothing here knows about metrics or management.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { Socket } from 'node:net';
import type { Logger } from '../log.js';
import { guardTlsServer } from '../tls/tls-server.js';
import type { TlsSettings } from '../tls/tls-settings.js';

export type HttpHandler = (req: IncomingMessage, res: ServerResponse) => Promise<void> | void;

export interface HttpListenerOptions {
  /** what this listener serves, for log lines and error texts ("Prometheus metrics") */
  name: string;
  /** the flag that sets the port, named in the "port in use" error ("--prometheus-port") */
  portFlag: string;
  /** the flag that sets the address, named when the address does not exist ("--prometheus-bind") */
  bindFlag: string;
  log: Logger;
  handler: HttpHandler;
  /** ms a request may take to arrive completely (headers and body); default 10 s */
  requestTimeoutMs?: number;
  /**
   * Whether the handler reads request bodies (and enforces its own size limit, answering in its
   * own format). Otherwise bodies are drained unread and a request sending more than
   * DRAINED_BODY_LIMIT bytes is cut.
   */
  handlerReadsBody?: boolean;
  /** serve HTTPS with these certificates (the broker's --tls-* settings) */
  tls?: TlsSettings | null;
}

/** Bytes of an unread request body drained before the request is cut. */
export const DRAINED_BODY_LIMIT = 65_536;
/** The longest a client may take to send its request headers (and the idle keep-alive limit). */
const HEADERS_TIMEOUT_MS = 10_000;
const KEEP_ALIVE_TIMEOUT_MS = 5_000;
const MAX_HEADER_BYTES = 16_384;

/** A listening HTTP server. */
export class HttpListener {
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  private closing: Promise<void> | null = null;
  port = 0;

  private constructor(private readonly options: HttpListenerOptions) {
    const timeout = options.requestTimeoutMs ?? 10_000;
    const httpOptions = {
      requestTimeout: timeout,
      headersTimeout: Math.min(timeout, HEADERS_TIMEOUT_MS),
      keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS,
      maxHeaderSize: MAX_HEADER_BYTES,
    };
    const handle = (req: IncomingMessage, res: ServerResponse): void => this.serve(req, res);
    const tls = options.tls ?? null;
    if (tls === null) this.server = createServer(httpOptions, handle);
    else {
      // An https.Server is a tls.Server (for the guard) and an http.Server (for everything below).
      const https = createHttpsServer({ ...tls.serverOptions(), ...httpOptions }, handle);
      guardTlsServer(https, tls, options.log, options.name);
      this.server = https as unknown as Server;
    }
    this.server.on('connection', (socket: Socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
    // Malformed requests (bad request line, oversized headers, garbage): answer and hang up.
    this.server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
      if (!socket.writable || err.code === 'ECONNRESET') {
        socket.destroy();
        return;
      }
      const status = err.code === 'HPE_HEADER_OVERFLOW' ? '431 Request Header Fields Too Large' : '400 Bad Request';
      socket.end(`HTTP/1.1 ${status}\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n${status}\n`);
    });
  }

  /** Starts listening; rejects with a readable error (port in use, no such address, not allowed). */
  static async listen(host: string, port: number, options: HttpListenerOptions): Promise<HttpListener> {
    const listener = new HttpListener(options);
    await listener.start(host, port);
    return listener;
  }

  /** The listening socket (a cluster leader accepts PROXY headers on it from its followers). */
  get netServer(): Server {
    return this.server;
  }

  private start(host: string, port: number): Promise<void> {
    const { name, portFlag, bindFlag, log } = this.options;
    return new Promise((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException): void => {
        this.server.off('listening', onListening);
        if (err.code === 'EADDRINUSE') {
          reject(new Error(`${name}: port ${port} on ${host} is already in use: stop the other process, or choose another ${portFlag} (0 turns it off)`));
        } else if (err.code === 'EADDRNOTAVAIL' || err.code === 'ENOTFOUND') {
          reject(new Error(`${name}: cannot listen on ${host}: no such local address (check ${bindFlag})`));
        } else if (err.code === 'EACCES') {
          reject(new Error(`${name}: not allowed to listen on ${host}:${port}: choose a ${portFlag} above 1023 or run with the needed rights`));
        } else reject(new Error(`${name}: cannot listen on ${host}:${port}: ${err.message}`));
      };
      const onListening = (): void => {
        this.server.off('error', onError);
        this.server.on('error', (err) => log.error({ err, listener: name }, 'HTTP listener error'));
        const addr = this.server.address();
        this.port = typeof addr === 'object' && addr !== null ? addr.port : port;
        resolve();
      };
      this.server.once('error', onError);
      this.server.once('listening', onListening);
      this.server.listen({ host, port });
    });
  }

  /** Whether this listener serves HTTPS. */
  get secure(): boolean {
    return (this.options.tls ?? null) !== null;
  }

  private serve(req: IncomingMessage, res: ServerResponse): void {
    if (this.options.handlerReadsBody !== true) {
      // The handler needs no body: drain it so the socket can be reused, up to a limit.
      let bodyBytes = 0;
      req.on('data', (chunk: Buffer) => {
        bodyBytes += chunk.length;
        if (bodyBytes > DRAINED_BODY_LIMIT) req.destroy();
      });
    }
    req.on('error', () => {});
    res.on('error', () => {});
    let result: Promise<void> | void;
    try {
      result = this.options.handler(req, res);
    } catch (err) {
      this.failed(err, req, res);
      return;
    }
    if (result instanceof Promise) result.catch((err: unknown) => this.failed(err, req, res));
  }

  private failed(err: unknown, req: IncomingMessage, res: ServerResponse): void {
    this.options.log.error({ err, listener: this.options.name, method: req.method, url: req.url }, 'HTTP request failed');
    if (res.headersSent) {
      res.destroy();
      return;
    }
    sendText(res, 500, 'internal error; see the broker log\n');
  }

  /** Stops accepting, ends idle keep-alive sockets, and resolves once every socket is gone. */
  close(): Promise<void> {
    this.closing ??= new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeIdleConnections();
      // Requests still being answered get a moment; then their sockets are cut.
      const cut = setTimeout(() => {
        for (const s of this.sockets) s.destroy();
      }, 2_000);
      cut.unref();
      this.server.once('close', () => clearTimeout(cut));
    });
    return this.closing;
  }
}

/** A complete plain-text answer. */
export function sendText(res: ServerResponse, status: number, text: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(text), ...headers });
  res.end(text);
}
