// The timestamp reader behind head_message_timestamp reads the same value as the full property
// decoder for every combination of the properties before it (and none without a timestamp).

import { describe, expect, it } from 'vitest';
import { propertyTimestamp } from '../../src/broker/message-timestamp.js';
import { encodeBasicProperties } from '../../src/protocol/frame-writer.js';
import { decodeBasicProperties, type BasicProperties } from '../../src/protocol/generated/amqp.js';

const BEFORE: Partial<BasicProperties>[] = [
  { contentType: 'application/json' },
  { contentEncoding: 'gzip' },
  { headers: { 'x-a': 'b'.repeat(300), n: 7 } },
  { deliveryMode: 2 },
  { priority: 9 },
  { correlationId: 'c-1' },
  { replyTo: 'amq.rabbitmq.reply-to' },
  { expiration: '60000' },
  { messageId: 'm'.repeat(255) },
];

describe('propertyTimestamp', () => {
  it('reads the timestamp after any combination of earlier properties, and after later ones too', () => {
    for (let mask = 0; mask < 1 << BEFORE.length; mask++) {
      const props: BasicProperties = { timestamp: 1_700_000_000 + mask, type: 't', userId: 'guest' } as BasicProperties;
      BEFORE.forEach((p, i) => {
        if (mask & (1 << i)) Object.assign(props, p);
      });
      const raw = encodeBasicProperties(props);
      expect(propertyTimestamp(raw)).toBe(Number(decodeBasicProperties(raw, 0, raw.length).timestamp));
      expect(propertyTimestamp(raw)).toBe(1_700_000_000 + mask);
    }
  });

  it('is null without a timestamp, for empty or truncated properties', () => {
    expect(propertyTimestamp(encodeBasicProperties({ contentType: 'text/plain', deliveryMode: 2 } as BasicProperties))).toBeNull();
    expect(propertyTimestamp(Buffer.from([0, 0]))).toBeNull();
    expect(propertyTimestamp(Buffer.alloc(0))).toBeNull();
    const raw = encodeBasicProperties({ messageId: 'abc', timestamp: 42 } as BasicProperties);
    expect(propertyTimestamp(raw)).toBe(42);
    expect(propertyTimestamp(raw.subarray(0, raw.length - 1))).toBeNull();
  });
});
