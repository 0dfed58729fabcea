// One AMQP channel: the dispatch of its methods and its per-channel state (consumers, the unacked
// ledger, delivery tags, prefetch, confirm or tx mode). Each handler is a flat list of guards that
// throw typed errors, then the action. Errors raised here are caught once, by the connection: soft
// ones come back as closeWithError (channel.close), hard ones close the connection.
//
// The protocol-independent rules live in their own modules, called directly (nothing allocated per
// message for them): settling deliveries (broker/settlement.ts), transactions
// (broker/transaction.ts), direct reply-to (broker/direct-reply-to.ts), what a publish may carry
// (broker/publish-rules.ts), basic.get (broker/basic-get.ts), the consumer timeout
// (broker/consumer-timeout.ts), replies held behind durable writes (held-output.ts), confirm
// batches waiting for the store (confirm-batch-waiter.ts). CC/BCC routing keys: routingHeaders in
// broker/message.ts.

import type { Flushable } from '../broker/dispatch.js';
import type { Exchange } from '../broker/exchange/exchange.js';
import { Message, routingHeaders } from '../broker/message.js';
import { ConfirmTracker, type ConfirmSink } from '../broker/confirms.js';
import { Consumer, type ConsumerChannel } from '../broker/queue/consumers.js';
import type { QueueEntry } from '../broker/queue/entry.js';
import type { Queue } from '../broker/queue/queue.js';
import { UnackedDelivery, UnackedLedger } from '../broker/unacked.js';
import { PublishAccess, type Access } from '../broker/permissions.js';
import { checkConsume, rejectRefusal } from '../broker/queue/consume-rules.js';
import { redeliveryMessage } from '../broker/queue/quorum-queue.js';
import { getOkMessage, takeForGet } from '../broker/basic-get.js';
import { consumerTimeoutError, exceededConsumerTimeout } from '../broker/consumer-timeout.js';
import { DirectReplyTo } from '../broker/direct-reply-to.js';
import { checkMessageSize, checkPublishedProperties, messageTooLarge } from '../broker/publish-rules.js';
import {
  discardDeliveries,
  recoverDeliveries,
  requeueDeliveries,
  settleDelivery,
  takeDeliveries,
} from '../broker/settlement.js';
import { Transaction, TransactionCommitWaiter, type BufferedPublish, type TransactionSink } from '../broker/transaction.js';
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
import { CommandAssembler, type Content } from '../protocol/command-assembler.js';
import { readU32 } from '../protocol/bytes.js';
import { PublishDecoder } from '../protocol/publish-decoder.js';
import { routeMemoOf, type RouteMemo } from '../broker/exchange/route-memo.js';
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
import { ConfirmBatchWaiter } from './confirm-batch-waiter.js';
import type { Connection } from './connection.js';
import { HeldOutput, type FlushScheduler } from './held-output.js';
import type { Outbound } from './outbound.js';

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

export class Channel implements ConsumerChannel, ConfirmSink, Flushable, FlushScheduler, ReplyTarget, TransactionSink {
  /** true after the server sent channel.close, until close-ok */
  closing = false;
  private released = false;
  private readonly assembler: CommandAssembler;
  private readonly publishDecoder = new PublishDecoder();
  /** exchange + routing key bytes of the publish being assembled, from the wire (null: encode) */
  private pendingRouting: Buffer | null = null;
  /** the publish decoder's route memo for the publish being assembled (null: route without one) */
  private pendingRouteMemo: RouteMemo | null = null;
  readonly consumers = new Map<string, Consumer>();
  readonly unacked = new UnackedLedger();
  private deliveryTag = 0;
  /** basic.qos(global=false): limit given to consumers created afterwards */
  private consumerPrefetch = 0;
  /** basic.qos(global=true): limit shared by the channel */
  private channelPrefetch = 0;
  private flowActive = true;
  private confirms: ConfirmTracker | null = null;
  private tx: Transaction | null = null;
  /** for queue-name shortcuts: the queue most recently declared on this channel */
  private lastQueueName = '';
  /** direct reply-to: this channel's consumer of amq.rabbitmq.reply-to, if any */
  private readonly directReplyTo = new DirectReplyTo(this);
  /** counters for metrics (read at scrape time) */
  publishedTotal = 0;
  private readonly stats: BrokerStats;
  readonly exchangeCounters = new ChannelObjectCounters<Exchange, ChannelExchangeCounters>((e) => new ChannelExchangeCounters(e));
  readonly queueCounters = new ChannelObjectCounters<Queue, ChannelQueueCounters>(
    (q) => new ChannelQueueCounters(q, this.stats.forQueueType(q.type)),
  );
  /** output held back until durable writes behind a reply are committed */
  private readonly heldOutput: HeldOutput;
  /** cached publish permission decisions (no regular expression per message) */
  private publishAccess: PublishAccess | null = null;
  /** the exchange exchangeNamed() found last */
  private lastExchange: Exchange | undefined = undefined;

  constructor(
    readonly connection: Connection,
    readonly id: number,
  ) {
    this.assembler = new CommandAssembler(connection.bodyAllowance);
    const broker = connection.broker;
    this.stats = broker.stats;
    this.stats.channelsOpened++;
    this.heldOutput = new HeldOutput(connection.outbound, broker.persistence, broker.dispatcher, this);
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
    return this.tx?.messageCount ?? 0;
  }

  get uncommittedAcks(): number {
    return this.tx?.settlementCount ?? 0;
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
      uncommittedMessages: this.tx?.messageCount ?? 0,
      uncommittedAcks: this.tx?.deliveryCount ?? 0,
      flowActive: this.flowActive,
    };
  }

  private get vhost(): VHost {
    return this.connection.vhost!;
  }

  /** Where this channel writes: the connection's output, or a held one while a commit is pending. */
  private get out(): Outbound {
    return this.heldOutput.out;
  }

  /** Writes a synchronous reply, held until commit when the method wrote durable state. */
  private reply(method: M.Method): void {
    this.heldOutput.replyOutput().writeMethod(this.id, method);
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
      this.pendingRouteMemo = null;
      return;
    }
    this.heldOutput.methodStarted();
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
    this.pendingRouteMemo = routeMemoOf(this.publishDecoder.names!);
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
    const d = this.unacked.take(readU32(buf, start) * 4294967296 + readU32(buf, start + 4));
    if (d === undefined) return false;
    settleDelivery(d, this.queueCounters.for(d.entry.queue), this.vhost);
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
    if (announced > maxSize) throw messageTooLarge(announced, maxSize).at(M.BASIC_PUBLISH);
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
        recoverDeliveries(this.unacked, m.requeue);
        return;
      case M.BASIC_RECOVER:
        recoverDeliveries(this.unacked, m.requeue);
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
    if (this.tx !== null) this.tx.rollback(this.unacked);
    this.tx = null;
    this.requeueAll(this.unacked.takeAll());
    for (const consumer of this.consumers.values()) this.detachConsumer(consumer);
    this.consumers.clear();
    this.directReplyTo.cancel();
  }

  /** Direct reply-to: consuming from the pseudo-queue registers this channel for replies. */
  private consumeReplies(m: M.BasicConsume): void {
    const tag = this.directReplyTo.consume(this.vhost, m.consumerTag, m.noAck);
    if (!m.noWait) this.out.writeMethod(this.id, { id: M.BASIC_CONSUME_OK, consumerTag: tag });
  }

  /** ReplyTarget: a reply published to our reply-to name goes straight to the client. */
  deliverReply(message: Message): void {
    if (this.released || !this.directReplyTo.active) return;
    const tag = ++this.deliveryTag;
    this.out.writeDelivery(this.id, this.directReplyTo.tagBytes, tag, false, message, this.connection.frameMax);
  }

  private requeueAll(deliveries: UnackedDelivery[]): void {
    if (deliveries.length === 0) return;
    requeueDeliveries(deliveries, Date.now());
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
    if (this.directReplyTo.isConsumer(m.consumerTag)) this.directReplyTo.cancel();
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
    const entry = takeForGet(queue, m.noAck, this.queueCounters.for(queue), Date.now());
    if (entry === undefined) {
      this.out.writeMethod(this.id, { id: M.BASIC_GET_EMPTY, reserved1: '' });
      return;
    }
    const tag = ++this.deliveryTag;
    if (!m.noAck) this.unacked.add(this.unackedDelivery(tag, entry, null));
    const message = getOkMessage(queue, entry);
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
    // Held for long, its bytes get their own copy (memory.ts) instead of pinning a socket chunk.
    if (!this.unacked.unpinQueued && !entry.message.compacted) this.connection.broker.memory.notePinnedDeliveries(this.unacked);
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
    const timeoutMs = exceededConsumerTimeout(oldest, nowMs, this.connection.broker.resources.consumerTimeoutMs);
    if (timeoutMs === 0) return;
    this.connection.log.warn(
      { channel: this.id, consumerTag: oldest.consumer?.tag ?? null, queue: oldest.entry.queue.name, timeoutMs },
      'consumer timed out waiting for a delivery acknowledgement; closing its channel',
    );
    this.closeWithError(consumerTimeoutError(this.id, timeoutMs));
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

  private basicAck(deliveryTag: number, multiple: boolean): void {
    const deliveries = takeDeliveries(this.unacked, deliveryTag, multiple);
    if (this.tx !== null) {
      this.tx.ack(deliveries);
      return;
    }
    this.settle(deliveries);
  }

  /** Acknowledged deliveries leave their queues (TransactionSink: also at tx.commit). */
  settle(deliveries: UnackedDelivery[]): void {
    const vhost = this.vhost;
    for (let i = 0; i < deliveries.length; i++) {
      const d = deliveries[i]!;
      settleDelivery(d, this.queueCounters.for(d.entry.queue), vhost);
    }
    if (this.channelPrefetch !== 0) this.wakeConsumers();
  }

  private basicReject(deliveryTag: number, multiple: boolean, requeue: boolean): void {
    const deliveries = takeDeliveries(this.unacked, deliveryTag, multiple);
    const refusal = rejectRefusal(deliveries);
    if (refusal !== null) {
      // Nothing is rejected: the deliveries stay unacked (and are requeued as the connection closes).
      this.unacked.restore(deliveries);
      throw refusal;
    }
    if (this.tx !== null) {
      this.tx.reject(deliveries, requeue);
      return;
    }
    this.reject(deliveries, requeue);
  }

  /** Rejected deliveries are requeued, or dead-lettered / dropped (TransactionSink: also at tx.commit). */
  reject(deliveries: UnackedDelivery[], requeue: boolean): void {
    if (requeue) {
      this.requeueAll(deliveries);
      return;
    }
    discardDeliveries(deliveries);
    this.wakeConsumers();
  }

  // ---- basic: publishing --------------------------------------------------------------------------

  /**
   * vhost.exchanges.get(name), remembering the last answer: a publisher sends to one exchange
   * message after message, and this saves a string-keyed lookup per message. A deleted exchange is
   * never answered from memory (the vhost marks it deleted as it takes it out of its table, and
   * only start-up recovery puts exchanges in without a declare), so a name deleted and declared
   * again finds the new exchange.
   */
  private exchangeNamed(vhost: VHost, name: string): Exchange | undefined {
    const last = this.lastExchange;
    if (last !== undefined && last.name === name && !last.deleted) return last;
    const exchange = vhost.exchanges.get(name);
    this.lastExchange = exchange;
    return exchange;
  }

  private basicPublish(m: M.BasicPublish, content: Content): void {
    if (m.immediate) throw new NotImplemented(`immediate=true`);
    const vhost = this.vhost;
    const exchange = this.exchangeNamed(vhost, m.exchange);
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
    checkMessageSize(content.bodySize, this.connection.broker.config.maxMessageSizeBytes);
    const now = this.connection.inputAt; // when the read holding this message arrived
    const message = new Message(m.exchange, m.routingKey, content.rawProperties, content.body, now, this.pendingRouting);
    checkPublishedProperties(message, this.connection.userName, this.connection.user?.tags);
    this.directReplyTo.rewriteReplyTo(message);
    const extraKeys = message.hasHeaders ? routingHeaders(message) : null;
    this.publishedTotal++;
    const stats = this.stats;
    stats.messagesReceived++;
    stats.messageSizes.observe(content.bodySize);
    const counters = this.exchangeCounters.for(exchange);
    counters.published++;
    if (this.tx !== null) {
      this.tx.publish({ exchange, message, extraKeys, mandatory: m.mandatory });
      return;
    }
    const seq = this.confirms !== null ? this.confirms.next() : 0;
    const flags = vhost.publish(exchange, message, extraKeys, now, this.pendingRouteMemo);
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
    if (batch !== null) this.connection.broker.persistence.afterCommit(new ConfirmBatchWaiter(confirms, batch, this));
    confirms.flush();
  }

  private txSelect(): void {
    if (this.confirms !== null) throw new PreconditionFailed(`cannot switch from confirm to tx mode`);
    this.tx ??= new Transaction();
    this.out.writeMethod(this.id, { id: M.TX_SELECT_OK });
  }

  private txCommit(): void {
    const tx = this.tx;
    if (tx === null) throw new PreconditionFailed(`channel is not transactional`);
    if (!tx.commit(this, Date.now())) {
      this.out.writeMethod(this.id, { id: M.TX_COMMIT_OK });
      return;
    }
    // commit-ok only once the persistent messages are on disk.
    this.connection.broker.persistence.afterCommit(new TransactionCommitWaiter(this));
  }

  /** TransactionSink: routes a publish buffered by the transaction; true when it waits for the store. */
  publishBuffered(p: BufferedPublish, nowMs: number): boolean {
    const flags = this.vhost.publish(p.exchange, p.message, p.extraKeys, nowMs);
    this.countRouting(flags, p.mandatory, this.exchangeCounters.for(p.exchange));
    if ((flags & PUBLISH_ROUTED) === 0 && p.mandatory) this.basicReturn(p.message);
    return (flags & PUBLISH_PENDING_COMMIT) !== 0;
  }

  /** TransactionSink: the store wrote (or failed to write) a commit's persistent messages. */
  transactionWritten(ok: boolean): void {
    if (!this.released) {
      if (ok) this.out.writeMethod(this.id, { id: M.TX_COMMIT_OK });
      else this.connection.closeWithError(new InternalError('the transaction could not be written to disk; see the broker log'));
    }
    this.scheduleFlush();
  }

  private txRollback(): void {
    const tx = this.tx;
    if (tx === null) throw new PreconditionFailed(`channel is not transactional`);
    // Acks made in the transaction are undone: those deliveries are unacked again.
    tx.rollback(this.unacked);
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
