// Big-endian reads for the per-frame and per-message hot path, as plain element loads.
//
// Why not Buffer#readUInt16BE / readUInt32BE: in Node 20 the methods live on Buffer's prototype,
// which V8 keeps as a dictionary, so even optimized code reaches them through a generic property
// lookup (the `LoadIC` builtin) and then calls them without inlining (argument and range checks
// included). That was the largest single native cost in broker profiles (7 % of S5's CPU), several
// lookups per message in the frame parser, the command assembler and the property scan.
//
// The caller must have checked that the bytes are there (o + 2 or o + 4 <= the end it trusts): out
// of range, an element load gives undefined instead of throwing. Every call site below checks the
// length of what it reads first, as it did before for the error it reports.

/** Unsigned 16-bit big-endian integer at buf[o, o + 2). */
export function readU16(buf: Uint8Array, o: number): number {
  return (buf[o]! << 8) | buf[o + 1]!;
}

/** Unsigned 32-bit big-endian integer at buf[o, o + 4). */
export function readU32(buf: Uint8Array, o: number): number {
  return buf[o]! * 0x1000000 + ((buf[o + 1]! << 16) | (buf[o + 2]! << 8) | buf[o + 3]!);
}
