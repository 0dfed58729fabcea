// Bad input is normal input for the management API: broken auth headers, paths that do not decode,
// bodies that are not JSON objects, absurd listing parameters, raw garbage on the socket. Each gets
// an answer (RabbitMQ's where it has one), and the API keeps serving.

import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApiClient } from './api-client.js';
import { startMgmtTarget, EXTERNAL_MGMT, type MgmtTarget } from './target.js';

let target: MgmtTarget;
let api: ApiClient;

beforeAll(async () => {
  target = await startMgmtTarget();
  api = target.api;
});
afterAll(async () => {
  await target?.stop();
});

function raw(bytes: string): Promise<string> {
  const url = new URL(target.apiUrl);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(url.port), url.hostname);
    let answer = '';
    socket.on('data', (c) => (answer += c.toString()));
    socket.on('end', () => resolve(answer));
    socket.on('error', reject);
    socket.end(bytes);
  });
}

describe.skipIf(EXTERNAL_MGMT)('hostile requests', () => {
  it('answers broken Authorization headers', async () => {
    expect((await api.as('', '').request('GET', '/api/overview', undefined, { authorization: 'Basic !!!' })).status).toBe(400);
    expect((await api.as('', '').request('GET', '/api/overview', undefined, { authorization: 'Bearer abc' })).status).toBe(401);
    expect((await api.as('', '').request('GET', '/api/overview', undefined, { authorization: `Basic ${Buffer.from('nocolon').toString('base64')}` })).status).toBe(400);
  });

  it('answers paths that do not decode, and bodies that are not JSON objects', async () => {
    expect((await api.get('/api/queues/%E0%A4%A')).status).toBe(404);
    for (const body of ['[1,2]', '"text"', '{"a":', 'null']) {
      const r = await api.request('PUT', '/api/queues/%2F/hostile', body);
      expect(r.body, body).toEqual({ error: 'bad_request', reason: 'not_json' });
    }
    const deep = '{"arguments":' + '{"a":'.repeat(5000) + '1' + '}'.repeat(5000) + '}';
    expect((await api.request('PUT', '/api/queues/%2F/hostile-deep', deep)).body).toEqual({ error: 'bad_request', reason: 'JSON nested deeper than 64 levels' });
  });

  it('answers absurd listing parameters', async () => {
    expect((await api.get('/api/queues?page=99999999999999999999')).status).toBe(400);
    expect((await api.get('/api/queues?sort=' + 'a.'.repeat(1000))).status).toBe(200);
    expect((await api.get('/api/queues?columns=' + ','.repeat(1000))).status).toBe(200);
    expect((await api.get('/api/queues?page=1&use_regex=true&name=' + encodeURIComponent('(a+)+$'))).status).toBe(200);
  });

  it('survives garbage on the socket and keeps serving', async () => {
    const answer = await raw('NOT HTTP AT ALL\r\n\r\n');
    expect(answer).toMatch(/^HTTP\/1\.1 400/);
    expect((await api.get('/api/whoami')).status).toBe(200);
  });
});
