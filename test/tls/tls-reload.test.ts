// bin/warren as users run it: AMQPS only (`--port 0`), and SIGHUP re-reading a renewed server
// certificate while an established TLS client carries on; unusable new files keep the old ones.

import amqp, { type ChannelModel } from 'amqplib';
import { copyFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../support/wait.js';
import { ChildBroker, freePort } from '../support/child-broker.js';
import { tempDir } from '../support/broker.js';
import { logRecords } from '../support/per-test-child-broker.js';
import { makeTestPki, type TestPki } from '../support/tls-certificates.js';

let pki: TestPki;
let child: ChildBroker;
let tlsPort: number;
let liveCert: string;
let liveKey: string;

beforeAll(async () => {
  pki = await makeTestPki();
  liveCert = join(pki.dir, 'live.pem');
  liveKey = join(pki.dir, 'live.key');
  copyFileSync(pki.server.cert, liveCert);
  copyFileSync(pki.server.key, liveKey);
  tlsPort = await freePort();
  child = await ChildBroker.start(tempDir(), undefined, [
    '--port', '0',
    '--tls-port', String(tlsPort),
    '--tls-cert', liveCert,
    '--tls-key', liveKey,
    '--log-level', 'info',
  ]);
});
afterAll(async () => {
  await child?.stop();
  pki?.remove();
});

const connectTls = (): Promise<ChannelModel> => amqp.connect(`amqps://guest:guest@127.0.0.1:${tlsPort}`, { ca: [pki.read(pki.ca)] });
const serverOrganisation = (conn: ChannelModel): string => {
  const socket = (conn.connection as unknown as { stream: TLSSocket }).stream;
  return String(socket.getPeerCertificate().subject.O);
};
const output = (): string => child.output.join('');

describe('bin/warren with AMQPS', () => {
  it('runs with only the TLS listener when --port 0', async () => {
    expect(output()).toContain(`listening on amqps://127.0.0.1:${tlsPort}/`);
    expect(output()).not.toContain('listening on amqp://');
    // The structured log line (written asynchronously, so it may follow the printed one).
    const listening = await waitFor(() => logRecords(child, 'listening')[0], 'the listening log line');
    expect(listening).toMatchObject({ port: null, tlsPort });
  });

  it('SIGHUP picks up a renewed certificate for new connections without dropping the old ones', async () => {
    const before = await connectTls();
    try {
      expect(serverOrganisation(before)).toBe('Warren Tests');
      const renewed = await pki.issue('renewed', '/CN=localhost/O=Renewed', { serverNames: true });
      copyFileSync(renewed.cert, liveCert);
      copyFileSync(renewed.key, liveKey);
      child.process.kill('SIGHUP');
      await waitFor(() => output().includes('TLS certificates reloaded'), 'the reload log line');

      const after = await connectTls();
      expect(serverOrganisation(after)).toBe('Renewed');
      await after.close();

      // The connection made before the reload still works.
      const ch = await before.createChannel();
      const { queue } = await ch.assertQueue('', { exclusive: true });
      ch.sendToQueue(queue, Buffer.from('same session'));
      const msg = await waitFor(async () => (await ch.get(queue, { noAck: true })) || null, 'the message');
      expect(msg.content.toString()).toBe('same session');
    } finally {
      await before.close();
    }
  });

  it('a SIGHUP with unusable files logs why and keeps the certificate in use', async () => {
    writeFileSync(liveCert, 'not a certificate');
    child.process.kill('SIGHUP');
    await waitFor(() => output().includes('TLS reload failed; the previous certificates stay in use'), 'the failure log line');
    expect(output()).toMatch(/"reason":"TLS files or options rejected: [^"]+ \(check --tls-cert, --tls-key, --tls-ca, --tls-ciphers\)"/);
    const conn = await connectTls();
    expect(serverOrganisation(conn)).toBe('Renewed');
    await conn.close();
  });
});
