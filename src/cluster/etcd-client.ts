// A small client for etcd's v3 JSON gateway (etcd 3.4: POST /v3/kv/*, /v3/lease/*,
// /v3/election/*, /v3/watch) over Node's own http module. Keys and values travel base64-encoded,
// 64-bit integers as decimal strings (lease ids stay strings: they exceed 2^53).
//
// Every call goes to one endpoint at a time; a connection error or a 5xx moves on to the next
// endpoint (members of one etcd cluster are interchangeable for clients), and a call fails only
// when every endpoint failed or its deadline passed. Long calls (campaign, watch) take an
// AbortSignal so that the caller can give up; etcd cancels the server side when the request goes.

import { Agent, request, type IncomingMessage } from 'node:http';

export class EtcdError extends Error {
  constructor(
    message: string,
    /** true when no endpoint answered at all (etcd unreachable), false for an answer that says no */
    readonly unreachable: boolean,
  ) {
    super(message);
  }
}

export interface KeyValue {
  key: string;
  value: Buffer;
  createRevision: number;
  modRevision: number;
  version: number;
  /** lease id ('0' when none) */
  lease: string;
}

/** etcd's election leader key (what campaign returns; resign and proclaim take it back). */
export interface LeaderKey {
  name: string;
  key: string;
  rev: string;
  lease: string;
}

export type Compare =
  | { key: string; target: 'CREATE'; result: 'EQUAL' | 'GREATER' | 'LESS' | 'NOT_EQUAL'; createRevision: number }
  | { key: string; target: 'MOD'; result: 'EQUAL' | 'GREATER' | 'LESS' | 'NOT_EQUAL'; modRevision: number }
  | { key: string; target: 'VALUE'; result: 'EQUAL' | 'NOT_EQUAL'; value: Buffer | string };

export type TxnOp =
  | { put: { key: string; value: Buffer | string; lease?: string } }
  | { range: { key: string; prefix?: boolean } }
  | { deleteRange: { key: string; prefix?: boolean } };

export interface TxnResult {
  succeeded: boolean;
  revision: number;
  /** per op: the kvs of range ops (empty for puts and deletes) */
  responses: KeyValue[][];
}

export interface WatchEvent {
  type: 'PUT' | 'DELETE';
  kv: KeyValue;
}

interface RawKv {
  key?: string;
  value?: string;
  create_revision?: string;
  mod_revision?: string;
  version?: string;
  lease?: string;
}

const b64 = (s: string | Buffer): string => (typeof s === 'string' ? Buffer.from(s, 'utf8') : s).toString('base64');

/** The key just after every key that starts with `prefix` (etcd's range_end for a prefix). */
function prefixEnd(prefix: string): Buffer {
  const bytes = Buffer.from(prefix, 'utf8');
  for (let i = bytes.length - 1; i >= 0; i--) {
    if (bytes[i]! < 0xff) {
      const end = Buffer.from(bytes.subarray(0, i + 1));
      end[i]!++;
      return end;
    }
  }
  return Buffer.from([0]);
}

function rangeEnd(key: string, prefix: boolean | undefined): string | undefined {
  return prefix ? prefixEnd(key).toString('base64') : undefined;
}

function decodeKv(raw: RawKv): KeyValue {
  return {
    key: Buffer.from(raw.key ?? '', 'base64').toString('utf8'),
    value: Buffer.from(raw.value ?? '', 'base64'),
    createRevision: Number(raw.create_revision ?? 0),
    modRevision: Number(raw.mod_revision ?? 0),
    version: Number(raw.version ?? 0),
    lease: raw.lease ?? '0',
  };
}

function encodeOp(op: TxnOp): Record<string, unknown> {
  if ('put' in op) {
    const put: Record<string, unknown> = { key: b64(op.put.key), value: b64(op.put.value) };
    if (op.put.lease !== undefined) put['lease'] = op.put.lease;
    return { request_put: put };
  }
  if ('range' in op) return { request_range: { key: b64(op.range.key), range_end: rangeEnd(op.range.key, op.range.prefix) } };
  return { request_delete_range: { key: b64(op.deleteRange.key), range_end: rangeEnd(op.deleteRange.key, op.deleteRange.prefix) } };
}

function encodeCompare(c: Compare): Record<string, unknown> {
  const out: Record<string, unknown> = { key: b64(c.key), target: c.target, result: c.result };
  if (c.target === 'CREATE') out['create_revision'] = String(c.createRevision);
  else if (c.target === 'MOD') out['mod_revision'] = String(c.modRevision);
  else out['value'] = b64(c.value);
  return out;
}

export interface EtcdClientOptions {
  /** deadline of one ordinary call across all endpoints */
  timeoutMs?: number;
}

export class EtcdClient {
  private readonly endpoints: URL[];
  /** the endpoint that answered last: tried first next time */
  private current = 0;
  private readonly agent = new Agent({ keepAlive: true, maxSockets: 8 });
  private readonly timeoutMs: number;

  constructor(endpoints: readonly string[], options: EtcdClientOptions = {}) {
    if (endpoints.length === 0) throw new Error('no etcd endpoints: give --etcd-endpoints http://host:2379,…');
    this.endpoints = endpoints.map((e) => new URL(/^https?:\/\//.test(e) ? e : `http://${e}`));
    this.timeoutMs = options.timeoutMs ?? 5000;
  }

  get endpointList(): string[] {
    return this.endpoints.map((e) => e.origin);
  }

  // ---- KV -----------------------------------------------------------------------------------------

  async range(key: string, options: { prefix?: boolean } = {}): Promise<{ kvs: KeyValue[]; revision: number }> {
    const res = await this.call<{ kvs?: RawKv[]; header?: { revision?: string } }>('/v3/kv/range', {
      key: b64(key),
      range_end: rangeEnd(key, options.prefix),
    });
    return { kvs: (res.kvs ?? []).map(decodeKv), revision: Number(res.header?.revision ?? 0) };
  }

  async get(key: string): Promise<KeyValue | null> {
    const { kvs } = await this.range(key);
    return kvs[0] ?? null;
  }

  async put(key: string, value: Buffer | string, lease?: string): Promise<number> {
    const body: Record<string, unknown> = { key: b64(key), value: b64(value) };
    if (lease !== undefined) body['lease'] = lease;
    const res = await this.call<{ header?: { revision?: string } }>('/v3/kv/put', body);
    return Number(res.header?.revision ?? 0);
  }

  async deleteRange(key: string, options: { prefix?: boolean } = {}): Promise<number> {
    const res = await this.call<{ deleted?: string }>('/v3/kv/deleterange', { key: b64(key), range_end: rangeEnd(key, options.prefix) });
    return Number(res.deleted ?? 0);
  }

  async txn(compare: Compare[], success: TxnOp[], failure: TxnOp[] = []): Promise<TxnResult> {
    const res = await this.call<{
      succeeded?: boolean;
      header?: { revision?: string };
      responses?: { response_range?: { kvs?: RawKv[] } }[];
    }>('/v3/kv/txn', { compare: compare.map(encodeCompare), success: success.map(encodeOp), failure: failure.map(encodeOp) });
    return {
      succeeded: res.succeeded === true,
      revision: Number(res.header?.revision ?? 0),
      responses: (res.responses ?? []).map((r) => (r.response_range?.kvs ?? []).map(decodeKv)),
    };
  }

  // ---- Leases -------------------------------------------------------------------------------------

  async leaseGrant(ttlSec: number): Promise<{ id: string; ttlSec: number }> {
    const res = await this.call<{ ID?: string; TTL?: string; error?: string }>('/v3/lease/grant', { TTL: String(ttlSec) });
    if (res.ID === undefined) throw new EtcdError(`etcd granted no lease: ${res.error ?? 'no id in the answer'}`, false);
    return { id: res.ID, ttlSec: Number(res.TTL ?? ttlSec) };
  }

  /** Renews the lease once; returns its remaining TTL in seconds (0: the lease is gone). */
  async leaseKeepAlive(id: string, timeoutMs?: number): Promise<number> {
    const res = await this.call<{ result?: { TTL?: string } }>('/v3/lease/keepalive', { ID: id }, timeoutMs);
    return Number(res.result?.TTL ?? 0);
  }

  async leaseRevoke(id: string): Promise<void> {
    await this.call('/v3/lease/revoke', { ID: id });
  }

  // ---- Election -----------------------------------------------------------------------------------

  /**
   * Waits until this lease holds the election `name` (etcd's election service: the oldest key under
   * name/ wins). Rejects when aborted; etcd then removes the candidate key itself.
   */
  async campaign(name: string, lease: string, value: Buffer | string, signal: AbortSignal): Promise<LeaderKey> {
    const res = await this.call<{ leader?: LeaderKey }>(
      '/v3/election/campaign',
      { name: b64(name), lease, value: b64(value) },
      0,
      signal,
    );
    if (res.leader === undefined) throw new EtcdError('etcd answered the campaign without a leader key', false);
    return res.leader;
  }

  async resign(leader: LeaderKey): Promise<void> {
    await this.call('/v3/election/resign', { leader });
  }

  /** The current holder of election `name`, or null when nobody holds it. */
  async leader(name: string): Promise<KeyValue | null> {
    try {
      const res = await this.call<{ kv?: RawKv }>('/v3/election/leader', { name: b64(name) });
      return res.kv === undefined ? null : decodeKv(res.kv);
    } catch (err) {
      if (err instanceof EtcdError && !err.unreachable && /no leader/.test(err.message)) return null;
      throw err;
    }
  }

  // ---- Watch --------------------------------------------------------------------------------------

  /**
   * Streams changes under `prefix` from `fromRevision` on to `onEvents` until the signal aborts or
   * the stream breaks (the promise then settles: resolves on abort, rejects on a break).
   */
  watch(prefix: string, fromRevision: number, onEvents: (events: WatchEvent[], revision: number) => void, signal: AbortSignal): Promise<void> {
    const body = { create_request: { key: b64(prefix), range_end: rangeEnd(prefix, true), start_revision: String(fromRevision) } };
    return this.stream('/v3/watch', body, signal, (msg: { result?: { events?: { type?: string; kv?: RawKv }[]; header?: { revision?: string }; canceled?: boolean; compact_revision?: string } }) => {
      const r = msg.result;
      if (r === undefined) return;
      if (r.canceled) throw new EtcdError(`etcd cancelled the watch (compacted at ${r.compact_revision ?? '?'})`, false);
      const events = (r.events ?? []).map((e) => ({ type: e.type === 'DELETE' ? ('DELETE' as const) : ('PUT' as const), kv: decodeKv(e.kv ?? {}) }));
      if (events.length > 0) onEvents(events, Number(r.header?.revision ?? 0));
    });
  }

  close(): void {
    this.agent.destroy();
  }

  // ---- Transport ----------------------------------------------------------------------------------

  /** One JSON call, endpoint after endpoint until one answers; timeoutMs 0 = no deadline. */
  private async call<T>(path: string, body: unknown, timeoutMs = this.timeoutMs, signal?: AbortSignal): Promise<T> {
    const payload = JSON.stringify(body);
    const deadline = timeoutMs > 0 ? Date.now() + timeoutMs : Infinity;
    let lastError: Error | null = null;
    for (let attempt = 0; attempt < this.endpoints.length; attempt++) {
      const index = (this.current + attempt) % this.endpoints.length;
      const remaining = deadline - Date.now();
      if (remaining <= 0) break;
      try {
        const result = await this.once<T>(this.endpoints[index]!, path, payload, remaining === Infinity ? 0 : remaining, signal);
        this.current = index;
        return result;
      } catch (err) {
        if (signal?.aborted) throw err;
        if (err instanceof EtcdError && !err.unreachable) throw err;
        lastError = err as Error;
      }
    }
    throw new EtcdError(`etcd unreachable at ${this.endpointList.join(', ')}: ${lastError?.message ?? 'deadline passed'}`, true);
  }

  private once<T>(endpoint: URL, path: string, payload: string, timeoutMs: number, signal?: AbortSignal): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const req = request(
        {
          hostname: endpoint.hostname,
          port: endpoint.port,
          path,
          method: 'POST',
          agent: signal === undefined ? this.agent : false,
          headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) },
          ...(signal === undefined ? {} : { signal }),
        },
        (res) => {
          readAll(res).then((text) => {
            let parsed: unknown;
            try {
              parsed = JSON.parse(text);
            } catch {
              reject(new EtcdError(`etcd at ${endpoint.origin} sent a non-JSON answer (HTTP ${res.statusCode})`, (res.statusCode ?? 0) >= 500));
              return;
            }
            if ((res.statusCode ?? 0) >= 400) {
              const message = (parsed as { error?: string; message?: string }).message ?? (parsed as { error?: string }).error ?? text;
              // 5xx from one member (no leader, shutting down) is worth trying on another.
              reject(new EtcdError(`etcd ${path} failed: ${message}`, (res.statusCode ?? 0) >= 500 && !/lease not found|requested lease not found/.test(message)));
              return;
            }
            resolve(parsed as T);
          }, reject);
        },
      );
      if (timeoutMs > 0) {
        req.setTimeout(timeoutMs, () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
      }
      req.on('error', (err) => reject(err));
      req.end(payload);
    });
  }

  /** A streaming call: newline-separated JSON objects, each given to onMessage. */
  private stream<M>(path: string, body: unknown, signal: AbortSignal, onMessage: (msg: M) => void): Promise<void> {
    const payload = JSON.stringify(body);
    const endpoint = this.endpoints[this.current]!;
    this.current = (this.current + 1) % this.endpoints.length; // the next stream tries the next member
    return new Promise<void>((resolve, reject) => {
      if (signal.aborted) return resolve();
      const req = request({
        hostname: endpoint.hostname,
        port: endpoint.port,
        path,
        method: 'POST',
        agent: false,
        signal,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) },
      });
      let settled = false;
      const finish = (err: Error | null): void => {
        if (settled) return;
        settled = true;
        if (err === null || signal.aborted) resolve();
        else reject(err);
      };
      req.on('response', (res: IncomingMessage) => {
        if ((res.statusCode ?? 0) >= 400) {
          res.resume();
          finish(new EtcdError(`etcd ${path} at ${endpoint.origin} answered HTTP ${res.statusCode}`, true));
          return;
        }
        let pending = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          pending += chunk;
          let nl: number;
          while ((nl = pending.indexOf('\n')) >= 0) {
            const line = pending.slice(0, nl).trim();
            pending = pending.slice(nl + 1);
            if (line === '') continue;
            try {
              onMessage(JSON.parse(line) as M);
            } catch (err) {
              req.destroy();
              finish(err as Error);
              return;
            }
          }
          // grpc-gateway may send one object per chunk without a newline: try the whole buffer.
          if (pending.length > 0 && pending.trimEnd().endsWith('}')) {
            try {
              const msg = JSON.parse(pending) as M;
              pending = '';
              onMessage(msg);
            } catch (err) {
              if (err instanceof EtcdError) {
                req.destroy();
                finish(err);
              }
              // otherwise incomplete: wait for more
            }
          }
        });
        res.on('end', () => finish(new EtcdError(`etcd closed the ${path} stream`, true)));
        res.on('error', (err) => finish(err));
      });
      req.on('error', (err) => finish(signal.aborted ? null : new EtcdError(`etcd ${path} stream at ${endpoint.origin}: ${err.message}`, true)));
      req.end(payload);
    });
  }
}

function readAll(res: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    res.on('data', (c: Buffer) => chunks.push(c));
    res.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    res.on('error', reject);
  });
}
