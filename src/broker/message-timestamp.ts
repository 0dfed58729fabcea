// The `timestamp` property of a message, read straight from the property bytes it was published
// with (flags, then the properties in spec order): RabbitMQ's head_message_timestamp (management
// queue rows, rabbitmq_queue_head_message_timestamp) needs this one field of one message per queue,
// so nothing else (headers tables above all) is decoded.

// Property flag bits before timestamp, in spec order (bit 15 is the first property).
const SHORT_STRINGS_BEFORE_HEADERS = [1 << 15, 1 << 14]; // content-type, content-encoding
const HEADERS = 1 << 13;
const ONE_OCTET = [1 << 12, 1 << 11]; // delivery-mode, priority
const SHORT_STRINGS_AFTER = [1 << 10, 1 << 9, 1 << 8, 1 << 7]; // correlation-id, reply-to, expiration, message-id
const TIMESTAMP = 1 << 6;

/** Seconds since the epoch as published, or null when the message has no (readable) timestamp. */
export function propertyTimestamp(raw: Buffer): number | null {
  if (raw.length < 2) return null;
  const flags = raw.readUInt16BE(0);
  if ((flags & TIMESTAMP) === 0) return null;
  let o = 2;
  for (const bit of SHORT_STRINGS_BEFORE_HEADERS) if (flags & bit) o += o < raw.length ? 1 + raw[o]! : 1;
  if (flags & HEADERS) o += o + 4 <= raw.length ? 4 + raw.readUInt32BE(o) : 4;
  for (const bit of ONE_OCTET) if (flags & bit) o += 1;
  for (const bit of SHORT_STRINGS_AFTER) if (flags & bit) o += o < raw.length ? 1 + raw[o]! : 1;
  if (o + 8 > raw.length) return null;
  return raw.readUInt32BE(o) * 4294967296 + raw.readUInt32BE(o + 4);
}
