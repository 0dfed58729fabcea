// x-delayed-message: an exchange that holds each message published to it for the number of
// milliseconds in its `x-delay` header, then routes it like the exchange type named by its
// `x-delayed-type` argument — what RabbitMQ's delayed-message-exchange plugin does, built in.
// A message without a positive integer x-delay is routed at once. One heap and one timer per
// exchange, not a timer per message.
//
// Storage and paging: a durable exchange stores every held message (keyed by due time, so the
// store's order is release order). Only the earliest ones are kept in memory — at most
// DELAYED_WINDOW messages or DELAYED_WINDOW_BYTES — the rest are read back in due order as the
// earlier ones are released. A non-durable exchange keeps messages in memory until the broker is
// over its memory budget, then pages them the same way to a range that a restart drops.

import { PreconditionFailed } from '../../protocol/errors.js';
import { MinHeap } from '../../util/min-heap.js';
import type { Binding, Destination } from '../binding.js';
import type { Logger } from '../../log.js';
import type { MemoryGauge } from '../memory.js';
import type { Message } from '../message.js';
import type { CommitWaiter, Persistence } from '../persistence.js';
import { Exchange, type ExchangeOptions } from './exchange.js';

export const DELAYED_TYPE = 'x-delayed-message';

/** Held messages kept in memory per exchange (count and body bytes) before paging. */
export const DELAYED_WINDOW = 10_000;
export const DELAYED_WINDOW_BYTES = 8 * 1024 * 1024;
/** Paged messages read back per batch. */
const LOAD_BATCH = 1024;
const LOAD_BATCH_BYTES = 2 * 1024 * 1024;

export interface DelayedMessage {
  readonly message: Message;
  readonly dueAt: number;
  /** id of the stored copy (0 = not stored) */
  readonly storeId: number;
}

interface Held extends DelayedMessage {
  /** arrival order, for messages due at the same time and not stored */
  readonly seq: number;
}

/** Release order: due time, then store id (the store's key order), then arrival. */
const before = (a: Held, b: Held): boolean =>
  a.dueAt < b.dueAt || (a.dueAt === b.dueAt && (a.storeId < b.storeId || (a.storeId === b.storeId && a.seq < b.seq)));

export type ExchangeFactory = (type: string, vhost: string, name: string, options: ExchangeOptions) => Exchange;

/** The delay a message asks for, in ms, or 0 when it should be routed now. */
export function requestedDelay(message: Message): number {
  if (!message.hasHeaders) return 0;
  const delay = message.headers?.['x-delay'];
  const n = typeof delay === 'number' ? delay : typeof delay === 'bigint' ? Number(delay) : NaN;
  return Number.isInteger(n) && n > 0 ? n : 0;
}

/** Re-runs the release loop once paged messages written by this exchange are readable. */
class LoadWaiter implements CommitWaiter {
  constructor(private readonly exchange: DelayedMessageExchange) {}
  onCommitted(): void {
    this.exchange.loadCommitted();
  }
  onCommitFailed(): void {
    this.exchange.loadCommitted();
  }
}

export class DelayedMessageExchange extends Exchange {
  readonly type = DELAYED_TYPE;
  /** routes like this type once a message is due */
  private readonly inner: Exchange;
  /** held in memory: every one comes before every paged one */
  private readonly held = new MinHeap<Held>(before);
  private heldBytes = 0;
  private nextSeq = 0;
  /** stored and not in memory */
  private pagedCount = 0;
  /** where the paged ones start: (due, store id) of the first one, or beyond when none */
  private pagedFromDue = Number.MAX_SAFE_INTEGER;
  private pagedFromId = 0;
  private waitingForCommit = false;
  private waitedOnce = false;
  private timer: NodeJS.Timeout | null = null;
  private timerAt = 0;
  private persistence: Persistence | null = null;
  private memory: MemoryGauge | null = null;
  private log: Logger | null = null;
  /** set by the vhost: routes messages whose time has come */
  onDue: (exchange: DelayedMessageExchange, due: DelayedMessage) => void = () => {};

  constructor(
    vhost: string,
    name: string,
    options: ExchangeOptions,
    factory: ExchangeFactory,
    knownTypes: ReadonlySet<string>,
  ) {
    super(vhost, name, options);
    const type = options.args['x-delayed-type'];
    if (typeof type !== 'string' || type === DELAYED_TYPE || !knownTypes.has(type)) {
      throw new PreconditionFailed(`Invalid argument, 'x-delayed-type' must be an existing exchange type`);
    }
    this.inner = factory(type, vhost, name, { ...options, args: {} });
  }

  /** The vhost gives the exchange its storage, the broker's memory gauge and a logger. */
  attach(persistence: Persistence, memory: MemoryGauge, log: Logger): void {
    this.persistence = persistence;
    this.memory = memory;
    this.log = log;
  }

  get delayedType(): string {
    return this.inner.type;
  }

  /** Messages held, in memory and paged out. */
  get heldCount(): number {
    return this.held.size + this.pagedCount;
  }

  /** Held messages that are only on disk. */
  get pagedOutCount(): number {
    return this.pagedCount;
  }

  override validateBindingArgs(args: Binding['args']): void {
    this.inner.validateBindingArgs(args);
  }

  protected indexBinding(binding: Binding): void {
    this.inner.addBinding(binding);
  }

  protected unindexBinding(binding: Binding): void {
    this.inner.removeBinding(binding.key);
  }

  route(routingKey: string, message: Message, out: Destination[]): void {
    this.inner.route(routingKey, message, out);
  }

  /** Holds a message until dueAt (storing it when the exchange is durable). Returns its store id. */
  hold(message: Message, dueAt: number): number {
    // Held for a while by definition: it must not keep the socket chunk it arrived in alive.
    message.unpin();
    const p = this.persistence;
    let storeId = this.durable && p !== null ? p.saveDelayed(this, message, dueAt) : 0;
    const held: Held = { message, dueAt, storeId, seq: this.nextSeq++ };
    if (this.pagedCount > 0 && !this.beforePaged(held)) {
      // Behind what is paged out: it waits on disk too.
      if (storeId === 0 && p !== null) storeId = p.saveDelayed(this, message, dueAt);
      if (storeId !== 0) {
        this.pagedCount++;
        this.readAfterCommit();
        return this.durable ? storeId : 0;
      }
    }
    this.held.push(held);
    this.heldBytes += message.bodySize;
    if (this.overWindow()) this.pageOutLatest();
    if (this.timer === null || dueAt < this.timerAt) this.arm(dueAt);
    return this.durable ? storeId : 0;
  }

  /** Recovery: `count` stored messages, all on disk; the first batch is read now. */
  restoreStored(count: number): void {
    if (count <= 0) return;
    // The store's count is what each release counts down from (persistence.deleteDelayed): left at
    // 0, every release after a restart would take it below zero.
    this.storedCounts.count = count;
    this.pagedCount = count;
    this.pagedFromDue = 0;
    this.pagedFromId = 0;
    this.loadMore();
    this.arm(this.held.peek()?.dueAt ?? Date.now());
  }

  /** Stops the timer and forgets held messages (exchange deleted): the store drops them as a range. */
  drop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.held.clear();
    this.heldBytes = 0;
    this.pagedCount = 0;
  }

  private beforePaged(h: Held): boolean {
    return h.dueAt < this.pagedFromDue || (h.dueAt === this.pagedFromDue && h.storeId !== 0 && h.storeId < this.pagedFromId);
  }

  private overWindow(): boolean {
    if (this.held.size <= DELAYED_WINDOW && this.heldBytes <= DELAYED_WINDOW_BYTES) return false;
    if (this.persistence === null || !this.persistence.durable) return false;
    return this.durable || (this.memory?.overBudget ?? false);
  }

  /** Keeps the earliest half of the window in memory; the rest waits on disk (stored if not yet). */
  private pageOutLatest(): void {
    const p = this.persistence!;
    const all: Held[] = [];
    for (let h = this.held.pop(); h !== undefined; h = this.held.pop()) all.push(h);
    let keep = 0;
    let bytes = 0;
    while (keep < all.length && keep < DELAYED_WINDOW >> 1) {
      const size = all[keep]!.message.bodySize;
      if (keep > 0 && bytes + size > DELAYED_WINDOW_BYTES >> 1) break;
      bytes += size;
      keep++;
    }
    for (let i = 0; i < keep; i++) this.held.push(all[i]!);
    this.heldBytes = bytes;
    for (let i = keep; i < all.length; i++) {
      const h = all[i]!;
      const storeId = h.storeId !== 0 ? h.storeId : p.saveDelayed(this, h.message, h.dueAt);
      if (i === keep) {
        this.pagedFromDue = h.dueAt;
        this.pagedFromId = storeId;
      }
      this.pagedCount++;
    }
    this.readAfterCommit();
  }

  /**
   * Messages were just paged out and are not committed yet; the store shows only committed records,
   * so a read-back now would step over them (they would stay held until a restart). The next
   * read-back waits for the commit that has them.
   */
  private readAfterCommit(): void {
    if (this.waitingForCommit || this.persistence === null) return;
    this.waitingForCommit = true;
    this.persistence.afterCommit(new LoadWaiter(this));
  }

  /** Reads the next paged messages back into memory; returns how many. */
  private loadMore(): number {
    const p = this.persistence;
    if (p === null || this.pagedCount === 0 || this.waitingForCommit) return 0;
    const rows = p.loadDelayed(this, this.pagedFromDue, this.pagedFromId, LOAD_BATCH, LOAD_BATCH_BYTES);
    for (const r of rows) {
      this.held.push({ message: r.message, dueAt: r.dueAt, storeId: r.storeId, seq: this.nextSeq++ });
      this.heldBytes += r.message.bodySize;
      this.pagedCount--;
      this.pagedFromDue = r.dueAt;
      this.pagedFromId = r.storeId + 1;
    }
    if (this.pagedCount <= 0) {
      this.pagedCount = 0;
      this.pagedFromDue = Number.MAX_SAFE_INTEGER;
      this.pagedFromId = 0;
    } else if (rows.length === 0) {
      if (this.waitedOnce) {
        // Still nothing after a commit: the stored count was wrong; trust the store, and correct the
        // count it keeps (a restart would otherwise expect the missing messages again).
        p.delayedMissing(this, this.pagedCount);
        this.pagedCount = 0;
        this.pagedFromDue = Number.MAX_SAFE_INTEGER;
        return 0;
      }
      this.waitingForCommit = true;
      this.waitedOnce = true;
      p.afterCommit(new LoadWaiter(this));
    } else this.waitedOnce = false;
    return rows.length;
  }

  loadCommitted(): void {
    this.waitingForCommit = false;
    if (!this.deleted) this.arm(Date.now());
  }

  private arm(at: number): void {
    if (this.timer) clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = setTimeout(this.release, Math.min(Math.max(0, at - Date.now()), 2_147_483_647));
    this.timer.unref();
  }

  /** Timer callback: never lets an error escape into the event loop; tries again in a second. */
  private readonly release = (): void => {
    this.timer = null;
    if (this.deleted) return;
    try {
      this.releaseDue();
    } catch (err) {
      this.log?.error({ err, vhost: this.vhost, exchange: this.name }, 'releasing delayed messages failed; trying again in a second');
      if (this.timer === null) this.arm(Date.now() + 1000);
    }
  };

  /** Releases what is due (the vhost guards each message's routing), reading paged ones in. */
  private releaseDue(): void {
    const now = Date.now();
    for (;;) {
      if (this.pagedCount > 0 && this.held.size < LOAD_BATCH) this.loadMore();
      const next = this.held.peek();
      if (next === undefined) {
        if (this.pagedCount > 0 && !this.waitingForCommit) this.arm(Math.max(now, this.pagedFromDue));
        return;
      }
      if (next.dueAt > now) {
        this.arm(next.dueAt);
        return;
      }
      this.held.pop();
      this.heldBytes -= next.message.bodySize;
      this.onDue(this, next);
    }
  }
}
