// Big-endian reads for the per-frame and per-message hot path, as plain element loads, and views
// into socket chunks without Buffer#subarray (viewOf, below).
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

import { Buffer } from 'node:buffer';

/** Unsigned 16-bit big-endian integer at buf[o, o + 2). */
export function readU16(buf: Uint8Array, o: number): number {
  return (buf[o]! << 8) | buf[o + 1]!;
}

/** Unsigned 32-bit big-endian integer at buf[o, o + 4). */
export function readU32(buf: Uint8Array, o: number): number {
  return buf[o]! * 0x1000000 + ((buf[o + 1]! << 16) | (buf[o + 2]! << 8) | buf[o + 3]!);
}

// Views into socket chunks, made per message (a small body, a long property list).
//
// Why not Buffer#subarray: on a Buffer it finds its result's constructor through the species
// protocol (Buffer.prototype is a dictionary, so a generic lookup), which is Node's deprecated
// Buffer() function, which goes on to Buffer.from(); and it reads the chunk's ArrayBuffer through
// the `buffer` getter, a call into the runtime, each time. Here the chunk's ArrayBuffer and offset
// are read once per chunk (a message's frames and all the messages of one socket read come from the
// same chunk) and the view is made by Buffer.from(arrayBuffer, offset, length) directly: the same
// kind of Buffer, sharing the same memory, as subarray() gives.
//
// Safe because a Buffer's ArrayBuffer and offset never change (a chunk is never transferred or
// detached), and the cached values are used only for the very Buffer object they were read from.
// (Buffer is imported at the top rather than read as a global, which is a lookup per call.) The
// one chunk remembered here stays reachable until the next view of another chunk: one read's worth
// of memory at most.

let viewedChunk: Uint8Array | null = null;
let viewedArrayBuffer: ArrayBufferLike = new ArrayBuffer(0);
let viewedOffset = 0;

/** buf[start, end) as a Buffer sharing buf's memory (as buf.subarray(start, end)); 0 <= start <= end <= buf.length. */
export function viewOf(buf: Buffer, start: number, end: number): Buffer {
  if (buf !== viewedChunk) {
    viewedArrayBuffer = buf.buffer;
    viewedOffset = buf.byteOffset;
    viewedChunk = buf;
  }
  return Buffer.from(viewedArrayBuffer, viewedOffset + start, end - start);
}
