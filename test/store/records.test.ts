// Stored record and key encodings (src/store/records.ts, keys.ts): a message record written with
// the exchange and routing key pre-encoded (Message.routingBytes, the publish fast path) is byte for
// byte the record written from the strings, for ASCII and non-ASCII names, empty ones and the
// longest; entry keys sort numerically whatever the queue id, level and sequence number.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Message } from '../../src/broker/message.js';
import { entryKey, parseEntryKey, readU64, writeU64, MAX_SEQ, SPILL_BIT } from '../../src/store/keys.js';
import { decodeInlineMessage, decodeMessage, encodeInlineEntry, encodeMessage } from '../../src/store/records.js';

const name = fc.oneof(fc.constantFrom('', 'orders', 'amq.topic', 'ü.ñ.日本', 'x'.repeat(255)), fc.string({ maxLength: 60 }), fc.string({ unit: 'grapheme', maxLength: 40 }));
const fits = (s: string) => Buffer.byteLength(s) <= 255;

describe('message records', () => {
  it('with pre-encoded routing bytes: the same record as from the strings, and it decodes back', () => {
    fc.assert(
      fc.property(
        name.filter(fits),
        name.filter(fits),
        fc.uint8Array({ maxLength: 300 }),
        fc.uint8Array({ maxLength: 5000 }),
        fc.nat(),
        (exchange, routingKey, props, body, publishedAt) => {
          const properties = Buffer.concat([Buffer.from([0, 0]), Buffer.from(props)]);
          const message = new Message(exchange, routingKey, Buffer.from([0, 0]), Buffer.from(body), publishedAt);
          const fromStrings = encodeMessage(publishedAt, exchange, routingKey, properties, Buffer.from(body));
          const fromBytes = encodeMessage(publishedAt, exchange, routingKey, properties, Buffer.from(body), 0, message.routingBytes);
          expect(fromBytes.equals(fromStrings)).toBe(true);
          const decoded = decodeMessage(fromBytes);
          expect([decoded.publishedAt, decoded.exchange, decoded.routingKey]).toEqual([publishedAt, exchange, routingKey]);
          expect([decoded.properties.equals(properties), decoded.body.equals(Buffer.from(body))]).toEqual([true, true]);
          const inline = encodeInlineEntry(7, 0, 0, publishedAt, exchange, routingKey, properties, Buffer.from(body), message.routingBytes);
          expect(inline.equals(encodeInlineEntry(7, 0, 0, publishedAt, exchange, routingKey, properties, Buffer.from(body)))).toBe(true);
          expect(decodeInlineMessage(inline).routingKey).toBe(routingKey);
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('keys', () => {
  it('u64 round trip up to 2^53 - 1', () => {
    for (const v of [0, 1, 255, 256, 2 ** 32 - 1, 2 ** 32, 2 ** 32 + 1, 2 ** 40 + 12345, MAX_SEQ]) {
      const b = Buffer.alloc(10, 0xee);
      writeU64(b, 1, v);
      expect([readU64(b, 1), b[0], b[9]]).toEqual([v, 0xee, 0xee]);
    }
  });

  it('entry keys round-trip and sort as (queue id, level, seq) numerically', () => {
    const triple = fc.tuple(fc.oneof(fc.nat(), fc.constantFrom(0, SPILL_BIT, 0xffffffff, (7 | SPILL_BIT) >>> 0)), fc.nat(255), fc.oneof(fc.nat(), fc.constantFrom(MAX_SEQ, 2 ** 32, 2 ** 32 - 1)));
    fc.assert(
      fc.property(triple, triple, (a, b) => {
        const ka = entryKey(...a);
        const kb = entryKey(...b);
        expect(parseEntryKey(ka)).toEqual({ queueId: a[0], level: a[1], seq: a[2] });
        const byNumbers = a[0] - b[0] || a[1] - b[1] || a[2] - b[2];
        expect(Math.sign(Buffer.compare(ka, kb))).toBe(Math.sign(byNumbers));
      }),
      { numRuns: 1000 },
    );
  });
});
