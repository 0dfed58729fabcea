// The management API over HTTPS with the broker's TLS options: Debian's rabbitmqadmin --ssl
// verifies the server against the test CA and works unchanged; a client that does not trust the
// CA is refused by itself; with client certificates required, one without is turned away.

import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { request } from 'node:https';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestBroker, type TestBroker } from '../support/broker.js';
import { makeTestPki, type KeyPair, type TestPki } from '../support/tls-certificates.js';
import { startLoggedBroker, type LoggedBroker } from './tls-support.js';
import { waitFor } from '../support/wait.js';

const run = promisify(execFile);
const CI_COPY = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '.ci', 'tools', 'rabbitmqadmin');
const RABBITMQADMIN = process.env['RABBITMQADMIN'] ?? (existsSync('/usr/bin/rabbitmqadmin') ? '/usr/bin/rabbitmqadmin' : CI_COPY);

let pki: TestPki;
let broker: TestBroker;

beforeAll(async () => {
  if (!existsSync(RABBITMQADMIN)) throw new Error(`${RABBITMQADMIN} is missing: run .ci/run (it installs Debian's rabbitmqadmin) or set RABBITMQADMIN`);
  pki = await makeTestPki();
  broker = await startTestBroker({
    tlsPort: 0,
    tlsCert: pki.server.cert,
    tlsKey: pki.server.key,
    managementTlsOnFreePort: true,
  });
});
afterAll(async () => {
  await broker?.stop();
  pki?.remove();
});

async function rabbitmqadmin(...args: string[]): Promise<string> {
  const { stdout } = await run(
    RABBITMQADMIN,
    ['--ssl', '-H', '127.0.0.1', '-P', String(broker.management!.tlsPort), '-u', 'guest', '-p', 'guest', ...args],
    { timeout: 20_000 },
  );
  return stdout;
}

/** GET over HTTPS with Node's client: status and body, or the client-side error. */
function httpsGet(port: number, path: string, client?: KeyPair): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path,
        ca: pki.read(pki.ca),
        auth: 'guest:guest',
        ...(client ? { cert: pki.read(client.cert), key: pki.read(client.key) } : {}),
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

describe('management API over HTTPS', () => {
  it('listens on HTTPS only when asked for HTTPS only', () => {
    expect(broker.management!.port).toBe(0);
    expect(broker.management!.tlsPort).toBeGreaterThan(0);
  });

  it('rabbitmqadmin --ssl verifies the server and works unchanged', async () => {
    const ca = ['--ssl-ca-cert-file', pki.ca];
    expect(await rabbitmqadmin(...ca, 'declare', 'queue', 'name=over-https')).toBe('queue declared\n');
    expect(await rabbitmqadmin(...ca, 'publish', 'routing_key=over-https', 'payload=hi')).toBe('Message published\n');
    const queues = JSON.parse(await rabbitmqadmin(...ca, '-f', 'raw_json', 'list', 'queues', 'name', 'messages')) as unknown;
    expect(queues).toEqual([{ name: 'over-https', messages: 1 }]);
    const overview = JSON.parse(await rabbitmqadmin(...ca, '-f', 'raw_json', 'show', 'overview')) as { listeners: { protocol: string; port: number }[] }[];
    expect(overview[0]!.listeners.map((l) => [l.protocol, l.port])).toEqual(
      expect.arrayContaining([
        ['amqp/ssl', broker.tlsPort],
        ['https', broker.management!.tlsPort],
      ]),
    );
  });

  it('rabbitmqadmin --ssl without the CA refuses the server certificate', async () => {
    await expect(rabbitmqadmin('list', 'queues')).rejects.toThrow(/CERTIFICATE_VERIFY_FAILED/);
  });
});

describe('management API over HTTPS with client certificates required', () => {
  let strict: LoggedBroker;
  beforeAll(async () => {
    strict = await startLoggedBroker({
      tlsCert: pki.server.cert,
      tlsKey: pki.server.key,
      tlsCa: pki.ca,
      tlsVerify: 'peer',
      tlsFailIfNoPeerCert: true,
      managementTlsOnFreePort: true,
    });
  });
  afterAll(async () => {
    await strict?.stop();
  });

  it('answers a client with a valid certificate', async () => {
    const { status, body } = await httpsGet(strict.management!.tlsPort, '/api/whoami', pki.client);
    expect(status).toBe(200);
    expect(JSON.parse(body)).toMatchObject({ name: 'guest' });
  });

  it('turns away a client without a certificate, with a log line', async () => {
    await expect(httpsGet(strict.management!.tlsPort, '/api/whoami')).rejects.toThrow();
    await waitFor(
      () =>
        strict.logLines.some(
          (l) =>
            l['msg'] === 'TLS client certificate refused; closing connection' &&
            l['listener'] === 'management https' &&
            l['reason'] === 'the client presented no certificate and --tls-fail-if-no-peer-cert requires one',
        ),
      'the refusal log line',
    );
  });
});
