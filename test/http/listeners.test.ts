// Every HTTP surface of the broker — the management API and the Prometheus endpoint, each over HTTP
// and HTTPS — runs on the one listener in src/http/listener.ts, so each meets hostile requests the
// same way: garbage instead of a request line is a 400, headers over 16 KiB are a 431, and the
// listener keeps serving afterwards.

import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestBroker, type TestBroker } from '../support/broker.js';
import { makeTestPki, type TestPki } from '../support/tls-certificates.js';

let pki: TestPki;
let broker: TestBroker;

beforeAll(async () => {
  pki = await makeTestPki();
  broker = await startTestBroker({
    tlsPort: 0,
    tlsCert: pki.server.cert,
    tlsKey: pki.server.key,
    managementOnFreePort: true,
    managementTlsOnFreePort: true,
    metricsOnFreePort: true,
    metricsTlsOnFreePort: true,
  });
});
afterAll(async () => {
  await broker?.stop();
  pki?.remove();
});

interface Surface {
  name: string;
  port: () => number;
  tls: boolean;
  /** a request that answers 200 */
  okRequest: string;
}

const AUTH = `Authorization: Basic ${Buffer.from('guest:guest').toString('base64')}`;
const SURFACES: Surface[] = [
  { name: 'management http', port: () => broker.management!.port, tls: false, okRequest: `GET /api/whoami HTTP/1.1\r\nHost: x\r\n${AUTH}\r\nConnection: close\r\n\r\n` },
  { name: 'management https', port: () => broker.management!.tlsPort, tls: true, okRequest: `GET /api/whoami HTTP/1.1\r\nHost: x\r\n${AUTH}\r\nConnection: close\r\n\r\n` },
  { name: 'metrics http', port: () => broker.metrics!.port, tls: false, okRequest: 'GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' },
  { name: 'metrics https', port: () => broker.metrics!.tlsPort, tls: true, okRequest: 'GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' },
];

/** Sends raw bytes (over TLS with the test CA when asked) and resolves with all the answer. */
function raw(surface: Surface, bytes: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const port = surface.port();
    const socket: Socket = surface.tls
      ? tlsConnect({ host: '127.0.0.1', port, ca: pki.read(pki.ca) }, () => socket.end(bytes))
      : netConnect(port, '127.0.0.1', () => socket.end(bytes));
    let answer = '';
    socket.on('data', (c: Buffer) => (answer += c.toString()));
    socket.on('close', () => resolve(answer));
    socket.on('error', reject);
    socket.setTimeout(10_000, () => socket.destroy(new Error(`no answer from ${surface.name} within 10 s`)));
  });
}

describe.each(SURFACES)('$name', (surface) => {
  it('listens', () => {
    expect(surface.port()).toBeGreaterThan(0);
  });

  it('answers garbage with 400 and keeps serving', async () => {
    expect(await raw(surface, 'NOT HTTP AT ALL\r\n\r\n')).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n/);
    expect(await raw(surface, surface.okRequest)).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
  });

  it('answers headers over 16 KiB with 431 and keeps serving', async () => {
    const big = `GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`;
    expect(await raw(surface, big)).toMatch(/^HTTP\/1\.1 431 Request Header Fields Too Large\r\n/);
    expect(await raw(surface, surface.okRequest)).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
  });
});

describe('the overview lists every HTTP listener, as RabbitMQ', () => {
  it('http, https, http/prometheus and https/prometheus, with RabbitMQ’s contexts', async () => {
    const res = await fetch(`http://127.0.0.1:${broker.management!.port}/api/overview`, {
      headers: { authorization: `Basic ${Buffer.from('guest:guest').toString('base64')}` },
    });
    const overview = (await res.json()) as { listeners: { protocol: string; port: number }[]; contexts: Record<string, string>[] };
    expect(overview.listeners.map((l) => [l.protocol, l.port])).toEqual([
      ['amqp', broker.port],
      ['amqp/ssl', broker.tlsPort],
      ['http', broker.management!.port],
      ['https', broker.management!.tlsPort],
      ['http/prometheus', broker.metrics!.port],
      ['https/prometheus', broker.metrics!.tlsPort],
    ]);
    expect(overview.contexts.map((c) => [c['description'], c['port'], c['protocol']])).toEqual([
      ['RabbitMQ Management', String(broker.management!.port), undefined],
      ['RabbitMQ Management', String(broker.management!.tlsPort), undefined],
      ['RabbitMQ Prometheus', String(broker.metrics!.port), "'http/prometheus'"],
      ['RabbitMQ Prometheus', String(broker.metrics!.tlsPort), "'https/prometheus'"],
    ]);
  });
});
