// A published message as the broker holds it: the publisher's raw property bytes (forwarded to
// consumers untouched), the body (a view into the socket chunk when it arrived in one frame), and
// the few properties routing and queueing need, read once by a scan that allocates nothing.
// Everything else is decoded only when asked for.

import { readTable, type FieldTable, type FieldValue } from '../protocol/field-table.js';
import { decodeBasicProperties, type BasicProperties } from '../protocol/generated/amqp.js';
import { encodeBasicProperties, encodeShortStr } from '../protocol/frame-writer.js';
import { FrameError } from '../protocol/errors.js';
import { readU16, readU32 } from '../protocol/bytes.js';
import { scanRoutingHeaderKeys } from '../protocol/table-scan.js';

// Property flag bits (bit 15 is the first property in spec order).
const F_CONTENT_TYPE = 1 << 15;
const F_CONTENT_ENCODING = 1 << 14;
const F_HEADERS = 1 << 13;
const F_DELIVERY_MODE = 1 << 12;
const F_PRIORITY = 1 << 11;
const F_CORRELATION_ID = 1 << 10;
const F_REPLY_TO = 1 << 9;
const F_EXPIRATION = 1 << 8;
const F_MESSAGE_ID = 1 << 7;
const F_TIMESTAMP = 1 << 6;
const F_TYPE = 1 << 5;
const F_USER_ID = 1 << 4;

const EMPTY_PROPERTIES = Buffer.from([0, 0]);

export class Message {
  /** exchange and routing key the message was published with */
  readonly exchange: string;
  readonly routingKey: string;
  /** property flags + list exactly as published */
  rawProperties: Buffer;
  /** a view into the socket chunk it arrived in, until unpin() gives it its own copy */
  body: Buffer;
  /** 1 transient, 2 persistent (0 if absent, which means transient) */
  deliveryMode = 0;
  /** priority property, 0 if absent */
  priority = 0;
  /** expiration property as sent (milliseconds as a string), or undefined */
  expiration: string | undefined = undefined;
  userId: string | undefined = undefined;
  replyTo: string | undefined = undefined;
  /** where the headers table starts in rawProperties, or -1 */
  private headersAt = -1;
  private decodedHeaders: FieldTable | undefined | null = null;
  /** when the broker accepted the message, epoch ms (TTL is measured from here) */
  publishedAt: number;
  /** exchange and routing key as two short strings, encoded once for all deliveries */
  private encodedRouting: Buffer | null = null;
  /** id in the message store once an entry holding it was stored (0 = never) */
  storeId = 0;
  /** whether a shared body record (messages database) has been handed to LMDB */
  storeWritten = false;
  /** durable queue entries holding it that were handed to the store (decides shared storage) */
  storeRefs = 0;
  /** its bytes are its own (copied, or read from the store): it pins no socket chunk */
  compacted = false;

  /** routingBytes: the exchange and routing key already encoded (as two short strings), if at hand */
  constructor(exchange: string, routingKey: string, rawProperties: Buffer, body: Buffer, publishedAt: number, routingBytes: Buffer | null = null) {
    this.encodedRouting = routingBytes;
    this.exchange = exchange;
    this.routingKey = routingKey;
    this.rawProperties = rawProperties.length >= 2 ? rawProperties : EMPTY_PROPERTIES;
    this.body = body;
    this.publishedAt = publishedAt;
    this.scan();
  }

  get routingBytes(): Buffer {
    return (this.encodedRouting ??= Buffer.concat([encodeShortStr(this.exchange), encodeShortStr(this.routingKey)]));
  }

  get persistent(): boolean {
    return this.deliveryMode === 2;
  }

  get bodySize(): number {
    return this.body.length;
  }

  get hasHeaders(): boolean {
    return this.headersAt >= 0;
  }

  /**
   * Whether the headers may hold CC or BCC, answered without decoding them when they were not
   * decoded yet: false only when the scan vouches for a well-formed table without those keys (see
   * table-scan.ts); a malformed table answers true, so that decoding it reports the error.
   */
  get mayHaveRoutingHeaders(): boolean {
    if (this.headersAt < 0) return false;
    if (this.decodedHeaders !== null) return true;
    const found = scanRoutingHeaderKeys(this.rawProperties, this.headersAt, this.rawProperties.length);
    return found !== 0; // SCAN_HAS_CC / SCAN_HAS_BCC bits, or SCAN_DECODE
  }

  /** The headers table, decoded on first use (undefined when there is none). */
  get headers(): FieldTable | undefined {
    if (this.decodedHeaders === null) {
      this.decodedHeaders =
        this.headersAt < 0 ? undefined : readTable(this.rawProperties, this.headersAt, this.rawProperties.length)[0];
    }
    return this.decodedHeaders;
  }

  /** All properties, decoded (for code that rewrites them: dead-lettering, delays). */
  get properties(): BasicProperties {
    return decodeBasicProperties(this.rawProperties, 0, this.rawProperties.length);
  }

  /** A copy of this message with rewritten properties (same body buffer). */
  withProperties(properties: BasicProperties, exchange: string, routingKey: string, publishedAt: number): Message {
    return new Message(exchange, routingKey, encodeBasicProperties(properties), this.body, publishedAt);
  }

  /** Rewrites the properties in place (used before anyone else has seen the message). */
  replaceProperties(properties: BasicProperties): void {
    this.rawProperties = encodeBasicProperties(properties);
    this.headersAt = -1;
    this.decodedHeaders = null;
    this.deliveryMode = 0;
    this.priority = 0;
    this.expiration = undefined;
    this.userId = undefined;
    this.replyTo = undefined;
    this.scan();
  }

  /**
   * Gives the message its own copy of its bytes when they are views into a much larger buffer (the
   * socket chunk they arrived in), so a message that stays in a queue does not keep the chunk
   * alive. Once per message; returns whether anything was copied.
   */
  unpin(): boolean {
    if (this.compacted) return false;
    this.compacted = true;
    const props = this.rawProperties;
    const body = this.body;
    const pinsBody = pinsMore(body);
    if (!pinsBody && !pinsMore(props)) return false;
    const own = Buffer.allocUnsafeSlow(props.length + (pinsBody ? body.length : 0));
    props.copy(own, 0);
    this.rawProperties = own.subarray(0, props.length);
    if (pinsBody) {
      body.copy(own, props.length);
      this.body = own.subarray(props.length);
    }
    // Decoded headers may hold views into the old bytes.
    this.decodedHeaders = null;
    return true;
  }

  /** Reads the properties routing needs; throws FrameError when the property list is malformed. */
  private scan(): void {
    const p = this.rawProperties;
    const end = p.length;
    const flags = readU16(p, 0);
    if (flags === 0) return;
    let o = 2;
    if (flags & F_CONTENT_TYPE) o = skipShortStr(p, o, end);
    if (flags & F_CONTENT_ENCODING) o = skipShortStr(p, o, end);
    if (flags & F_HEADERS) {
      if (o + 4 > end) malformed();
      const tableEnd = o + 4 + readU32(p, o);
      if (tableEnd > end) malformed();
      this.headersAt = o;
      o = tableEnd;
    }
    if (flags & F_DELIVERY_MODE) {
      if (o >= end) malformed();
      this.deliveryMode = p[o++]!;
    }
    if (flags & F_PRIORITY) {
      if (o >= end) malformed();
      this.priority = p[o++]!;
    }
    if ((flags & 0x07f0) === 0) return;
    if (flags & F_CORRELATION_ID) o = skipShortStr(p, o, end);
    if (flags & F_REPLY_TO) {
      const next = skipShortStr(p, o, end);
      this.replyTo = p.toString('utf8', o + 1, next);
      o = next;
    }
    if (flags & F_EXPIRATION) {
      const next = skipShortStr(p, o, end);
      this.expiration = p.toString('utf8', o + 1, next);
      o = next;
    }
    if (flags & F_MESSAGE_ID) o = skipShortStr(p, o, end);
    if (flags & F_TIMESTAMP) {
      if (o + 8 > end) malformed();
      o += 8;
    }
    if (flags & F_TYPE) o = skipShortStr(p, o, end);
    if (flags & F_USER_ID) {
      const next = skipShortStr(p, o, end);
      this.userId = p.toString('utf8', o + 1, next);
    }
  }
}

/** Whether a buffer is a view into something much larger than itself (a shared read chunk). */
function pinsMore(b: Buffer): boolean {
  return b.buffer.byteLength > 2 * b.length + 1024;
}

/** Offset just past the short string at o. */
function skipShortStr(p: Buffer, o: number, end: number): number {
  if (o >= end || o + 1 + p[o]! > end) malformed();
  return o + 1 + p[o]!;
}

function malformed(): never {
  throw new FrameError('cannot decode content header properties: a property runs past the end of the frame');
}

/**
 * CC and BCC headers: extra routing keys (RabbitMQ "sender-selected distribution"). BCC is removed
 * from the message before anyone sees it. Used by basic.publish and the HTTP API's publish.
 */
export function routingHeaders(message: Message): string[] | null {
  // Fast path: most headers tables have neither key, and a scan says so without decoding.
  if (!message.mayHaveRoutingHeaders) return null;
  const headers = message.headers;
  if (headers === undefined) return null;
  const cc = headers['CC'];
  const bcc = headers['BCC'];
  if (cc === undefined && bcc === undefined) return null;
  const keys: string[] = [];
  const collect = (v: FieldValue | undefined): void => {
    if (Array.isArray(v)) for (const k of v) if (typeof k === 'string') keys.push(k);
  };
  collect(cc);
  collect(bcc);
  if (bcc !== undefined) stripBcc(message);
  return keys.length > 0 ? keys : null;
}

function stripBcc(message: Message): void {
  const props = message.properties;
  const headers: FieldTable = { ...props.headers };
  delete headers['BCC'];
  message.replaceProperties({ ...props, headers });
}
