// What Warren shows and logs about an X.509 certificate, in RabbitMQ's formats: subject and issuer
// as RFC 4514-style strings (most specific part first, `CN=client,O=Example,C=GB`), validity as
// `2024-01-01T00:00:00Z - 2025-01-01T00:00:00Z`, and the common name(s) for certificate login.
// RabbitMQ (rabbit_cert_info) formats from the DER encoding, not from OpenSSL's text, so this
// module reads the DER too: a few dozen lines of ASN.1 walking instead of guessing from a
// re-rendered string.

/** The parts of a certificate that connection listings and EXTERNAL login use. */
export interface CertificateInfo {
  /** RFC 4514-style subject, e.g. `CN=app-1,O=Example` */
  readonly subject: string;
  readonly issuer: string;
  /** `notBefore - notAfter`, each as `YYYY-MM-DDTHH:MM:SSZ` */
  readonly validity: string;
  /** every CN value of the subject, unescaped, in certificate order */
  readonly commonNames: readonly string[];
}

/** A DER element: its tag byte and where its contents lie in the buffer. */
interface Element {
  tag: number;
  start: number;
  end: number;
}

const SEQUENCE = 0x30;
const SET = 0x31;
const OID = 0x06;
const UTC_TIME = 0x17;
const GENERALIZED_TIME = 0x18;
const CONTEXT_0 = 0xa0;

class DerError extends Error {}

function readElement(der: Buffer, at: number, limit: number): Element {
  if (at + 2 > limit) throw new DerError('truncated element');
  const tag = der[at]!;
  let length = der[at + 1]!;
  let start = at + 2;
  if (length & 0x80) {
    const lengthBytes = length & 0x7f;
    if (lengthBytes === 0 || lengthBytes > 4 || start + lengthBytes > limit) throw new DerError('bad length');
    length = 0;
    for (let i = 0; i < lengthBytes; i++) length = length * 256 + der[start + i]!;
    start += lengthBytes;
  }
  const end = start + length;
  if (end > limit) throw new DerError('element runs past its parent');
  return { tag, start, end };
}

/** The elements directly inside a constructed element. */
function children(der: Buffer, parent: Element): Element[] {
  const out: Element[] = [];
  for (let at = parent.start; at < parent.end; ) {
    const child = readElement(der, at, parent.end);
    out.push(child);
    at = child.end;
  }
  return out;
}

function expect(element: Element | undefined, tag: number, what: string): Element {
  if (element === undefined || element.tag !== tag) throw new DerError(`expected ${what}`);
  return element;
}

function decodeOid(der: Buffer, e: Element): string {
  const parts: number[] = [];
  let value = 0;
  for (let i = e.start; i < e.end; i++) {
    const byte = der[i]!;
    value = value * 128 + (byte & 0x7f);
    if ((byte & 0x80) === 0) {
      if (parts.length === 0) {
        const first = value < 80 ? Math.floor(value / 40) : 2;
        parts.push(first, value - first * 40);
      } else parts.push(value);
      value = 0;
    }
  }
  return parts.join('.');
}

/** RabbitMQ's short names for attribute types; others are shown as dotted OIDs (RFC 4514 §2.3). */
const ATTRIBUTE_NAMES = new Map<string, string>([
  ['2.5.4.4', 'SN'],
  ['2.5.4.42', 'GIVENNAME'],
  ['2.5.4.43', 'INITIALS'],
  ['2.5.4.44', 'GENERATIONQUALIFIER'],
  ['2.5.4.3', 'CN'],
  ['2.5.4.7', 'L'],
  ['2.5.4.8', 'ST'],
  ['2.5.4.10', 'O'],
  ['2.5.4.11', 'OU'],
  ['2.5.4.12', 'TITLE'],
  ['2.5.4.6', 'C'],
  ['2.5.4.5', 'SERIALNUMBER'],
  ['2.5.4.65', 'PSEUDONYM'],
  ['0.9.2342.19200300.100.1.25', 'DC'],
  ['1.2.840.113549.1.9.1', 'EMAILADDRESS'],
  ['0.9.2342.19200300.100.1.1', 'UID'],
]);
const COMMON_NAME_OID = '2.5.4.3';

/** An attribute value as UTF-8 bytes (string types converted; anything else as RFC 4514 `#hex`). */
function valueBytes(der: Buffer, e: Element): Buffer {
  const raw = der.subarray(e.start, e.end);
  switch (e.tag) {
    case 0x0c: // UTF8String
    case 0x13: // PrintableString
    case 0x16: // IA5String
    case 0x1a: // VisibleString
      return raw;
    case 0x14: // TeletexString: treated as Latin-1, as RabbitMQ does
      return Buffer.from(raw.toString('latin1'), 'utf8');
    case 0x1e: {
      // BMPString: UCS-2 big-endian
      const swapped = Buffer.from(raw);
      if (swapped.length % 2 === 0) swapped.swap16();
      return Buffer.from(swapped.toString('utf16le'), 'utf8');
    }
    case 0x1c: {
      // UniversalString: UCS-4 big-endian
      let text = '';
      for (let i = 0; i + 4 <= raw.length; i += 4) text += String.fromCodePoint(raw.readUInt32BE(i));
      return Buffer.from(text, 'utf8');
    }
    default:
      return Buffer.from(`#${der.subarray(e.start - headerLength(e), e.end).toString('hex')}`, 'latin1');
  }
}

function headerLength(e: Element): number {
  const length = e.end - e.start;
  if (length < 0x80) return 2;
  let bytes = 0;
  for (let n = length; n > 0; n = Math.floor(n / 256)) bytes++;
  return 2 + bytes;
}

/**
 * RFC 4514 escaping as RabbitMQ does it, byte by byte over the UTF-8 value: a leading space or
 * `#` and a trailing space get a backslash, so do `" + , ; < > \`; bytes below 32 and from 126 up
 * (so every byte of a non-ASCII character, and `~`) become `\XX`.
 */
export function escapeRdnValue(bytes: Buffer): string {
  let out = '';
  for (let i = 0; i < bytes.length; i++) {
    const c = bytes[i]!;
    if (i === 0 && (c === 0x20 || c === 0x23)) out += '\\' + String.fromCharCode(c);
    else if (c === 0x20 && i === bytes.length - 1) out += '\\ ';
    else if (c === 0x22 || c === 0x2b || c === 0x2c || c === 0x3b || c === 0x3c || c === 0x3e || c === 0x5c) {
      out += '\\' + String.fromCharCode(c);
    } else if (c < 32 || c >= 126) out += '\\' + c.toString(16).toUpperCase().padStart(2, '0');
    else out += String.fromCharCode(c);
  }
  return out;
}

interface ParsedName {
  formatted: string;
  commonNames: string[];
}

/** Name ::= SEQUENCE OF SET OF { type OID, value ANY }; shown last RDN first, `+` inside a set. */
function parseName(der: Buffer, name: Element | undefined): ParsedName {
  const rdns: string[] = [];
  const commonNames: string[] = [];
  for (const rdn of children(der, expect(name, SEQUENCE, 'a Name'))) {
    const parts: string[] = [];
    for (const attribute of children(der, expect(rdn, SET, 'an RDN set'))) {
      const [type, value] = children(der, expect(attribute, SEQUENCE, 'an attribute'));
      const oid = decodeOid(der, expect(type, OID, 'an attribute type'));
      if (value === undefined) throw new DerError('attribute without a value');
      const bytes = valueBytes(der, value);
      if (oid === COMMON_NAME_OID) commonNames.push(bytes.toString('utf8'));
      parts.push(`${ATTRIBUTE_NAMES.get(oid) ?? oid}=${escapeRdnValue(bytes)}`);
    }
    rdns.push(parts.join('+'));
  }
  return { formatted: rdns.reverse().join(','), commonNames };
}

function formatTime(der: Buffer, e: Element): string {
  const text = der.toString('latin1', e.start, e.end);
  // UTCTime YYMMDDHHMMSSZ (RabbitMQ prints it as 20YY); GeneralizedTime YYYYMMDDHHMMSSZ.
  const full = e.tag === UTC_TIME ? `20${text}` : e.tag === GENERALIZED_TIME ? text : null;
  if (full === null || !/^\d{14}Z$/.test(full)) return text;
  return `${full.slice(0, 4)}-${full.slice(4, 6)}-${full.slice(6, 8)}T${full.slice(8, 10)}:${full.slice(10, 12)}:${full.slice(12, 14)}Z`;
}

/** Reads subject, issuer and validity from a DER certificate; throws on malformed input. */
export function certificateInfo(der: Buffer): CertificateInfo {
  try {
    const [tbs] = children(der, expect(readElement(der, 0, der.length), SEQUENCE, 'a certificate'));
    const fields = children(der, expect(tbs, SEQUENCE, 'a TBSCertificate'));
    // version [0] is optional: skip it when present.
    const at = fields[0]?.tag === CONTEXT_0 ? 1 : 0;
    const issuer = parseName(der, fields[at + 2]);
    const [notBefore, notAfter] = children(der, expect(fields[at + 3], SEQUENCE, 'a validity'));
    if (notBefore === undefined || notAfter === undefined) throw new DerError('validity without both times');
    const subject = parseName(der, fields[at + 4]);
    return {
      subject: subject.formatted,
      issuer: issuer.formatted,
      validity: `${formatTime(der, notBefore)} - ${formatTime(der, notAfter)}`,
      commonNames: subject.commonNames,
    };
  } catch (err) {
    if (err instanceof DerError || err instanceof TypeError) throw new Error(`unreadable certificate: ${err.message}`);
    throw err;
  }
}
