// Errors a management request can end with, as RabbitMQ's HTTP API reports them: a status code and
// a JSON body {"error": …, "reason": …}. Route handlers throw these; the server's one catch writes
// them. AMQP errors thrown by the broker model are translated here too, so a declare refused by the
// model reads the same over HTTP as it does on RabbitMQ.

import {
  AccessRefused,
  AmqpException,
  NotFound,
  PreconditionFailed,
  ResourceLocked,
  CommandInvalid,
} from '../protocol/errors.js';
import type { AdminError } from '../broker/admin.js';

/** The JSON value of "reason": RabbitMQ sometimes sends a list (e.g. ["not_boolean","yes"]). */
export type Reason = string | unknown[];

export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly error: string,
    readonly reason: Reason,
    /** extra response headers (WWW-Authenticate on 401) */
    readonly headers: Record<string, string> = {},
  ) {
    super(typeof reason === 'string' ? reason : JSON.stringify(reason));
  }
}

export const notFound = (): HttpError => new HttpError(404, 'Object Not Found', 'Not Found');
export const badRequest = (reason: Reason): HttpError => new HttpError(400, 'bad_request', reason);
export const notAuthorised = (reason: string): HttpError => new HttpError(401, 'not_authorised', reason);
export const methodNotAllowed = (): HttpError => new HttpError(405, '', '');

/**
 * An error thrown by the broker model while serving a request, as RabbitMQ's API reports it:
 * precondition and validation failures are 400 bad_request with the AMQP text (without the
 * "NAME - " prefix), access refusals 401 "Access refused.", a missing object an action needed
 * 404 not_found with the text. (A missing object named by the path itself is notFound().)
 */
export function fromAmqp(err: AmqpException): HttpError {
  if (err instanceof NotFound) return new HttpError(404, 'not_found', err.detail);
  if (err instanceof AccessRefused) return notAuthorised('Access refused.');
  if (err instanceof PreconditionFailed || err instanceof ResourceLocked || err instanceof CommandInvalid) {
    return badRequest(err.detail);
  }
  return badRequest(err.detail);
}

/** The admin façade's errors: bad_request → 400 with its reason; not_found → RabbitMQ's plain 404. */
export function fromAdmin(err: AdminError): HttpError {
  if (err.kind === 'not_found') return notFound();
  return badRequest(err.reason);
}
