// Reading queue entries back with one allocation per 256 KiB of records instead of two per record.
//
// lmdb-js returns every value (and every binary key) of a range read as a fresh copy: its own
// ArrayBuffer, a separate malloc of the C heap, freed only after a collection has found it dead
// (and V8's background sweeper got to it). A drain of a deep backlog reads every record once: S10,
// 140,000 records a second, made 280,000 such buffers a second, and on a loaded machine the dead
// ones piled up in the C heap faster than they were swept. Here a range read hands each value to
// this decoder while it still lies in lmdb-js's shared read buffer; the decoder copies it into the
// current slab and returns a view of it (a view is a JS object, no backing store). Keys decode to
// their seq (a number), so no key buffer is made at all.
//
// A slab lives as long as any record read into it: a drain releases them in order, and a message
// that stays in memory longer is given its own copy by the memory gauge after a second
// (Message.compacted is false for these, see persistence.ts), so a slab is never held by one old
// message.

import type { Database, DatabaseOptions, RootDatabase } from 'lmdb';
import { BODY_COMPRESSION_OPTIONS } from './compression.js';
import { readU64 } from './keys.js';

/** Bytes per slab; a larger record gets a slab of its own size. */
export const SLAB_BYTES = 256 * 1024;

/** The encoder/decoder lmdb-js calls for a handle opened with `encoder` (values are decoded only). */
class SlabDecoder {
  /** lmdb-js passes its shared read buffer: we copy out of it before the next read */
  readonly needsStableBuffer = false;
  private slab: Buffer = Buffer.allocUnsafeSlow(SLAB_BYTES);
  private used = 0;

  encode(value: Buffer): Buffer {
    return value; // never written through (read-only handle); kept for lmdb-js's shape check
  }

  decode(bytes: Uint8Array, size: number): Buffer {
    if (this.used + size > this.slab.length) {
      this.slab = Buffer.allocUnsafeSlow(Math.max(SLAB_BYTES, size));
      this.used = 0;
    }
    const slab = this.slab;
    const at = this.used;
    slab.set(new Uint8Array(bytes.buffer, bytes.byteOffset, size), at);
    this.used = at + size;
    return Buffer.from(slab.buffer, slab.byteOffset + at, size);
  }
}

/** Entry keys (queue id ‖ level ‖ seq): written as given, read as their seq. */
const SEQ_KEYS = {
  writeKey(key: Buffer, target: Uint8Array, start: number): number {
    target.set(key, start);
    return start + key.length;
  },
  readKey(target: Buffer, start: number): number {
    return readU64(target, start + 5);
  },
};

/**
 * A second handle on the queue-entries database for range reads only: keys come back as seqs and
 * values as views into slabs. Compressed records are read the same way as through the writing
 * handle (same compression options: lmdb-js decompresses before decoding).
 */
export function openEntrySlabReader(root: RootDatabase, name: string): Database<Buffer, number> {
  // lmdb-js honours keyEncoder and encoder per database, though its types put them on the root only.
  const options: DatabaseOptions & { name: string; keyEncoder: typeof SEQ_KEYS; encoder: SlabDecoder } = {
    name,
    compression: BODY_COMPRESSION_OPTIONS,
    keyEncoder: SEQ_KEYS,
    encoder: new SlabDecoder(),
  };
  return root.openDB<Buffer, number>(options);
}
