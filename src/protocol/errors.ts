// Typed AMQP exceptions. Deep code throws one of these; exactly one catch per layer turns it into
// a channel.close (soft errors) or a connection.close (hard errors), as the spec's reply-code table
// classifies them. The reply text follows RabbitMQ's style: "NOT_FOUND - no queue 'x' in vhost '/'".

export abstract class AmqpException extends Error {
  abstract readonly replyCode: number;
  abstract readonly replyName: string;
  /** class and method being processed when the error happened; filled by the catching layer if 0. */
  classId = 0;
  methodId = 0;

  constructor(readonly detail: string) {
    super(detail);
  }

  /** The reply-text as sent on the wire, at most 255 bytes. */
  get replyText(): string {
    const text = `${this.replyName} - ${this.detail}`;
    if (Buffer.byteLength(text) <= 255) return text;
    const buf = Buffer.from(text).subarray(0, 255);
    // Do not cut a UTF-8 sequence in half.
    let end = 255;
    while (end > 0 && (buf[end - 1]! & 0xc0) === 0x80) end--;
    if (end > 0 && buf[end - 1]! >= 0xc0) end--;
    return buf.toString('utf8', 0, end);
  }

  /** Records the method that caused the error (class-id << 16 | method-id), unless already set. */
  at(methodKey: number): this {
    if (this.classId === 0 && this.methodId === 0) {
      this.classId = methodKey >>> 16;
      this.methodId = methodKey & 0xffff;
    }
    return this;
  }
}

/** Soft errors: the channel is closed, the connection lives. */
export abstract class ChannelException extends AmqpException {
  readonly hard = false;
}

/** Hard errors: the whole connection is closed. */
export abstract class ConnectionException extends AmqpException {
  readonly hard = true;
}

export class ContentTooLarge extends ChannelException {
  readonly replyCode = 311;
  readonly replyName = 'CONTENT_TOO_LARGE';
}
export class NoConsumers extends ChannelException {
  readonly replyCode = 313;
  readonly replyName = 'NO_CONSUMERS';
}
export class AccessRefused extends ChannelException {
  readonly replyCode = 403;
  readonly replyName = 'ACCESS_REFUSED';
}
export class NotFound extends ChannelException {
  readonly replyCode = 404;
  readonly replyName = 'NOT_FOUND';
}
export class ResourceLocked extends ChannelException {
  readonly replyCode = 405;
  readonly replyName = 'RESOURCE_LOCKED';
}
export class PreconditionFailed extends ChannelException {
  readonly replyCode = 406;
  readonly replyName = 'PRECONDITION_FAILED';
}

export class ConnectionForced extends ConnectionException {
  readonly replyCode = 320;
  readonly replyName = 'CONNECTION_FORCED';
}
export class InvalidPath extends ConnectionException {
  readonly replyCode = 402;
  readonly replyName = 'INVALID_PATH';
}
/** 403 during the handshake is a connection-level refusal (bad credentials, no vhost access). */
export class ConnectionAccessRefused extends ConnectionException {
  readonly replyCode = 403;
  readonly replyName = 'ACCESS_REFUSED';
}
export class FrameError extends ConnectionException {
  readonly replyCode = 501;
  readonly replyName = 'FRAME_ERROR';
}
export class AmqpSyntaxError extends ConnectionException {
  readonly replyCode = 502;
  readonly replyName = 'SYNTAX_ERROR';
}
export class CommandInvalid extends ConnectionException {
  readonly replyCode = 503;
  readonly replyName = 'COMMAND_INVALID';
}
export class ChannelError extends ConnectionException {
  readonly replyCode = 504;
  readonly replyName = 'CHANNEL_ERROR';
}
export class UnexpectedFrame extends ConnectionException {
  readonly replyCode = 505;
  readonly replyName = 'UNEXPECTED_FRAME';
}
export class ResourceError extends ConnectionException {
  readonly replyCode = 506;
  readonly replyName = 'RESOURCE_ERROR';
}
export class NotAllowed extends ConnectionException {
  readonly replyCode = 530;
  readonly replyName = 'NOT_ALLOWED';
}
export class NotImplemented extends ConnectionException {
  readonly replyCode = 540;
  readonly replyName = 'NOT_IMPLEMENTED';
}
export class InternalError extends ConnectionException {
  readonly replyCode = 541;
  readonly replyName = 'INTERNAL_ERROR';
}
