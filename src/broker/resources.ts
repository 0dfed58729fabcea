// Resource state in one place: the memory and disk alarms, flow control, and the per-connection
// reading state that follows from them. Connections ask a ReadGate whether to read; metrics and the
// management API read the plain fields here (memory used/limit, disk free/limit, active alarms, each
// connection's state as RabbitMQ names it: running, flow, blocking, blocked).
//
// Alarms (as RabbitMQ 3.x): while the memory alarm (memory held above the high watermark; see
// process-memory.ts for why the data file's mapped pages are not counted), the disk
// alarm (free space of the data folder below the limit) or a storage failure is set, every
// connection is `blocking`; one that publishes becomes `blocked`: it is sent connection.blocked
// (if its client advertised the capability) and is no longer read. Consumers, acks and gets on
// other connections go on, so queues can drain. When the last alarm clears, blocked connections
// get connection.unblocked and are read again.
//
// Flow control (RabbitMQ's credit flow, in Warren's single-threaded terms): a publisher whose
// messages land in a queue that is not keeping up — more than FLOW_QUEUE_HIGH ready messages while
// consumers are taking them — or whose persistent messages wait on a store that is behind (more than
// FLOW_STORE_HIGH_BYTES not yet committed) stops being read after its current input (state `flow`)
// and is read again once they are back below the low marks. Only that connection waits; consumers
// are never slowed. A queue whose consumers stop taking messages altogether does not hold
// publishers: after FLOW_STALL_MS without a delivery it is exempt until it delivers again (its
// messages then pile up as they would without flow control, bounded by paging).
//
// The hot path pays a comparison or two per publish: counters and thresholds, no allocation.

import { statfs } from 'node:fs';
import { totalmem } from 'node:os';
import type { Logger } from '../log.js';
import type { Persistence } from './persistence.js';
import type { Queue } from './queue/queue.js';
import { heldMemoryBytes } from './process-memory.js';

export type AlarmResource = 'memory' | 'disk' | 'storage';
/** RabbitMQ's connection states for resource control. */
export type ConnectionState = 'running' | 'flow' | 'blocking' | 'blocked';

/** The memory high watermark: a fraction of total RAM, or an absolute number of bytes. */
export type MemoryWatermark = { readonly fraction: number } | { readonly bytes: number };

/** Ready messages above which a consumed queue holds back its publishers, and the mark to resume. */
export const FLOW_QUEUE_HIGH = 1000;
export const FLOW_QUEUE_LOW = 500;
/** Bytes handed to the store and not yet committed above which persistent publishers wait. */
export const FLOW_STORE_HIGH_BYTES = 64 * 1024 * 1024;
export const FLOW_STORE_LOW_BYTES = 32 * 1024 * 1024;
/** A queue that delivered nothing for this long no longer holds its publishers. */
export const FLOW_STALL_MS = 100;
/** How often process memory is sampled. */
export const MEMORY_CHECK_MS = 250;
/** Disk checks: every 10 s when far from the limit, up to 10 per second near it (as RabbitMQ). */
const DISK_CHECK_MIN_MS = 100;
const DISK_CHECK_MAX_MS = 10_000;
/** The fastest a disk is assumed to fill, to decide when to look again. */
const DISK_FILL_BYTES_PER_MS = 250 * 1024;

const ALARM_REASONS: Record<AlarmResource, string> = {
  memory: 'low on memory',
  disk: 'low on disk',
  storage: 'storage write failed (disk full or I/O error)',
};

/** What the resource module needs from a client connection. */
export interface GatedConnection {
  /** the client advertised the connection.blocked capability */
  readonly wantsBlockedNotices: boolean;
  sendBlocked(reason: string): void;
  sendUnblocked(): void;
  /** closes each channel whose oldest unacked delivery is older than its consumer timeout */
  checkConsumerTimeouts(nowMs: number): void;
  /** stop reading from the socket (after the input being processed) */
  pauseReading(): void;
  resumeReading(): void;
}

/** One connection's reading state. */
export class ReadGate {
  /** published while an alarm was set: not read until every alarm clears */
  private blocked = false;
  /** connection.blocked was sent and connection.unblocked is owed */
  private notified = false;
  /** queues this connection's publishes are waiting on (usually one; reused, never reallocated) */
  readonly flowQueues: Queue[] = [];
  /** waiting for the store to commit */
  private flowStore = false;
  private paused = false;
  private registered = false;

  constructor(
    private readonly resources: Resources,
    private readonly connection: GatedConnection,
  ) {}

  get state(): ConnectionState {
    if (this.blocked) return 'blocked';
    if (this.resources.alarms.size > 0) return 'blocking';
    if (this.inFlow) return 'flow';
    return 'running';
  }

  get inFlow(): boolean {
    return this.flowQueues.length > 0 || this.flowStore;
  }

  /** Whether the socket is being read. */
  get reading(): boolean {
    return !this.paused;
  }

  /**
   * A basic.publish method frame arrived. During an alarm the connection is blocked right here: as
   * RabbitMQ, that message (its content frames are not read yet) is only taken once the alarm
   * clears. Hot path: one comparison.
   */
  onPublishMethod(): void {
    if (this.resources.alarms.size > 0 && !this.blocked) this.block();
  }

  /** A message was routed; pendingCommit: it waits for the store. Hot path: one comparison. */
  afterPublish(pendingCommit: boolean): void {
    if (pendingCommit && !this.flowStore && this.resources.persistence.uncommittedBytes > FLOW_STORE_HIGH_BYTES) {
      this.flowStore = true;
      this.update();
    }
  }

  /** A queue this connection just published to is over its flow mark. */
  waitFor(queue: Queue): void {
    const queues = this.flowQueues;
    for (let i = 0; i < queues.length; i++) if (queues[i] === queue) return;
    queues.push(queue);
    if (queues.length === 1) this.update();
  }

  checkConsumerTimeouts(nowMs: number): void {
    this.connection.checkConsumerTimeouts(nowMs);
  }

  /** The connection is gone. */
  close(): void {
    this.flowQueues.length = 0;
    this.flowStore = false;
    this.blocked = false;
    if (this.registered) this.resources.unregister(this);
    this.registered = false;
  }

  private block(): void {
    this.blocked = true;
    if (this.connection.wantsBlockedNotices) {
      this.notified = true;
      this.connection.sendBlocked(this.resources.alarmReason());
    }
    this.update();
  }

  /** Every alarm cleared. */
  alarmsCleared(): void {
    if (!this.blocked) return;
    this.blocked = false;
    if (this.notified) {
      this.notified = false;
      this.connection.sendUnblocked();
    }
    this.update();
  }

  /** Re-checks what this connection waits for; resumes reading when nothing is left. */
  recheck(): void {
    const queues = this.flowQueues;
    for (let i = queues.length - 1; i >= 0; i--) {
      if (!this.resources.stillBehind(queues[i]!)) {
        queues[i] = queues[queues.length - 1]!;
        queues.pop();
      }
    }
    if (this.flowStore && this.resources.persistence.uncommittedBytes <= FLOW_STORE_LOW_BYTES) this.flowStore = false;
    this.update();
  }

  /** Pauses or resumes the socket to match the state; keeps the registry of waiting gates. */
  private update(): void {
    const hold = this.blocked || this.inFlow;
    if (hold !== this.paused) {
      this.paused = hold;
      if (hold) this.connection.pauseReading();
      else this.connection.resumeReading();
    }
    const waiting = this.inFlow;
    if (waiting && !this.registered) {
      this.registered = true;
      this.resources.register(this);
    } else if (!waiting && this.registered) {
      this.registered = false;
      this.resources.unregister(this);
    }
  }
}

export interface ResourceLimits {
  memoryHighWatermark: MemoryWatermark;
  diskFreeLimitBytes: number;
  /** 0 = no consumer timeout */
  consumerTimeoutMs?: number;
  /** 0 = no limit */
  maxConnections?: number;
}

/** How often consumer timeouts are checked (and the coarse clock deliveries are stamped with ticks). */
export const LIMITS_CHECK_MS = 1000;

export class Resources {
  /** alarms in effect */
  readonly alarms = new Set<AlarmResource>();
  /** memory the process holds at the last sample (process-memory.ts: RSS less file-backed pages on Linux) */
  memoryUsedBytes = 0;
  memoryLimitBytes: number;
  /** free bytes of the data folder's file system at the last check (NaN until the first) */
  diskFreeBytes = Number.NaN;
  diskFreeLimitBytes: number;
  /** the connection whose input is being processed (queues report congestion to it) */
  reader: ReadGate | null = null;
  /** ms a delivery may stay unacked before its channel is closed (0 = no limit) */
  consumerTimeoutMs: number;
  /** connections served at once (0 = no limit); the listener makes the rest wait */
  maxConnections: number;
  /**
   * Epoch ms, updated every LIMITS_CHECK_MS: deliveries are stamped with it (a field read, not a
   * clock call per message). The consumer timeout allows for its coarseness.
   */
  coarseNowMs = Date.now();
  /** how many times a connection was put in flow, for metrics */
  flowEventsTotal = 0;
  private readonly gates = new Set<ReadGate>();
  /** gates waiting for queues or the store */
  private readonly waiting = new Set<ReadGate>();
  /** per queue in flow: deliveries counted at the last stall check */
  private readonly progress = new Map<Queue, number>();
  /** queues exempt from flow because their consumers stopped: deliveries when they stopped */
  private readonly stalled = new Map<Queue, number>();
  /** called on each memory sample (the broker's paging samples too: memory.ts) */
  onMemorySample: (() => void) | null = null;
  private memoryTimer: NodeJS.Timeout | null = null;
  private diskTimer: NodeJS.Timeout | null = null;
  private stallTimer: NodeJS.Timeout | null = null;
  private limitsTimer: NodeJS.Timeout | null = null;
  private stopped = false;
  private diskCheckFailed = false;

  constructor(
    limits: ResourceLimits,
    readonly persistence: Persistence,
    private readonly dataDir: string,
    private readonly log: Logger,
  ) {
    this.memoryLimitBytes = memoryLimit(limits.memoryHighWatermark);
    this.diskFreeLimitBytes = limits.diskFreeLimitBytes;
    this.consumerTimeoutMs = limits.consumerTimeoutMs ?? 0;
    this.maxConnections = limits.maxConnections ?? 0;
  }

  /** Starts watching memory and disk (the first samples are taken now). */
  start(): void {
    this.log.info(
      { memoryLimitBytes: this.memoryLimitBytes, totalMemoryBytes: totalmem(), diskFreeLimitBytes: this.diskFreeLimitBytes, dataDir: this.dataDir },
      'resource limits set',
    );
    this.checkMemory();
    this.memoryTimer = setInterval(this.checkMemory, MEMORY_CHECK_MS);
    this.memoryTimer.unref();
    this.checkDisk();
    this.limitsTimer = setInterval(this.checkLimits, LIMITS_CHECK_MS);
    this.limitsTimer.unref();
  }

  /** Every LIMITS_CHECK_MS: the coarse clock, and consumer timeouts (one pass, no timer per delivery). */
  private readonly checkLimits = (): void => {
    const now = Date.now();
    this.coarseNowMs = now;
    for (const gate of this.gates) {
      try {
        gate.checkConsumerTimeouts(now);
      } catch (err) {
        this.log.error({ err }, 'consumer timeout check failed');
      }
    }
  };

  stop(): void {
    this.stopped = true;
    if (this.memoryTimer) clearInterval(this.memoryTimer);
    if (this.diskTimer) clearTimeout(this.diskTimer);
    if (this.stallTimer) clearInterval(this.stallTimer);
    if (this.limitsTimer) clearInterval(this.limitsTimer);
    this.memoryTimer = this.diskTimer = this.stallTimer = this.limitsTimer = null;
  }

  /** A gate for a new connection. */
  gate(connection: GatedConnection): ReadGate {
    const gate = new ReadGate(this, connection);
    this.gates.add(gate);
    return gate;
  }

  /** Forgets a closed connection's gate. */
  release(gate: ReadGate): void {
    gate.close();
    this.gates.delete(gate);
  }

  /** Connections by state, for metrics and the API. */
  countStates(): Record<ConnectionState, number> {
    const counts: Record<ConnectionState, number> = { running: 0, flow: 0, blocking: 0, blocked: 0 };
    for (const g of this.gates) counts[g.state]++;
    return counts;
  }

  get memoryAlarm(): boolean {
    return this.alarms.has('memory');
  }

  get diskAlarm(): boolean {
    return this.alarms.has('disk');
  }

  /** The reason sent with connection.blocked. */
  alarmReason(): string {
    for (const a of ['memory', 'disk', 'storage'] as const) if (this.alarms.has(a)) return ALARM_REASONS[a];
    return '';
  }

  // ---- Alarms -------------------------------------------------------------------------------------

  setAlarm(resource: AlarmResource, on: boolean, details: Record<string, unknown> = {}): void {
    if (on === this.alarms.has(resource)) return;
    if (on) {
      this.alarms.add(resource);
      this.log.warn({ resource, ...details }, `${resource} resource alarm set: publishers are blocked until it clears`);
      return;
    }
    this.alarms.delete(resource);
    this.log.info({ resource, ...details }, `${resource} resource alarm cleared`);
    if (this.alarms.size === 0) for (const g of this.gates) g.alarmsCleared();
  }

  /** Changes the memory high watermark at run time (as rabbitmqctl set_vm_memory_high_watermark). */
  setMemoryHighWatermark(watermark: MemoryWatermark): void {
    this.memoryLimitBytes = memoryLimit(watermark);
    this.log.info({ memoryLimitBytes: this.memoryLimitBytes }, 'memory high watermark changed');
    this.checkMemory();
  }

  /** Changes the disk free limit at run time (as rabbitmqctl set_disk_free_limit). */
  setDiskFreeLimit(bytes: number): void {
    this.diskFreeLimitBytes = bytes;
    this.log.info({ diskFreeLimitBytes: bytes }, 'disk free limit changed');
    if (this.diskTimer) clearTimeout(this.diskTimer);
    this.diskTimer = null;
    this.checkDisk();
  }

  private readonly checkMemory = (): void => {
    try {
      this.memoryUsedBytes = heldMemoryBytes();
      this.onMemorySample?.();
      const over = this.memoryUsedBytes > this.memoryLimitBytes;
      this.setAlarm('memory', over, { memoryUsedBytes: this.memoryUsedBytes, memoryLimitBytes: this.memoryLimitBytes });
    } catch (err) {
      this.log.error({ err }, 'memory check failed');
    }
  };

  private checkDisk(): void {
    if (this.stopped) return;
    statfs(this.dataDir, (err, stats) => {
      if (this.stopped) return;
      let nextMs = DISK_CHECK_MAX_MS;
      try {
        if (err) {
          // As RabbitMQ on an unsupported platform: no disk alarm, say so once.
          if (!this.diskCheckFailed) this.log.warn({ err, dataDir: this.dataDir }, 'cannot read free disk space; disk alarm disabled');
          this.diskCheckFailed = true;
        } else {
          this.diskCheckFailed = false;
          this.diskFreeBytes = stats.bavail * stats.bsize;
          const low = this.diskFreeBytes < this.diskFreeLimitBytes;
          this.setAlarm('disk', low, { diskFreeBytes: this.diskFreeBytes, diskFreeLimitBytes: this.diskFreeLimitBytes });
          const margin = Math.abs(this.diskFreeBytes - this.diskFreeLimitBytes);
          nextMs = Math.min(DISK_CHECK_MAX_MS, Math.max(DISK_CHECK_MIN_MS, margin / DISK_FILL_BYTES_PER_MS));
        }
      } catch (checkErr) {
        this.log.error({ err: checkErr }, 'disk check failed');
      }
      this.diskTimer = setTimeout(() => this.checkDisk(), nextMs);
      this.diskTimer.unref();
    });
  }

  // ---- Flow control -------------------------------------------------------------------------------

  /**
   * A message was just put in this queue. Hot path: one comparison unless the queue is over its
   * flow mark while consumers are attached.
   */
  afterEnqueue(queue: Queue): void {
    if (queue.flowBacklog < FLOW_QUEUE_HIGH || this.reader === null || queue.consumerCount === 0) return;
    const stalledAt = this.stalled.get(queue);
    if (stalledAt !== undefined) {
      if (stalledAt === queue.deliveredTotal) return; // still not consuming: publishers go on
      this.stalled.delete(queue);
    }
    this.reader.waitFor(queue);
  }

  /** Whether a queue still holds its waiting publishers. */
  stillBehind(queue: Queue): boolean {
    if (queue.deleted || queue.consumerCount === 0 || queue.flowBacklog <= FLOW_QUEUE_LOW) return false;
    return !this.stalled.has(queue);
  }

  register(gate: ReadGate): void {
    this.waiting.add(gate);
    this.flowEventsTotal++;
    for (const q of gate.flowQueues) if (!this.progress.has(q)) this.progress.set(q, q.deliveredTotal);
    if (this.stallTimer === null) {
      this.stallTimer = setInterval(this.checkStalls, FLOW_STALL_MS);
      this.stallTimer.unref();
    }
  }

  unregister(gate: ReadGate): void {
    this.waiting.delete(gate);
    if (this.waiting.size === 0) {
      this.progress.clear();
      if (this.stallTimer !== null) clearInterval(this.stallTimer);
      this.stallTimer = null;
    }
  }

  /**
   * After each dispatcher run (deliveries, acks, commits): lets caught-up publishers read again.
   * While a publisher is held this runs after every socket read of its consumers, so it walks the
   * set itself instead of a copy (an array per run): recheck() only ever takes its own gate out of
   * the set (a Set's iteration goes on past the entry it deleted) and never adds one, since the
   * resumed connection reads its input on the next turn (Connection.resumeReading), not in here.
   */
  afterDispatch(): void {
    if (this.waiting.size === 0) return;
    for (const gate of this.waiting) gate.recheck();
  }

  /** Queues that delivered nothing since the last check stop holding publishers. */
  private readonly checkStalls = (): void => {
    try {
      for (const gate of this.waiting) {
        for (const q of gate.flowQueues) {
          const before = this.progress.get(q);
          if (before === undefined) this.progress.set(q, q.deliveredTotal);
          else if (before === q.deliveredTotal) this.stalled.set(q, q.deliveredTotal);
          else this.progress.set(q, q.deliveredTotal);
        }
      }
      for (const q of this.stalled.keys()) if (q.deleted) this.stalled.delete(q);
      this.afterDispatch();
    } catch (err) {
      this.log.error({ err }, 'flow control check failed');
    }
  };
}

/** The memory limit in bytes for a watermark. */
export function memoryLimit(watermark: MemoryWatermark): number {
  return 'bytes' in watermark ? watermark.bytes : Math.floor(totalmem() * watermark.fraction);
}

const UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  kb: 1000,
  mb: 1000 ** 2,
  gb: 1000 ** 3,
  tb: 1000 ** 4,
  k: 1024,
  kib: 1024,
  m: 1024 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gib: 1024 ** 3,
  t: 1024 ** 4,
  tib: 1024 ** 4,
};

/**
 * An information size as RabbitMQ 3.x writes it: bytes, or a number with kB/MB/GB/TB (powers of
 * 1000) or K/M/G/T, KiB/MiB/GiB/TiB (powers of 1024). Returns undefined when it is not one.
 */
export function parseSize(text: string): number | undefined {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(text);
  if (m === null) return undefined;
  const unit = UNITS[m[2]!.toLowerCase()];
  if (unit === undefined) return undefined;
  return Math.floor(Number(m[1]) * unit);
}

/** `0.4` (a fraction of total RAM, 0 < f ≤ 1) or a size such as `512MB`. */
export function parseMemoryWatermark(text: string): MemoryWatermark | undefined {
  if (/^\s*(0(\.\d+)?|1(\.0+)?|\.\d+)\s*$/.test(text)) {
    const fraction = Number(text);
    return fraction > 0 ? { fraction } : undefined;
  }
  const bytes = parseSize(text);
  return bytes !== undefined && bytes > 0 ? { bytes } : undefined;
}
