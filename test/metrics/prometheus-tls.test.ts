// The Prometheus endpoint over HTTPS (--prometheus-tls-port, as RabbitMQ's prometheus.ssl.*), on
// the broker's own certificate settings: a real Prometheus scrapes bin/warren over https with the
// test CA in its tls_config and reads exact counters; a Prometheus job and a Node client that do
// not trust the CA are refused by themselves; a plain-http client on the TLS port is turned away
// with a log line; SIGHUP's certificate reload reaches the metrics listener; and with client
// certificates required, Prometheus scrapes with its cert_file/key_file while a client without
// one is refused.

import amqp from 'amqplib';
import { copyFileSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../support/broker.js';
import { ChildBroker, freePort } from '../support/child-broker.js';
import { logRecords } from '../support/per-test-child-broker.js';
import { makeTestPki, type KeyPair, type TestPki } from '../support/tls-certificates.js';
import { waitFor } from '../support/wait.js';
import { startLoggedBroker, type LoggedBroker } from '../tls/tls-support.js';
import { PrometheusServer } from './prometheus-server.js';

let pki: TestPki;
let child: ChildBroker;
let strict: LoggedBroker;
let prometheus: PrometheusServer;
let metricsTlsPort: number;
let liveCert: string;
let liveKey: string;

beforeAll(async () => {
  pki = await makeTestPki();
  liveCert = join(pki.dir, 'live.pem');
  liveKey = join(pki.dir, 'live.key');
  copyFileSync(pki.server.cert, liveCert);
  copyFileSync(pki.server.key, liveKey);
  metricsTlsPort = await freePort();
  // As users run it: HTTPS metrics only (ChildBroker turns --prometheus-port off).
  child = await ChildBroker.start(tempDir(), undefined, [
    '--tls-port', String(await freePort()),
    '--tls-cert', liveCert,
    '--tls-key', liveKey,
    '--prometheus-tls-port', String(metricsTlsPort),
    '--log-level', 'info',
  ]);
  strict = await startLoggedBroker({
    tlsCert: pki.server.cert,
    tlsKey: pki.server.key,
    tlsCa: pki.ca,
    tlsVerify: 'peer',
    tlsFailIfNoPeerCert: true,
    metricsTlsOnFreePort: true,
  });
  prometheus = await PrometheusServer.start([
    { job: 'https', address: `127.0.0.1:${metricsTlsPort}`, path: '/metrics', https: { caFile: pki.ca } },
    { job: 'https-without-ca', address: `127.0.0.1:${metricsTlsPort}`, path: '/metrics', https: {}, expectUp: false },
    {
      job: 'https-client-cert',
      address: `127.0.0.1:${strict.metrics!.tlsPort}`,
      path: '/metrics/per-object',
      https: { caFile: pki.ca, certFile: pki.client.cert, keyFile: pki.client.key },
    },
  ]);
}, 90_000);

afterAll(async () => {
  await prometheus?.stop();
  await child?.stop();
  await strict?.stop();
  pki?.remove();
});

const output = (): string => child.output.join('');

/** GET over HTTPS with Node's client: status and body, or the client-side error. */
function httpsGet(port: number, path: string, options: { ca?: boolean; client?: KeyPair }): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path,
        ...(options.ca === true ? { ca: pki.read(pki.ca) } : {}),
        ...(options.client ? { cert: pki.read(options.client.cert), key: pki.read(options.client.key) } : {}),
      },
      (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

/** The organisation in the certificate the metrics listener presents now. */
function presentedOrganisation(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: '127.0.0.1', port, ca: pki.read(pki.ca) }, () => {
      const o = String(socket.getPeerCertificate().subject.O);
      socket.end();
      resolve(o);
    });
    socket.on('error', reject);
  });
}

describe('Prometheus metrics over HTTPS (bin/warren)', () => {
  it('listens on HTTPS only, and says where', () => {
    expect(output()).toContain(`warren: Prometheus metrics on https://127.0.0.1:${metricsTlsPort}/metrics\n`);
    expect(output()).not.toContain('Prometheus metrics on http://');
  });

  it('a real Prometheus with the CA in tls_config scrapes it and reads exact counters', async () => {
    const conn = await amqp.connect(child.url);
    try {
      const ch = await conn.createConfirmChannel();
      const { queue } = await ch.assertQueue('', { exclusive: true });
      for (let i = 0; i < 7; i++) ch.sendToQueue(queue, Buffer.from(`m${i}`));
      await ch.waitForConfirms();
      const published = Date.now();
      await prometheus.scrapedAfter(published, 20_000, ['https']);
      expect(await prometheus.value('rabbitmq_global_messages_received_total{job="https",protocol="amqp091"}')).toBe(7);
      expect(await prometheus.value('rabbitmq_global_messages_confirmed_total{job="https",protocol="amqp091"}')).toBe(7);
      expect(await prometheus.value('rabbitmq_queue_messages_ready{job="https"}')).toBe(7);
      const identity = await prometheus.query('rabbitmq_identity_info{job="https"}');
      expect(identity.map((s) => s.metric['rabbitmq_endpoint'])).toEqual(['aggregated']);
    } finally {
      await conn.close();
    }
  });

  it('a Prometheus job without the CA is refused by its own verification', async () => {
    const target = await waitFor(async () => (await prometheus.targets()).find((t) => t.job === 'https-without-ca' && t.lastError !== ''), 'the job without the CA to be tried', 20_000);
    expect(target.health).toBe('down');
    expect(target.lastError).toContain('x509: certificate signed by unknown authority');
  });

  it('a client without the CA refuses the server certificate; with it, it gets the metrics', async () => {
    await expect(httpsGet(metricsTlsPort, '/metrics', {})).rejects.toMatchObject({ code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' });
    const ok = await httpsGet(metricsTlsPort, '/metrics', { ca: true });
    expect(ok.status).toBe(200);
    expect(ok.body).toContain('rabbitmq_identity_info{');
  });

  it('a plain-http client on the HTTPS port gets no answer and a log line says why', async () => {
    await expect(fetch(`http://127.0.0.1:${metricsTlsPort}/metrics`)).rejects.toThrow();
    await waitFor(
      () =>
        logRecords(child, 'TLS handshake failed; closing connection').some(
          (l) =>
            l['listener'] === 'prometheus https' &&
            l['reason'] === 'the client did not start a TLS handshake (a plain amqp:// or http:// client on the TLS port?)',
        ),
      'the handshake log line',
    );
  });

  it('SIGHUP re-reads the certificate for the metrics listener too, and Prometheus keeps scraping', async () => {
    expect(await presentedOrganisation(metricsTlsPort)).toBe('Warren Tests');
    const renewed = await pki.issue('renewed-metrics', '/CN=localhost/O=Renewed', { serverNames: true });
    copyFileSync(renewed.cert, liveCert);
    copyFileSync(renewed.key, liveKey);
    child.process.kill('SIGHUP');
    await waitFor(() => output().includes('TLS certificates reloaded'), 'the reload log line');
    expect(await presentedOrganisation(metricsTlsPort)).toBe('Renewed');
    await prometheus.scrapedAfter(Date.now(), 20_000, ['https']);
  });
});

describe('Prometheus metrics over HTTPS with client certificates required', () => {
  it('Prometheus scrapes with its client certificate', async () => {
    await prometheus.scrapedAfter(0, 20_000, ['https-client-cert']);
    const identity = await prometheus.query('rabbitmq_identity_info{job="https-client-cert"}');
    expect(identity.map((s) => s.metric['rabbitmq_endpoint'])).toEqual(['per-object']);
  });

  it('a client without a certificate is turned away, with a log line', async () => {
    await expect(httpsGet(strict.metrics!.tlsPort, '/metrics', { ca: true })).rejects.toThrow();
    await waitFor(
      () =>
        strict.logLines.some(
          (l) =>
            l['msg'] === 'TLS client certificate refused; closing connection' &&
            l['listener'] === 'prometheus https' &&
            l['reason'] === 'the client presented no certificate and --tls-fail-if-no-peer-cert requires one',
        ),
      'the refusal log line',
    );
    const ok = await httpsGet(strict.metrics!.tlsPort, '/metrics', { ca: true, client: pki.client });
    expect(ok.status).toBe(200);
  });

  it('the plain metrics port stays off unless asked for', () => {
    expect(strict.metrics!.port).toBe(0);
    expect(strict.metrics!.tlsPort).toBeGreaterThan(0);
  });
});
