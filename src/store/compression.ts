// LZ4 compression settings of the databases that hold message bodies (part of the on-disk layout:
// changing them needs a new layout version). Kept apart so that migrations can open those
// databases exactly as the store does without importing the store.

/**
 * Message records (and entries with inline messages) of 512 bytes or more are LZ4-compressed on
 * lmdb-js's writer thread, as storage engines such as WiredTiger do by default: typical payloads
 * (JSON, text) shrink severalfold, so the memory-mapped file — which counts towards the process's
 * resident memory as it is read — stays small; incompressible data costs a quick failed attempt.
 */
export const BODY_COMPRESSION_OPTIONS = {
  threshold: 512,
  // lmdb-js's default shared dictionary helps tiny JSON values but makes each compression several
  // times slower on the single writer thread; message bodies above the threshold do well without.
  dictionary: Buffer.from([0]),
};
