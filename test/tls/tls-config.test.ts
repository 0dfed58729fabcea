// TLS options on the command line and in the embedding API: parsing, `--port 0` meaning "off",
// and option combinations that cannot work refused with a message saying what to change.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, parseConfig, usage } from '../../src/config.js';
import type { StartOptions } from '../../src/index.js';
import { checkTlsConfig } from '../../src/tls/tls-settings.js';
import { startTestBroker } from '../support/broker.js';
import { makeTestPki, type TestPki } from '../support/tls-certificates.js';

let pki: TestPki;
beforeAll(async () => {
  pki = await makeTestPki();
});
afterAll(() => pki?.remove());

describe('TLS flags', () => {
  it('parses every TLS flag and its environment variable', () => {
    const config = parseConfig(
      ['--tls-cert', 'c.pem', '--tls-key=k.pem', '--tls-ca', 'ca.pem', '--tls-verify', 'peer', '--tls-fail-if-no-peer-cert',
        '--tls-min-version', 'TLSv1.3', '--tls-ciphers', 'TLS_AES_128_GCM_SHA256', '--tls-port', '5999'],
      { WARREN_TLS_CERT_LOGIN_FROM: 'distinguished_name' },
    );
    expect(config).toMatchObject({
      tlsCert: 'c.pem',
      tlsKey: 'k.pem',
      tlsCa: 'ca.pem',
      tlsVerify: 'peer',
      tlsFailIfNoPeerCert: true,
      tlsMinVersion: 'TLSv1.3',
      tlsCiphers: 'TLS_AES_128_GCM_SHA256',
      tlsPort: 5999,
      tlsCertLoginFrom: 'distinguished_name',
    });
    expect(parseConfig([], {})).toMatchObject({ port: 5672, tlsPort: 5671, tlsCert: null, tlsVerify: 'none', tlsFailIfNoPeerCert: false, tlsMinVersion: 'TLSv1.2' });
    expect(parseConfig(['--tls-fail-if-no-peer-cert=false'], {}).tlsFailIfNoPeerCert).toBe(false);
  });

  it('--port 0 and --tls-port 0 turn those listeners off on the command line', () => {
    expect(parseConfig(['--port', '0', '--tls-port', '0'], {})).toMatchObject({ port: null, tlsPort: null });
  });

  it('refuses bad values with what is allowed', () => {
    expect(() => parseConfig(['--tls-verify', 'yes'], {})).toThrow("--tls-verify must be one of none, peer (got 'yes')");
    expect(() => parseConfig(['--tls-min-version', 'TLSv1.1'], {})).toThrow("--tls-min-version must be one of TLSv1.2, TLSv1.3 (got 'TLSv1.1')");
    expect(() => parseConfig([], { WARREN_TLS_FAIL_IF_NO_PEER_CERT: 'maybe' })).toThrow("WARREN_TLS_FAIL_IF_NO_PEER_CERT must be true or false (got 'maybe')");
  });

  it('lists the TLS flags in --help', () => {
    const text = usage();
    for (const flag of ['--tls-port', '--tls-cert', '--tls-key', '--tls-ca', '--tls-verify', '--tls-fail-if-no-peer-cert', '--tls-min-version', '--tls-ciphers', '--tls-cert-login-from']) {
      expect(text).toContain(flag);
    }
  });

  it('refuses combinations that cannot work', () => {
    const base = parseConfig([], {});
    expect(checkTlsConfig(base)).toBe(false);
    expect(() => checkTlsConfig({ ...base, tlsKey: 'k.pem' })).toThrow('--tls-key is set but --tls-cert is not: give the server certificate too');
    expect(() => checkTlsConfig({ ...base, tlsCert: 'c.pem' })).toThrow('--tls-cert needs --tls-key (the private key of that certificate)');
    expect(() => checkTlsConfig({ ...base, tlsCert: 'c', tlsKey: 'k', tlsVerify: 'peer' })).toThrow('--tls-verify peer needs --tls-ca');
    expect(() => checkTlsConfig({ ...base, tlsCert: 'c', tlsKey: 'k', tlsFailIfNoPeerCert: true })).toThrow(
      '--tls-fail-if-no-peer-cert needs --tls-verify peer',
    );
  });
});

describe('startBroker with TLS options', () => {
  // The test broker keeps every listener a test does not ask for off; this one asks for AMQPS.
  const start = (options: StartOptions) => startTestBroker({ tlsPort: 0, ...options });

  it('says which file it cannot read', async () => {
    await expect(start({ tlsCert: '/nonexistent/server.pem', tlsKey: pki.server.key })).rejects.toThrow(
      'cannot read --tls-cert /nonexistent/server.pem (ENOENT): check the path and its permissions',
    );
  });

  it('refuses a key that does not belong to the certificate', async () => {
    await expect(start({ tlsCert: pki.server.cert, tlsKey: pki.client.key })).rejects.toThrow(
      /^TLS files or options rejected: .*key values mismatch/,
    );
  });

  it('refuses an unknown cipher list', async () => {
    await expect(start({ tlsCert: pki.server.cert, tlsKey: pki.server.key, tlsCiphers: 'NOT-A-CIPHER' })).rejects.toThrow(
      /^TLS files or options rejected: .*no cipher match/,
    );
  });

  it('runs TLS only when the plain listener is off, and refuses to run with no listener at all', async () => {
    const broker = await start({ port: null, tlsCert: pki.server.cert, tlsKey: pki.server.key });
    try {
      expect(broker.port).toBe(0);
      expect(broker.tlsPort).toBeGreaterThan(0);
    } finally {
      await broker.stop();
    }
    await expect(start({ port: null })).rejects.toThrow(ConfigError);
  });

  it('without a certificate there is no AMQPS listener', async () => {
    const broker = await start({});
    try {
      expect(broker.tlsPort).toBe(0);
      expect(broker.tls).toBeNull();
    } finally {
      await broker.stop();
    }
  });
});
