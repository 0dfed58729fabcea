// What a published message may carry, checked before it is routed, with RabbitMQ's codes and
// texts: a body within --max-message-size (checked as soon as the content header announces it, and
// again for the assembled body), a user_id property equal to the authenticated user unless the user
// is tagged impersonator, an expiration property that parses. A refused publish changes nothing.

import { PreconditionFailed } from '../protocol/errors.js';
import { parseExpirationProperty } from './expiration.js';
import type { Message } from './message.js';

/** RabbitMQ's 406 for a body larger than --max-message-size. */
export function messageTooLarge(sizeBytes: number, maxSizeBytes: number): PreconditionFailed {
  return new PreconditionFailed(`message size ${sizeBytes} is larger than configured max size ${maxSizeBytes}`);
}

/** 406 when a body is larger than --max-message-size. */
export function checkMessageSize(sizeBytes: number, maxSizeBytes: number): void {
  if (sizeBytes > maxSizeBytes) throw messageTooLarge(sizeBytes, maxSizeBytes);
}

/** 406 for a user_id the publisher may not claim or an expiration that does not parse. */
export function checkPublishedProperties(message: Message, userName: string, userTags: readonly string[] | undefined): void {
  // As RabbitMQ: users tagged impersonator may publish with another user_id.
  if (message.userId !== undefined && message.userId !== userName && !userTags?.includes('impersonator')) {
    throw new PreconditionFailed(`user_id property set to '${message.userId}' but authenticated user was '${userName}'`);
  }
  if (message.expiration !== undefined) {
    const parsed = parseExpirationProperty(message.expiration);
    if (!parsed.ok) throw new PreconditionFailed(`invalid expiration '${message.expiration}': ${parsed.reason}`);
  }
}
