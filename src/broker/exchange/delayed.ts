// x-delayed-message: an exchange that holds each message published to it for the number of
// milliseconds in its `x-delay` header, then routes it like the exchange type named by its
// `x-delayed-type` argument — what RabbitMQ's delayed-message-exchange plugin does, built in.
// A message without a positive integer x-delay is routed at once. One heap and one timer per
// exchange, not a timer per message. The vhost stores held messages when the exchange is durable.

import { PreconditionFailed } from '../../protocol/errors.js';
import { MinHeap } from '../../util/min-heap.js';
import type { Binding, Destination } from '../binding.js';
import type { Message } from '../message.js';
import { Exchange, type ExchangeOptions } from './exchange.js';

export const DELAYED_TYPE = 'x-delayed-message';

export interface DelayedMessage {
  readonly message: Message;
  readonly dueAt: number;
  /** id of the stored copy (0 = not stored) */
  readonly storeId: number;
}

interface Held extends DelayedMessage {
  /** arrival order, for messages due at the same time */
  readonly seq: number;
}

export type ExchangeFactory = (type: string, vhost: string, name: string, options: ExchangeOptions) => Exchange;

/** The delay a message asks for, in ms, or 0 when it should be routed now. */
export function requestedDelay(message: Message): number {
  if (!message.hasHeaders) return 0;
  const delay = message.headers?.['x-delay'];
  const n = typeof delay === 'number' ? delay : typeof delay === 'bigint' ? Number(delay) : NaN;
  return Number.isInteger(n) && n > 0 ? n : 0;
}

export class DelayedMessageExchange extends Exchange {
  readonly type = DELAYED_TYPE;
  /** routes like this type once a message is due */
  private readonly inner: Exchange;
  private readonly held = new MinHeap<Held>((a, b) => a.dueAt < b.dueAt || (a.dueAt === b.dueAt && a.seq < b.seq));
  private nextSeq = 0;
  private timer: NodeJS.Timeout | null = null;
  private timerAt = 0;
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

  get delayedType(): string {
    return this.inner.type;
  }

  get heldCount(): number {
    return this.held.size;
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

  /** Holds a message until dueAt. */
  hold(delayed: DelayedMessage): void {
    this.held.push({ message: delayed.message, dueAt: delayed.dueAt, storeId: delayed.storeId, seq: this.nextSeq++ });
    if (this.timer === null || delayed.dueAt < this.timerAt) this.arm(delayed.dueAt);
  }

  /** Stops the timer and forgets held messages (exchange deleted). Returns what was held. */
  drop(): DelayedMessage[] {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const out: DelayedMessage[] = [];
    for (let d = this.held.pop(); d !== undefined; d = this.held.pop()) out.push(d);
    return out;
  }

  private arm(at: number): void {
    if (this.timer) clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = setTimeout(this.release, Math.min(Math.max(0, at - Date.now()), 2_147_483_647));
    this.timer.unref();
  }

  private readonly release = (): void => {
    this.timer = null;
    const now = Date.now();
    for (;;) {
      const next = this.held.peek();
      if (next === undefined) return;
      if (next.dueAt > now) {
        this.arm(next.dueAt);
        return;
      }
      this.held.pop();
      this.onDue(this, next);
    }
  };
}
