// Read coalescing: under sustained load, a consumer connection's acks are read in fewer, larger
// batches, so one wake-up of the broker handles more of them.
//
// Why: what a busy connection costs the broker is mostly per wake-up, not per message: the epoll
// wake and context switch, the read syscall, Node's stream machinery and a read buffer, a
// dispatcher run and a flush write (~20 µs per cycle on the benchmark machine). A consumer acking
// every message sends a steady trickle of 21-byte basic.ack frames, and the broker woke for each
// small group of them (~22 acks per read with ampbench's S11 client, whose own CPU paces the acks).
//
// How: the socket's receive low-water mark (SO_RCVLOWAT, through the optional native addon) makes
// the kernel wake the broker only once a batch's worth of bytes is waiting. It is set only while a
// connection's recent input shows a sustained high rate AND it owes the broker at least twice that
// many bytes of acks (its unacknowledged deliveries):
// - the mark is at most the bytes that arrived in the last HOLD_MS at the measured rate, so at that
//   rate it fills within about HOLD_MS; below MIN_LOW_WATER bytes (a low rate, e.g. S6's 1k msg/s,
//   or few deliveries outstanding) the mark stays 1 byte: the default, a read per arrival;
// - the mark is at most half of the acks the client still owes (unacked deliveries × 21 bytes), so
//   a client acking each delivery reaches it without waiting for anything from the broker.
// Why it is safe: a client that stops short of the mark (it acks with `multiple`, holds messages,
// sends a close, or just goes quiet) is never left waiting long. A 1 ms tick releases (mark back to
// 1 byte, and the kernel wakes the broker at once for what is waiting) every held connection that
// had no read during a whole tick interval: held bytes wait at most about two ticks (~2 ms; Node's
// timers count whole ms). A connection released this way is not held again for a back-off that
// doubles with each such release (BACKOFF_MIN_MS up to BACKOFF_MAX_MS) and starts over once a
// read reaches the mark: a client whose pattern keeps stopping short loses at most ~2 ms per
// back-off, soon once a second. End of stream and errors wake the broker
// whatever the mark. Nothing is held while reading is paused (flow control, alarms): pausing
// already stops reads. The tick runs only while some connection is held. TLS connections are never
// held (their socket is not the TCP one).
//
// Off by default (`--read-coalescing on` turns it on): on the shared 2-core benchmark machine it did
// not pay. ../shared/bench S11 read 40 % fewer times (51 -> 29 reads per 1,000 messages on a quiet
// machine) but broker CPU per message fell only ~3 % (2.97 -> 2.89 µs, two runs each) and
// throughput was ~6 % lower; with both builds loaded side by side it cost ~10 % more CPU. Most of
// what a wake-up costs there is the idle CPU's halt and wake-up (an echo server woken from idle:
// 24 µs per read and write, 12 µs when kept busy; half of it in the scheduler), and the 1 ms tick
// is such a wake-up whenever the broker is idle. With a 20 ms tick (not the bound chosen here) S2
// cost ~10 % less CPU and S11 about the same, on a loaded machine.

import { createRequire } from 'node:module';

/** Bytes of one basic.ack frame: header 7, class+method 4, delivery tag 8, bits 1, frame end 1. */
export const ACK_FRAME_BYTES = 21;
/** The mark aims at what arrives at the measured rate in this long (ms). */
export const HOLD_MS = 1;
/** Below this many bytes a hold is not worth it (fewer than ~24 acks): the mark stays 1. */
export const MIN_LOW_WATER = 512;
/** Largest mark (~195 acks). */
export const MAX_LOW_WATER = 4096;
/** Input rate is measured over windows of at least this long (ms). */
export const RATE_WINDOW_MS = 8;
/** How often held connections are checked (ms): one without a read since the last tick is released. */
export const TICK_MS = 1;
/** A connection released by the tick is not held again for this long (ms), doubling with each release in a row... */
export const BACKOFF_MIN_MS = 4;
/** ...up to this. */
export const BACKOFF_MAX_MS = 1000;

interface LowWaterAddon {
  setReceiveLowWater(fd: number, bytes: number): boolean;
}

/** Where the addon is from this file: dist/src/connection/ (built) or src/connection/ (tests run from source). */
const CANDIDATES = ['../../native/malloc-trim.node', '../../dist/native/malloc-trim.node'];

function loadAddon(): LowWaterAddon | null {
  if (process.platform !== 'linux') return null;
  const require = createRequire(import.meta.url);
  for (const path of CANDIDATES) {
    try {
      const addon = require(path) as Partial<LowWaterAddon>;
      if (typeof addon.setReceiveLowWater === 'function') return addon as LowWaterAddon;
    } catch {
      // not built there
    }
  }
  return null;
}

const addon = loadAddon();

/** Whether read coalescing can work here (Linux, the addon built). */
export const readCoalescingAvailable = addon !== null;

/** What the policy needs from a connection. */
export interface CoalescedConnection {
  /** deliveries this connection's client has not acknowledged yet (over all its channels) */
  unackedDeliveries(): number;
  /** true once the socket is destroyed: its descriptor may already belong to another socket */
  readonly socketGone: boolean;
}

/**
 * The mark for a connection, from its measured input rate (bytes per ms) and its unacknowledged
 * deliveries: a power of two between MIN_LOW_WATER and MAX_LOW_WATER (few distinct values, so the
 * socket option is rarely set again), or 1 (no hold).
 */
export function lowWaterFor(bytesPerMs: number, unacked: number): number {
  const limit = Math.min(MAX_LOW_WATER, bytesPerMs * HOLD_MS, (unacked * ACK_FRAME_BYTES) / 2);
  if (limit < MIN_LOW_WATER) return 1;
  let mark = MIN_LOW_WATER;
  while (mark * 2 <= limit) mark *= 2;
  return mark;
}

/** One connection's state. */
export class CoalescedReader {
  /** the mark now on the socket (1: not held) */
  lowWater = 1;
  /** measured input rate, bytes per ms (0 until the first window ends) */
  bytesPerMs = 0;
  /** reads since the socket was set up, for the tick's "read since the last tick?" */
  reads = 0;
  /** reads at the previous tick */
  readsAtTick = 0;
  /** the tick count when the hold began (a release needs a whole tick interval held without a read) */
  heldSinceTick = 0;
  private windowStart = 0;
  private windowBytes = 0;
  /** no hold before this time (ms), after a release by the tick */
  private heldAgainAfter = 0;
  private backoffMs = BACKOFF_MIN_MS;
  private closed = false;

  constructor(
    private readonly coalescing: ReadCoalescing,
    private readonly fd: number,
    private readonly connection: CoalescedConnection,
  ) {}

  /** After a socket read was processed: measures the rate and sets the mark for the next read. */
  afterRead(nowMs: number, bytes: number, paused: boolean): void {
    this.reads++;
    if (this.windowStart === 0) this.windowStart = nowMs;
    this.windowBytes += bytes;
    // A read that reached the mark: the client keeps up with the hold, back-offs start over.
    if (this.lowWater > 1 && bytes >= this.lowWater) this.backoffMs = BACKOFF_MIN_MS;
    const elapsed = nowMs - this.windowStart;
    if (elapsed >= RATE_WINDOW_MS) {
      this.bytesPerMs = this.windowBytes / elapsed;
      this.windowStart = nowMs;
      this.windowBytes = 0;
    }
    let mark = 1;
    if (!paused && !this.closed && nowMs >= this.heldAgainAfter && this.bytesPerMs * HOLD_MS >= MIN_LOW_WATER) {
      mark = lowWaterFor(this.bytesPerMs, this.connection.unackedDeliveries());
    }
    if (mark !== this.lowWater) this.setLowWater(mark);
  }

  /** The tick found no read since the last one: the held bytes are read now, and no hold for a while. */
  releaseByTick(nowMs: number): void {
    this.heldAgainAfter = nowMs + this.backoffMs;
    this.backoffMs = Math.min(this.backoffMs * 2, BACKOFF_MAX_MS);
    this.setLowWater(1);
  }

  /** The connection ends (its descriptor may be closed and reused): never touch the socket again. */
  close(): void {
    this.closed = true;
    this.coalescing.unhold(this);
  }

  private setLowWater(mark: number): void {
    if (this.closed || this.connection.socketGone) {
      this.close();
      return;
    }
    if (!this.coalescing.setLowWater(this.fd, mark)) {
      // The option was refused (an old kernel): this connection is never held.
      this.closed = true;
      this.lowWater = 1;
      this.coalescing.unhold(this);
      return;
    }
    this.lowWater = mark;
    if (mark > 1) this.coalescing.hold(this);
    else this.coalescing.unhold(this);
  }
}

/** The broker's read coalescing: which connections are held, and the tick that bounds a hold. */
export class ReadCoalescing {
  private readonly held = new Set<CoalescedReader>();
  private ticker: NodeJS.Timeout | null = null;
  /** ticks so far */
  private ticks = 0;
  /** holds released by the tick (a client that stopped short of the mark), for tests and diagnosis */
  releasedByTick = 0;
  /** holds begun (a connection's mark raised from 1), for tests and diagnosis */
  holdsStarted = 0;

  constructor(
    readonly enabled: boolean,
    private readonly lowWater: LowWaterAddon | null = addon,
  ) {}

  get heldCount(): number {
    return this.held.size;
  }

  /**
   * A reader for a plain TCP socket, or null when coalescing is off, unavailable, or the socket
   * has no descriptor to set (TLS, or a socket not backed by TCP).
   */
  reader(fd: unknown, connection: CoalescedConnection): CoalescedReader | null {
    if (!this.enabled || this.lowWater === null || typeof fd !== 'number' || fd < 0) return null;
    return new CoalescedReader(this, fd, connection);
  }

  setLowWater(fd: number, bytes: number): boolean {
    return this.lowWater !== null && this.lowWater.setReceiveLowWater(fd, bytes);
  }

  hold(reader: CoalescedReader): void {
    if (this.held.has(reader)) return;
    reader.readsAtTick = reader.reads;
    reader.heldSinceTick = this.ticks;
    this.held.add(reader);
    this.holdsStarted++;
    if (this.ticker === null) {
      this.ticker = setInterval(this.tick, TICK_MS);
      this.ticker.unref();
    }
  }

  unhold(reader: CoalescedReader): void {
    if (!this.held.delete(reader)) return;
    if (this.held.size === 0) this.stopTicker();
  }

  /** Stops the tick and forgets every hold (broker shutdown). */
  stop(): void {
    this.held.clear();
    this.stopTicker();
  }

  private stopTicker(): void {
    if (this.ticker !== null) {
      clearInterval(this.ticker);
      this.ticker = null;
    }
  }

  private readonly tick = (): void => {
    const now = Date.now();
    // The first tick after a hold began may come at once (timers count whole ms from the loop's
    // cached time): a reader is judged only from the second, over a whole interval.
    const ticks = ++this.ticks;
    for (const reader of this.held) {
      if (reader.reads === reader.readsAtTick && ticks - reader.heldSinceTick >= 2) {
        this.releasedByTick++;
        reader.releaseByTick(now); // removes it from `held`: deleting during iteration is safe
      } else {
        reader.readsAtTick = reader.reads;
      }
    }
  };
}
