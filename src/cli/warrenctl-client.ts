// warrenctl's way to Warren: the management HTTP API, and nothing else (as rabbitmqadmin). Basic
// auth, JSON in and out, a bounded timeout; a broker that does not answer is one clear error.

/** Warren is not reachable at this URL (connection refused, unknown host, timeout). */
export class Unreachable extends Error {
  constructor(
    readonly url: string,
    /** what the network said (ECONNREFUSED, …), for debugging */
    readonly reason: string,
  ) {
    super(`cannot reach Warren at ${url} — is it running?`);
  }
}

/** The API answered with an error status ({"error", "reason"} from RabbitMQ's API). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly error: string,
    readonly reason: string,
    readonly path: string,
  ) {
    super(reason !== '' ? reason : `${status} ${error}`);
  }
}

export interface ClientOptions {
  url: string;
  username: string;
  password: string;
  timeoutMs: number;
}

export class ManagementClient {
  private readonly base: string;
  private readonly auth: string;

  constructor(readonly options: ClientOptions) {
    this.base = options.url.replace(/\/+$/, '');
    this.auth = `Basic ${Buffer.from(`${options.username}:${options.password}`).toString('base64')}`;
  }

  get url(): string {
    return this.base;
  }

  /** Sends a request; resolves with the parsed JSON (undefined for an empty body). */
  async request<T = unknown>(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<T> {
    const h: Record<string, string> = { authorization: this.auth, ...headers };
    let payload: string | undefined;
    if (body !== undefined) {
      payload = typeof body === 'string' ? body : JSON.stringify(body);
      h['content-type'] = 'application/json';
    }
    let res: Response;
    try {
      res = await fetch(this.base + path, { method, headers: h, body: payload ?? null, signal: AbortSignal.timeout(this.options.timeoutMs) });
    } catch (err) {
      const e = err as Error & { cause?: { code?: string; message?: string } };
      throw new Unreachable(this.base, e.cause?.code ?? e.cause?.message ?? e.message);
    }
    const text = await res.text();
    let parsed: unknown;
    if (text !== '') {
      try {
        parsed = JSON.parse(text);
      } catch {
        parsed = text;
      }
    }
    if (!res.ok) {
      const obj = (parsed ?? {}) as { error?: unknown; reason?: unknown };
      const reason = typeof obj.reason === 'string' ? obj.reason : obj.reason === undefined ? '' : JSON.stringify(obj.reason);
      throw new ApiError(res.status, typeof obj.error === 'string' ? obj.error : res.statusText, reason, path);
    }
    return parsed as T;
  }

  get<T = unknown>(path: string): Promise<T> {
    return this.request<T>('GET', path);
  }
  put<T = unknown>(path: string, body: unknown = {}): Promise<T> {
    return this.request<T>('PUT', path, body);
  }
  post<T = unknown>(path: string, body: unknown = {}): Promise<T> {
    return this.request<T>('POST', path, body);
  }
  delete<T = unknown>(path: string, headers: Record<string, string> = {}): Promise<T> {
    return this.request<T>('DELETE', path, undefined, headers);
  }
}

/** A path segment: vhost and object names are URL-encoded ("/" → %2F). */
export const seg = (s: string): string => encodeURIComponent(s);
