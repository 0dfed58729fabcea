// The API's route table: method + path pattern → handler, with the tag a caller needs. Patterns are
// literal segments and ":name" parameters; parameters arrive URL-decoded (a vhost "/" is sent as
// %2F, as RabbitMQ's clients do). A path that matches no pattern is 404; a path that matches with
// another method is 405.

import type { IncomingMessage } from 'node:http';
import type { Caller, Requirement } from './auth.js';
import { HttpError, methodNotAllowed, notFound } from './http-error.js';

export type Method = 'GET' | 'PUT' | 'POST' | 'DELETE';

export interface ApiRequest {
  readonly method: Method;
  readonly params: Readonly<Record<string, string>>;
  readonly query: URLSearchParams;
  readonly caller: Caller;
  readonly raw: IncomingMessage;
  /** the JSON body as an object ({} when empty); 400 "not_json" otherwise */
  body(): Promise<Record<string, unknown>>;
}

/** A handler's answer: a JSON body (200), or an explicit status (201/204) with an optional body. */
export class Reply {
  constructor(
    readonly status: number,
    readonly body?: unknown,
    readonly headers: Record<string, string> = {},
  ) {}
}

export const CREATED = new Reply(201);
export const NO_CONTENT = new Reply(204);

export type Handler = (req: ApiRequest) => unknown;

interface Route {
  readonly method: Method;
  readonly segments: readonly string[];
  /** how many segments are parameters */
  readonly params: number;
  readonly requirement: Requirement;
  readonly handle: Handler;
}

export interface Match {
  route: Route;
  params: Record<string, string>;
}

export class Router {
  private readonly routes: Route[] = [];

  add(method: Method, pattern: string, requirement: Requirement, handle: Handler): this {
    const segments = pattern.split('/').filter((s) => s !== '');
    this.routes.push({ method, segments, params: segments.filter((s) => s.startsWith(':')).length, requirement, handle });
    return this;
  }

  get(pattern: string, requirement: Requirement, handle: Handler): this {
    return this.add('GET', pattern, requirement, handle);
  }
  put(pattern: string, requirement: Requirement, handle: Handler): this {
    return this.add('PUT', pattern, requirement, handle);
  }
  post(pattern: string, requirement: Requirement, handle: Handler): this {
    return this.add('POST', pattern, requirement, handle);
  }
  delete(pattern: string, requirement: Requirement, handle: Handler): this {
    return this.add('DELETE', pattern, requirement, handle);
  }

  /** Finds the route for a request path (raw, still URL-encoded). Throws 404/405. */
  match(method: string, rawPath: string): Match {
    let path = rawPath.startsWith('/') ? rawPath.slice(1) : rawPath;
    if (path.endsWith('/')) path = path.slice(0, -1);
    const parts = path.split('/');
    let decoded: string[];
    try {
      decoded = parts.map((p) => decodeURIComponent(p));
    } catch {
      throw notFound();
    }
    // The most literal pattern wins: /api/users/without-permissions before /api/users/:user.
    let pathMatched = false;
    let best: Match | null = null;
    let bestParams = Infinity;
    for (const route of this.routes) {
      const params = matchSegments(route.segments, decoded);
      if (params === null) continue;
      pathMatched = true;
      if (route.method !== method && !(method === 'HEAD' && route.method === 'GET')) continue;
      const count = route.params;
      if (count < bestParams) {
        best = { route, params };
        bestParams = count;
      }
    }
    if (best !== null) return best;
    if (pathMatched) throw methodNotAllowed();
    throw notFound();
  }
}

function matchSegments(pattern: readonly string[], path: readonly string[]): Record<string, string> | null {
  if (pattern.length !== path.length) return null;
  const params: Record<string, string> = {};
  for (let i = 0; i < pattern.length; i++) {
    const p = pattern[i]!;
    if (p.startsWith(':')) params[p.slice(1)] = path[i]!;
    else if (p !== path[i]) return null;
  }
  return params;
}

export { HttpError };
