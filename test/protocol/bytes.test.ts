// readU16/readU32 (src/protocol/bytes.ts) replace Buffer#readUInt16BE/readUInt32BE on the hot path;
// they must give exactly what those give, for every value and at any offset.

import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { readU16, readU32 } from '../../src/protocol/bytes.js';

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
