// The management API shows TLS as RabbitMQ does: a certificate-login connection's ssl* and
// peer_cert_* fields and auth_mechanism, the amqp/ssl listener, and EXTERNAL among the mechanisms.

import amqp, { type ChannelModel } from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestBroker, type TestBroker } from '../support/broker.js';
import { waitFor } from '../support/wait.js';
import { makeTestPki, type TestPki } from '../support/tls-certificates.js';

let pki: TestPki;
let broker: TestBroker;
let client: ChannelModel;

beforeAll(async () => {
  pki = await makeTestPki();
  broker = await startTestBroker({
    tlsPort: 0,
    tlsCert: pki.server.cert,
    tlsKey: pki.server.key,
    tlsCa: pki.ca,
    tlsVerify: 'peer',
    managementOnFreePort: true,
  });
  await broker.broker.admin.putUser('alice', { password: 'not-used-by-external' });
  await broker.broker.admin.setPermission('alice', '/', { configure: '.*', write: '.*', read: '.*' });
  client = await amqp.connect(`amqps://127.0.0.1:${broker.tlsPort}`, {
    ca: [pki.read(pki.ca)],
    cert: pki.read(pki.client.cert),
    key: pki.read(pki.client.key),
    credentials: amqp.credentials.external(),
  });
});
afterAll(async () => {
  await client?.close();
  await broker?.stop();
  pki?.remove();
});

async function api(path: string): Promise<unknown> {
  const res = await fetch(`http://127.0.0.1:${broker.management!.port}/api/${path}`, {
    headers: { authorization: `Basic ${Buffer.from('guest:guest').toString('base64')}` },
  });
  expect(res.status).toBe(200);
  return res.json();
}

describe('TLS in the management API', () => {
  it('a certificate-login connection shows RabbitMQ’s ssl and peer_cert fields', async () => {
    const rows = await waitFor(async () => {
      const all = (await api('connections')) as Record<string, unknown>[];
      return all.length === 1 ? all : null;
    }, 'the connection to be listed');
    const { peer_cert_validity: validity, ...row } = rows[0]!;
    expect(row).toMatchObject({
      auth_mechanism: 'EXTERNAL',
      user: 'alice',
      port: broker.tlsPort,
      ssl: true,
      ssl_protocol: 'tlsv1.3',
      ssl_key_exchange: 'any',
      ssl_cipher: 'aes_256_gcm',
      ssl_hash: 'aead',
      peer_cert_subject: 'CN=alice,O=Warren Tests,C=GB',
      peer_cert_issuer: 'O=Warren Tests,CN=Warren Test CA',
    });
    expect(validity).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ - \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  });

  it('lists the amqp/ssl listener next to amqp', async () => {
    const overview = (await api('overview')) as { listeners: { protocol: string; port: number }[] };
    expect(overview.listeners.map((l) => [l.protocol, l.port])).toEqual(
      expect.arrayContaining([
        ['amqp', broker.port],
        ['amqp/ssl', broker.tlsPort],
      ]),
    );
  });

  it('shows EXTERNAL as an enabled mechanism when client certificates are verified', async () => {
    const [node] = (await api('nodes')) as { auth_mechanisms: { name: string; enabled: boolean }[] }[];
    expect(node!.auth_mechanisms.find((m) => m.name === 'EXTERNAL')).toMatchObject({ enabled: true });
  });
});
