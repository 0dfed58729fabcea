// The TLS facts of one established connection, read once after the handshake, and their rendering
// as RabbitMQ's connection info items (`ssl`, `ssl_protocol`, `ssl_key_exchange`, `ssl_cipher`,
// `ssl_hash`, `peer_cert_subject`, `peer_cert_issuer`, `peer_cert_validity`) for listings and
// metrics. Also who a verified client certificate says the client is (SASL EXTERNAL).

import type { TLSSocket } from 'node:tls';
import { certificateInfo, type CertificateInfo } from './certificate-info.js';
import type { CertLoginFrom } from './tls-settings.js';

export interface TlsDetails {
  /** as RabbitMQ shows it: `tlsv1.3`, `tlsv1.2` */
  readonly protocol: string;
  /** `any` on TLS 1.3 (the suite does not fix it), else e.g. `ecdhe_rsa` */
  readonly keyExchange: string;
  /** e.g. `aes_256_gcm`, `chacha20_poly1305` */
  readonly cipher: string;
  /** the MAC: `aead` for AEAD ciphers, else e.g. `sha384` */
  readonly hash: string;
  /** the certificate the client presented, if any (verified or not: see peerVerified) */
  readonly peerCertificate: CertificateInfo | null;
  /** true when the client presented a certificate that chains to --tls-ca */
  readonly peerVerified: boolean;
}

/** RabbitMQ's connection info items about TLS, as its listings and HTTP API show them. */
export interface RabbitTlsFields {
  ssl: boolean;
  ssl_protocol: string | null;
  ssl_key_exchange: string | null;
  ssl_cipher: string | null;
  ssl_hash: string | null;
  peer_cert_subject: string | null;
  peer_cert_issuer: string | null;
  peer_cert_validity: string | null;
}

/**
 * Splits an IANA suite name into RabbitMQ's parts: `TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384` →
 * ecdhe_rsa / aes_256_gcm / aead; TLS 1.3's `TLS_AES_128_GCM_SHA256` → any / aes_128_gcm / aead.
 */
export function cipherSuiteParts(standardName: string): { keyExchange: string; cipher: string; hash: string } {
  const name = standardName.startsWith('TLS_') ? standardName.slice(4) : standardName;
  const withAt = name.indexOf('_WITH_');
  const keyExchange = withAt < 0 ? 'any' : name.slice(0, withAt).toLowerCase();
  const rest = withAt < 0 ? name : name.slice(withAt + 6);
  const lastUnderscore = rest.lastIndexOf('_');
  const cipherPart = lastUnderscore < 0 ? rest : rest.slice(0, lastUnderscore);
  const macPart = lastUnderscore < 0 ? '' : rest.slice(lastUnderscore + 1);
  const aead = /GCM|CCM|POLY1305/.test(cipherPart) || withAt < 0;
  return {
    keyExchange,
    cipher: cipherPart.toLowerCase(),
    hash: aead ? 'aead' : macPart.toLowerCase(),
  };
}

/** Reads the TLS facts of an established connection (once: they do not change afterwards). */
export function tlsDetails(socket: TLSSocket): TlsDetails {
  const suite = socket.getCipher();
  const parts = cipherSuiteParts(suite.standardName ?? suite.name);
  const peer = socket.getPeerX509Certificate();
  let peerCertificate: CertificateInfo | null = null;
  if (peer !== undefined) {
    try {
      peerCertificate = certificateInfo(peer.raw);
    } catch {
      peerCertificate = null; // OpenSSL accepted it, so this only loses the listing's text
    }
  }
  return {
    protocol: (socket.getProtocol() ?? 'unknown').toLowerCase(),
    ...parts,
    peerCertificate,
    peerVerified: peer !== undefined && socket.authorized,
  };
}

export function rabbitTlsFields(tls: TlsDetails | null): RabbitTlsFields {
  const cert = tls?.peerCertificate ?? null;
  return {
    ssl: tls !== null,
    ssl_protocol: tls?.protocol ?? null,
    ssl_key_exchange: tls?.keyExchange ?? null,
    ssl_cipher: tls?.cipher ?? null,
    ssl_hash: tls?.hash ?? null,
    peer_cert_subject: cert?.subject ?? null,
    peer_cert_issuer: cert?.issuer ?? null,
    peer_cert_validity: cert?.validity ?? null,
  };
}

/** SASL EXTERNAL is offered only where a client certificate was presented and verified. */
export function offersExternal(tls: TlsDetails | null): boolean {
  return tls !== null && tls.peerVerified && tls.peerCertificate !== null;
}

/**
 * The user name a verified client certificate stands for, as RabbitMQ's ssl_cert_login_from:
 * the subject's CN (several CNs joined with ","), or the whole subject DN string. Null when
 * there is none.
 */
export function certificateLoginName(tls: TlsDetails | null, from: CertLoginFrom): string | null {
  if (!offersExternal(tls)) return null;
  const cert = tls!.peerCertificate!;
  if (from === 'distinguished_name') return cert.subject === '' ? null : cert.subject;
  return cert.commonNames.length === 0 ? null : cert.commonNames.join(',');
}
