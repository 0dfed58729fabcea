// Field tables and arrays with every RabbitMQ field type (t b B s u I i l f d D S A T F V x):
// hand-built byte vectors decode to exact values, the natural and forced (TypedValue) encodings
// produce exact bytes, encode → decode round-trips for arbitrary nested values, and malformed
// input is refused with 501 FRAME_ERROR. Decoded tables have no prototype to pollute.

import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { AmqpException, FrameError } from '../../src/protocol/errors.js';
import {
  Decimal,
  Timestamp,
  TypedValue,
  copyTable,
  decodeTable,
  encodeTable,
  fieldTypeOf,
  fieldValueSize,
  readFieldValue,
  readTable,
  tableSize,
  writeTable,
  type FieldTable,
  type FieldValue,
} from '../../src/protocol/field-table.js';

// ---------------------------------------------------------------------------------------------
// Byte-vector helpers

const hex = (h: string) => Buffer.from(h.replace(/\s+/g, ''), 'hex');
const u8 = (n: number) => Buffer.from([n]);
const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
};
const shortStr = (s: string) => Buffer.concat([u8(Buffer.byteLength(s)), Buffer.from(s)]);
const longStr = (s: string | Buffer) => {
  const b = typeof s === 'string' ? Buffer.from(s) : s;
  return Buffer.concat([u32(b.length), b]);
};
/** A table body: (key, typed value bytes)*, with its 4-byte length prefix. */
const tableBytes = (...entries: [string, Buffer][]) => {
  const body = Buffer.concat(entries.flatMap(([k, v]) => [shortStr(k), v]));
  return Buffer.concat([u32(body.length), body]);
};
const arrayBytes = (...values: Buffer[]) => {
  const body = Buffer.concat(values);
  return Buffer.concat([u32(body.length), body]);
};
const typed = (letter: string, bytes: Buffer) => Buffer.concat([Buffer.from(letter, 'latin1'), bytes]);

/** Null-prototype table, as the decoder builds them. */
function nt(entries: Record<string, FieldValue> | [string, FieldValue][]): FieldTable {
  const t = Object.create(null) as FieldTable;
  for (const [k, v] of Array.isArray(entries) ? entries : Object.entries(entries)) t[k] = v;
  return t;
}

function decodeOne(valueBytes: Buffer): FieldValue {
  const table = decodeTable(tableBytes(['k', valueBytes]));
  expect(Object.keys(table)).toEqual(['k']);
  return table.k!;
}

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error('expected an exception, none was thrown');
}

function expectFrameError(fn: () => unknown): FrameError {
  const err = thrown(fn);
  expect(err).toBeInstanceOf(FrameError);
  expect((err as AmqpException).replyCode).toBe(501);
  return err as FrameError;
}

// ---------------------------------------------------------------------------------------------

describe('decoding hand-built vectors, one per type letter', () => {
  const cases: [string, Buffer, FieldValue][] = [
    ['t true', typed('t', hex('01')), true],
    ['t false', typed('t', hex('00')), false],
    ['t any non-zero octet is true', typed('t', hex('02')), true],
    ['b -1', typed('b', hex('ff')), -1],
    ['b -128', typed('b', hex('80')), -128],
    ['b 127', typed('b', hex('7f')), 127],
    ['B 255', typed('B', hex('ff')), 255],
    ['s -1', typed('s', hex('ffff')), -1],
    ['s -32768', typed('s', hex('8000')), -32768],
    ['u 65535', typed('u', hex('ffff')), 65535],
    ['I -1', typed('I', hex('ffffffff')), -1],
    ['I -2^31', typed('I', hex('80000000')), -2147483648],
    ['I 2^31-1', typed('I', hex('7fffffff')), 2147483647],
    ['i 2^32-1', typed('i', hex('ffffffff')), 4294967295],
    ['l 5 → number', typed('l', hex('0000000000000005')), 5],
    ['l -1 → number', typed('l', hex('ffffffffffffffff')), -1],
    ['l 2^53-1 → number', typed('l', hex('001fffffffffffff')), Number.MAX_SAFE_INTEGER],
    ['l -(2^53-1) → number', typed('l', hex('ffe0000000000001')), Number.MIN_SAFE_INTEGER],
    ['l 2^53 → bigint', typed('l', hex('0020000000000000')), 9007199254740992n],
    ['l 2^53+1 → bigint, exactly', typed('l', hex('0020000000000001')), 9007199254740993n],
    ['l -(2^53+1) → bigint', typed('l', hex('ffdfffffffffffff')), -9007199254740993n],
    ['l 2^63-1 → bigint', typed('l', hex('7fffffffffffffff')), 9223372036854775807n],
    ['l -2^63 → bigint', typed('l', hex('8000000000000000')), -9223372036854775808n],
    ['f 1.5', typed('f', hex('3fc00000')), 1.5],
    ['f -0.1 (single precision)', typed('f', hex('bdcccccd')), Math.fround(-0.1)],
    ['d 1.5', typed('d', hex('3ff8000000000000')), 1.5],
    ['d -0.1', typed('d', hex('bfb999999999999a')), -0.1],
    ['d NaN', typed('d', hex('7ff8000000000000')), NaN],
    ['d -Infinity', typed('d', hex('fff0000000000000')), -Infinity],
    ['D scale 2, 1234 → 12.34', typed('D', hex('02 000004d2')), new Decimal(2, 1234)],
    ['D scale 0, 2^32-1', typed('D', hex('00 ffffffff')), new Decimal(0, 4294967295)],
    ['S empty', typed('S', longStr('')), ''],
    ['S UTF-8', typed('S', longStr('héllo ✓ 😀')), 'héllo ✓ 😀'],
    ['x bytes', typed('x', longStr(hex('00 01 fe ff'))), hex('00 01 fe ff')],
    ['x empty', typed('x', longStr(Buffer.alloc(0))), Buffer.alloc(0)],
    ['T 1600000000', typed('T', hex('000000005f5e1000')), new Timestamp(1600000000)],
    ['T high word', typed('T', hex('0000000100000002')), new Timestamp(2 ** 32 + 2)],
    ['V', typed('V', Buffer.alloc(0)), null],
    ['A empty', typed('A', arrayBytes()), []],
    [
      'A mixed, nested',
      typed(
        'A',
        arrayBytes(
          typed('I', hex('00000001')),
          typed('S', longStr('two')),
          typed('A', arrayBytes(typed('t', hex('01')), typed('V', Buffer.alloc(0)))),
          typed('F', tableBytes(['k', typed('b', hex('05'))])),
        ),
      ),
      [1, 'two', [true, null], nt({ k: 5 })],
    ],
    ['F empty', typed('F', tableBytes()), nt({})],
    [
      'F nested twice',
      typed('F', tableBytes(['inner', typed('F', tableBytes(['deep', typed('S', longStr('x'))]))], ['n', typed('u', hex('0102'))])),
      nt({ inner: nt({ deep: 'x' }), n: 258 }),
    ],
  ];

  it.each(cases)('%s', (_name, bytes, expected) => {
    const value = decodeOne(bytes);
    expect(value).toStrictEqual(expected);
    // Also as a bare value: readFieldValue returns the offset just after it.
    const padded = Buffer.concat([hex('aa'), bytes, hex('bb')]);
    const [v, next] = readFieldValue(padded, 1, padded.length - 1);
    expect(v).toStrictEqual(expected);
    expect(next).toBe(1 + bytes.length);
  });

  it('l decodes to number exactly when it is a safe integer, else to bigint', () => {
    expect(typeof decodeOne(typed('l', hex('0000000000000005')))).toBe('number');
    expect(typeof decodeOne(typed('l', hex('0020000000000001')))).toBe('bigint');
  });

  it('T, D and x keep their types (Timestamp, Decimal, Buffer)', () => {
    expect(decodeOne(typed('T', hex('000000005f5e1000')))).toBeInstanceOf(Timestamp);
    expect(decodeOne(typed('D', hex('02000004d2')))).toBeInstanceOf(Decimal);
    expect(Buffer.isBuffer(decodeOne(typed('x', longStr('ab'))))).toBe(true);
  });

  it('decodes a table with several keys in wire order, duplicates keeping the last value', () => {
    const t = decodeTable(
      tableBytes(['b', typed('I', hex('00000002'))], ['a', typed('I', hex('00000001'))], ['b', typed('S', longStr('again'))]),
    );
    expect(t).toStrictEqual(nt({ b: 'again', a: 1 }));
  });

  it('readTable returns the offset after the table and ignores what follows', () => {
    const bytes = Buffer.concat([hex('ffff'), tableBytes(['a', typed('V', Buffer.alloc(0))]), hex('ce')]);
    const [t, next] = readTable(bytes, 2, bytes.length);
    expect(t).toStrictEqual(nt({ a: null }));
    expect(next).toBe(bytes.length - 1);
  });
});

// ---------------------------------------------------------------------------------------------

describe('encoding: exact bytes', () => {
  const cases: [string, FieldValue, Buffer][] = [
    ['true → t', true, typed('t', hex('01'))],
    ['false → t', false, typed('t', hex('00'))],
    ['0 → I', 0, typed('I', hex('00000000'))],
    ['-2^31 → I', -2147483648, typed('I', hex('80000000'))],
    ['2^31-1 → I', 2147483647, typed('I', hex('7fffffff'))],
    ['2^31 → l', 2147483648, typed('l', hex('0000000080000000'))],
    ['-2^31-1 → l', -2147483649, typed('l', hex('ffffffff7fffffff'))],
    ['2^53-1 → l', Number.MAX_SAFE_INTEGER, typed('l', hex('001fffffffffffff'))],
    ['1.5 → d', 1.5, typed('d', hex('3ff8000000000000'))],
    ['bigint → l', 9007199254740993n, typed('l', hex('0020000000000001'))],
    ['small bigint → l', -5n, typed('l', hex('fffffffffffffffb'))],
    ['string → S', 'hé', typed('S', longStr('hé'))],
    ['Buffer → x', hex('0102'), typed('x', longStr(hex('0102')))],
    ['null → V', null, hex('56')],
    ['Timestamp → T', new Timestamp(2 ** 32 + 2), typed('T', hex('0000000100000002'))],
    ['Decimal → D', new Decimal(2, 1234), typed('D', hex('02000004d2'))],
    ['array → A', [1, 'a'], typed('A', arrayBytes(typed('I', hex('00000001')), typed('S', longStr('a'))))],
    ['table → F', { k: true }, typed('F', tableBytes(['k', typed('t', hex('01'))]))],
    ['TypedValue b', new TypedValue('b', -2), typed('b', hex('fe'))],
    ['TypedValue B', new TypedValue('B', 254), typed('B', hex('fe'))],
    ['TypedValue s', new TypedValue('s', -2), typed('s', hex('fffe'))],
    ['TypedValue u', new TypedValue('u', 65534), typed('u', hex('fffe'))],
    ['TypedValue I', new TypedValue('I', -2), typed('I', hex('fffffffe'))],
    ['TypedValue i', new TypedValue('i', 4294967294), typed('i', hex('fffffffe'))],
    ['TypedValue l (number)', new TypedValue('l', 5), typed('l', hex('0000000000000005'))],
    ['TypedValue l (bigint)', new TypedValue('l', -(2n ** 63n)), typed('l', hex('8000000000000000'))],
    ['TypedValue f', new TypedValue('f', 1.5), typed('f', hex('3fc00000'))],
    ['TypedValue d (integral value stays d)', new TypedValue('d', 3), typed('d', hex('4008000000000000'))],
    ['TypedValue S', new TypedValue('S', 'ab'), typed('S', longStr('ab'))],
    ['TypedValue x', new TypedValue('x', hex('ff00')), typed('x', longStr(hex('ff00')))],
  ];

  it.each(cases)('%s', (_name, value, valueBytes) => {
    const expected = tableBytes(['k', valueBytes]);
    const encoded = encodeTable({ k: value });
    expect(encoded.toString('hex')).toBe(expected.toString('hex'));
    expect(tableSize({ k: value })).toBe(expected.length);
    expect(fieldValueSize(value)).toBe(valueBytes.length);
  });

  it('an empty table is four zero bytes; undefined values are skipped', () => {
    expect(encodeTable({}).toString('hex')).toBe('00000000');
    const withUndefined = { a: 1, b: undefined } as unknown as FieldTable;
    expect(encodeTable(withUndefined).toString('hex')).toBe(tableBytes(['a', typed('I', hex('00000001'))]).toString('hex'));
    expect(tableSize(withUndefined)).toBe(4 + 2 + 5);
  });

  it('writeTable writes at an offset and returns the end', () => {
    const t = { a: 'x', b: [true] };
    const size = tableSize(t);
    const buf = Buffer.alloc(size + 6, 0x99);
    expect(writeTable(buf, 3, t)).toBe(3 + size);
    expect(buf.subarray(3, 3 + size).equals(encodeTable(t))).toBe(true);
    expect([buf[2], buf[3 + size]]).toEqual([0x99, 0x99]);
  });
});

// ---------------------------------------------------------------------------------------------
// Round-trip property over a recursive field-value arbitrary (natural and forced encodings).

const bytes = (maxLength: number) => fc.uint8Array({ maxLength }).map((a) => Buffer.from(a));
const int64 = fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n });
const anyString = fc.string({ unit: 'binary', maxLength: 30 });
const key = fc.oneof(
  { weight: 5, arbitrary: fc.string({ unit: 'binary', maxLength: 20 }) },
  { weight: 1, arbitrary: fc.constantFrom('', '__proto__', 'constructor', 'toString', 'x-match', 'k'.repeat(255), '😀'.repeat(63)) },
);

const typedValue: fc.Arbitrary<TypedValue> = fc.oneof(
  fc.integer({ min: -128, max: 127 }).map((n) => new TypedValue('b', n)),
  fc.integer({ min: 0, max: 255 }).map((n) => new TypedValue('B', n)),
  fc.integer({ min: -32768, max: 32767 }).map((n) => new TypedValue('s', n)),
  fc.integer({ min: 0, max: 65535 }).map((n) => new TypedValue('u', n)),
  fc.integer().map((n) => new TypedValue('I', n)),
  fc.integer({ min: 0, max: 0xffffffff }).map((n) => new TypedValue('i', n)),
  fc.oneof(fc.integer({ min: Number.MIN_SAFE_INTEGER, max: Number.MAX_SAFE_INTEGER }), int64).map((n) => new TypedValue('l', n)),
  fc.float().map((n) => new TypedValue('f', n)),
  fc.double().map((n) => new TypedValue('d', n)),
  anyString.map((s) => new TypedValue('S', s)),
  bytes(20).map((b) => new TypedValue('x', b)),
);

const { value: fieldValue } = fc.letrec<{ value: FieldValue; array: FieldValue[]; table: FieldTable }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.boolean(),
    fc.integer(),
    fc.integer({ min: Number.MIN_SAFE_INTEGER, max: Number.MAX_SAFE_INTEGER }),
    // every double that fits a signed 64-bit integer when integral (see the 2^63 test below)
    fc.double().filter((d) => !(Number.isInteger(d) && (d >= 2 ** 63 || d < -(2 ** 63)))),
    int64,
    anyString,
    bytes(20),
    fc.constant(null),
    fc.maxSafeNat().map((s) => new Timestamp(s)),
    fc.tuple(fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 0xffffffff })).map(([s, v]) => new Decimal(s, v)),
    typedValue,
    tie('array'),
    tie('table'),
  ),
  array: fc.array(tie('value'), { maxLength: 4 }),
  table: fc.array(fc.tuple(key, tie('value')), { maxLength: 4 }).map(nt),
}));

const fieldTable = fc.array(fc.tuple(key, fieldValue), { maxLength: 6 }).map(nt);

/** What decoding must produce for a value that was encoded. */
function expectedDecoded(v: FieldValue): FieldValue {
  if (typeof v === 'number') {
    if (Object.is(v, -0)) return 0; // integral → 'I'
    if (Number.isInteger(v) && !Number.isSafeInteger(v)) return BigInt(v); // 'l' out of the safe range
    return v;
  }
  if (typeof v === 'bigint') return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  if (v instanceof TypedValue) {
    switch (v.type) {
      case 'f':
        return Math.fround(v.value as number);
      case 'l':
        return expectedDecoded(typeof v.value === 'bigint' ? v.value : BigInt(v.value as number));
      case 'S':
      case 'x':
      case 'd':
        return v.value as FieldValue;
      default:
        return v.value as number;
    }
  }
  if (Array.isArray(v)) return v.map(expectedDecoded);
  if (v === null || typeof v !== 'object' || Buffer.isBuffer(v) || v instanceof Timestamp || v instanceof Decimal) return v;
  return nt(Object.entries(v).map(([k, x]): [string, FieldValue] => [k, expectedDecoded(x)]));
}

/**
 * A tagged tree of a decoded value, so that comparisons see exact classes, null prototypes and
 * number-vs-bigint, and are not confused by keys such as "constructor".
 */
type Shape = [string, ...unknown[]];
function shape(v: FieldValue): Shape {
  if (v === null) return ['V'];
  switch (typeof v) {
    case 'boolean':
      return ['bool', v];
    case 'number':
      return ['number', v];
    case 'bigint':
      return ['bigint', v];
    case 'string':
      return ['string', v];
    default:
      break;
  }
  if (Buffer.isBuffer(v)) return ['Buffer', v.toString('hex')];
  if (Array.isArray(v)) return ['array', ...v.map(shape)];
  if (v instanceof Timestamp) return ['Timestamp', Object.getPrototypeOf(v) === Timestamp.prototype, v.seconds];
  if (v instanceof Decimal) return ['Decimal', Object.getPrototypeOf(v) === Decimal.prototype, v.scale, v.value];
  if (v instanceof TypedValue) return ['TypedValue', v.type, shape(v.value as FieldValue)];
  const keys = Object.keys(v).sort();
  return ['table', Object.getPrototypeOf(v) === null, ...keys.map((k) => [k, shape(Object.getOwnPropertyDescriptor(v, k)!.value as FieldValue)])];
}

describe('round trip', () => {
  it('decodeTable(encodeTable(t)) equals t with forced types resolved to their decoded form', () => {
    fc.assert(
      fc.property(fieldTable, (t) => {
        const buf = encodeTable(t);
        expect(buf.length).toBe(tableSize(t));
        expect(buf.readUInt32BE(0)).toBe(buf.length - 4);
        expect(shape(decodeTable(buf))).toStrictEqual(shape(expectedDecoded(t)));
      }),
      { numRuns: 200 },
    );
  });

  it('a decoded table re-encodes to the same bytes when it holds no forced or collapsed types', () => {
    // Tables as a client sends them: decode then encode must reproduce the wire bytes.
    const wire = tableBytes(
      ['bool', typed('t', hex('01'))],
      ['int', typed('I', hex('fffffff6'))],
      ['long', typed('l', hex('0020000000000001'))],
      ['double', typed('d', hex('3ff8000000000000'))],
      ['str', typed('S', longStr('é'))],
      ['bytes', typed('x', longStr(hex('00ff')))],
      ['void', typed('V', Buffer.alloc(0))],
      ['ts', typed('T', hex('000000005f5e1000'))],
      ['dec', typed('D', hex('0300000457'))],
      ['arr', typed('A', arrayBytes(typed('I', hex('00000001')), typed('F', tableBytes())))],
      ['tbl', typed('F', tableBytes(['x', typed('S', longStr('y'))]))],
    );
    expect(encodeTable(decodeTable(wire)).equals(wire)).toBe(true);
  });

  it('an integral double beyond the signed 64-bit range re-encodes (top level, nested, plain)', () => {
    // A client may send 'd' 1e20; it decodes to the number 1e20 and must survive re-encoding (for
    // instance when dead-lettering copies the headers). amqplib encodes such numbers as 'd' too.
    const wire = tableBytes(
      ['top', typed('d', hex('4415af1d78b58c40'))],
      ['list', typed('A', arrayBytes(typed('d', hex('4415af1d78b58c40'))))],
      ['inner', typed('F', tableBytes(['big', typed('d', hex('4415af1d78b58c40'))]))],
    );
    const decoded = decodeTable(wire);
    expect(decoded).toStrictEqual(nt({ top: 1e20, list: [1e20], inner: nt({ big: 1e20 }) }));
    expect(shape(decodeTable(encodeTable(decoded)))).toStrictEqual(shape(decoded));
    // a table built in code
    expect(decodeTable(encodeTable({ big: 1e20, neg: -1e300 }))).toStrictEqual(nt({ big: 1e20, neg: -1e300 }));
  });
});

// ---------------------------------------------------------------------------------------------

describe('malformed input → FrameError 501', () => {
  it('unknown type letter', () => {
    const err = expectFrameError(() => decodeTable(tableBytes(['k', typed('Z', hex('00'))])));
    expect(err.replyText).toBe("FRAME_ERROR - cannot decode field table: unknown field type 'Z' (0x5a)");
    // letters from the 0-9-1 spec that RabbitMQ does not use
    expectFrameError(() => decodeTable(tableBytes(['k', typed('U', hex('0000'))])));
    expectFrameError(() => decodeTable(tableBytes(['k', typed('L', hex('0000000000000000'))])));
    // an unknown letter inside an array
    expectFrameError(() => decodeTable(tableBytes(['k', typed('A', arrayBytes(typed('?', hex('00'))))])));
  });

  it.each([
    ['buffer shorter than the table length', hex('000000')],
    ['table length past the end', hex('00000005 01 6b 56')],
    ['key length past the table', hex('00000002 05 6b')],
    ['missing type octet', hex('00000002 01 6b')],
    ['t without its octet', tableBytes(['k', typed('t', Buffer.alloc(0))])],
    ['b without its octet', tableBytes(['k', typed('b', Buffer.alloc(0))])],
    ['B without its octet', tableBytes(['k', typed('B', Buffer.alloc(0))])],
    ['s short by one', tableBytes(['k', typed('s', hex('00'))])],
    ['u short by one', tableBytes(['k', typed('u', hex('00'))])],
    ['I short by one', tableBytes(['k', typed('I', hex('000000'))])],
    ['i short by one', tableBytes(['k', typed('i', hex('000000'))])],
    ['l short by one', tableBytes(['k', typed('l', hex('00000000000000'))])],
    ['f short by one', tableBytes(['k', typed('f', hex('000000'))])],
    ['d short by one', tableBytes(['k', typed('d', hex('00000000000000'))])],
    ['D short by one', tableBytes(['k', typed('D', hex('02000000'))])],
    ['T short by one', tableBytes(['k', typed('T', hex('00000000000000'))])],
    ['S length prefix cut', tableBytes(['k', typed('S', hex('000000'))])],
    ['S length past the end', tableBytes(['k', typed('S', hex('00000004 616263'))])],
    ['x length past the end', tableBytes(['k', typed('x', hex('00000004 010203'))])],
    ['A length past the end', tableBytes(['k', typed('A', hex('00000006 56 56'))])],
    ['F length past the end', tableBytes(['k', typed('F', hex('00000009 01 6b 56'))])],
    ['S huge length', tableBytes(['k', typed('S', hex('ffffffff'))])],
    ['A element cut', tableBytes(['k', typed('A', arrayBytes(typed('I', hex('0000'))))])],
  ])('%s', (_name, bytes) => {
    expectFrameError(() => decodeTable(bytes));
  });

  it('a value may not run past its own table even when the frame goes on', () => {
    // Outer table says 7 bytes: key 'k', 'S', and a length of 10 whose bytes lie beyond the table.
    const bytes = Buffer.concat([hex('00000007 01 6b 53 0000000a'), Buffer.from('0123456789')]);
    expectFrameError(() => readTable(bytes, 0, bytes.length));
    // Nested: inner array length 2 but its element needs 5 bytes, available only after the array.
    const nested = Buffer.concat([tableBytes(['k', typed('A', hex('00000002 4900'))]), hex('000000')]);
    expectFrameError(() => readTable(nested, 0, nested.length));
    // A key whose length runs past the table into the bytes after it.
    const key = Buffer.concat([hex('00000002 05 6b'), Buffer.from('lmno'), hex('56')]);
    expect(expectFrameError(() => readTable(key, 0, key.length)).replyText).toBe(
      'FRAME_ERROR - cannot decode field table: field name past end of table',
    );
  });

  it('a table may not run past the end given to readTable', () => {
    const bytes = tableBytes(['k', typed('S', longStr('abc'))]);
    expectFrameError(() => readTable(bytes, 0, bytes.length - 1));
    expect(readTable(bytes, 0, bytes.length)[1]).toBe(bytes.length);
  });

  it('every truncation of a rich table is refused, also when the table length is rewritten to match', () => {
    const entries: [string, FieldValue][] = [
      ['a', [1, 'two', { three: 3n ** 39n }]],
      ['b', new Timestamp(5)],
      ['c', new Decimal(1, 2)],
      ['d', hex('0102')],
      ['e', 1.25],
      ['f', new TypedValue('f', 2.5)],
      ['g', new TypedValue('u', 7)],
      ['h', null],
    ];
    const wire = encodeTable(Object.fromEntries(entries));
    // where each entry ends, relative to the start of the table body
    const boundaries = new Map<number, number>();
    let pos = 0;
    entries.forEach(([k, v], i) => {
      pos += 1 + Buffer.byteLength(k) + fieldValueSize(v);
      boundaries.set(pos, i + 1);
    });
    expect(pos).toBe(wire.length - 4);
    for (let cut = 0; cut < wire.length; cut++) {
      // the original length prefix now runs past the end
      expectFrameError(() => readTable(wire, 0, cut));
      if (cut < 4) continue;
      // a prefix whose length says exactly what is left: fine at entry boundaries, 501 elsewhere
      const body = wire.subarray(4, cut);
      const shortened = Buffer.concat([u32(body.length), body]);
      const whole = boundaries.get(body.length) ?? (body.length === 0 ? 0 : undefined);
      if (whole === undefined) {
        expectFrameError(() => decodeTable(shortened));
      } else {
        expect(decodeTable(shortened)).toStrictEqual(expectedDecoded(nt(entries.slice(0, whole))));
      }
    }
  });
});

// ---------------------------------------------------------------------------------------------

describe('recorded field types (re-encoding what a client sent)', () => {
  const wire = tableBytes(
    ['b', typed('b', hex('05'))],
    ['B', typed('B', hex('05'))],
    ['s', typed('s', hex('0005'))],
    ['u', typed('u', hex('0005'))],
    ['I', typed('I', hex('00000005'))],
    ['i', typed('i', hex('00000005'))],
    ['l', typed('l', hex('0000000000000005'))],
    ['f', typed('f', hex('40a00000'))],
    ['d', typed('d', hex('4014000000000000'))],
    ['S', typed('S', longStr('x'))],
    ['T', typed('T', hex('0000000000000005'))],
  );

  it('decodeTable records each field\'s type letter, out of sight of Object.keys and for-in', () => {
    const t = decodeTable(wire);
    for (const k of ['b', 'B', 's', 'u', 'I', 'i', 'l', 'f', 'd', 'S', 'T']) expect(fieldTypeOf(t, k)).toBe(k);
    expect(fieldTypeOf(t, 'missing')).toBeUndefined();
    expect(Object.keys(t)).toEqual(['b', 'B', 's', 'u', 'I', 'i', 'l', 'f', 'd', 'S', 'T']);
    const forIn: string[] = [];
    for (const k in t) forIn.push(k);
    expect(forIn).toEqual(Object.keys(t));
    expect(JSON.stringify(Object.keys(t))).not.toContain('amqp field types');
    expect(t).toStrictEqual(nt({ b: 5, B: 5, s: 5, u: 5, I: 5, i: 5, l: 5, f: 5, d: 5, S: 'x', T: new Timestamp(5) }));
  });

  it('readTable without recordTypes records nothing', () => {
    const [t] = readTable(wire, 0, wire.length);
    expect(fieldTypeOf(t, 'b')).toBeUndefined();
    // and so the numbers re-encode with the natural mapping
    expect(encodeTable(t).equals(wire)).toBe(false);
  });

  it('a decoded table re-encodes every top-level number with the type it came with', () => {
    expect(encodeTable(decodeTable(wire)).toString('hex')).toBe(wire.toString('hex'));
  });

  it('copyTable keeps the recorded types, a spread does not', () => {
    const t = decodeTable(wire);
    const copy = copyTable(t);
    expect(Object.getPrototypeOf(copy)).toBeNull();
    expect(copy).toStrictEqual(t);
    expect(fieldTypeOf(copy, 's')).toBe('s');
    expect(encodeTable(copy).toString('hex')).toBe(wire.toString('hex'));
    copy['extra'] = 1; // the copy is independent of the original
    expect(Object.keys(t)).not.toContain('extra');
    expect(fieldTypeOf({ ...t }, 's')).toBeUndefined();
    expect(Object.keys(copyTable(undefined))).toEqual([]);
  });

  it('a changed value keeps the recorded type of its key', () => {
    const t = decodeTable(tableBytes(['count', typed('l', hex('0000000000000001'))]));
    t['count'] = 2;
    expect(encodeTable(t).toString('hex')).toBe(tableBytes(['count', typed('l', hex('0000000000000002'))]).toString('hex'));
  });

  it('decoded tables re-encode byte for byte, nested tables and arrays included', () => {
    // What amqplib sends for {list: [1, 300], inner: {n: 1}}: the smallest integer types.
    const nested = tableBytes(
      ['list', typed('A', arrayBytes(typed('b', hex('01')), typed('s', hex('012c'))))],
      ['inner', typed('F', tableBytes(['n', typed('b', hex('01'))], ['f', typed('f', hex('3fc00000'))]))],
    );
    expect(encodeTable(decodeTable(nested)).toString('hex')).toBe(nested.toString('hex'));
  });
});

// ---------------------------------------------------------------------------------------------

describe('hostile keys', () => {
  it('"__proto__" decodes as an ordinary key without touching any prototype', () => {
    const bytes = tableBytes(
      ['__proto__', typed('F', tableBytes(['polluted', typed('t', hex('01'))]))],
      ['constructor', typed('S', longStr('c'))],
      ['hasOwnProperty', typed('I', hex('00000001'))],
    );
    const t = decodeTable(bytes);
    expect(Object.getPrototypeOf(t)).toBeNull();
    expect(Object.keys(t)).toEqual(['__proto__', 'constructor', 'hasOwnProperty']);
    expect(Object.getOwnPropertyDescriptor(t, '__proto__')?.value).toStrictEqual(nt({ polluted: true }));
    expect(t.constructor).toBe('c');
    expect(t.hasOwnProperty).toBe(1);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect((Object.prototype as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.prototype.hasOwnProperty.call(Object.prototype, 'polluted')).toBe(false);
    // nested tables are null-prototype too
    expect(Object.getPrototypeOf(Object.getOwnPropertyDescriptor(t, '__proto__')?.value)).toBeNull();
    // and the table re-encodes to the same bytes
    expect(encodeTable(t).equals(bytes)).toBe(true);
  });

  it('"__proto__" inside an array element table is a key as well', () => {
    const bytes = tableBytes(['a', typed('A', arrayBytes(typed('F', tableBytes(['__proto__', typed('S', longStr('x'))]))))]);
    const t = decodeTable(bytes);
    const inner = (t.a as FieldValue[])[0] as FieldTable;
    expect(Object.getPrototypeOf(inner)).toBeNull();
    expect(Object.keys(inner)).toEqual(['__proto__']);
    expect(Object.getOwnPropertyDescriptor(inner, '__proto__')?.value).toBe('x');
  });
});
