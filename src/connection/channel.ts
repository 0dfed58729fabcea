// One AMQP channel: its method handlers, content assembly for publishes, consumers, the unacked
// ledger, prefetch, publisher confirms and transactions. Each handler is a flat list of guards that
// throw typed errors, then the action. Errors raised here are caught once, by the connection: soft
// ones come back as closeWithError (channel.close), hard ones close the connection.

import type { Flushable } from '../broker/dispatch.js';
import type { Exchange } from '../broker/exchange/exchange.js';
import { Message, routingHeaders } from '../broker/message.js';
import { ConfirmTracker, type ConfirmSink } from '../broker/confirms.js';
import { Consumer, type ConsumerChannel } from '../broker/queue/consumers.js';
import type { QueueEntry } from '../broker/queue/entry.js';
import type { Queue } from '../broker/queue/queue.js';
import { parseExpirationProperty } from '../broker/expiration.js';
import { UnackedDelivery, UnackedLedger } from '../broker/unacked.js';
import { PublishAccess, type Access } from '../broker/permissions.js';
import { LIMITS_CHECK_MS } from '../broker/resources.js';
import { checkConsume, checkGet, rejectRefusal } from '../broker/queue/consume-rules.js';
import { redeliveryMessage } from '../broker/queue/quorum-queue.js';
import {
  ChannelExchangeCounters,
  ChannelObjectCounters,
  ChannelQueueCounters,
  type BrokerStats,
} from '../broker/stats.js';
import {
  PUBLISH_PENDING_COMMIT,
  PUBLISH_REJECTED,
  PUBLISH_ROUTED,
  REPLY_TO_QUEUE,
  generateName,
  type ReplyTarget,
  type VHost,
} from '../broker/vhost.js';
import type { CommitWaiter } from '../broker/persistence.js';
import { CommandAssembler, type Content } from '../protocol/command-assembler.js';
import { encodeShortStr } from '../protocol/frame-writer.js';
import { PublishDecoder } from '../protocol/publish-decoder.js';
import {
  AccessRefused,
  AmqpException,
  CommandInvalid,
  InternalError,
  NotAllowed,
  NotFound,
  NotImplemented,
  PreconditionFailed,
} from '../protocol/errors.js';
import type { FieldTable } from '../protocol/field-table.js';
import * as M from '../protocol/generated/amqp.js';
import type { Connection } from './connection.js';
import { Outbound } from './outbound.js';

/** Publishes and acks held back until tx.commit. */
interface PendingPublish {
  exchange: Exchange;
  message: Message;
  extraKeys: string[] | null;
  mandatory: boolean;
}
type PendingAck =
  | { kind: 'ack'; deliveries: UnackedDelivery[] }
  | { kind: 'reject'; deliveries: UnackedDelivery[]; requeue: boolean };

class TxState {
  publishes: PendingPublish[] = [];
  acks: PendingAck[] = [];
}

/** Waits for one store batch on behalf of one channel's confirms (or a tx.commit). */
class BatchWaiter implements CommitWaiter {
  constructor(
    private readonly channel: Channel,
    private readonly done: (ok: boolean) => void,
  ) {}
  onCommitted(): void {
    this.done(true);
    this.channel.scheduleFlush();
  }
  onCommitFailed(): void {
    this.done(false);
    this.channel.scheduleFlush();
  }
}

/** A channel's settings and counts as the management API shows them. */
export interface ChannelInfo {
  prefetchCount: number;
  globalPrefetchCount: number;
  confirm: boolean;
  transactional: boolean;
  unconfirmed: number;
  uncommittedMessages: number;
  uncommittedAcks: number;
  flowActive: boolean;
}

export class Channel implements ConsumerChannel, ConfirmSink, Flushable, ReplyTarget {
  /** true after the server sent channel.close, until close-ok */
  closing = false;
  private released = false;
  private readonly assembler: CommandAssembler;
  private readonly publishDecoder = new PublishDecoder();
  /** exchange + routing key bytes of the publish being assembled, from the wire (null: encode) */
  private pendingRouting: Buffer | null = null;
  readonly consumers = new Map<string, Consumer>();
  readonly unacked = new UnackedLedger();
  private deliveryTag = 0;
  /** basic.qos(global=false): limit given to consumers created afterwards */
  private consumerPrefetch = 0;
  /** basic.qos(global=true): limit shared by the channel */
  private channelPrefetch = 0;
  private flowActive = true;
  private confirms: ConfirmTracker | null = null;
  private tx: TxState | null = null;
  /** for queue-name shortcuts: the queue most recently declared on this channel */
  private lastQueueName = '';
  /** direct reply-to: this channel's consumer of amq.rabbitmq.reply-to, if any */
  private replyConsumer: { tag: string; tagBytes: Buffer; key: string } | null = null;
  /** counters for metrics (read at scrape time) */
  publishedTotal = 0;
  private readonly stats: BrokerStats;
  readonly exchangeCounters = new ChannelObjectCounters<Exchange, ChannelExchangeCounters>((e) => new ChannelExchangeCounters(e));
  readonly queueCounters = new ChannelObjectCounters<Queue, ChannelQueueCounters>(
    (q) => new ChannelQueueCounters(q, this.stats.forQueueType(q.type)),
  );
  /** output held back until durable writes behind a reply are committed (see holdOutput) */
  private held: Outbound | null = null;
  private holds = 0;
  /** persistence.syncWrites when the current method started */
  private writesBefore = 0;
  /** cached publish permission decisions (no regular expression per message) */
  private publishAccess: PublishAccess | null = null;

  constructor(
    readonly connection: Connection,
    readonly id: number,
  ) {
    this.assembler = new CommandAssembler(connection.bodyAllowance);
    this.stats = connection.broker.stats;
    this.stats.channelsOpened++;
  }

  /** Whether consumers or unacked messages, basic.qos limits: for the metrics snapshot. */
  get consumerPrefetchCount(): number {
    return this.consumerPrefetch;
  }

  get channelPrefetchCount(): number {
    return this.channelPrefetch;
  }

  get unconfirmedCount(): number {
    return this.confirms?.unconfirmedCount ?? 0;
  }

  get uncommittedMessages(): number {
    return this.tx?.publishes.length ?? 0;
  }

  get uncommittedAcks(): number {
    return this.tx?.acks.length ?? 0;
  }

  get isReleased(): boolean {
    return this.released;
  }

  /** Settings and counts the management API reports (read when asked; nothing kept per message). */
  get info(): ChannelInfo {
    return {
      prefetchCount: this.consumerPrefetch,
      globalPrefetchCount: this.channelPrefetch,
      confirm: this.confirms !== null,
      transactional: this.tx !== null,
      unconfirmed: this.confirms?.unconfirmedCount ?? 0,
      uncommittedMessages: this.tx?.publishes.length ?? 0,
      uncommittedAcks: this.tx?.acks.reduce((n, a) => n + a.deliveries.length, 0) ?? 0,
      flowActive: this.flowActive,
    };
  }

  private get vhost(): VHost {
    return this.connection.vhost!;
  }

  /** Where this channel writes: the connection's output, or a held one while a commit is pending. */
  private get out(): Outbound {
    return this.held ?? this.connection.outbound;
  }

  /**
   * A reply must not go out before the durable change it confirms is on disk (a declare-ok for a
   * durable queue that a crash then forgets). Everything this channel writes from now on is held,
   * in order, until the commit; other channels are not delayed.
   */
  private holdOutput(): void {
    this.held ??= new Outbound(null, this.connection.broker.dispatcher);
    this.holds++;
    this.connection.broker.persistence.afterCommit(new BatchWaiter(this, () => this.releaseHeld()));
  }

  /** Writes a synchronous reply, held until commit when the method wrote durable state. */
  private reply(method: M.Method): void {
    const writes = this.connection.broker.persistence.syncWrites;
    if (writes !== this.writesBefore) {
      this.writesBefore = writes;
      this.holdOutput();
    }
    this.out.writeMethod(this.id, method);
  }

  private releaseHeld(): void {
    if (--this.holds > 0 || this.held === null) return;
    this.connection.outbound.append(this.held);
    this.held = null;
  }

  opened(): void {
    this.out.writeMethod(this.id, { id: M.CHANNEL_OPEN_OK, reserved1: Buffer.alloc(0) });
  }

  // ---- Frames -------------------------------------------------------------------------------------

  onMethod(method: M.Method): void {
    if (this.closing) return this.onMethodWhileClosing(method);
    const hasContent = M.methodHasContent(method.id);
    if (!this.assembler.onMethod(method, hasContent)) {
      this.pendingRouting = null;
      return;
    }
    this.writesBefore = this.connection.broker.persistence.syncWrites;
    try {
      this.handle(method);
    } catch (err) {
      if (err instanceof AmqpException) err.at(method.id);
      throw err;
    }
  }

  /**
   * basic.publish on the fast path (Connection.publishFast): decoded by this channel's
   * PublishDecoder, which keeps the routing bytes for basic.deliver. Returns false when the
   * arguments are truncated (the general path reports it).
   */
  onPublishFrame(buf: Buffer, start: number, end: number): boolean {
    const method = this.publishDecoder.decode(buf, start, end);
    if (method === undefined) return false;
    this.assembler.onMethod(method, true);
    this.pendingRouting = this.publishDecoder.routingBytes;
    return true;
  }

  /**
   * basic.ack fast path (Connection.onMethodFrame): one delivery acknowledged outside a
   * transaction is settled without a method object or a list. Returns false to leave the frame to
   * the general path: multiple, a transaction, a channel closing or assembling content, an unknown
   * tag (the general path raises its error) or truncated arguments.
   */
  ackFast(buf: Buffer, start: number, end: number): boolean {
    if (end - start < 9 || this.closing || this.tx !== null || this.assembler.busy || (buf[start + 8]! & 1) !== 0) return false;
    const d = this.unacked.take(buf.readUInt32BE(start) * 4294967296 + buf.readUInt32BE(start + 4));
    if (d === undefined) return false;
    this.settleOne(d);
    if (this.channelPrefetch !== 0) this.wakeConsumers();
    return true;
  }

  onHeaderFrame(buf: Buffer, start: number, end: number): void {
    if (this.closing) return;
    const content = this.assembler.onHeader(buf, start, end);
    if (content !== null) return this.onContent(content);
    // Refuse an oversized message before its body arrives, not after buffering it.
    const announced = this.assembler.announcedBodySize;
    const maxSize = this.connection.broker.config.maxMessageSizeBytes;
    if (announced > maxSize) {
      throw new PreconditionFailed(`message size ${announced} is larger than configured max size ${maxSize}`).at(M.BASIC_PUBLISH);
    }
  }

  onBodyFrame(buf: Buffer, start: number, end: number): void {
    if (this.closing) return;
    const content = this.assembler.onBody(buf, start, end);
    if (content !== null) this.onContent(content);
  }

  /** Part of a body frame split across socket reads (Connection.onBodyPiece). */
  onBodyPiece(buf: Buffer, start: number, end: number, payloadSize: number, first: boolean, last: boolean): void {
    if (this.closing) return;
    const content = this.assembler.onBodyPiece(buf, start, end, payloadSize, first, last);
    if (content !== null) this.onContent(content);
  }

  private onContent(content: Content): void {
    const method = content.method;
    try {
      if (method.id !== M.BASIC_PUBLISH) throw new CommandInvalid('unimplemented method');
      this.basicPublish(method, content);
    } catch (err) {
      if (err instanceof AmqpException) err.at(method.id);
      throw err;
    }
  }

  private onMethodWhileClosing(method: M.Method): void {
    if (method.id === M.CHANNEL_CLOSE_OK) {
      this.connection.channelClosed(this);
    } else if (method.id === M.CHANNEL_CLOSE) {
      // Both sides closed at once. As RabbitMQ: answer the client's close, but keep the channel
      // until the client's close-ok for ours arrives, so that close-ok finds a known channel.
      this.out.writeMethod(this.id, { id: M.CHANNEL_CLOSE_OK });
    }
    // Anything else is dropped until close-ok, as the spec asks.
  }

  private handle(m: M.Method): void {
    switch (m.id) {
      case M.CHANNEL_CLOSE:
        return this.onClientClose();
      case M.CHANNEL_CLOSE_OK:
        throw new CommandInvalid('unimplemented method'); // no close of ours is pending
      case M.CHANNEL_FLOW:
        return this.channelFlow(m.active);
      case M.CHANNEL_FLOW_OK:
        return;
      case M.EXCHANGE_DECLARE:
        return this.exchangeDeclare(m);
      case M.EXCHANGE_DELETE:
        return this.exchangeDelete(m);
      case M.EXCHANGE_BIND:
        return this.exchangeBind(m);
      case M.EXCHANGE_UNBIND:
        return this.exchangeUnbind(m);
      case M.QUEUE_DECLARE:
        return this.queueDeclare(m);
      case M.QUEUE_BIND:
        return this.queueBind(m);
      case M.QUEUE_UNBIND:
        return this.queueUnbind(m);
      case M.QUEUE_PURGE:
        return this.queuePurge(m);
      case M.QUEUE_DELETE:
        return this.queueDelete(m);
      case M.BASIC_QOS:
        return this.basicQos(m);
      case M.BASIC_CONSUME:
        return this.basicConsume(m);
      case M.BASIC_CANCEL:
        return this.basicCancel(m);
      case M.BASIC_GET:
        return this.basicGet(m);
      case M.BASIC_ACK:
        return this.basicAck(m.deliveryTag, m.multiple);
      case M.BASIC_REJECT:
        return this.basicReject(m.deliveryTag, false, m.requeue);
      case M.BASIC_NACK:
        return this.basicReject(m.deliveryTag, m.multiple, m.requeue);
      case M.BASIC_RECOVER_ASYNC:
        this.recover(m.requeue);
        return;
      case M.BASIC_RECOVER:
        this.recover(m.requeue);
        this.out.writeMethod(this.id, { id: M.BASIC_RECOVER_OK });
        return;
      case M.TX_SELECT:
        return this.txSelect();
      case M.TX_COMMIT:
        return this.txCommit();
      case M.TX_ROLLBACK:
        return this.txRollback();
      case M.CONFIRM_SELECT:
        return this.confirmSelect(m.nowait);
      case M.CHANNEL_OPEN:
        throw new CommandInvalid(`second 'channel.open' seen`);
      default:
        // Methods only a server sends (basic.deliver, queue.declare-ok, …).
        throw new CommandInvalid('unimplemented method');
    }
  }

  // ---- channel ------------------------------------------------------------------------------------

  private onClientClose(): void {
    this.out.writeMethod(this.id, { id: M.CHANNEL_CLOSE_OK });
    this.release();
    this.connection.channelClosed(this);
  }

  /** Sends channel.close for a soft error; frames are dropped until close-ok. */
  closeWithError(err: AmqpException): void {
    if (this.closing) return;
    this.connection.log.warn(
      { channel: this.id, user: this.connection.userName, vhost: this.connection.vhost?.name, replyCode: err.replyCode, replyText: err.replyText },
      'closing channel on error',
    );
    this.out.writeMethod(this.id, {
      id: M.CHANNEL_CLOSE,
      replyCode: err.replyCode,
      replyText: err.replyText,
      classId: err.classId,
      methodId: err.methodId,
    });
    this.closing = true;
    this.release();
  }

  private channelFlow(active: boolean): void {
    // As RabbitMQ: a client may not pause its deliveries (active=false is 540, a connection
    // error; basic.qos is the way to hold them back), so flowActive stays true. Client test
    // suites (amqp091-go) expect exactly this answer.
    if (!active) throw new NotImplemented('active=false');
    this.out.writeMethod(this.id, { id: M.CHANNEL_FLOW_OK, active: true });
  }

  /**
   * Gives back everything the channel holds: unacked messages are requeued in their original
   * order, consumers are removed (auto-delete queues may go), pending tx work is dropped.
   */
  release(): void {
    if (this.released) return;
    this.released = true;
    this.stats.channelsClosed++;
    // What it published stays in its vhost's management message_stats.
    const vhost = this.connection.vhost;
    if (vhost !== null) vhost.retired.publish += this.publishedTotal;
    this.assembler.reset();
    // Acks inside an uncommitted transaction never happened: those messages are requeued too.
    if (this.tx !== null) for (const a of this.tx.acks) this.unacked.restore(a.deliveries);
    this.tx = null;
    this.requeueAll(this.unacked.takeAll());
    for (const consumer of this.consumers.values()) this.detachConsumer(consumer);
    this.consumers.clear();
    this.cancelReplyConsumer();
  }

  private cancelReplyConsumer(): void {
    if (this.replyConsumer === null) return;
    this.vhost.replyTargets.delete(this.replyConsumer.key);
    this.replyConsumer = null;
  }

  /** Direct reply-to: consuming from the pseudo-queue registers this channel for replies. */
  private consumeReplies(m: M.BasicConsume): void {
    if (!m.noAck) throw new PreconditionFailed('reply consumer cannot acknowledge');
    if (this.replyConsumer !== null) throw new PreconditionFailed('reply consumer already set');
    const tag = m.consumerTag === '' ? generateName('amq.ctag-') : m.consumerTag;
    this.replyConsumer = { tag, tagBytes: encodeShortStr(tag), key: generateName(`${REPLY_TO_QUEUE}.`) };
    this.vhost.replyTargets.set(this.replyConsumer.key, this);
    if (!m.noWait) this.out.writeMethod(this.id, { id: M.BASIC_CONSUME_OK, consumerTag: tag });
  }

  /** ReplyTarget: a reply published to our reply-to name goes straight to the client. */
  deliverReply(message: Message): void {
    if (this.released || this.replyConsumer === null) return;
    const tag = ++this.deliveryTag;
    this.out.writeDelivery(this.id, this.replyConsumer.tagBytes, tag, false, message, this.connection.frameMax);
  }

  private requeueAll(deliveries: UnackedDelivery[]): void {
    if (deliveries.length === 0) return;
    const now = Date.now();
    // Requeue newest first: each lands at its original position, so the order is the same
    // either way, but newest-first keeps every insertion at the head of the queue.
    for (let i = deliveries.length - 1; i >= 0; i--) {
      const d = deliveries[i]!;
      if (d.consumer !== null) d.consumer.unacked--;
      d.entry.queue.requeue(d.entry, now);
    }
  }

  private detachConsumer(consumer: Consumer): void {
    const queue = consumer.queue;
    if (queue.removeConsumer(consumer) && !queue.deleted) this.vhost.removeQueue(queue);
  }

  // ---- exchange -----------------------------------------------------------------------------------

  /** The permission check point: every guard that touches a named resource goes through here. */
  private authorize(access: Access, kind: 'exchange' | 'queue', name: string): void {
    this.connection.broker.permissions.check(this.connection.userName, this.vhost.name, access, kind, name);
  }

  /** Topic permissions: binding to or from a topic exchange needs read access to the key. */
  private authorizeTopicRead(exchangeName: string, routingKey: string): void {
    const ex = this.vhost.exchanges.get(exchangeName);
    if (ex === undefined || ex.type !== 'topic') return;
    this.connection.broker.permissions.checkTopic(this.connection.userName, this.vhost.name, 'read', exchangeName, routingKey);
  }

  private exchangeDeclare(m: M.ExchangeDeclare): void {
    // As RabbitMQ: a passive declare needs no permission.
    if (!m.passive) this.authorize('configure', 'exchange', m.exchange);
    this.vhost.declareExchange({
      name: m.exchange,
      type: m.type,
      passive: m.passive,
      durable: m.durable,
      autoDelete: m.autoDelete,
      internal: m.internal,
      args: m.arguments,
    });
    if (!m.noWait) this.reply({ id: M.EXCHANGE_DECLARE_OK });
  }

  private exchangeDelete(m: M.ExchangeDelete): void {
    this.authorize('configure', 'exchange', m.exchange);
    this.vhost.deleteExchange(m.exchange, m.ifUnused);
    if (!m.noWait) this.reply({ id: M.EXCHANGE_DELETE_OK });
  }

  private exchangeBind(m: M.ExchangeBind): void {
    this.authorize('write', 'exchange', m.destination);
    this.authorize('read', 'exchange', m.source);
    this.authorizeTopicRead(m.source, m.routingKey);
    this.vhost.getExchange(m.source); // the source is reported first when both are missing
    const destination = this.vhost.getExchange(m.destination);
    this.vhost.bind(m.source, destination, m.routingKey, m.arguments);
    if (!m.noWait) this.reply({ id: M.EXCHANGE_BIND_OK });
  }

  private exchangeUnbind(m: M.ExchangeUnbind): void {
    this.authorize('write', 'exchange', m.destination);
    this.authorize('read', 'exchange', m.source);
    this.authorizeTopicRead(m.source, m.routingKey);
    this.vhost.unbind(m.source, 'exchange', m.destination, m.routingKey, m.arguments, this.connection);
    if (!m.noWait) this.reply({ id: M.EXCHANGE_UNBIND_OK });
  }

  // ---- queue --------------------------------------------------------------------------------------

  /** AMQP's shortcut: an empty queue name means the queue last declared on this channel. */
  private queueName(name: string): string {
    if (name !== '') return name;
    if (this.lastQueueName === '') throw new NotFound(`no previously declared queue`);
    return this.lastQueueName;
  }

  private queueDeclare(m: M.QueueDeclare): void {
    // As RabbitMQ: the server names the queue first and checks configure on that name; a passive
    // declare needs no permission.
    const serverNamed = m.queue === '' && !m.passive;
    const name = serverNamed ? generateName('amq.gen-') : m.queue;
    if (!m.passive) this.authorize('configure', 'queue', name);
    if (m.passive && m.queue === REPLY_TO_QUEUE) {
      if (!m.noWait) this.out.writeMethod(this.id, { id: M.QUEUE_DECLARE_OK, queue: m.queue, messageCount: 0, consumerCount: 0 });
      return;
    }
    const queue = this.vhost.declareQueue(
      {
        name,
        serverNamed,
        passive: m.passive,
        durable: m.durable,
        exclusive: m.exclusive,
        autoDelete: m.autoDelete,
        args: m.arguments,
      },
      this.connection,
    );
    this.lastQueueName = queue.name;
    if (queue.exclusiveOwner === this.connection) this.connection.ownsExclusiveQueue(queue);
    if (!m.noWait) {
      this.reply({
        id: M.QUEUE_DECLARE_OK,
        queue: queue.name,
        messageCount: queue.messageCount,
        consumerCount: queue.consumerCount,
      });
    }
  }

  private queueBind(m: M.QueueBind): void {
    // As RabbitMQ: the exchange is checked first, then the queue.
    if (m.exchange === '') throw new AccessRefused(`operation not permitted on the default exchange`);
    this.authorize('write', 'queue', this.queueName(m.queue));
    this.authorize('read', 'exchange', m.exchange);
    this.vhost.getExchange(m.exchange);
    const queue = this.vhost.getQueue(this.queueName(m.queue), this.connection);
    const routingKey = m.routingKey === '' && m.queue === '' ? queue.name : m.routingKey;
    this.authorizeTopicRead(m.exchange, routingKey);
    this.vhost.bind(m.exchange, queue, routingKey, m.arguments);
    if (!m.noWait) this.reply({ id: M.QUEUE_BIND_OK });
  }

  private queueUnbind(m: M.QueueUnbind): void {
    this.authorize('write', 'queue', this.queueName(m.queue));
    this.authorize('read', 'exchange', m.exchange);
    this.authorizeTopicRead(m.exchange, m.routingKey);
    this.vhost.unbind(m.exchange, 'queue', this.queueName(m.queue), m.routingKey, m.arguments, this.connection);
    this.reply({ id: M.QUEUE_UNBIND_OK });
  }

  private queuePurge(m: M.QueuePurge): void {
    this.authorize('read', 'queue', this.queueName(m.queue));
    const queue = this.vhost.getQueue(this.queueName(m.queue), this.connection);
    const count = queue.purge();
    if (!m.noWait) this.reply({ id: M.QUEUE_PURGE_OK, messageCount: count });
  }

  private queueDelete(m: M.QueueDelete): void {
    this.authorize('configure', 'queue', this.queueName(m.queue));
    const count = this.vhost.deleteQueue(this.queueName(m.queue), this.connection, m.ifUnused, m.ifEmpty);
    if (!m.noWait) this.reply({ id: M.QUEUE_DELETE_OK, messageCount: count });
  }

  // ---- basic: consuming ---------------------------------------------------------------------------

  private basicQos(m: M.BasicQos): void {
    if (m.prefetchSize !== 0) {
      throw new NotImplemented(`prefetch_size!=0 (${m.prefetchSize})`);
    }
    if (m.global) this.channelPrefetch = m.prefetchCount;
    else {
      // As RabbitMQ 3.x: a per-consumer qos also lifts any channel-wide limit.
      this.consumerPrefetch = m.prefetchCount;
      this.channelPrefetch = 0;
    }
    this.out.writeMethod(this.id, { id: M.BASIC_QOS_OK });
    this.wakeConsumers();
  }

  private basicConsume(m: M.BasicConsume): void {
    if (m.queue === REPLY_TO_QUEUE) return this.consumeReplies(m);
    this.authorize('read', 'queue', this.queueName(m.queue));
    const queue = this.vhost.getQueue(this.queueName(m.queue), this.connection);
    const tag = m.consumerTag === '' ? generateName('amq.ctag-') : m.consumerTag;
    if (this.consumers.has(tag)) throw new NotAllowed(`attempt to reuse consumer tag '${tag}'`);
    if (queue.consumers.hasExclusive() || (m.exclusive && queue.consumerCount > 0)) {
      throw new AccessRefused(`queue '${queue.name}' in vhost '${this.vhost.name}' in exclusive use`);
    }
    checkConsume(queue, m.noAck, this.consumerPrefetch, this.channelPrefetch, m.arguments);
    const priority = consumerPriority(m.arguments);
    const consumer = new Consumer(tag, this, queue, m.noAck, m.exclusive, priority, this.consumerPrefetch, m.arguments);
    this.consumers.set(tag, consumer);
    // consume-ok goes out before any delivery: deliveries are written when the dispatcher runs.
    if (!m.noWait) this.out.writeMethod(this.id, { id: M.BASIC_CONSUME_OK, consumerTag: tag });
    queue.addConsumer(consumer);
  }

  private basicCancel(m: M.BasicCancel): void {
    if (this.replyConsumer?.tag === m.consumerTag) this.cancelReplyConsumer();
    const consumer = this.consumers.get(m.consumerTag);
    if (consumer !== undefined) {
      this.consumers.delete(m.consumerTag);
      this.detachConsumer(consumer);
    }
    if (!m.noWait) this.reply({ id: M.BASIC_CANCEL_OK, consumerTag: m.consumerTag });
  }

  private basicGet(m: M.BasicGet): void {
    this.authorize('read', 'queue', this.queueName(m.queue));
    const queue = this.vhost.getQueue(this.queueName(m.queue), this.connection);
    checkGet(queue);
    queue.touch();
    const entry = queue.take(Date.now());
    const counters = this.queueCounters.for(queue);
    if (entry === undefined) {
      counters.totals.getEmpty++;
      counters.getEmpty++;
      this.out.writeMethod(this.id, { id: M.BASIC_GET_EMPTY, reserved1: '' });
      return;
    }
    const tag = ++this.deliveryTag;
    if (entry.redelivered) {
      counters.totals.redelivered++;
      counters.redelivered++;
    }
    if (m.noAck) {
      counters.totals.deliveredGetAutoAck++;
      counters.getAutoAck++;
      queue.settle(entry, false);
    } else {
      counters.totals.deliveredGetManualAck++;
      counters.getManualAck++;
      this.unacked.add(this.unackedDelivery(tag, entry, null));
    }
    // Quorum queues: basic.get-ok always carries x-delivery-count (0 the first time), as RabbitMQ.
    const message = queue.type === 'quorum' ? redeliveryMessage(entry) : entry.message;
    this.out.writeMethodWithContent(
      this.id,
      {
        id: M.BASIC_GET_OK,
        deliveryTag: tag,
        redelivered: entry.redelivered,
        exchange: message.exchange,
        routingKey: message.routingKey,
        messageCount: queue.messageCount,
      },
      message,
      this.connection.frameMax,
    );
  }

  /** ConsumerChannel: may this channel take another delivery now? */
  canSend(): boolean {
    if (this.closing || !this.flowActive) return false;
    if (this.channelPrefetch !== 0 && this.unacked.size >= this.channelPrefetch) return false;
    return !this.connection.outbound.backedUp;
  }

  /** ConsumerChannel: writes one delivery (the entry is already out of the queue). */
  deliver(consumer: Consumer, entry: QueueEntry): void {
    const tag = ++this.deliveryTag;
    const counters = this.queueCounters.for(entry.queue);
    if (entry.redelivered) {
      counters.totals.redelivered++;
      counters.redelivered++;
    }
    if (consumer.noAck) {
      counters.totals.deliveredConsumeAutoAck++;
      counters.deliveredAutoAck++;
      entry.queue.settle(entry, false);
    } else {
      counters.totals.deliveredConsumeManualAck++;
      counters.deliveredManualAck++;
      this.unacked.add(this.unackedDelivery(tag, entry, consumer));
      consumer.unacked++;
    }
    // Quorum queues count returns: the message goes out again with x-delivery-count.
    const message = entry.deliveryCount === 0 ? entry.message : redeliveryMessage(entry);
    this.out.writeDelivery(this.id, consumer.tagBytes, tag, entry.redelivered, message, this.connection.frameMax);
  }

  /** An unacked delivery stamped with the broker's coarse clock (for the consumer timeout). */
  private unackedDelivery(tag: number, entry: QueueEntry, consumer: Consumer | null): UnackedDelivery {
    const d = new UnackedDelivery(tag, entry, consumer);
    d.deliveredAt = this.connection.broker.resources.coarseNowMs;
    return d;
  }

  /**
   * RabbitMQ's consumer timeout, checked once a second for the whole broker: when the oldest
   * unacked delivery of this channel has waited longer than its queue's x-consumer-timeout (or
   * the broker's --consumer-timeout), the channel is closed with 406 and RabbitMQ's text.
   */
  checkConsumerTimeout(nowMs: number): void {
    if (this.released) return;
    const oldest = this.unacked.oldest();
    if (oldest === undefined) return;
    const timeoutMs = oldest.entry.queue.options.consumerTimeoutMs ?? this.connection.broker.resources.consumerTimeoutMs;
    if (timeoutMs === 0) return;
    // deliveredAt is up to one tick early (a coarse clock): never time a delivery out before its due.
    if (nowMs - oldest.deliveredAt <= timeoutMs + LIMITS_CHECK_MS) return;
    this.connection.log.warn(
      { channel: this.id, consumerTag: oldest.consumer?.tag ?? null, queue: oldest.entry.queue.name, timeoutMs },
      'consumer timed out waiting for a delivery acknowledgement; closing its channel',
    );
    this.closeWithError(
      new PreconditionFailed(
        `delivery acknowledgement on channel ${this.id} timed out. Timeout value used: ${timeoutMs} ms. This timeout value can be configured, see consumers doc guide to learn more`,
      ),
    );
  }

  /** ConsumerChannel: the queue was deleted under this consumer. */
  consumerCancelledByServer(consumer: Consumer): void {
    if (this.consumers.get(consumer.tag) !== consumer) return;
    this.consumers.delete(consumer.tag);
    if (this.connection.capabilities.consumerCancelNotify && !this.closing) {
      this.out.writeMethod(this.id, { id: M.BASIC_CANCEL, consumerTag: consumer.tag, noWait: true });
    }
  }

  /** The socket drained: consumers on this connection may receive again. */
  onConnectionDrained(): void {
    this.wakeConsumers();
  }

  private wakeConsumers(): void {
    for (const consumer of this.consumers.values()) {
      if (consumer.queue.messageCount > 0) this.vhost.queueReady(consumer.queue);
    }
  }

  // ---- basic: acknowledgements --------------------------------------------------------------------

  private takeDeliveries(deliveryTag: number, multiple: boolean): UnackedDelivery[] {
    if (multiple) {
      // Tag 0 with multiple means "everything outstanding".
      if (deliveryTag === 0) return this.unacked.takeAll();
      // As RabbitMQ: the tag itself must be outstanding, or nothing is acknowledged.
      if (!this.unacked.has(deliveryTag)) throw new PreconditionFailed(`unknown delivery tag ${deliveryTag}`);
      return this.unacked.takeUpTo(deliveryTag);
    }
    const one = this.unacked.take(deliveryTag);
    if (one === undefined) throw new PreconditionFailed(`unknown delivery tag ${deliveryTag}`);
    return [one];
  }

  private basicAck(deliveryTag: number, multiple: boolean): void {
    const deliveries = this.takeDeliveries(deliveryTag, multiple);
    if (this.tx !== null) {
      this.tx.acks.push({ kind: 'ack', deliveries });
      return;
    }
    this.settle(deliveries);
  }

  private settle(deliveries: UnackedDelivery[]): void {
    for (let i = 0; i < deliveries.length; i++) this.settleOne(deliveries[i]!);
    if (this.channelPrefetch !== 0) this.wakeConsumers();
  }

  /** One acknowledged delivery leaves its queue; its consumer may take another. */
  private settleOne(d: UnackedDelivery): void {
    const counters = this.queueCounters.for(d.entry.queue);
    counters.acked++;
    counters.totals.acknowledged++;
    d.entry.queue.settle(d.entry);
    if (d.consumer !== null) {
      d.consumer.unacked--;
      if (d.consumer.queue.messageCount > 0) this.vhost.queueReady(d.consumer.queue);
    }
  }

  private basicReject(deliveryTag: number, multiple: boolean, requeue: boolean): void {
    const deliveries = this.takeDeliveries(deliveryTag, multiple);
    const refusal = rejectRefusal(deliveries);
    if (refusal !== null) {
      // Nothing is rejected: the deliveries stay unacked (and are requeued as the connection closes).
      this.unacked.restore(deliveries);
      throw refusal;
    }
    if (this.tx !== null) {
      this.tx.acks.push({ kind: 'reject', deliveries, requeue });
      return;
    }
    this.reject(deliveries, requeue);
  }

  private reject(deliveries: UnackedDelivery[], requeue: boolean): void {
    if (requeue) {
      this.requeueAll(deliveries);
      return;
    }
    for (const d of deliveries) {
      if (d.consumer !== null) d.consumer.unacked--;
      d.entry.queue.rejectWithoutRequeue(d.entry);
    }
    this.wakeConsumers();
  }

  private recover(requeue: boolean): void {
    // RabbitMQ does not redeliver to the original consumer: only requeueing is supported.
    if (!requeue) throw new NotImplemented('requeue=false');
    this.requeueAll(this.unacked.takeAll());
  }

  // ---- basic: publishing --------------------------------------------------------------------------

  private basicPublish(m: M.BasicPublish, content: Content): void {
    if (m.immediate) throw new NotImplemented(`immediate=true`);
    const vhost = this.vhost;
    const exchange = vhost.exchanges.get(m.exchange);
    // As RabbitMQ: write permission first, then existence, internal, topic permission.
    if (exchange === undefined) {
      this.authorize('write', 'exchange', m.exchange);
      throw new NotFound(`no exchange '${m.exchange}' in vhost '${vhost.name}'`);
    }
    const access = (this.publishAccess ??= new PublishAccess(this.connection.broker.permissions, this.connection.userName, vhost.name));
    access.checkExchange(exchange);
    if (exchange.internal) {
      throw new AccessRefused(`cannot publish to internal exchange '${m.exchange}' in vhost '${vhost.name}'`);
    }
    access.checkRoutingKey(exchange, m.routingKey);
    const maxSize = this.connection.broker.config.maxMessageSizeBytes;
    if (content.bodySize > maxSize) {
      throw new PreconditionFailed(`message size ${content.bodySize} is larger than configured max size ${maxSize}`);
    }
    const now = Date.now();
    const message = new Message(m.exchange, m.routingKey, content.rawProperties, content.body, now, this.pendingRouting);
    // As RabbitMQ: users tagged impersonator may publish with another user_id.
    if (message.userId !== undefined && message.userId !== this.connection.userName && !this.connection.user?.tags.includes('impersonator')) {
      throw new PreconditionFailed(
        `user_id property set to '${message.userId}' but authenticated user was '${this.connection.userName}'`,
      );
    }
    if (message.expiration !== undefined) {
      const parsed = parseExpirationProperty(message.expiration);
      if (!parsed.ok) throw new PreconditionFailed(`invalid expiration '${message.expiration}': ${parsed.reason}`);
    }
    if (message.replyTo === REPLY_TO_QUEUE) {
      if (this.replyConsumer === null) throw new PreconditionFailed('fast reply consumer does not exist');
      message.replaceProperties({ ...message.properties, replyTo: this.replyConsumer.key });
    }
    const extraKeys = message.hasHeaders ? routingHeaders(message) : null;
    this.publishedTotal++;
    const stats = this.stats;
    stats.messagesReceived++;
    stats.messageSizes.observe(content.bodySize);
    const counters = this.exchangeCounters.for(exchange);
    counters.published++;
    if (this.tx !== null) {
      this.tx.publishes.push({ exchange, message, extraKeys, mandatory: m.mandatory });
      return;
    }
    const seq = this.confirms !== null ? this.confirms.next() : 0;
    const flags = vhost.publish(exchange, message, extraKeys, now);
    this.connection.gate.afterPublish((flags & PUBLISH_PENDING_COMMIT) !== 0);
    this.countRouting(flags, m.mandatory, counters);
    if ((flags & PUBLISH_ROUTED) === 0 && m.mandatory) this.basicReturn(message);
    if (this.confirms === null) return;
    stats.messagesReceivedConfirm++;
    if (flags & PUBLISH_REJECTED) this.confirms.nackNow(seq, counters, now);
    else if (flags & PUBLISH_PENDING_COMMIT) this.confirms.awaitCommit(seq, counters, now);
    else this.confirms.confirmNow(seq, counters, now);
    this.scheduleFlush();
  }

  /** Routed, returned (mandatory) or dropped: counted for the broker and for this channel. */
  private countRouting(flags: number, mandatory: boolean, counters: ChannelExchangeCounters): void {
    if ((flags & PUBLISH_ROUTED) !== 0) this.stats.messagesRouted++;
    else if (mandatory) {
      this.stats.unroutableReturned++;
      this.vhost.unroutableReturned++;
      counters.unroutableReturned++;
    } else {
      this.stats.unroutableDropped++;
      this.vhost.unroutableDropped++;
      counters.unroutableDropped++;
    }
  }

  private basicReturn(message: Message): void {
    this.out.writeMethodWithContent(
      this.id,
      { id: M.BASIC_RETURN, replyCode: 312, replyText: 'NO_ROUTE', exchange: message.exchange, routingKey: message.routingKey },
      message,
      this.connection.frameMax,
    );
  }

  // ---- confirms and tx ----------------------------------------------------------------------------

  private confirmSelect(nowait: boolean): void {
    if (this.tx !== null) throw new PreconditionFailed(`cannot switch from tx to confirm mode`);
    this.confirms ??= new ConfirmTracker(this, this.stats);
    if (!nowait) this.out.writeMethod(this.id, { id: M.CONFIRM_SELECT_OK });
  }

  // Confirms of a channel that is closing or closed are never sent: nothing may follow close-ok.
  sendAck(deliveryTag: number, multiple: boolean): void {
    if (!this.released) this.out.writeMethod(this.id, { id: M.BASIC_ACK, deliveryTag, multiple });
  }

  sendNack(deliveryTag: number, multiple: boolean): void {
    if (!this.released) this.out.writeMethod(this.id, { id: M.BASIC_NACK, deliveryTag, multiple, requeue: false });
  }

  /** Asks the dispatcher to call flush() before output goes out. */
  scheduleFlush(): void {
    this.connection.broker.dispatcher.markBeforeFlush(this);
  }

  /** Flushable: hands this turn's confirm batch to the store and writes coalesced acks. */
  flush(): void {
    const confirms = this.confirms;
    if (confirms === null || this.released) return;
    const batch = confirms.takeBatch();
    if (batch !== null) {
      this.connection.broker.persistence.afterCommit(
        new BatchWaiter(this, (ok) => (ok ? confirms.committed(batch) : confirms.failed(batch))),
      );
    }
    confirms.flush();
  }

  private txSelect(): void {
    if (this.confirms !== null) throw new PreconditionFailed(`cannot switch from confirm to tx mode`);
    this.tx ??= new TxState();
    this.out.writeMethod(this.id, { id: M.TX_SELECT_OK });
  }

  private txCommit(): void {
    const tx = this.tx;
    if (tx === null) throw new PreconditionFailed(`channel is not transactional`);
    this.tx = new TxState();
    const now = Date.now();
    let pendingCommit = false;
    for (const p of tx.publishes) {
      const flags = this.vhost.publish(p.exchange, p.message, p.extraKeys, now);
      this.countRouting(flags, p.mandatory, this.exchangeCounters.for(p.exchange));
      if ((flags & PUBLISH_ROUTED) === 0 && p.mandatory) this.basicReturn(p.message);
      if (flags & PUBLISH_PENDING_COMMIT) pendingCommit = true;
    }
    for (const a of tx.acks) {
      if (a.kind === 'ack') this.settle(a.deliveries);
      else this.reject(a.deliveries, a.requeue);
    }
    if (!pendingCommit) {
      this.out.writeMethod(this.id, { id: M.TX_COMMIT_OK });
      return;
    }
    // commit-ok only once the persistent messages are on disk.
    this.connection.broker.persistence.afterCommit(
      new BatchWaiter(this, (ok) => {
        if (this.released) return;
        if (ok) this.out.writeMethod(this.id, { id: M.TX_COMMIT_OK });
        else this.connection.closeWithError(new InternalError('the transaction could not be written to disk; see the broker log'));
      }),
    );
  }

  private txRollback(): void {
    const tx = this.tx;
    if (tx === null) throw new PreconditionFailed(`channel is not transactional`);
    this.tx = new TxState();
    // Acks made in the transaction are undone: those deliveries are unacked again.
    const restored: UnackedDelivery[] = [];
    for (const a of tx.acks) restored.push(...a.deliveries);
    this.unacked.restore(restored);
    this.out.writeMethod(this.id, { id: M.TX_ROLLBACK_OK });
  }
}

/** x-priority consume argument (an integer; default 0). */
function consumerPriority(args: FieldTable): number {
  const p = args['x-priority'];
  if (p === undefined) return 0;
  if (typeof p === 'number' && Number.isInteger(p)) return p;
  if (typeof p === 'bigint') return Number(p);
  throw new PreconditionFailed(`invalid x-priority argument: expected an integer`);
}

export type { Queue };
