// AMQPS with real clients: amqplib and Debian's python3-pika connect with server verification, a
// client certificate logs in with SASL EXTERNAL, and TLS details show on the connection.
// Certificates are made by openssl at test time.

import amqp from 'amqplib';
import { execFile } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rabbitTlsFields } from '../../src/tls/connection-info.js';
import { waitFor } from '../support/wait.js';
import { makeTestPki, type TestPki } from '../support/tls-certificates.js';
import { offeredMechanisms, startLoggedBroker, type LoggedBroker } from './tls-support.js';

const runFile = promisify(execFile);
const pikaScript = join(dirname(fileURLToPath(import.meta.url)), 'pika', 'amqps.py');

let pki: TestPki;
let broker: LoggedBroker;

beforeAll(async () => {
  pki = await makeTestPki();
  broker = await startLoggedBroker({
    tlsCert: pki.server.cert,
    tlsKey: pki.server.key,
    tlsCa: pki.ca,
    tlsVerify: 'peer',
  });
  await broker.broker.admin.putUser('alice', { password: 'not-used-by-external' });
  await broker.broker.admin.setPermission('alice', '/', { configure: '.*', write: '.*', read: '.*' });
});
afterAll(async () => {
  await broker?.stop();
  pki?.remove();
});

const amqpsUrl = (): string => `amqps://guest:guest@127.0.0.1:${broker.tlsPort}`;

describe('AMQPS listener', () => {
  it('listens on both the plain and the TLS port', () => {
    expect(broker.port).toBeGreaterThan(0);
    expect(broker.tlsPort).toBeGreaterThan(0);
    expect(broker.tlsPort).not.toBe(broker.port);
  });

  it('amqplib connects with server verification, and a message goes round', async () => {
    const conn = await amqp.connect(amqpsUrl(), { ca: [pki.read(pki.ca)] });
    try {
      const ch = await conn.createChannel();
      const { queue } = await ch.assertQueue('', { exclusive: true });
      ch.sendToQueue(queue, Buffer.from('over tls'));
      const msg = await waitFor(async () => (await ch.get(queue, { noAck: true })) || null, 'the message');
      expect(msg.content.toString()).toBe('over tls');
      const server = [...broker.server.connections].filter((c) => c.tls !== null);
      expect(server).toHaveLength(1);
      const c = server[0]!;
      expect(c.userName).toBe('guest');
      expect(c.tls).toEqual({
        protocol: 'tlsv1.3',
        keyExchange: 'any',
        cipher: 'aes_256_gcm',
        hash: 'aead',
        peerCertificate: null,
        peerVerified: false,
      });
      expect(rabbitTlsFields(c.tls)).toEqual({
        ssl: true,
        ssl_protocol: 'tlsv1.3',
        ssl_key_exchange: 'any',
        ssl_cipher: 'aes_256_gcm',
        ssl_hash: 'aead',
        peer_cert_subject: null,
        peer_cert_issuer: null,
        peer_cert_validity: null,
      });
    } finally {
      await conn.close();
    }
  });

  it('a plain connection says ssl false', async () => {
    const conn = await amqp.connect(broker.url);
    try {
      const all = [...broker.server.connections];
      expect(all).toHaveLength(1);
      expect(all[0]!.tls).toBeNull();
      expect(rabbitTlsFields(all[0]!.tls).ssl).toBe(false);
    } finally {
      await conn.close();
    }
  });

  it('a client that does not trust the server certificate refuses it (the verification is real)', async () => {
    await expect(amqp.connect(amqpsUrl())).rejects.toThrow(/self-signed certificate in certificate chain/);
  });

  it('TLS 1.2 with a chosen cipher shows RabbitMQ-style cipher parts', async () => {
    const conn = await amqp.connect(amqpsUrl(), {
      ca: [pki.read(pki.ca)],
      maxVersion: 'TLSv1.2',
      ciphers: 'ECDHE-ECDSA-AES128-GCM-SHA256',
    });
    try {
      const c = [...broker.server.connections].filter((c) => c.tls !== null)[0]!;
      expect(rabbitTlsFields(c.tls)).toMatchObject({
        ssl_protocol: 'tlsv1.2',
        ssl_key_exchange: 'ecdhe_ecdsa',
        ssl_cipher: 'aes_128_gcm',
        ssl_hash: 'aead',
      });
    } finally {
      await conn.close();
    }
  });

  it('python3-pika connects with server verification', async () => {
    const { stdout } = await runFile('/usr/bin/python3', [pikaScript, String(broker.tlsPort), pki.ca], { timeout: 20_000 });
    expect(JSON.parse(stdout.trim().split('\n').pop()!)).toEqual({ body: 'pika over tls', product: 'Warren' });
  });
});

describe('SASL EXTERNAL', () => {
  it('is offered only to a client with a verified certificate', async () => {
    const ca = pki.read(pki.ca);
    expect(await offeredMechanisms(broker.tlsPort, { ca })).toBe('PLAIN AMQPLAIN');
    expect(await offeredMechanisms(broker.tlsPort, { ca, cert: pki.read(pki.client.cert), key: pki.read(pki.client.key) })).toBe(
      'PLAIN AMQPLAIN EXTERNAL',
    );
  });

  it('logs a client certificate in as the user named by its CN, and shows the certificate', async () => {
    const conn = await amqp.connect(amqpsUrl(), {
      ca: [pki.read(pki.ca)],
      cert: pki.read(pki.client.cert),
      key: pki.read(pki.client.key),
      credentials: amqp.credentials.external(),
    });
    try {
      const c = [...broker.server.connections].filter((c) => c.tls !== null)[0]!;
      expect(c.userName).toBe('alice');
      const fields = rabbitTlsFields(c.tls);
      expect(fields.peer_cert_subject).toBe('CN=alice,O=Warren Tests,C=GB');
      expect(fields.peer_cert_issuer).toBe('O=Warren Tests,CN=Warren Test CA');
      expect(fields.peer_cert_validity).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ - \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
      const ch = await conn.createChannel();
      await ch.assertQueue('', { exclusive: true });
    } finally {
      await conn.close();
    }
  });

  it('is refused without a client certificate (not offered)', async () => {
    await expect(
      amqp.connect(amqpsUrl(), { ca: [pki.read(pki.ca)], credentials: amqp.credentials.external() }),
    ).rejects.toThrow('SASL mechanism EXTERNAL is not provided by the server');
  });

  it('refuses a certificate whose user does not exist, with ACCESS_REFUSED', async () => {
    const bob = await pki.issue('bob', '/CN=bob');
    await expect(
      amqp.connect(amqpsUrl(), {
        ca: [pki.read(pki.ca)],
        cert: pki.read(bob.cert),
        key: pki.read(bob.key),
        credentials: amqp.credentials.external(),
      }),
    ).rejects.toThrow('ACCESS_REFUSED - Login was refused using authentication mechanism EXTERNAL. For details see the broker logfile.');
    expect(broker.logLines).toContainEqual(
      expect.objectContaining({ msg: 'login refused', user: 'bob', mechanism: 'EXTERNAL', reason: 'invalid credentials' }),
    );
  });

  it('a client certificate from an unknown CA is refused even when not required, with a log line', async () => {
    await expect(
      amqp.connect(amqpsUrl(), {
        ca: [pki.read(pki.ca)],
        cert: pki.read(pki.foreignClient.cert),
        key: pki.read(pki.foreignClient.key),
      }),
    ).rejects.toThrow();
    await waitFor(
      () => broker.logLines.find((l) => l['msg'] === 'TLS client certificate refused; closing connection'),
      'the refusal log line',
    );
    expect(broker.logLines).toContainEqual(
      expect.objectContaining({
        msg: 'TLS client certificate refused; closing connection',
        reason: 'the client certificate is not signed by a CA in --tls-ca (UNABLE_TO_VERIFY_LEAF_SIGNATURE)',
      }),
    );
  });
});
