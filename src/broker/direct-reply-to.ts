// Direct reply-to (RabbitMQ's amq.rabbitmq.reply-to): RPC replies without a reply queue. A
// channel consuming from the pseudo-queue gets a private reply-to name; a publish on that channel
// with reply_to 'amq.rabbitmq.reply-to' has it rewritten to that name; a reply published to the
// default exchange with that name as routing key goes straight to the channel (vhost.publish →
// ReplyTarget.deliverReply), never through a queue. One per channel; the rules and RabbitMQ's
// texts live here, the channel writes the frames.

import { PreconditionFailed } from '../protocol/errors.js';
import { encodeShortStr } from '../protocol/frame-writer.js';
import type { Message } from './message.js';
import { REPLY_TO_QUEUE, generateName, type ReplyTarget, type VHost } from './vhost.js';

export class DirectReplyTo {
  /** the consumer tag of the reply consumer ('' when there is none) */
  private tag = '';
  /** the tag as basic.deliver carries it, encoded once */
  private tagEncoded: Buffer | null = null;
  /** the private name replies are published to */
  private key = '';
  private vhost: VHost | null = null;

  constructor(private readonly target: ReplyTarget) {}

  get active(): boolean {
    return this.vhost !== null;
  }

  /** the reply consumer's tag encoded for basic.deliver; only while active */
  get tagBytes(): Buffer {
    return this.tagEncoded!;
  }

  /** basic.consume from amq.rabbitmq.reply-to: registers the channel for replies; returns the tag. */
  consume(vhost: VHost, consumerTag: string, noAck: boolean): string {
    if (!noAck) throw new PreconditionFailed('reply consumer cannot acknowledge');
    if (this.vhost !== null) throw new PreconditionFailed('reply consumer already set');
    this.tag = consumerTag === '' ? generateName('amq.ctag-') : consumerTag;
    this.tagEncoded = encodeShortStr(this.tag);
    this.key = generateName(`${REPLY_TO_QUEUE}.`);
    this.vhost = vhost;
    vhost.replyTargets.set(this.key, this.target);
    return this.tag;
  }

  /** basic.cancel of the reply consumer, or the channel closing. */
  cancel(): void {
    if (this.vhost === null) return;
    this.vhost.replyTargets.delete(this.key);
    this.vhost = null;
    this.tagEncoded = null;
  }

  isConsumer(consumerTag: string): boolean {
    return this.vhost !== null && this.tag === consumerTag;
  }

  /** A publish asking for replies on this channel: reply_to becomes its private name (406 without a reply consumer). */
  rewriteReplyTo(message: Message): void {
    if (message.replyTo !== REPLY_TO_QUEUE) return;
    if (this.vhost === null) throw new PreconditionFailed('fast reply consumer does not exist');
    message.replaceProperties({ ...message.properties, replyTo: this.key });
  }
}
