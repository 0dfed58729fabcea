// How many bytes of message bodies sit in queues in memory, against the budget, and what is done
// when memory runs short. Queues add and subtract as messages come and go (plain numbers on the
// hot path).
//
// Pressure: the bodies held against --memory-budget, and the memory the process holds against
// half the memory high watermark (as RabbitMQ starts paging at vm_memory_high_watermark_paging_ratio,
// 0.5) — sampled with the memory alarm (4 times a second) and on this gauge's own tick; between
// samples, bodies held beyond the room left at the last sample count as pressure at once (a flood
// fills hundreds of MiB a second). Paging follows the same figure as the alarm, the memory Warren
// holds (process-memory.ts), not the whole RSS: the RSS also counts the pages of LMDB's data file
// that reads touched, which grow with the backlog read back from disk and are not Warren's to
// release, so paging by the RSS stayed on for good after a deep queue was read. Under pressure, new
// messages of every queue go to disk (transient ones too), and the queues holding the most bytes
// page out their newest messages until the pressure is gone — so a publisher flood into a memory
// alarm ends with the messages on disk and the alarm cleared, not with the broker stuck above its
// watermark.
//
// Unpinning: a message that arrived in one frame has its body (and properties) as a view into the
// socket read chunk it came in — no copy on the hot path. A message delivered at once lets that
// chunk go with it; one that stays in a queue would keep the whole chunk (up to 64 KiB, shared
// with messages long gone) alive for as long as it stays. So on the same tick, messages that have
// waited in a queue for more than UNPIN_AGE_MS are given their own copy of their bytes: a copy
// only for messages that are not delivered promptly, never on the delivery path itself. Deliveries
// held unacknowledged for more than UNPIN_AGE_MS get theirs the same way (a consumer that holds
// messages for minutes would otherwise keep a 64 KiB chunk per message).
//
// Giving memory back: freed bodies and socket chunks return to the C allocator when V8 collects
// them, and glibc keeps most of that resident (its heap only shrinks from its top). So after each
// full collection the gauge runs (sustained pressure; RELEASED_COLLECT_BYTES of bodies released: a
// drained or paged queue; or, once the bodies held have settled, SETTLED_COLLECT_BYTES released
// since the last one: the end of a drain spread over many ticks), the next tick has the allocator
// give its free pages back (allocator.ts) — a few ms at most every GC_INTERVAL_MS, nothing per
// message.

import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { trimAllocator } from './allocator.js';
import { heldMemoryBytes, recentHeldMemoryBytes } from './process-memory.js';
import type { Logger } from '../log.js';
import type { Queue } from './queue/queue.js';
import type { UnackedLedger } from './unacked.js';

/** Messages older than this in a queue get their own copy of their bytes. */
export const UNPIN_AGE_MS = 1000;
const TICK_MS = 1000;
/**
 * The tick reuses a sample of the memory held this recent (the memory alarm takes one every 250 ms,
 * resources.ts, and a trim tick one just before) instead of reading /proc again.
 */
const SAMPLE_MAX_AGE_MS = 300;
/** Under pressure from the budget, queues page out down to this share of it. */
const BUDGET_TARGET = 0.75;
/** RabbitMQ's vm_memory_high_watermark_paging_ratio. */
export const PAGING_RATIO = 0.5;
/** Under sustained pressure, a full garbage collection at most this often; above the watermark (publishers blocked), more often. */
const GC_INTERVAL_MS = 5000;
const GC_INTERVAL_ALARM_MS = 1000;
/**
 * Bodies released since the last full collection above which one is run (at most every
 * GC_INTERVAL_MS): freed buffers go back only when collected, and a broker that has just drained or
 * paged a deep queue may allocate too little for the collector to come by soon.
 */
const RELEASED_COLLECT_BYTES = 64 * 1024 * 1024;
/**
 * Bodies released since the last full collection above which one last collection is owed once the
 * bodies held have settled (none left, or the same as at the tick before: the drain is over). A
 * drain spread over many ticks (a consumer slower than the flood, a loaded machine) has its
 * collections every RELEASED_COLLECT_BYTES; what it releases after the last of them (up to 64 MiB
 * of bodies, and the 64 KiB socket chunks they pinned) would otherwise stay resident for good, as
 * an idle broker allocates too little for V8 to collect by itself. Measured: 190 MiB drained at
 * 7.8 MiB/s left 89 MiB held against 25 at rest.
 */
const SETTLED_COLLECT_BYTES = 8 * 1024 * 1024;
/**
 * Ticks after a full collection on which the C allocator is asked to give free pages back; a tick
 * on which the memory held is still falling by TRIM_FALLING_BYTES or more earns TRIM_TICKS more,
 * up to TRIM_MAX_TICKS in all: V8 frees dead buffers on background threads, which a loaded machine
 * can delay for seconds, and what is freed after the last trim stays resident.
 */
const TRIM_TICKS = 5;
const TRIM_FALLING_BYTES = 4 * 1024 * 1024;
const TRIM_MAX_TICKS = 60;
/**
 * A round of trims after a collection that released this much in bodies (not under pressure)
 * but saw the memory held fall by this much less owes one follow-up collection and round of trims.
 * A collection makes dead buffers freeable; V8 frees them on background threads, and the next
 * collection first finishes any of that work still pending. A loaded CI machine once kept a
 * drained flood (about 200 MiB) resident for 45 s after the gauge's collection, which is what this
 * answers; the follow-up's log line says whether the memory came back, so a shortfall that stays
 * is known to be memory still in use (deliveries a consumer holds unacked, for one).
 */
const FOLLOW_UP_SHORTFALL_BYTES = 32 * 1024 * 1024;

let collect: (() => void) | null = null;

const mib = (bytes: number): number => Math.round(bytes / 1048576);

/**
 * A full garbage collection. V8 keeps freed heap until its own heuristics collect, and those are
 * driven by allocation: a broker whose publishers a memory alarm holds allocates almost nothing, so
 * without this its resident memory would stay above the watermark (and the alarm set) for good.
 * Under sustained pressure the gauge collects itself (RabbitMQ garbage-collects under its alarm too).
 */
function fullCollection(): void {
  if (collect === null) {
    setFlagsFromString('--expose-gc');
    collect = runInNewContext('gc') as () => void;
  }
  collect();
}

export class MemoryGauge {
  bytes = 0;
  /** queues holding messages that may still pin socket chunks */
  private pinned: Queue[] = [];
  /** channels' ledgers holding deliveries that may still pin socket chunks */
  private pinnedLedgers: UnackedLedger[] = [];
  /** queues that hold message bytes in memory */
  private readonly holders = new Set<Queue>();
  private timer: NodeJS.Timeout | null = null;
  /** the memory held is above the paging threshold (at the last sample) */
  private memoryPressure = false;
  /**
   * Bodies held at which the paging threshold is crossed before the next sample: the bytes held at
   * the last sample plus the room left under the threshold then. A flood fills hundreds of MiB a
   * second, so waiting for the next sample would let it overshoot by that much, and what the C
   * allocator once held it keeps in part after paging (glibc's heap only shrinks from its top).
   */
  private pressureAtBytes = Infinity;
  private lastCollection = 0;
  /**
   * The most bodies held since the last full collection. Raised where bodies are added
   * (ReadyList), not sampled at ticks: a burst published and drained between two ticks (100 MB of
   * 4 KiB messages take half a second) was never seen, so no collection was owed for it and its
   * memory stayed resident until V8 happened to collect.
   */
  peakSinceCollection = 0;
  /** the bodies held at the previous tick: the same now means they have settled */
  private bytesAtLastTick = 0;
  /** a full collection ran: give the freed memory back to the system on this many next ticks */
  private trimTicks = 0;
  /** trim ticks left to earn in this round (TRIM_MAX_TICKS at each collection) */
  private trimBudget = 0;
  /** the memory held at the previous trim tick, and before the round's collection (for the log) */
  private heldAtLastTrim = 0;
  private heldBeforeCollection = 0;
  /** bodies released since the collection before the round's own (what its trims should give back) */
  private releasedAtCollection = 0;
  /** the round's collection was a follow-up (FOLLOW_UP_SHORTFALL_BYTES): it owes none itself */
  private followUpRound = false;
  /** a round of trims gave back too little: one more collection is owed */
  private followUpOwed = false;
  /** set by the broker: the memory high watermark in bytes (Infinity: none) */
  memoryLimitBytes: () => number = () => Infinity;
  /** set by the broker: the memory alarm's figure at its last sample (0: none) */
  memoryUsedBytes: () => number = () => 0;
  /** counters for tests and metrics */
  unpinnedTotal = 0;
  pagedOutTotal = 0;
  /** times the C allocator gave memory back after a collection (allocator.ts) */
  trimsTotal = 0;

  constructor(
    readonly budgetBytes: number,
    /** debug lines, one per collection and one per round of trims: never per message */
    private readonly log?: Logger,
  ) {}

  /** New messages go to disk (transient ones too): bodies over budget, or memory short. */
  get overBudget(): boolean {
    return this.bytes > this.budgetBytes || this.memoryPressure || this.bytes > this.pressureAtBytes;
  }

  /** A queue now holds message bytes in memory (it stays registered until deleted). */
  noteHolder(queue: Queue): void {
    if (queue.memoryHolder) return;
    queue.memoryHolder = true;
    this.holders.add(queue);
    this.arm();
  }

  /** The queue is deleted. */
  forget(queue: Queue): void {
    this.holders.delete(queue);
    queue.memoryHolder = false;
  }

  /** A channel's ledger took a delivery whose bytes may be a view into a socket chunk. */
  notePinnedDeliveries(ledger: UnackedLedger): void {
    if (ledger.unpinQueued) return;
    ledger.unpinQueued = true;
    this.pinnedLedgers.push(ledger);
    this.arm();
  }

  /** A queue took in a message whose bytes are a view into a socket chunk. */
  notePinned(queue: Queue): void {
    if (queue.unpinQueued) return;
    queue.unpinQueued = true;
    this.pinned.push(queue);
    this.arm();
  }

  private arm(): void {
    if (this.timer !== null) return;
    this.timer = setTimeout(this.onTick, TICK_MS);
    this.timer.unref();
  }

  private readonly onTick = (): void => {
    this.timer = null;
    // A tick after a full collection: the buffers it found dead have been freed by now (V8 frees
    // array buffers on a background thread), so the C allocator can give their pages back.
    // On a loaded machine that background work can take longer than a tick: trim on the next
    // TRIM_TICKS ticks, not just the first.
    if (this.trimTicks > 0) this.trimTick();
    try {
      this.relievePressure(recentHeldMemoryBytes(SAMPLE_MAX_AGE_MS));
    } catch (err) {
      for (const q of this.holders) {
        q.host.log.error({ err }, 'paging messages out under memory pressure failed');
        break;
      }
    }
    // Under pressure the messages waiting are on their way to disk: copying them first would only
    // churn the allocator. They are copied on a later tick if they are still in memory.
    if (!this.overBudget) this.unpinOlderThan(Date.now() - UNPIN_AGE_MS);
    // A drained queue leaves the holders at once; the collection its released bodies are owed
    // (RELEASED_COLLECT_BYTES, or SETTLED_COLLECT_BYTES once settled) may still be waiting for
    // GC_INTERVAL_MS: keep ticking until it ran, or an idle broker would keep that memory until V8
    // happens to collect.
    if (this.holders.size > 0 || this.pinned.length > 0 || this.pinnedLedgers.length > 0 || this.collectionMayBeOwed() || this.followUpOwed || this.trimTicks > 0 || this.memoryPressure) this.arm();
  };

  /** One tick of a round of trims after a full collection (see TRIM_TICKS). */
  private trimTick(): void {
    this.trimTicks--;
    if (trimAllocator()) this.trimsTotal++;
    const held = heldMemoryBytes();
    if (this.heldAtLastTrim - held >= TRIM_FALLING_BYTES && this.trimBudget > 0) {
      const more = Math.min(TRIM_TICKS, this.trimBudget);
      this.trimBudget -= more;
      this.trimTicks += more;
    }
    this.heldAtLastTrim = held;
    if (this.trimTicks === 0) {
      const shortfall = this.releasedAtCollection - (this.heldBeforeCollection - held);
      this.followUpOwed = !this.followUpRound && shortfall >= FOLLOW_UP_SHORTFALL_BYTES;
      this.log?.debug(
        {
          heldBeforeMiB: mib(this.heldBeforeCollection),
          heldAfterMiB: mib(held),
          bodiesHeldMiB: mib(this.bytes),
          releasedMiB: mib(this.releasedAtCollection),
          followUp: this.followUpRound,
          followUpOwed: this.followUpOwed,
        },
        'memory given back to the system after a full garbage collection',
      );
    }
  }

  /**
   * Enough bodies were released since the last full collection to run one: RELEASED_COLLECT_BYTES,
   * or SETTLED_COLLECT_BYTES once the bodies held have settled (`settled`).
   */
  private collectionOwed(settled: boolean): boolean {
    const released = this.peakSinceCollection - this.bytes;
    return released >= RELEASED_COLLECT_BYTES || (settled && released >= SETTLED_COLLECT_BYTES);
  }

  /** A collection is owed, or will be once the bodies held settle: keep ticking until it ran. */
  private collectionMayBeOwed(): boolean {
    return this.peakSinceCollection - this.bytes >= SETTLED_COLLECT_BYTES;
  }

  /**
   * A sample of the memory Warren holds, the alarm's figure (also taken on the memory alarm's
   * timer, so the pressure mark is right from the start, before any queue holds anything).
   */
  sampled(heldBytes: number): void {
    const limit = this.memoryLimitBytes();
    const pagingAt = limit * PAGING_RATIO;
    this.memoryPressure = Number.isFinite(limit) && heldBytes > pagingAt;
    this.pressureAtBytes = Number.isFinite(limit) ? this.bytes + Math.max(0, pagingAt - heldBytes) : Infinity;
    // Under pressure the gauge ticks even when no queue holds bodies in memory: what is held may be
    // deliveries awaiting acks, or garbage, and only its collections (and trims) give that back
    // once it is released — a broker whose publishers the alarm holds allocates too little for V8
    // to collect by itself, and the alarm would stay set.
    if (this.memoryPressure) this.arm();
  }

  /**
   * Pages out the newest in-memory messages of the queues holding the most, while memory is short:
   * bodies above the budget (down to BUDGET_TARGET of it), or the memory held above PAGING_RATIO of
   * the high watermark (half of what is held each time). Returns the bytes paged out.
   */
  relievePressure(heldBytes: number): number {
    const wasUnderPressure = this.memoryPressure;
    this.sampled(heldBytes);
    const now = Date.now();
    const interval = this.memoryUsedBytes() > this.memoryLimitBytes() ? GC_INTERVAL_ALARM_MS : GC_INTERVAL_MS;
    if (this.bytes > this.peakSinceCollection) this.peakSinceCollection = this.bytes;
    const settled = this.bytes === 0 || this.bytes === this.bytesAtLastTick;
    this.bytesAtLastTick = this.bytes;
    const released = this.collectionOwed(settled);
    const pressed = this.memoryPressure && wasUnderPressure;
    if ((pressed || released || this.followUpOwed) && now - this.lastCollection >= interval) {
      const followUp = this.followUpOwed && !pressed && !released;
      // The previous round's release is carried into this one's judgement, from the memory held
      // before the previous collection, when that round is still running (not judged yet) or
      // owes a follow-up that this regular collection takes the place of. Otherwise a second
      // collection within a round (a flood drained over more than one tick on a loaded machine)
      // dropped the first one's shortfall, and the follow-up it owed never came.
      const carried = !pressed && !followUp && !this.followUpRound && (this.trimTicks > 0 || this.followUpOwed) ? this.releasedAtCollection : 0;
      this.log?.debug(
        { releasedMiB: mib(this.peakSinceCollection - this.bytes), carriedMiB: mib(carried), bodiesHeldMiB: mib(this.bytes), heldMiB: mib(heldBytes), underPressure: this.memoryPressure, followUp },
        'full garbage collection to give released message memory back',
      );
      // Only a collection for released bodies is judged by what its trims gave back: under
      // pressure the memory held is mostly still in use.
      this.releasedAtCollection = pressed ? 0 : carried + this.peakSinceCollection - this.bytes;
      if (carried === 0) this.heldBeforeCollection = heldBytes;
      this.followUpRound = followUp;
      this.followUpOwed = false;
      this.lastCollection = now;
      this.peakSinceCollection = this.bytes;
      fullCollection();
      this.trimTicks = TRIM_TICKS;
      this.trimBudget = TRIM_MAX_TICKS - TRIM_TICKS;
      this.heldAtLastTrim = heldBytes;
    }
    // Queues holding nothing now need no watching until they hold something again.
    for (const q of this.holders) {
      if (q.ready.bytes === 0 || q.deleted) {
        this.holders.delete(q);
        q.memoryHolder = false;
      }
    }
    let target = this.bytes;
    if (this.bytes > this.budgetBytes) target = Math.floor(this.budgetBytes * BUDGET_TARGET);
    if (this.memoryPressure) target = Math.min(target, Math.floor(this.bytes / 2));
    if (target >= this.bytes) return 0;
    let toFree = this.bytes - target;
    const biggest = [...this.holders].filter((q) => !q.deleted && q.ready.bytes > 0).sort((a, b) => b.ready.bytes - a.ready.bytes);
    let freed = 0;
    for (const q of biggest) {
      if (toFree <= 0) break;
      const n = q.pageOut(toFree);
      freed += n;
      toFree -= n;
    }
    this.pagedOutTotal += freed;
    return freed;
  }

  /** Copies out every queued message that arrived before `cutoff`; returns how many. */
  unpinOlderThan(cutoff: number): number {
    const queues = this.pinned;
    this.pinned = [];
    let copied = 0;
    for (const queue of queues) {
      queue.unpinQueued = false;
      if (queue.deleted) continue;
      try {
        let more = false;
        for (let level = 0; level < queue.unpinFrom.length; level++) {
          queue.unpinFrom[level] = queue.ready.walkFrom(level, queue.unpinFrom[level]!, (entry) => {
            const message = entry.message;
            if (message.compacted) return true;
            if (message.publishedAt > cutoff) {
              more = true;
              return false;
            }
            if (message.unpin()) copied++;
            return true;
          });
        }
        if (more) this.notePinned(queue);
      } catch (err) {
        queue.host.log.error({ err, queue: queue.name, vhost: queue.host.name }, 'copying queued messages out of socket buffers failed');
      }
    }
    // Deliveries held unacknowledged: the same, from each ledger's own cursor.
    const ledgers = this.pinnedLedgers;
    this.pinnedLedgers = [];
    for (const ledger of ledgers) {
      ledger.unpinQueued = false;
      try {
        copied += ledger.unpinDeliveredBefore(cutoff);
        if (ledger.unpinPending) this.notePinnedDeliveries(ledger);
      } catch (err) {
        for (const q of this.holders) {
          q.host.log.error({ err }, 'copying unacknowledged deliveries out of socket buffers failed');
          break;
        }
      }
    }
    this.unpinnedTotal += copied;
    return copied;
  }
}
