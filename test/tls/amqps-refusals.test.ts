// Bad TLS input is normal input: with client certificates required, a missing, expired or
// unknown-CA certificate, a plain AMQP client on the TLS port and a handshake that stalls are each
// closed with one log line saying why, while an established client carries on untouched.

import amqp, { type Channel, type ChannelModel } from 'amqplib';
import { connect as netConnect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../support/wait.js';
import { PROTOCOL_HEADER } from '../support/raw-client.js';
import { makeTestPki, type KeyPair, type TestPki } from '../support/tls-certificates.js';
import { startLoggedBroker, type LoggedBroker } from './tls-support.js';

const HANDSHAKE_TIMEOUT_MS = 1000;
let pki: TestPki;
let broker: LoggedBroker;
let bystander: ChannelModel;
let bystanderChannel: Channel;

beforeAll(async () => {
  pki = await makeTestPki();
  broker = await startLoggedBroker({
    tlsCert: pki.server.cert,
    tlsKey: pki.server.key,
    tlsCa: pki.ca,
    tlsVerify: 'peer',
    tlsFailIfNoPeerCert: true,
    handshakeTimeoutMs: HANDSHAKE_TIMEOUT_MS,
  });
  bystander = await amqp.connect(amqpsUrl(), tlsOptions(pki.client));
  bystanderChannel = await bystander.createChannel();
  await bystanderChannel.assertQueue('bystander');
});
afterAll(async () => {
  await bystander?.close();
  await broker?.stop();
  pki?.remove();
});

const amqpsUrl = (): string => `amqps://guest:guest@127.0.0.1:${broker.tlsPort}`;
const tlsOptions = (pair?: KeyPair): Record<string, unknown> => ({
  ca: [pki.read(pki.ca)],
  ...(pair ? { cert: pki.read(pair.cert), key: pki.read(pair.key) } : {}),
});

/** Waits for the one log line with this message and reason. */
async function logged(msg: string, reason: string): Promise<void> {
  await waitFor(() => broker.logLines.some((l) => l['msg'] === msg && l['reason'] === reason), `log line '${msg}: ${reason}'`);
}

/** Opens a TCP connection to the TLS port, writes bytes (or nothing) and resolves when the broker closes it. */
function rawTcp(bytes: Buffer | null): Promise<{ closedAfterMs: number; received: number }> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    let received = 0;
    const socket: Socket = netConnect({ host: '127.0.0.1', port: broker.tlsPort }, () => {
      if (bytes !== null) socket.write(bytes);
    });
    socket.on('data', (chunk: Buffer) => (received += chunk.length));
    socket.on('error', () => undefined);
    socket.on('close', () => resolve({ closedAfterMs: Date.now() - started, received }));
    setTimeout(() => reject(new Error('the broker did not close the socket within 10 s')), 10_000).unref();
  });
}

describe('client certificates required (--tls-verify peer --tls-fail-if-no-peer-cert)', () => {
  it('refuses a client without a certificate', async () => {
    await expect(amqp.connect(amqpsUrl(), tlsOptions())).rejects.toThrow();
    await logged(
      'TLS client certificate refused; closing connection',
      'the client presented no certificate and --tls-fail-if-no-peer-cert requires one',
    );
  });

  it('refuses an expired client certificate', async () => {
    await expect(amqp.connect(amqpsUrl(), tlsOptions(pki.expiredClient))).rejects.toThrow();
    await logged('TLS client certificate refused; closing connection', 'the client certificate has expired (CERT_HAS_EXPIRED)');
  });

  it('refuses a client certificate from an unknown CA', async () => {
    await expect(amqp.connect(amqpsUrl(), tlsOptions(pki.foreignClient))).rejects.toThrow();
    await logged(
      'TLS client certificate refused; closing connection',
      'the client certificate is not signed by a CA in --tls-ca (UNABLE_TO_VERIFY_LEAF_SIGNATURE)',
    );
  });

  it('accepts a valid client certificate with PLAIN credentials', async () => {
    const conn = await amqp.connect(amqpsUrl(), tlsOptions(pki.client));
    await conn.close();
  });
});

describe('bad input on the TLS port', () => {
  it('closes a plain AMQP client that sent the protocol header, with a log line', async () => {
    const { received } = await rawTcp(PROTOCOL_HEADER);
    // Not an AMQP answer: whatever OpenSSL says (an alert at most), never connection.start.
    expect(received).toBeLessThan(16);
    await logged(
      'TLS handshake failed; closing connection',
      'the client did not start a TLS handshake (a plain amqp:// or http:// client on the TLS port?)',
    );
  });

  it('closes a handshake that stalls after the handshake timeout, with a log line', async () => {
    const { closedAfterMs, received } = await rawTcp(null);
    expect(received).toBe(0);
    expect(closedAfterMs).toBeGreaterThanOrEqual(HANDSHAKE_TIMEOUT_MS - 50);
    await logged(
      'TLS handshake failed; closing connection',
      `the client did not complete the TLS handshake within ${HANDSHAKE_TIMEOUT_MS} ms`,
    );
  });

  it('leaves the established client working throughout', async () => {
    bystanderChannel.sendToQueue('bystander', Buffer.from('still here'));
    const msg = await waitFor(async () => (await bystanderChannel.get('bystander', { noAck: true })) || null, 'the message');
    expect(msg.content.toString()).toBe('still here');
    expect(broker.server.connections.size).toBe(1);
  });
});
