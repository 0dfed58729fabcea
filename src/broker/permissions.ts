// Who may do what to which resource, as RabbitMQ's internal auth backend decides it:
//  - per user and vhost, three regular expressions (configure, write, read) matched against
//    exchange and queue names; having an entry at all is what lets a user open the vhost;
//  - per user, vhost and exchange, topic permissions: write/read expressions matched against the
//    routing keys of topic exchanges (publish = write, bind/unbind = read), with `{username}` and
//    `{vhost}` expanded first. No topic entry for an exchange means no topic restriction.
// An empty expression matches nothing (RabbitMQ reads '' as '^$'). Expressions are compiled once,
// when set; `version` moves on every change so that channels can cache their decisions (see
// PublishAccess) and never run a regular expression per message.

import { AccessRefused } from '../protocol/errors.js';

export type Access = 'configure' | 'write' | 'read';

/** Permission expressions as given (strings, as RabbitMQ stores and exports them). */
export interface PermissionSpec {
  configure: string;
  write: string;
  read: string;
}

export interface TopicPermissionSpec {
  exchange: string;
  write: string;
  read: string;
}

/** Rules as regular expressions (the older in-process API; strings are preferred). */
export interface PermissionRules {
  configure: RegExp | string;
  write: RegExp | string;
  read: RegExp | string;
}

export class PermissionPatternError extends Error {}

/** Compiles one permission expression; '' matches nothing, as on RabbitMQ. */
export function compilePattern(source: string): RegExp {
  try {
    return new RegExp(source === '' ? '^$' : source);
  } catch (err) {
    throw new PermissionPatternError(`'${source}' is not a valid regular expression: ${(err as Error).message}`);
  }
}

function sourceOf(rule: RegExp | string): string {
  return typeof rule === 'string' ? rule : rule.source;
}

interface CompiledPermission {
  readonly spec: PermissionSpec;
  readonly configure: RegExp;
  readonly write: RegExp;
  readonly read: RegExp;
}

interface CompiledTopicPermission {
  readonly spec: TopicPermissionSpec;
  readonly write: RegExp;
  readonly read: RegExp;
}

/** RabbitMQ's variable expansion in topic permissions: {username} and {vhost}, not escaped. */
function expandTopicVariables(pattern: string, user: string, vhost: string): string {
  return pattern.split('{username}').join(user).split('{vhost}').join(vhost);
}

export class Permissions {
  /** moves on every change; cached decisions made under another version are stale */
  version = 0;
  /** user → vhost → rules */
  private readonly byUser = new Map<string, Map<string, CompiledPermission>>();
  /** user → vhost → exchange → topic rules */
  private readonly topicByUser = new Map<string, Map<string, Map<string, CompiledTopicPermission>>>();

  // ---- Changes ------------------------------------------------------------------------------------

  /** Sets (replaces) a user's permissions in a vhost. Throws PermissionPatternError on a bad expression. */
  set(user: string, vhost: string, rules: PermissionRules | PermissionSpec): void {
    const spec: PermissionSpec = {
      configure: sourceOf(rules.configure),
      write: sourceOf(rules.write),
      read: sourceOf(rules.read),
    };
    const compiled: CompiledPermission = {
      spec,
      configure: compilePattern(spec.configure),
      write: compilePattern(spec.write),
      read: compilePattern(spec.read),
    };
    let byVhost = this.byUser.get(user);
    if (byVhost === undefined) this.byUser.set(user, (byVhost = new Map()));
    byVhost.set(vhost, compiled);
    this.version++;
  }

  clear(user: string, vhost: string): boolean {
    const byVhost = this.byUser.get(user);
    if (byVhost === undefined || !byVhost.delete(vhost)) return false;
    if (byVhost.size === 0) this.byUser.delete(user);
    this.version++;
    return true;
  }

  /** Sets a topic permission; the expressions are compiled with the variables expanded. */
  setTopic(user: string, vhost: string, spec: TopicPermissionSpec): void {
    const compiled: CompiledTopicPermission = {
      spec: { ...spec },
      write: compilePattern(expandTopicVariables(spec.write, user, vhost)),
      read: compilePattern(expandTopicVariables(spec.read, user, vhost)),
    };
    let byVhost = this.topicByUser.get(user);
    if (byVhost === undefined) this.topicByUser.set(user, (byVhost = new Map()));
    let byExchange = byVhost.get(vhost);
    if (byExchange === undefined) byVhost.set(vhost, (byExchange = new Map()));
    byExchange.set(spec.exchange, compiled);
    this.version++;
  }

  /** Clears one exchange's topic permission, or all of the user's in the vhost (exchange undefined). */
  clearTopic(user: string, vhost: string, exchange?: string): boolean {
    const byVhost = this.topicByUser.get(user);
    const byExchange = byVhost?.get(vhost);
    if (byVhost === undefined || byExchange === undefined) return false;
    let removed: boolean;
    if (exchange === undefined) {
      removed = byExchange.size > 0;
      byExchange.clear();
    } else removed = byExchange.delete(exchange);
    if (byExchange.size === 0) byVhost.delete(vhost);
    if (byVhost.size === 0) this.topicByUser.delete(user);
    if (removed) this.version++;
    return removed;
  }

  /** Forgets everything about a user (the user was deleted). */
  removeUser(user: string): void {
    if (this.byUser.delete(user) || this.topicByUser.delete(user)) this.version++;
    this.topicByUser.delete(user);
  }

  /** Forgets everything about a vhost (the vhost was deleted). */
  removeVhost(vhost: string): void {
    for (const [user, byVhost] of this.byUser) {
      if (byVhost.delete(vhost) && byVhost.size === 0) this.byUser.delete(user);
    }
    for (const [user, byVhost] of this.topicByUser) {
      if (byVhost.delete(vhost) && byVhost.size === 0) this.topicByUser.delete(user);
    }
    this.version++;
  }

  // ---- Reads --------------------------------------------------------------------------------------

  get(user: string, vhost: string): PermissionSpec | undefined {
    return this.byUser.get(user)?.get(vhost)?.spec;
  }

  /** Every permission entry, optionally only a user's or a vhost's. */
  list(filter: { user?: string; vhost?: string } = {}): { user: string; vhost: string; spec: PermissionSpec }[] {
    const out: { user: string; vhost: string; spec: PermissionSpec }[] = [];
    for (const [user, byVhost] of this.byUser) {
      if (filter.user !== undefined && filter.user !== user) continue;
      for (const [vhost, p] of byVhost) {
        if (filter.vhost !== undefined && filter.vhost !== vhost) continue;
        out.push({ user, vhost, spec: p.spec });
      }
    }
    return out;
  }

  listTopic(filter: { user?: string; vhost?: string } = {}): { user: string; vhost: string; spec: TopicPermissionSpec }[] {
    const out: { user: string; vhost: string; spec: TopicPermissionSpec }[] = [];
    for (const [user, byVhost] of this.topicByUser) {
      if (filter.user !== undefined && filter.user !== user) continue;
      for (const [vhost, byExchange] of byVhost) {
        if (filter.vhost !== undefined && filter.vhost !== vhost) continue;
        for (const t of byExchange.values()) out.push({ user, vhost, spec: t.spec });
      }
    }
    return out;
  }

  // ---- Checks -------------------------------------------------------------------------------------

  /** Whether the user may open the vhost at all (has a permission entry there). */
  mayAccessVhost(user: string, vhost: string): boolean {
    return this.byUser.get(user)?.has(vhost) === true;
  }

  /** Throws 403 ACCESS_REFUSED with RabbitMQ's text when the user may not. */
  check(user: string, vhost: string, access: Access, kind: 'exchange' | 'queue', name: string): void {
    // As RabbitMQ: the default exchange is checked (and named) as amq.default.
    if (kind === 'exchange' && name === '') name = 'amq.default';
    const rules = this.byUser.get(user)?.get(vhost);
    if (rules !== undefined && rules[access].test(name)) return;
    throw new AccessRefused(`access to ${kind} '${name}' in vhost '${vhost}' refused for user '${user}'`);
  }

  /** Whether any topic permission applies to this user, vhost and exchange (cheap: map lookups). */
  topicRules(user: string, vhost: string, exchange: string): CompiledTopicPermission | undefined {
    return this.topicByUser.get(user)?.get(vhost)?.get(exchange);
  }

  /** Topic permission check on a topic exchange's routing key; 403 with RabbitMQ's text. */
  checkTopic(user: string, vhost: string, access: 'write' | 'read', exchange: string, routingKey: string): void {
    const rules = this.topicRules(user, vhost, exchange);
    if (rules === undefined || rules[access].test(routingKey)) return;
    throw topicRefused(user, vhost, exchange, routingKey);
  }
}

function topicRefused(user: string, vhost: string, exchange: string, routingKey: string): AccessRefused {
  return new AccessRefused(`access to topic '${routingKey}' in exchange '${exchange}' in vhost '${vhost}' refused for user '${user}'`);
}

/** Routing keys remembered per channel and exchange before the cache starts over (a bound). */
export const TOPIC_CACHE_LIMIT = 256;

/**
 * A channel's publish-side permission decisions, so that the hot path does a pointer compare
 * instead of a regular expression: the last exchange found writable (under the current
 * permissions version), and for topic exchanges with topic permissions, the routing keys already
 * allowed (bounded).
 */
export class PublishAccess {
  private exchange: object | null = null;
  private version = -1;
  private topicRules: CompiledTopicPermission | undefined = undefined;
  private readonly allowedKeys = new Set<string>();

  constructor(
    private readonly permissions: Permissions,
    private readonly user: string,
    private readonly vhost: string,
  ) {}

  /** Throws 403 unless the user may write to (publish to) this exchange. */
  checkExchange(exchange: { readonly name: string; readonly type: string }): void {
    const perms = this.permissions;
    if (exchange === this.exchange && perms.version === this.version) return;
    perms.check(this.user, this.vhost, 'write', 'exchange', exchange.name);
    this.exchange = exchange;
    this.version = perms.version;
    this.topicRules = exchange.type === 'topic' ? perms.topicRules(this.user, this.vhost, exchange.name) : undefined;
    this.allowedKeys.clear();
  }

  /** Throws 403 unless the topic permissions let this routing key through (after checkExchange). */
  checkRoutingKey(exchange: { readonly name: string }, routingKey: string): void {
    const rules = this.topicRules;
    if (rules === undefined || this.allowedKeys.has(routingKey)) return;
    if (!rules.write.test(routingKey)) throw topicRefused(this.user, this.vhost, exchange.name, routingKey);
    if (this.allowedKeys.size >= TOPIC_CACHE_LIMIT) this.allowedKeys.clear();
    this.allowedKeys.add(routingKey);
  }

  /** Routing keys currently remembered (never more than TOPIC_CACHE_LIMIT). */
  get cachedKeyCount(): number {
    return this.allowedKeys.size;
  }
}
