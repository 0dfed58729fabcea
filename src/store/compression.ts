// LZ4 compression of the databases that hold message bodies: the settings (part of the on-disk
// layout: changing them needs a new layout version; kept apart so that migrations can open those
// databases exactly as the store does without importing the store), and the gate that spares
// incompressible records the attempt.

/**
 * Message records (and entries with inline messages) of 512 bytes or more are LZ4-compressed on
 * lmdb-js's writer thread, as storage engines such as WiredTiger do by default: typical payloads
 * (JSON, text) shrink severalfold, so the memory-mapped file — which counts towards the process's
 * resident memory as it is read — stays small. Records the CompressionGate finds incompressible are
 * written uncompressed (see there).
 */
export const BODY_COMPRESSION_OPTIONS = {
  threshold: 512,
  // lmdb-js's default shared dictionary helps tiny JSON values but makes each compression several
  // times slower on the single writer thread; message bodies above the threshold do well without.
  dictionary: Buffer.from([0]),
};

/**
 * lmdb-js marks a compressed value by its first byte (254 or 255; it compresses every value at
 * or above the threshold whose first byte is 250 or more): a value written uncompressed must start
 * below this, and is then read back as it is through the compressing database handle.
 */
export const FIRST_COMPRESSION_MARK = 250;

/** Bytes at the end of a record (its body's end) that a probe looks at. */
const PROBE_BYTES = 512;
/** A probe decides for this many records of the same queue slot (itself included). */
const PROBE_EVERY = 32;
/** Queues share gate slots by their id's low bits: bounded state whatever the number of queues. */
const SLOT_BITS = 8;
const HASH_BITS = 12;
/** Compressible when at least this share of the probed positions start a repeat (1/8 = 12.5 %). */
const REPEAT_SHARE_SHIFT = 3;

/**
 * Whether a record is worth handing to LZ4. Bodies that are already compressed or encrypted (or
 * random, as ../shared/bench S10 sends) do not shrink, yet lmdb-js compressed every one: an
 * allocation, a copy and a failed LZ4 pass per stored entry on the write path, and an LZ4 decode
 * per read back, for a record a little larger than it came (1,110 bytes stored for 1,100). A probe
 * does LZ4's own test — how many 4-byte sequences repeat an earlier one — on the last PROBE_BYTES
 * of a record, once per PROBE_EVERY records of a queue (slot), and its verdict holds for the
 * records in between: a queue of JSON keeps being compressed, one of random bytes is written as it
 * is. A probe is one pass over PROBE_BYTES (a few microseconds); nothing is allocated per record.
 */
export class CompressionGate {
  /** per slot: the last probe found the records compressible */
  private readonly compressible = new Uint8Array(1 << SLOT_BITS).fill(1);
  /** per slot: records left before the next probe */
  private readonly left = new Uint8Array(1 << SLOT_BITS);
  /** last position (+ base) of each hashed 4-byte sequence; entries below base are from older probes */
  private readonly seen = new Int32Array(1 << HASH_BITS);
  private base = 1;

  /** Whether the record, for the queue (or other owner) `slotKey`, should be LZ4-compressed. */
  worthCompressing(slotKey: number, record: Uint8Array): boolean {
    const slot = slotKey & ((1 << SLOT_BITS) - 1);
    const left = this.left[slot]!;
    if (left > 0) {
      this.left[slot] = left - 1;
      return this.compressible[slot] === 1;
    }
    this.left[slot] = PROBE_EVERY - 1;
    const verdict = this.repeats(record);
    this.compressible[slot] = verdict ? 1 : 0;
    return verdict;
  }

  /** LZ4's test on the record's tail: enough 4-byte sequences seen before in it. */
  private repeats(record: Uint8Array): boolean {
    const end = record.length;
    const start = end > PROBE_BYTES ? end - PROBE_BYTES : 0;
    if (end - start < 8) return true;
    if (this.base > 0x3fffffff) {
      this.seen.fill(0);
      this.base = 1;
    }
    const base = this.base;
    this.base += end - start;
    const seen = this.seen;
    let hits = 0;
    // the 4 bytes at i, little-endian, kept rolling: one load per position
    let word = (record[start]! << 8) | (record[start + 1]! << 16) | (record[start + 2]! << 24);
    for (let i = start; i + 4 <= end; i++) {
      word = (word >>> 8) | (record[i + 3]! << 24);
      const h = Math.imul(word, 0x9e3779b1) >>> (32 - HASH_BITS);
      const before = seen[h]! - base + start;
      seen[h] = i - start + base;
      if (
        before >= start &&
        record[before] === record[i] &&
        record[before + 1] === record[i + 1] &&
        record[before + 2] === record[i + 2] &&
        record[before + 3] === record[i + 3]
      ) {
        hits++;
      }
    }
    return hits << REPEAT_SHARE_SHIFT >= end - start;
  }
}
