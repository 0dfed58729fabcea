// HTTP basic authentication against the broker's users, and RabbitMQ's tag-based authorisation:
//   management    may use the API, sees the vhosts it has permissions in and its own connections
//   policymaker   + policies and parameters in those vhosts
//   monitoring    + every connection and channel, nodes, all vhosts (read)
//   administrator everything
// Texts and status codes as RabbitMQ's management plugin ("Login failed", "Not management user" …).

import type { IncomingMessage } from 'node:http';
import type { User } from '../broker/users.js';
import { HttpError, badRequest, notAuthorised } from './http-error.js';

/** What RabbitMQ answers when policies or parameters are refused (tag or vhost). */
export const OBJECT_REFUSED = 'User not authorised to access object';

export type Requirement = 'management' | 'policymaker' | 'monitoring' | 'administrator';

export const REALM_HEADER = { 'www-authenticate': 'Basic realm="RabbitMQ Management"' };

/** The signed-in user of a request and what its tags allow. */
export class Caller {
  readonly isAdministrator: boolean;
  readonly isMonitor: boolean;
  readonly isPolicymaker: boolean;
  readonly isManagement: boolean;

  constructor(readonly user: User) {
    const tags = new Set(user.tags);
    this.isAdministrator = tags.has('administrator');
    this.isMonitor = this.isAdministrator || tags.has('monitoring');
    this.isPolicymaker = this.isAdministrator || tags.has('policymaker');
    this.isManagement = this.isMonitor || this.isPolicymaker || tags.has('management');
  }

  get name(): string {
    return this.user.name;
  }

  /** Throws RabbitMQ's 401 unless the user's tags meet the requirement. */
  require(requirement: Requirement): void {
    if (!this.isManagement) throw notAuthorised('Not management user');
    switch (requirement) {
      case 'management':
        return;
      case 'policymaker':
        // RabbitMQ's text for policies and parameters (not "Not policymaker user").
        if (!this.isPolicymaker) throw notAuthorised(OBJECT_REFUSED);
        return;
      case 'monitoring':
        if (!this.isMonitor) throw notAuthorised('Not monitor user');
        return;
      case 'administrator':
        if (!this.isAdministrator) throw notAuthorised('Not administrator user');
        return;
    }
  }
}

export interface Credentials {
  username: string;
  password: string;
}

/**
 * Reads the Authorization header. No header, or another scheme: 401 with an empty body (RabbitMQ's
 * answer that makes a browser ask); a Basic header that does not decode: 400.
 */
export function readCredentials(req: IncomingMessage): Credentials {
  const header = req.headers.authorization;
  if (header === undefined) throw new HttpError(401, '', '', REALM_HEADER);
  const space = header.indexOf(' ');
  const scheme = space < 0 ? header : header.slice(0, space);
  if (scheme.toLowerCase() !== 'basic') throw loginFailed();
  const encoded = header.slice(space + 1).trim();
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(encoded)) throw badRequest('malformed Authorization header');
  const decoded = Buffer.from(encoded, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) throw badRequest('malformed Authorization header');
  return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

/** RabbitMQ spells this one "not_authorized" (with a z), unlike its other 401s. */
export function loginFailed(): HttpError {
  return new HttpError(401, 'not_authorized', 'Login failed', REALM_HEADER);
}

/** Loopback-only users (guest by default) may sign in to the API only from loopback, as on RabbitMQ. */
export function isLoopback(address: string | undefined): boolean {
  if (address === undefined) return false;
  return address === '::1' || address.startsWith('127.') || address.startsWith('::ffff:127.');
}
