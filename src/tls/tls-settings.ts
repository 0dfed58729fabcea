// TLS settings shared by every TLS listener (AMQPS, HTTPS management, HTTPS metrics): reads the
// certificate, key and CA files named in the configuration, checks that they fit together, builds
// the options Node's TLS servers take, re-reads the files on demand (SIGHUP) without touching
// established connections, and decides whether a client's certificate is acceptable.

import { readFileSync } from 'node:fs';
import { createSecureContext, type SecureVersion, type Server as TlsServer, type TLSSocket, type TlsOptions } from 'node:tls';
import { ConfigError, type BrokerConfig } from '../config.js';

export type TlsVerify = 'none' | 'peer';
export type TlsMinVersion = 'TLSv1.2' | 'TLSv1.3';
export type CertLoginFrom = 'common_name' | 'distinguished_name';

/** The TLS part of the broker configuration. */
export type TlsConfig = Pick<
  BrokerConfig,
  'tlsCert' | 'tlsKey' | 'tlsCa' | 'tlsVerify' | 'tlsFailIfNoPeerCert' | 'tlsMinVersion' | 'tlsCiphers' | 'handshakeTimeoutMs'
>;

/**
 * Checks option combinations that cannot work, with messages that say what to change. Returns
 * false when no certificate is configured (TLS off), true when TLS listeners can be started.
 */
export function checkTlsConfig(config: TlsConfig): boolean {
  if (config.tlsCert === null) {
    for (const [value, flag] of [
      [config.tlsKey, '--tls-key'],
      [config.tlsCa, '--tls-ca'],
    ] as const) {
      if (value !== null) throw new ConfigError(`${flag} is set but --tls-cert is not: give the server certificate too`);
    }
    return false;
  }
  if (config.tlsKey === null) throw new ConfigError('--tls-cert needs --tls-key (the private key of that certificate)');
  if (config.tlsVerify === 'peer' && config.tlsCa === null) {
    throw new ConfigError('--tls-verify peer needs --tls-ca (the CA certificates that client certificates must chain to)');
  }
  if (config.tlsFailIfNoPeerCert && config.tlsVerify !== 'peer') {
    throw new ConfigError('--tls-fail-if-no-peer-cert needs --tls-verify peer');
  }
  return true;
}

function readPem(path: string, flag: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw new ConfigError(`cannot read ${flag} ${path} (${code}): check the path and its permissions`);
  }
}

/** Readable reasons for OpenSSL's verification codes a client certificate can get. */
const VERIFY_ERRORS: Record<string, string> = {
  CERT_HAS_EXPIRED: 'the client certificate has expired',
  CERT_NOT_YET_VALID: 'the client certificate is not valid yet',
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'the client certificate is not signed by a CA in --tls-ca',
  UNABLE_TO_GET_ISSUER_CERT: 'the client certificate is not signed by a CA in --tls-ca',
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: 'the client certificate is not signed by a CA in --tls-ca',
  SELF_SIGNED_CERT_IN_CHAIN: 'the client certificate chains to a CA that is not in --tls-ca',
  DEPTH_ZERO_SELF_SIGNED_CERT: 'the client certificate is self-signed and not in --tls-ca',
  CERT_SIGNATURE_FAILURE: 'the client certificate signature does not verify',
  CERT_REVOKED: 'the client certificate is revoked',
};

/** One explanation for a failed handshake, for the log line that says why a client was closed. */
export function describeHandshakeError(err: NodeJS.ErrnoException, handshakeTimeoutMs: number): string {
  switch (err.code) {
    case 'ERR_TLS_HANDSHAKE_TIMEOUT':
      return `the client did not complete the TLS handshake within ${handshakeTimeoutMs} ms`;
    case 'ERR_SSL_WRONG_VERSION_NUMBER':
    case 'ERR_SSL_HTTP_REQUEST':
    case 'ERR_SSL_PACKET_LENGTH_TOO_LONG':
    case 'ERR_SSL_UNKNOWN_PROTOCOL':
      return 'the client did not start a TLS handshake (a plain amqp:// or http:// client on the TLS port?)';
    case 'ERR_SSL_UNSUPPORTED_PROTOCOL':
    case 'ERR_SSL_NO_PROTOCOLS_AVAILABLE':
      return 'the client offered no TLS version the server accepts (see --tls-min-version)';
    case 'ERR_SSL_NO_SHARED_CIPHER':
      return 'the client offered no cipher the server accepts (see --tls-ciphers)';
    case 'ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE':
      return 'the client presented no certificate and one is required';
    case 'ECONNRESET':
      return 'the client disconnected during the TLS handshake';
    default:
      return err.message;
  }
}

export class TlsSettings {
  private options: TlsOptions;
  private readonly servers = new Set<TlsServer>();

  constructor(private readonly config: TlsConfig) {
    this.options = this.load();
  }

  get handshakeTimeoutMs(): number {
    return this.config.handshakeTimeoutMs;
  }

  get verifyPeer(): boolean {
    return this.config.tlsVerify === 'peer';
  }

  /**
   * Options for tls.createServer / https.createServer. Client certificates are requested but never
   * rejected by Node itself: Warren checks them after the handshake (checkPeer) so that each
   * refusal gets a log line saying why.
   */
  serverOptions(): TlsOptions {
    return {
      ...this.options,
      requestCert: this.verifyPeer,
      rejectUnauthorized: false,
      handshakeTimeout: this.config.handshakeTimeoutMs,
    };
  }

  /** Remembers a listener so that reload() reaches it. */
  attach(server: TlsServer): void {
    this.servers.add(server);
    server.once('close', () => this.servers.delete(server));
  }

  /**
   * Re-reads the certificate, key and CA files. New handshakes use them; established connections
   * keep the session they have. On any error the previous files stay in use and the error says why.
   */
  reload(): void {
    const options = this.load();
    for (const server of this.servers) server.setSecureContext(options);
    this.options = options;
  }

  /** Why this peer must be refused, or null when it may go on. */
  checkPeer(socket: TLSSocket): string | null {
    if (!this.verifyPeer) return null;
    if (socket.getPeerX509Certificate() === undefined) {
      return this.config.tlsFailIfNoPeerCert ? 'the client presented no certificate and --tls-fail-if-no-peer-cert requires one' : null;
    }
    if (socket.authorized) return null;
    const code = String(socket.authorizationError ?? 'unknown');
    return `${VERIFY_ERRORS[code] ?? 'the client certificate did not verify'} (${code})`;
  }

  private load(): TlsOptions {
    const config = this.config;
    if (config.tlsCert === null || config.tlsKey === null) throw new ConfigError('TLS needs --tls-cert and --tls-key');
    const options: TlsOptions = {
      cert: readPem(config.tlsCert, '--tls-cert'),
      key: readPem(config.tlsKey, '--tls-key'),
      minVersion: config.tlsMinVersion as SecureVersion,
    };
    if (config.tlsCa !== null) options.ca = readPem(config.tlsCa, '--tls-ca');
    if (config.tlsCiphers !== null) options.ciphers = config.tlsCiphers;
    try {
      // Builds the context once to catch a key that does not match its certificate, a bad PEM,
      // or a cipher list OpenSSL does not understand, before any client sees it.
      createSecureContext(options);
    } catch (err) {
      throw new ConfigError(`TLS files or options rejected: ${(err as Error).message} (check --tls-cert, --tls-key, --tls-ca, --tls-ciphers)`);
    }
    return options;
  }
}
