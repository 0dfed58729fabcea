// The one way the page talks to Warren: the documented management HTTP API under /api/, with
// HTTP basic auth as RabbitMQ's own UI does. Errors come back as ApiError carrying the API's
// `reason`, which the page shows as is.

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly reason: string,
  ) {
    super(reason);
  }
}

export interface Credentials {
  username: string;
  password: string;
}

let credentials: Credentials | undefined;
/** Called when any request comes back 401: the stored login no longer works. */
let onUnauthorized: (reason: string) => void = () => {};

export function setCredentials(next: Credentials | undefined): void {
  credentials = next;
}

export function setUnauthorizedHandler(handler: (reason: string) => void): void {
  onUnauthorized = handler;
}

function authHeader(creds: Credentials): string {
  const bytes = new TextEncoder().encode(`${creds.username}:${creds.password}`);
  let binary = '';
  for (const b of bytes) binary += String.fromCharCode(b);
  return `Basic ${btoa(binary)}`;
}

/** Path segment encoding as RabbitMQ expects: the default vhost "/" becomes %2F. */
export const seg = (s: string): string => encodeURIComponent(s);

export interface RequestOptions {
  method?: string;
  body?: unknown;
  headers?: Record<string, string>;
  /** Use these credentials instead of the stored ones (the login check). */
  as?: Credentials;
}

export async function api<T>(path: string, options: RequestOptions = {}): Promise<T> {
  const creds = options.as ?? credentials;
  const headers: Record<string, string> = { Accept: 'application/json', ...options.headers };
  if (creds !== undefined) headers['Authorization'] = authHeader(creds);
  let body: string | undefined;
  if (options.body !== undefined) {
    headers['Content-Type'] = 'application/json';
    body = JSON.stringify(options.body);
  }
  let response: Response;
  try {
    response = await fetch(`api${path}`, { method: options.method ?? 'GET', headers, body: body ?? null, credentials: 'omit' });
  } catch {
    throw new ApiError(0, 'Warren is not reachable: check that it is running and that this page’s address is its management listener.');
  }
  const text = await response.text();
  let json: unknown;
  try {
    json = text === '' ? undefined : JSON.parse(text);
  } catch {
    json = undefined;
  }
  if (!response.ok) {
    const reason = errorReason(json, text, response);
    if (response.status === 401 && options.as === undefined) onUnauthorized(reason);
    throw new ApiError(response.status, reason);
  }
  return json as T;
}

function errorReason(json: unknown, text: string, response: Response): string {
  if (json !== null && typeof json === 'object') {
    const { reason, error } = json as { reason?: unknown; error?: unknown };
    if (typeof reason === 'string' && reason !== '') return reason;
    if (typeof error === 'string' && error !== '') return error;
  }
  return text.trim() !== '' ? text.trim().slice(0, 300) : `${response.status} ${response.statusText}`;
}

/** RabbitMQ's paged listing envelope (page, page_size, name, use_regex, sort, sort_reverse). */
export interface Page<T> {
  items: T[];
  page: number;
  page_count: number;
  page_size: number;
  filtered_count: number;
  item_count: number;
  total_count: number;
}

export interface PageQuery {
  page: number;
  pageSize: number;
  name: string;
  useRegex: boolean;
  sort: string;
  sortReverse: boolean;
  columns?: string[];
}

export function pageParams(q: PageQuery): string {
  const p = new URLSearchParams({
    page: String(q.page),
    page_size: String(q.pageSize),
    name: q.name,
    use_regex: String(q.useRegex),
    pagination: 'true',
  });
  if (q.sort !== '') {
    p.set('sort', q.sort);
    p.set('sort_reverse', String(q.sortReverse));
  }
  if (q.columns !== undefined) p.set('columns', q.columns.join(','));
  return p.toString();
}
