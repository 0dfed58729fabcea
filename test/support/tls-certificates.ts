// Certificates for TLS tests, made at test time with Debian's openssl command (as an operator would
// make them): a test CA, a server certificate for 127.0.0.1/localhost, client certificates signed
// by the CA, an expired one, and one from a CA the broker does not know. EC P-256 keys keep it fast.

import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

async function openssl(cwd: string, ...args: string[]): Promise<void> {
  try {
    await run('openssl', args, { cwd, timeout: 20_000 });
  } catch (err) {
    const e = err as Error & { stderr?: string };
    throw new Error(`openssl ${args.join(' ')} failed: ${e.stderr ?? e.message} (is Debian's openssl installed?)`);
  }
}

export interface KeyPair {
  /** PEM certificate file */
  readonly cert: string;
  /** PEM private key file */
  readonly key: string;
}

export interface TestPki {
  readonly dir: string;
  /** the CA file clients use to verify the server, and the broker uses to verify clients */
  readonly ca: string;
  readonly server: KeyPair;
  /** CN=alice, signed by the test CA */
  readonly client: KeyPair;
  /** CN=alice, signed by the test CA, but already expired */
  readonly expiredClient: KeyPair;
  /** CN=alice, signed by a CA the broker does not trust */
  readonly foreignClient: KeyPair;
  /** signs a new certificate with the test CA (subject as `/CN=x/O=y`) */
  issue(name: string, subject: string, options?: { days?: number; serverNames?: boolean }): Promise<KeyPair>;
  /** reads a file of this PKI */
  read(path: string): Buffer;
  remove(): void;
}

const SERVER_EXTENSIONS = 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n';

async function newCa(dir: string, name: string, subject: string): Promise<KeyPair> {
  const pair = { cert: join(dir, `${name}.pem`), key: join(dir, `${name}.key`) };
  await openssl(dir, 'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', pair.key, '-out', pair.cert, '-days', '30', '-subj', subject);
  return pair;
}

async function signed(dir: string, ca: KeyPair, name: string, subject: string, days: number, serverNames: boolean): Promise<KeyPair> {
  const pair = { cert: join(dir, `${name}.pem`), key: join(dir, `${name}.key`) };
  const csr = join(dir, `${name}.csr`);
  await openssl(dir, 'req', '-utf8', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', pair.key, '-out', csr, '-subj', subject);
  const args = ['x509', '-req', '-in', csr, '-CA', ca.cert, '-CAkey', ca.key, '-set_serial', `0x${randomBytes(8).toString('hex')}`, '-out', pair.cert, '-days', String(days)];
  if (serverNames) {
    const ext = join(dir, `${name}.ext`);
    writeFileSync(ext, SERVER_EXTENSIONS);
    args.push('-extfile', ext);
  }
  await openssl(dir, ...args);
  return pair;
}

/** Makes a fresh PKI in a temporary folder (remove() deletes it). */
export async function makeTestPki(): Promise<TestPki> {
  const dir = mkdtempSync(join(tmpdir(), 'warren-pki-'));
  const ca = await newCa(dir, 'ca', '/CN=Warren Test CA/O=Warren Tests');
  const otherCa = await newCa(dir, 'other-ca', '/CN=Somebody Else CA');
  const [server, client, expiredClient, foreignClient] = await Promise.all([
    signed(dir, ca, 'server', '/CN=localhost/O=Warren Tests', 30, true),
    signed(dir, ca, 'client', '/C=GB/O=Warren Tests/CN=alice', 30, false),
    // -days -1: notAfter a day before notBefore, so the certificate is expired from the start
    signed(dir, ca, 'expired-client', '/C=GB/O=Warren Tests/CN=alice', -1, false),
    signed(dir, otherCa, 'foreign-client', '/C=GB/O=Warren Tests/CN=alice', 30, false),
  ]);
  return {
    dir,
    ca: ca.cert,
    server,
    client,
    expiredClient,
    foreignClient,
    issue: (name, subject, options = {}) => signed(dir, ca, name, subject, options.days ?? 30, options.serverNames ?? false),
    read: (path) => readFileSync(path),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
