// Certificate subject/issuer/validity strings, compared with what RabbitMQ 3.10.8's
// rabbit_cert_info produced for certificates made with the same openssl commands (the expected
// strings below were read from `rabbitmqctl eval` on those certificates), and the cipher-suite split.

import { X509Certificate } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { certificateInfo, escapeRdnValue } from '../../src/tls/certificate-info.js';
import { certificateLoginName, cipherSuiteParts, type TlsDetails } from '../../src/tls/connection-info.js';
import { makeTestPki, type TestPki } from '../support/tls-certificates.js';

let pki: TestPki;
beforeAll(async () => {
  pki = await makeTestPki();
});
afterAll(() => pki?.remove());

async function infoFor(subject: string): Promise<ReturnType<typeof certificateInfo>> {
  const pair = await pki.issue(`s${Math.random().toString(36).slice(2)}`, subject);
  return certificateInfo(new X509Certificate(pki.read(pair.cert)).raw);
}

describe('certificate subject as RabbitMQ formats it (RFC 4514, last RDN first)', () => {
  it.each([
    [
      '/DC=org/DC=example/O=Warren\\, Tests/OU=R&D;x/CN=José "J" <j>/emailAddress=j@example.org',
      'EMAILADDRESS=j@example.org,CN=Jos\\C3\\A9 \\"J\\" \\<j\\>,OU=R&D\\;x,O=Warren\\, Tests,DC=example,DC=org',
    ],
    ['/O=Org/CN=alice+UID=a1', 'CN=alice+UID=a1,O=Org'],
    ['/CN=#hash~tilde\\\\back', 'CN=\\#hash\\7Etilde\\\\back'],
    [
      '/C=GB/ST=Some State/L=Town/street=1 Road/SN=Smith/GN=Al/title=Dr/serialNumber=42/pseudonym=p/initials=AS/generationQualifier=Jr',
      'GENERATIONQUALIFIER=Jr,INITIALS=AS,PSEUDONYM=p,SERIALNUMBER=42,TITLE=Dr,GIVENNAME=Al,SN=Smith,2.5.4.9=1 Road,L=Town,ST=Some State,C=GB',
    ],
  ])('%s', async (subject, expected) => {
    const info = await infoFor(subject);
    expect(info.subject).toBe(expected);
    expect(info.issuer).toBe('O=Warren Tests,CN=Warren Test CA');
  });

  it('shows validity as notBefore - notAfter in UTC', async () => {
    const cert = new X509Certificate(pki.read(pki.client.cert));
    const iso = (d: string): string => new Date(d).toISOString().replace('.000Z', 'Z');
    expect(certificateInfo(cert.raw).validity).toBe(`${iso(cert.validFrom)} - ${iso(cert.validTo)}`);
  });

  it('escapes as RabbitMQ does: leading space or #, trailing space, specials, bytes < 32 and >= 126', () => {
    expect(escapeRdnValue(Buffer.from(' a '))).toBe('\\ a\\ ');
    expect(escapeRdnValue(Buffer.from(' '))).toBe('\\ ');
    expect(escapeRdnValue(Buffer.from('#a#'))).toBe('\\#a#');
    expect(escapeRdnValue(Buffer.from('a=b+c,d;e<f>g"h\\i'))).toBe('a=b\\+c\\,d\\;e\\<f\\>g\\"h\\\\i');
    expect(escapeRdnValue(Buffer.from('tab\there~'))).toBe('tab\\09here\\7E');
  });

  it('refuses a buffer that is not a certificate with a readable error', () => {
    expect(() => certificateInfo(Buffer.from([0x30, 0x05, 1, 2]))).toThrow(/^unreadable certificate: /);
  });
});

describe('user name for SASL EXTERNAL', () => {
  const details = (subject: string, commonNames: string[], peerVerified = true): TlsDetails => ({
    protocol: 'tlsv1.3',
    keyExchange: 'any',
    cipher: 'aes_256_gcm',
    hash: 'aead',
    peerCertificate: { subject, issuer: 'CN=CA', validity: '', commonNames },
    peerVerified,
  });

  it('takes the CN (several joined with ","), or the whole DN', () => {
    expect(certificateLoginName(details('CN=alice,O=X', ['alice']), 'common_name')).toBe('alice');
    expect(certificateLoginName(details('CN=b,CN=a', ['a', 'b']), 'common_name')).toBe('a,b');
    expect(certificateLoginName(details('CN=alice,O=X', ['alice']), 'distinguished_name')).toBe('CN=alice,O=X');
    expect(certificateLoginName(details('O=X', []), 'common_name')).toBeNull();
  });

  it('gives nothing for an unverified certificate or a plain connection', () => {
    expect(certificateLoginName(details('CN=alice', ['alice'], false), 'common_name')).toBeNull();
    expect(certificateLoginName(null, 'common_name')).toBeNull();
  });
});

describe('cipher suite parts as RabbitMQ shows them', () => {
  it.each([
    ['TLS_AES_256_GCM_SHA384', 'any', 'aes_256_gcm', 'aead'],
    ['TLS_CHACHA20_POLY1305_SHA256', 'any', 'chacha20_poly1305', 'aead'],
    ['TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256', 'ecdhe_ecdsa', 'aes_128_gcm', 'aead'],
    ['TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384', 'ecdhe_rsa', 'aes_256_cbc', 'sha384'],
    ['TLS_RSA_WITH_AES_128_CBC_SHA', 'rsa', 'aes_128_cbc', 'sha'],
  ])('%s', (name, keyExchange, cipher, hash) => {
    expect(cipherSuiteParts(name)).toEqual({ keyExchange, cipher, hash });
  });
});
