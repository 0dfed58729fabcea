// The CC/BCC key scan over an encoded headers table (src/protocol/table-scan.ts) against the full
// decoder: for arbitrary tables it finds exactly the top-level keys the decoded table has, and for
// arbitrary damage to the bytes it either answers SCAN_DECODE or the decoder accepts the same bytes
// and agrees — so using the scan as a filter never changes a routing outcome or hides an error.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Decimal, Timestamp, encodeTable, readTable, type FieldTable, type FieldValue } from '../../src/protocol/field-table.js';
import { SCAN_DECODE, SCAN_HAS_BCC, SCAN_HAS_CC, scanRoutingHeaderKeys } from '../../src/protocol/table-scan.js';

const hex = (h: string) => Buffer.from(h.replace(/\s+/g, ''), 'hex');

/** What the decoder says: CC/BCC bits, or SCAN_DECODE when it throws. */
function decoderAnswer(buf: Buffer): number {
  let table: FieldTable;
  try {
    table = readTable(buf, 0, buf.length)[0];
  } catch {
    return SCAN_DECODE;
  }
  return ('CC' in table ? SCAN_HAS_CC : 0) | ('BCC' in table ? SCAN_HAS_BCC : 0);
}

const scan = (buf: Buffer) => scanRoutingHeaderKeys(buf, 0, buf.length);

const key = fc.oneof(fc.constantFrom('CC', 'BCC', 'C', 'CCC', 'BC', 'cc', 'x-match', ''), fc.string({ maxLength: 12 }));
const leaf: fc.Arbitrary<FieldValue> = fc.oneof(
  fc.boolean(),
  fc.integer(),
  fc.double({ noNaN: true }),
  fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }),
  fc.string({ maxLength: 300 }),
  fc.uint8Array({ maxLength: 20 }).map((a) => Buffer.from(a)),
  fc.constant(null),
  fc.nat().map((s) => new Timestamp(s)),
  fc.tuple(fc.integer({ min: 0, max: 255 }), fc.nat()).map(([s, v]) => new Decimal(s, v)),
);
const { value } = fc.letrec<{ value: FieldValue }>((tie) => ({
  value: fc.oneof(
    // At most 6 levels of nesting: within what the scan follows (8), so that its answer must be the
    // exact one; deeper tables are handed to the decoder, as the deep-nesting test below checks
    // (without the bound, a rare deep draw made the first property fail with SCAN_DECODE).
    { depthSize: 'small', maxDepth: 6, withCrossShrink: true },
    leaf,
    fc.array(tie('value'), { maxLength: 4 }),
    fc.dictionary(key, tie('value'), { maxKeys: 4 }),
  ),
}));
const table = fc.dictionary(key, value, { maxKeys: 8 }) as fc.Arbitrary<FieldTable>;

describe('scanRoutingHeaderKeys', () => {
  it('finds exactly the top-level CC and BCC keys of any well-formed table', () => {
    fc.assert(
      fc.property(table, (t) => {
        const buf = encodeTable(t);
        const expected = ('CC' in t ? SCAN_HAS_CC : 0) | ('BCC' in t ? SCAN_HAS_BCC : 0);
        expect(scan(buf)).toBe(expected);
        expect(decoderAnswer(buf)).toBe(expected);
      }),
      { numRuns: 500 },
    );
  });

  it('never vouches for bytes the decoder refuses, and agrees with it on every table it accepts', () => {
    const damaged = fc
      .tuple(table, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 3 }), fc.nat())
      .map(([t, flips, cut]) => {
        const buf = Buffer.from(encodeTable(t));
        for (const [at, byte] of flips) buf[at % buf.length] = byte;
        return cut % 3 === 0 ? buf.subarray(0, cut % (buf.length + 1)) : buf;
      });
    fc.assert(
      fc.property(damaged, (buf) => {
        const s = scan(buf);
        if (s !== SCAN_DECODE) expect(decoderAnswer(buf)).toBe(s);
      }),
      { numRuns: 2000 },
    );
  });

  it('CC and BCC only count at the top level: inside nested tables and arrays they are plain data', () => {
    expect(scan(encodeTable({ inner: { CC: ['x'] }, list: [{ BCC: ['y'] }] }))).toBe(0);
    expect(scan(encodeTable({ inner: { CC: ['x'] }, BCC: ['y'] }))).toBe(SCAN_HAS_BCC);
    // after a long string, a nested table and an array
    expect(scan(encodeTable({ s: 'z'.repeat(70_000), t: { a: { b: 1 } }, a: [1, 'two', [3]], CC: ['k'] }))).toBe(SCAN_HAS_CC);
    // a key only resembling CC
    expect(scan(encodeTable({ CCC: ['k'], C: ['k'], cc: ['k'], BC: ['k'] }))).toBe(0);
  });

  it.each([
    ['buffer shorter than the table length', hex('000000')],
    ['table length past the end', hex('00000005 01 6b 56')],
    ['key length past the table', hex('00000002 05 6b')],
    ['missing type octet', hex('00000002 01 6b')],
    ['unknown type letter', hex('00000004 01 6b 5a 00')],
    ['unknown letter inside an array', hex('0000000a 01 6b 41 00000002 3f 00')],
    ['S length past the table', Buffer.concat([hex('00000007 01 6b 53 0000000a'), Buffer.from('0123456789')])],
    ['nested array element past the array', Buffer.concat([hex('0000000a 01 6b 41 00000002 4900'), hex('000000')])],
    ['nested key past its table', hex('00000009 01 6b 46 00000002 05 6b')],
  ])('malformed (%s): the scan hands it to the decoder, which refuses it', (_name, bytes) => {
    expect(scan(bytes)).toBe(SCAN_DECODE);
    expect(decoderAnswer(bytes)).toBe(SCAN_DECODE);
  });

  it('every one of the 256 type octets: the scan skips exactly what the decoder reads, or hands it over', () => {
    // key "k", type octet t, then 12 zero bytes (room for any fixed-size value, and zero lengths for
    // S, x, F and A), then a CC key: the scan must land on CC exactly when the decoder does.
    const accepted: string[] = [];
    for (let t = 0; t < 256; t++) {
      for (const pad of [0, 1, 2, 4, 5, 8, 12]) {
        const body = Buffer.concat([hex('016b'), Buffer.from([t]), Buffer.alloc(pad), hex('0243 43 56')]);
        const buf = Buffer.concat([Buffer.from([0, 0, 0, body.length]), body]);
        const s = scan(buf);
        if (s !== SCAN_DECODE) expect([t, pad, decoderAnswer(buf)]).toEqual([t, pad, s]);
        if (s === SCAN_HAS_CC && pad === 12) accepted.push(String.fromCharCode(t));
      }
    }
    // no type takes 12 bytes: what it leaves is read as a key of length 0 with type octet 0, refused
    expect(accepted.sort().join('')).toBe('');
    const fixed: string[] = [];
    for (let t = 0; t < 256; t++) {
      const pad = { t: 1, b: 1, B: 1, s: 2, u: 2, I: 4, i: 4, f: 4, D: 5, l: 8, d: 8, T: 8, V: 0, S: 4, x: 4, F: 4, A: 4 }[String.fromCharCode(t)];
      if (pad === undefined) continue;
      const body = Buffer.concat([hex('016b'), Buffer.from([t]), Buffer.alloc(pad), hex('0243 43 56')]);
      const buf = Buffer.concat([Buffer.from([0, 0, 0, body.length]), body]);
      expect([String.fromCharCode(t), scan(buf)]).toEqual([String.fromCharCode(t), decoderAnswer(buf)]);
      if (scan(buf) === SCAN_HAS_CC) fixed.push(String.fromCharCode(t));
    }
    expect(fixed.sort().join('')).toBe('ABDFISTVbdfilstux');
  });

  it('tables nested deeper than the scan follows go to the decoder (which still decodes them)', () => {
    let deep: FieldValue = 1;
    for (let i = 0; i < 20; i++) deep = { n: deep };
    const buf = encodeTable({ deep, other: 'x' });
    expect(scan(buf)).toBe(SCAN_DECODE);
    expect(decoderAnswer(buf)).toBe(0);
    let shallow: FieldValue = 1;
    for (let i = 0; i < 6; i++) shallow = [shallow];
    expect(scan(encodeTable({ shallow, CC: ['a'] }))).toBe(SCAN_HAS_CC);
  });

  it('reads only inside [offset, end): a table inside a larger buffer', () => {
    const t = encodeTable({ CC: ['a'], BCC: ['b'] });
    const buf = Buffer.concat([hex('ffff'), t, hex('ffffffff')]);
    expect(scanRoutingHeaderKeys(buf, 2, 2 + t.length)).toBe(SCAN_HAS_CC | SCAN_HAS_BCC);
    expect(scanRoutingHeaderKeys(buf, 2, 2 + t.length - 1)).toBe(SCAN_DECODE);
  });
});
