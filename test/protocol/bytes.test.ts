// readU16/readU32 (src/protocol/bytes.ts) replace Buffer#readUInt16BE/readUInt32BE on the hot path;
// they must give exactly what those give, for every value and at any offset. viewOf replaces
// Buffer#subarray for per-message views: the same bytes, the same memory, whichever chunk came last.

import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { readU16, readU32, viewOf } from '../../src/protocol/bytes.js';

describe('readU16 / readU32', () => {
  it('agree with Buffer#readUInt16BE and #readUInt32BE at every offset of random bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 4, maxLength: 64 }), (bytes) => {
        const buf = Buffer.from(bytes);
        for (let o = 0; o + 2 <= buf.length; o++) expect(readU16(buf, o)).toBe(buf.readUInt16BE(o));
        for (let o = 0; o + 4 <= buf.length; o++) expect(readU32(buf, o)).toBe(buf.readUInt32BE(o));
      }),
      { numRuns: 300 },
    );
  });

  it('reads the extremes as unsigned numbers', () => {
    const buf = Buffer.from([0xff, 0xff, 0xff, 0xff, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01]);
    expect(readU16(buf, 0)).toBe(0xffff);
    expect(readU32(buf, 0)).toBe(0xffffffff);
    expect(readU32(buf, 4)).toBe(0x80000000);
    expect(readU16(buf, 4)).toBe(0x8000);
    expect(readU32(buf, 8)).toBe(1);
    expect(readU32(buf.subarray(5), 3)).toBe(1); // a view: offsets count from the view's start
  });
});

describe('viewOf', () => {
  it('gives what subarray gives, sharing the chunk\'s memory, for chunks that are themselves views', () => {
    fc.assert(
      fc.property(
        // chunks up to 300 bytes (size 'max': fast-check's default keeps arrays short), so views of
        // long property lists are drawn as well as short bodies
        fc.array(fc.tuple(fc.uint8Array({ minLength: 1, maxLength: 300, size: 'max' }), fc.nat(), fc.nat(), fc.nat()), { minLength: 1, maxLength: 12 }),
        (cases) => {
          // several chunks, each a view at an offset of a larger buffer, taken in turn and again
          const chunks = cases.map(([bytes, lead]) => {
            const backing = Buffer.alloc(bytes.length + (lead % 9) + 3);
            Buffer.from(bytes).copy(backing, lead % 9);
            return backing.subarray(lead % 9, (lead % 9) + bytes.length);
          });
          for (let round = 0; round < 2; round++) {
            cases.forEach(([, , a, b], i) => {
              const chunk = chunks[i]!;
              const start = a % (chunk.length + 1);
              const end = start + (b % (chunk.length - start + 1));
              const view = viewOf(chunk, start, end);
              expect(Buffer.isBuffer(view)).toBe(true);
              expect(view).toEqual(chunk.subarray(start, end));
              expect(view.buffer).toBe(chunk.buffer);
              expect(view.byteOffset).toBe(chunk.byteOffset + start);
              if (end > start) {
                chunk[start] = (chunk[start]! + 1) & 0xff; // a view, not a copy
                expect(view[0]).toBe(chunk[start]);
              }
            });
          }
        },
      ),
      { numRuns: 200 },
    );
  });

  it('a chunk from a fresh read is not mistaken for the one before it', () => {
    const first = Buffer.from('first chunk of bytes');
    const second = Buffer.from('second chunk, other memory');
    expect(viewOf(first, 0, 5).toString()).toBe('first');
    expect(viewOf(second, 0, 6).toString()).toBe('second');
    expect(viewOf(first, 6, 11).toString()).toBe('chunk');
    const long = Buffer.from('x'.repeat(100) + 'a headers table of two hundred bytes'.repeat(5));
    expect(viewOf(long, 100, long.length).toString()).toBe('a headers table of two hundred bytes'.repeat(5));
  });
});
