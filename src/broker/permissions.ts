// Who may do what to which resource. RabbitMQ's model: per user and vhost, three regular
// expressions (configure, write, read) matched against exchange and queue names. Channels ask here
// before every operation (the single check point); until users and permissions can be managed,
// every authenticated user has full access to every vhost, as the default user has on RabbitMQ.

import { AccessRefused } from '../protocol/errors.js';

export type Access = 'configure' | 'write' | 'read';

export interface PermissionRules {
  configure: RegExp;
  write: RegExp;
  read: RegExp;
}

const FULL_ACCESS: PermissionRules = { configure: /^.*$/, write: /^.*$/, read: /^.*$/ };

export class Permissions {
  /** rules by user, then vhost; absent = full access (until permissions are managed) */
  private readonly rules = new Map<string, Map<string, PermissionRules>>();

  set(user: string, vhost: string, rules: PermissionRules): void {
    let byVhost = this.rules.get(user);
    if (byVhost === undefined) this.rules.set(user, (byVhost = new Map()));
    byVhost.set(vhost, rules);
  }

  /** Throws 403 ACCESS_REFUSED with RabbitMQ's text when the user may not. */
  check(user: string, vhost: string, access: Access, kind: 'exchange' | 'queue', name: string): void {
    const byVhost = this.rules.get(user);
    if (byVhost === undefined) return;
    const rules = byVhost.get(vhost) ?? FULL_ACCESS;
    if (rules[access].test(name)) return;
    throw new AccessRefused(`access to ${kind} '${name}' in vhost '${vhost}' refused for user '${user}'`);
  }
}
