// The basic.publish fast decoder (src/protocol/publish-decoder.ts) against the general decoder: for
// any argument bytes (valid, truncated, random, non-ASCII, invalid UTF-8) it returns exactly what
// decodeMethodArgs returns, or undefined where that one throws; its routing bytes are the re-encoded
// exchange and routing key (what basic.deliver carried before), and are reused for repeated pairs.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { encodeMethodFrame, encodeShortStr } from '../../src/protocol/frame-writer.js';
import * as M from '../../src/protocol/generated/amqp.js';
import { PublishDecoder, RECENT_LIMIT, recentRoutingNames, routingNamesHash } from '../../src/protocol/publish-decoder.js';

/** The general decoder's answer for argument bytes, or 'error'. */
function general(args: Buffer): M.Method | 'error' {
  try {
    return M.decodeMethodArgs(M.BASIC_PUBLISH, args, 0, args.length) ?? 'error';
  } catch {
    return 'error';
  }
}

function argsOf(exchange: string, routingKey: string, mandatory = false, immediate = false): Buffer {
  const frame = encodeMethodFrame(1, { id: M.BASIC_PUBLISH, reserved1: 7, exchange, routingKey, mandatory, immediate });
  return frame.subarray(7 + 4, frame.length - 1);
}

const reencoded = (m: M.BasicPublish) => Buffer.concat([encodeShortStr(m.exchange), encodeShortStr(m.routingKey)]);

describe('PublishDecoder', () => {
  it('decodes what the general decoder decodes, and refuses (undefined) what it refuses', () => {
    const d = new PublishDecoder();
    const bytes = fc.oneof(
      fc.tuple(fc.string({ maxLength: 40 }), fc.string({ maxLength: 40 }), fc.boolean(), fc.boolean()).map(([e, k, m, i]) => argsOf(e, k, m, i)),
      fc.uint8Array({ maxLength: 40 }).map((a) => Buffer.from(a)),
      fc.tuple(fc.string({ maxLength: 10 }), fc.string({ maxLength: 10 }), fc.nat()).map(([e, k, cut]) => {
        const a = argsOf(e, k);
        return a.subarray(0, cut % (a.length + 1));
      }),
    );
    fc.assert(
      fc.property(fc.array(bytes, { minLength: 1, maxLength: 4 }), (list) => {
        for (const args of list) {
          const expected = general(args);
          const got = d.decode(args, 0, args.length);
          if (expected === 'error') expect(got).toBeUndefined();
          else {
            expect(got).toEqual(expected);
            // basic.deliver gets exactly the bytes it got before (re-encoded), or encodes them itself
            if (d.routingBytes !== null) expect(d.routingBytes.equals(reencoded(got!))).toBe(true);
          }
        }
      }),
      { numRuns: 1000 },
    );
  });

  it('reuses strings and routing bytes while the exchange and routing key repeat', () => {
    const d = new PublishDecoder();
    const a = d.decode(argsOf('amq.topic', 'a.b.c'), 0, argsOf('amq.topic', 'a.b.c').length)!;
    const first = d.routingBytes;
    expect(first?.toString('latin1')).toBe('\x09amq.topic\x05a.b.c');
    const again = argsOf('amq.topic', 'a.b.c', true);
    const b = d.decode(again, 0, again.length)!;
    expect(d.routingBytes).toBe(first);
    expect(b).toEqual({ id: M.BASIC_PUBLISH, reserved1: 7, exchange: 'amq.topic', routingKey: 'a.b.c', mandatory: true, immediate: false });
    expect(a.mandatory).toBe(false);
    // the cached copy is the decoder's own: overwriting the frame does not change it
    again.fill(0);
    expect(first?.toString('latin1')).toBe('\x09amq.topic\x05a.b.c');
    const other = argsOf('amq.topic', 'a.b.d');
    expect(d.decode(other, 0, other.length)?.routingKey).toBe('a.b.d');
    expect(d.routingBytes).not.toBe(first);
  });

  it('names of the same length that differ in any one byte (first, middle, last) are told apart', () => {
    const d = new PublishDecoder();
    const pairs: [string, string][] = [['orders', 'eu.created.n42'], ['orderz', 'eu.created.n42'], ['orders', 'eu.crXated.n42'], ['orders', 'eu.created.n43'], ['Orders', 'eu.created.n42'], ['orders', 'eu.created.n42']];
    for (const [exchange, routingKey] of pairs) {
      const args = argsOf(exchange, routingKey);
      expect(d.decode(args, 0, args.length)).toEqual(general(args));
      expect(d.routingBytes?.toString('latin1')).toBe(`${String.fromCharCode(exchange.length)}${exchange}${String.fromCharCode(routingKey.length)}${routingKey}`);
    }
  });

  it('non-ASCII names are decoded but their bytes are not reused (invalid UTF-8 is re-encoded as before)', () => {
    const d = new PublishDecoder();
    const utf8 = argsOf('x', 'clé');
    expect(d.decode(utf8, 0, utf8.length)?.routingKey).toBe('clé');
    expect(d.routingBytes).toBeNull();
    const invalid = Buffer.from([0, 7, 1, 0x78, 2, 0xff, 0x41, 0]);
    expect(d.decode(invalid, 0, invalid.length)).toEqual(general(invalid));
    expect(d.routingBytes).toBeNull();
  });

  it('a publisher cycling through routing keys finds them again in the shared cache, which stays bounded', () => {
    const a = new PublishDecoder();
    const b = new PublishDecoder();
    const bytes = (i: number) => argsOf('amq.topic', `k.${i}`);
    const first = bytes(1);
    a.decode(first, 0, first.length);
    const seen = a.routingBytes;
    const other = bytes(2);
    a.decode(other, 0, other.length);
    // another channel publishing k.1 gets the same strings and bytes (no new decode)
    const again = bytes(1);
    const m = b.decode(again, 0, again.length)!;
    expect(b.routingBytes).toBe(seen);
    expect(m.routingKey).toBe('k.1');
    for (let i = 0; i < 3 * RECENT_LIMIT; i++) {
      const k = bytes(i);
      expect(a.decode(k, 0, k.length)?.routingKey).toBe(`k.${i}`);
      expect(recentRoutingNames()).toBeLessThanOrEqual(RECENT_LIMIT);
    }
  });

  it('every pair in the shared cache is found again while it holds them, whatever slots their hashes share', () => {
    const a = new PublishDecoder();
    const bytes = (i: number) => argsOf('probe.x', `key.${i}`);
    // start from an empty cache: fill it to the limit once, so the next pair clears it
    for (let i = 0; recentRoutingNames() < RECENT_LIMIT; i++) {
      const k = bytes(-1 - i);
      a.decode(k, 0, k.length);
    }
    const count = RECENT_LIMIT - 1;
    const first: (Buffer | null)[] = [];
    for (let i = 0; i < count; i++) {
      const k = bytes(i);
      a.decode(k, 0, k.length);
      first.push(a.routingBytes);
    }
    expect(recentRoutingNames()).toBe(count);
    const b = new PublishDecoder();
    for (let i = 0; i < count; i++) {
      const k = bytes(i);
      b.decode(k, 0, k.length);
      if (b.routingBytes !== first[i]) expect.fail(`pair ${i} was decoded again instead of found`);
    }
    expect(recentRoutingNames()).toBe(count);
  });

  it('pairs of equal length and equal hash are told apart by their bytes, at every length', () => {
    // Names bytes as the cache sees them: exchange and routing key, each with its length octet.
    const namesBytes = (exchange: string, key: string) => Buffer.concat([encodeShortStr(exchange), encodeShortStr(key)]);
    let seed = 7;
    const letter = () => String.fromCharCode(97 + ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) >>> 16) % 26);
    // Names of 8 to 11 bytes (tails of 0 to 3 bytes), around the 32 inline bytes, and past them.
    for (const keyLength of [5, 6, 7, 8, 26, 27, 28, 29, 33, 40]) {
      const byHash = new Map<number, string>();
      let pair: [string, string] | null = null;
      while (pair === null) {
        // The same first letter: the first word of both pairs is equal, so the rest must decide.
        let key = 'a';
        for (let i = 1; i < keyLength; i++) key += letter();
        const h = routingNamesHash(namesBytes('x', key));
        const other = byHash.get(h);
        if (other !== undefined && other !== key) pair = [other, key];
        else byHash.set(h, key);
        if (byHash.size > 200_000) throw new Error(`no equal hashes found for length ${keyLength}`);
      }
      const [a, b] = pair;
      for (const [first, second] of [[a, b], [b, a]] as const) {
        const one = argsOf('x', first);
        new PublishDecoder().decode(one, 0, one.length);
        const two = argsOf('x', second);
        expect(new PublishDecoder().decode(two, 0, two.length)?.routingKey).toBe(second);
        expect(new PublishDecoder().decode(one, 0, one.length)?.routingKey).toBe(first);
      }
    }
  });
});
