// The admin façade: every administrative change to the broker goes through here — users, vhosts,
// permissions, topic permissions, policies, operator policies, vhost limits, runtime and global
// parameters, declaring/deleting queues, exchanges and bindings, purging, and definitions
// export/import. The HTTP API, warrenctl (through the API), start-up (--load-definitions) and later
// the replication applier call these; none of them writes to the store or mutates the model alone.
// (AMQP channel handlers keep calling the vhost directly: same rules, same store.)
//
// Each change: validate (throwing AdminError, or a typed AMQP error from the vhost, with RabbitMQ's
// texts) → persist (records of the model store, lmdb-js async puts) → apply live → resolve the
// returned promise once the store has committed (commit-then-reply, like AMQP's *-ok). Reads are
// synchronous snapshots of plain objects.
//
// Error mapping for the HTTP API:
//   AdminError kind 'bad_request' → 400 {"error":"bad_request","reason": err.reason}
//   AdminError kind 'not_found'   → 404 {"error":"Object Not Found","reason":"Not Found"}
//   AmqpException (from declare/bind/delete: 403/404/405/406 with RabbitMQ's reply text) → the
//   API decides (RabbitMQ answers 400/404 with the reply text as reason).

import { randomBytes } from 'node:crypto';
import type { BrokerConfig } from '../config.js';
import { WARREN_VERSION } from '../version.js';
import { NotFound } from '../protocol/errors.js';
import type { ModelRecord, ModelStore, PolicyRecord, VHostRecord } from '../store/model-store.js';
import type { Broker } from './broker.js';
import {
  DefinitionsFormatError,
  RABBITMQ_COMPATIBLE_VERSION,
  parseDefinitions,
  tableFromJson,
  tableToJson,
  type Definitions,
  type ParsedDefinitions,
} from './definitions.js';
import { isKnownExchangeType } from './exchange/types.js';
import type { Exchange } from './exchange/exchange.js';
import { PermissionPatternError, compilePattern, type Access, type PermissionSpec, type TopicPermissionSpec } from './permissions.js';
import {
  NO_POLICY,
  PolicyValidationError,
  queueOptionsWithPolicy,
  samePolicy,
  validatePolicy,
  type PolicyInput,
  type PolicySpec,
} from './policies.js';
import { validateDeclare } from './queue/queue-types.js';
import type { Queue, QueueOwner } from './queue/queue.js';
import { HASHING_ALGORITHM, hashPassword, isValidPasswordHash, parseTags, type User } from './users.js';
import type { VHost, VHostLimits } from './vhost.js';

export class AdminError extends Error {
  constructor(
    readonly kind: 'bad_request' | 'not_found',
    /** RabbitMQ's reason text (the HTTP API's "reason") */
    readonly reason: string,
  ) {
    super(reason);
  }
}

const notFound = (what: string): AdminError => new AdminError('not_found', what);
const badRequest = (reason: string): AdminError => new AdminError('bad_request', reason);

// ---- Views (plain snapshots for the API and CLI) ---------------------------------------------------

export interface UserView {
  name: string;
  password_hash: string;
  hashing_algorithm: string;
  tags: string[];
  limits: Record<string, number>;
}

export interface VHostView {
  name: string;
  description: string;
  tags: string[];
  default_queue_type: string | null;
  limits: VHostLimits;
}

export interface PermissionView extends PermissionSpec {
  user: string;
  vhost: string;
}

export interface TopicPermissionView extends TopicPermissionSpec {
  user: string;
  vhost: string;
}

/** A policy as RabbitMQ's API shows it. */
export interface PolicyView {
  vhost: string;
  name: string;
  pattern: string;
  'apply-to': string;
  definition: Record<string, unknown>;
  priority: number;
}

export interface ParameterView {
  vhost: string;
  component: string;
  name: string;
  value: unknown;
}

export interface GlobalParameterView {
  name: string;
  value: unknown;
}

// ---- Inputs ------------------------------------------------------------------------------------------

export interface UserInput {
  /** plain password (hashed here) */
  password?: string;
  /** or a ready hash in RabbitMQ's format ('' = no password: cannot log in with one) */
  passwordHash?: string;
  /** only rabbit_password_hashing_sha256 is read */
  hashingAlgorithm?: string;
  /** list, or RabbitMQ's comma-separated string */
  tags?: string | readonly string[];
}

export interface VHostInput {
  description?: string;
  tags?: string | readonly string[];
  defaultQueueType?: string | null;
}

export interface QueueInput {
  name: string;
  durable?: boolean;
  autoDelete?: boolean;
  /** JSON arguments, as in the HTTP API and definitions */
  arguments?: Record<string, unknown>;
}

export interface ExchangeInput {
  name: string;
  type: string;
  durable?: boolean;
  autoDelete?: boolean;
  internal?: boolean;
  arguments?: Record<string, unknown>;
}

export interface BindingInput {
  source: string;
  destination: string;
  destinationType: 'queue' | 'exchange';
  routingKey?: string;
  arguments?: Record<string, unknown>;
}

/** The façade's identity as a queue owner: it may act on any queue, exclusive ones included. */
const ADMIN_OWNER: QueueOwner = { id: 0 };

const VHOST_LIMIT_KEYS = ['max-connections', 'max-queues'] as const;

export class Admin {
  /** runtime parameters by JSON.stringify([vhost, component, name]) */
  private readonly parameters = new Map<string, ParameterView>();
  private readonly globalParameters = new Map<string, unknown>();
  /** vhosts that had a record at start (the others, recovered from queue records, are leftovers) */
  private readonly storedVhosts = new Set<string>();

  constructor(
    readonly broker: Broker,
    /** where the model is kept; null = nothing survives a restart */
    private readonly store: ModelStore | null,
  ) {}

  // ---- Persistence ------------------------------------------------------------------------------

  private save(rec: ModelRecord): void {
    this.store?.put(rec);
  }

  private forget(rec: ModelRecord): void {
    this.store?.delete(rec);
  }

  /** Resolves once everything written so far is on disk (rejects if the write failed). */
  private commit(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.broker.persistence.afterCommit({ onCommitted: resolve, onCommitFailed: reject });
    });
  }

  // ---- Start-up ---------------------------------------------------------------------------------

  /** Loads the stored model into the broker (before recovery of queues and messages). */
  load(): void {
    if (this.store === null) return;
    const { broker } = this;
    for (const rec of this.store.loadAll()) {
      switch (rec.kind) {
        case 'user':
          broker.users.put({ name: rec.name, passwordHash: rec.passwordHash, tags: [...rec.tags] });
          break;
        case 'vhost':
          this.storedVhosts.add(rec.name);
          this.applyVhostRecord(broker.addVHost(rec.name), rec);
          break;
        case 'permission':
          broker.permissions.set(rec.user, rec.vhost, rec);
          break;
        case 'topic-permission':
          broker.permissions.setTopic(rec.user, rec.vhost, { exchange: rec.exchange, write: rec.write, read: rec.read });
          break;
        case 'policy':
        case 'operator-policy':
          broker.policies.put({ ...rec, definition: rec.definition as PolicySpec['definition'] }, rec.kind === 'operator-policy');
          break;
        case 'parameter':
          this.parameters.set(JSON.stringify([rec.vhost, rec.component, rec.name]), {
            vhost: rec.vhost,
            component: rec.component,
            name: rec.name,
            value: rec.value,
          });
          break;
        case 'global-parameter':
          this.globalParameters.set(rec.name, rec.value);
          break;
      }
    }
  }

  /**
   * After recovery: on the first start of a data folder (fresh, or migrated from layout 1) writes
   * the default user (administrator), the default vhost, every vhost that recovered queues or
   * exchanges live in, and the default user's full permissions on them. On later starts the stored
   * model is the truth: a vhost that has queues on disk but no record (its deletion was cut short)
   * is finished off. With definitions (--load-definitions) they are imported (at every start); on
   * the first start they replace the default user and vhost, as RabbitMQ. The first start counts as
   * done only once all of this succeeded, so a bad file leaves the folder to be seeded next time.
   */
  async initialise(config: Pick<BrokerConfig, 'defaultUser' | 'defaultPass' | 'defaultVhost'>, definitions: unknown = null): Promise<void> {
    const withoutDefaults = definitions !== null;
    const { broker } = this;
    if (this.store !== null && this.store.seeded) {
      const known = this.storedVhosts;
      for (const vhost of [...broker.vhosts.values()]) {
        if (!known.has(vhost.name)) {
          broker.log.warn({ vhost: vhost.name }, 'stored queues of a deleted vhost found; deleting them');
          vhost.removeEverything();
          broker.vhosts.delete(vhost.name);
        }
      }
      if (definitions !== null) await this.importDefinitions(definitions);
    } else {
      if (!withoutDefaults) {
        broker.addVHost(config.defaultVhost);
        this.saveUser(broker.users.add(config.defaultUser, config.defaultPass, ['administrator']));
      }
      for (const vhost of broker.vhosts.values()) {
        this.save(vhostRecord(vhost));
        if (!withoutDefaults) this.savePermission(config.defaultUser, vhost.name, { configure: '.*', write: '.*', read: '.*' });
      }
      this.putGlobalParameterNow('internal_cluster_id', `rabbitmq-cluster-id-${randomBytes(16).toString('base64url')}`);
      if (definitions !== null) await this.importDefinitions(definitions);
      this.store?.markSeeded();
      if (!withoutDefaults) broker.log.info({ user: config.defaultUser, vhost: config.defaultVhost }, 'first start: default user and vhost created');
    }
    this.reapplyPolicies();
    await this.commit();
  }

  // ---- Users ------------------------------------------------------------------------------------

  listUsers(): UserView[] {
    return [...this.broker.users.all].map(userView);
  }

  getUser(name: string): UserView | undefined {
    const user = this.broker.users.get(name);
    return user === undefined ? undefined : userView(user);
  }

  /** The user, when the password is right (HTTP basic auth). */
  authenticate(name: string, password: string): User | undefined {
    return this.broker.users.authenticate(name, password);
  }

  /**
   * Creates or replaces a user. A password is hashed here; a hash is taken as it is (RabbitMQ's
   * format); with neither the user has no password (cannot log in with one), as RabbitMQ.
   */
  async putUser(name: string, input: UserInput): Promise<{ created: boolean }> {
    const created = this.putUserNow(name, input);
    await this.commit();
    return { created };
  }

  private putUserNow(name: string, input: UserInput): boolean {
    if (name === '') throw badRequest('user name must not be empty');
    let passwordHash = '';
    if (input.password !== undefined) passwordHash = hashPassword(input.password);
    else if (input.passwordHash !== undefined) {
      const algorithm = input.hashingAlgorithm ?? HASHING_ALGORITHM;
      if (algorithm !== HASHING_ALGORITHM) {
        throw badRequest(`unsupported hashing algorithm '${algorithm}': Warren reads ${HASHING_ALGORITHM} only`);
      }
      if (!isValidPasswordHash(input.passwordHash)) throw badRequest(`not_base64: '${input.passwordHash}' is not a salted SHA-256 password hash`);
      passwordHash = input.passwordHash;
    }
    const created = this.broker.users.get(name) === undefined;
    this.saveUser(this.broker.users.put({ name, passwordHash, tags: parseTags(input.tags) }));
    return created;
  }

  /** Changes only the password (rabbitmqctl change_password). */
  async changePassword(name: string, password: string): Promise<void> {
    const user = this.broker.users.get(name);
    if (user === undefined) throw notFound(`user '${name}' not found`);
    user.passwordHash = hashPassword(password);
    this.saveUser(user);
    await this.commit();
  }

  /** Changes only the tags (rabbitmqctl set_user_tags). */
  async setUserTags(name: string, tags: string | readonly string[]): Promise<void> {
    const user = this.broker.users.get(name);
    if (user === undefined) throw notFound(`user '${name}' not found`);
    user.tags = parseTags(tags);
    this.saveUser(user);
    await this.commit();
  }

  /**
   * Deletes a user with their permissions; their open connections are closed with 320
   * CONNECTION_FORCED "user 'x' is deleted", as RabbitMQ 3.10 does. False when there was no such user.
   */
  async deleteUser(name: string): Promise<boolean> {
    const { broker } = this;
    if (!broker.users.delete(name)) return false;
    this.forget({ kind: 'user', name, passwordHash: '', tags: [] });
    for (const p of broker.permissions.list({ user: name })) this.forget(permissionRecord(name, p.vhost, p.spec));
    for (const t of broker.permissions.listTopic({ user: name })) this.forget(topicPermissionRecord(name, t.vhost, t.spec));
    broker.permissions.removeUser(name);
    for (const c of [...broker.connections]) {
      if (c.userName === name) c.forceClose(`user '${name}' is deleted`);
    }
    await this.commit();
    return true;
  }

  private saveUser(user: User): void {
    this.save({ kind: 'user', name: user.name, passwordHash: user.passwordHash, tags: [...user.tags] });
  }

  // ---- Vhosts -----------------------------------------------------------------------------------

  listVhosts(): VHostView[] {
    return [...this.broker.vhosts.values()].map(vhostView);
  }

  getVhost(name: string): VHostView | undefined {
    const vhost = this.broker.vhosts.get(name);
    return vhost === undefined ? undefined : vhostView(vhost);
  }

  /**
   * Creates a vhost, or updates its description and tags. `grantFullAccessTo`: a user given full
   * permissions when the vhost is created (RabbitMQ's HTTP API does this for the acting user).
   */
  async putVhost(name: string, input: VHostInput = {}, grantFullAccessTo?: string): Promise<{ created: boolean }> {
    const created = this.putVhostNow(name, input);
    if (created && grantFullAccessTo !== undefined && this.broker.users.get(grantFullAccessTo) !== undefined) {
      this.setPermissionNow(grantFullAccessTo, name, { configure: '.*', write: '.*', read: '.*' });
    }
    await this.commit();
    return { created };
  }

  private putVhostNow(name: string, input: VHostInput): boolean {
    if (name === '') throw badRequest('vhost name must not be empty');
    const created = !this.broker.vhosts.has(name);
    const vhost = this.broker.addVHost(name);
    if (input.description !== undefined) vhost.description = input.description;
    if (input.tags !== undefined) vhost.tags = parseTags(input.tags);
    if (input.defaultQueueType !== undefined) vhost.defaultQueueType = input.defaultQueueType;
    this.save(vhostRecord(vhost));
    return created;
  }

  /**
   * Deletes a vhost: its connections are closed (320 CONNECTION_FORCED "vhost 'x' is down", as
   * RabbitMQ 3.10 says), then its queues (messages deleted from disk), exchanges, bindings,
   * permissions, policies, limits and parameters go. False when there was no such vhost.
   */
  async deleteVhost(name: string): Promise<boolean> {
    const { broker } = this;
    const vhost = broker.vhosts.get(name);
    if (vhost === undefined) return false;
    for (const c of [...vhost.connections]) c.forceClose(`vhost '${name}' is down`);
    vhost.removeEverything();
    broker.vhosts.delete(name);
    this.forget(vhostRecord(vhost));
    for (const p of broker.permissions.list({ vhost: name })) this.forget(permissionRecord(p.user, name, p.spec));
    for (const t of broker.permissions.listTopic({ vhost: name })) this.forget(topicPermissionRecord(t.user, name, t.spec));
    broker.permissions.removeVhost(name);
    for (const operator of [false, true]) {
      for (const p of broker.policies.list(operator, name)) this.forget(policyRecord(p, operator));
    }
    broker.policies.removeVhost(name);
    for (const [key, p] of this.parameters) {
      if (p.vhost !== name) continue;
      this.parameters.delete(key);
      this.forget({ kind: 'parameter', ...p });
    }
    broker.log.info({ vhost: name }, 'vhost deleted');
    await this.commit();
    return true;
  }

  private vhostOrThrow(name: string): VHost {
    const vhost = this.broker.vhosts.get(name);
    if (vhost === undefined) throw notFound(`vhost '${name}' not found`);
    return vhost;
  }

  // ---- Vhost limits -----------------------------------------------------------------------------

  getVhostLimits(vhost: string): VHostLimits {
    return { ...this.vhostOrThrow(vhost).limits };
  }

  /**
   * Sets some limits (max-connections, max-queues; a negative value = no limit, 0 = none allowed),
   * keeping the others, as PUT /api/vhost-limits/{vhost}/{name} does one at a time and
   * rabbitmqctl set_vhost_limits does with a JSON object.
   */
  async setVhostLimits(vhostName: string, limits: Record<string, unknown>): Promise<void> {
    const vhost = this.vhostOrThrow(vhostName);
    vhost.limits = { ...vhost.limits, ...validateLimits(limits) };
    this.save(vhostRecord(vhost));
    await this.commit();
  }

  /** Clears one limit, or all of them (name undefined). */
  async clearVhostLimit(vhostName: string, name?: string): Promise<void> {
    const vhost = this.vhostOrThrow(vhostName);
    if (name === undefined) vhost.limits = {};
    else {
      const next = { ...vhost.limits };
      delete next[name as keyof VHostLimits];
      vhost.limits = next;
    }
    this.save(vhostRecord(vhost));
    await this.commit();
  }

  // ---- Permissions ------------------------------------------------------------------------------

  listPermissions(filter: { user?: string; vhost?: string } = {}): PermissionView[] {
    return this.broker.permissions.list(filter).map((p) => ({ user: p.user, vhost: p.vhost, ...p.spec }));
  }

  getPermission(user: string, vhost: string): PermissionView | undefined {
    const spec = this.broker.permissions.get(user, vhost);
    return spec === undefined ? undefined : { user, vhost, ...spec };
  }

  /** Sets a user's configure/write/read expressions in a vhost (both must exist). */
  async setPermission(user: string, vhost: string, spec: PermissionSpec): Promise<void> {
    this.setPermissionNow(user, vhost, spec);
    await this.commit();
  }

  private setPermissionNow(user: string, vhost: string, spec: PermissionSpec): void {
    this.requireUserAndVhost(user, vhost);
    for (const key of ['configure', 'write', 'read'] as const) {
      if (typeof spec[key] !== 'string') throw badRequest(`[{key_missing,${key}}]`);
    }
    try {
      this.broker.permissions.set(user, vhost, spec);
    } catch (err) {
      if (err instanceof PermissionPatternError) throw badRequest(`invalid_regexp: ${err.message}`);
      throw err;
    }
    this.savePermission(user, vhost, spec);
  }

  private savePermission(user: string, vhost: string, spec: PermissionSpec): void {
    if (this.broker.permissions.get(user, vhost) === undefined) this.broker.permissions.set(user, vhost, spec);
    this.save(permissionRecord(user, vhost, spec));
  }

  async clearPermission(user: string, vhost: string): Promise<boolean> {
    const spec = this.broker.permissions.get(user, vhost);
    if (spec === undefined) return false;
    this.broker.permissions.clear(user, vhost);
    this.forget(permissionRecord(user, vhost, spec));
    await this.commit();
    return true;
  }

  listTopicPermissions(filter: { user?: string; vhost?: string } = {}): TopicPermissionView[] {
    return this.broker.permissions.listTopic(filter).map((t) => ({ user: t.user, vhost: t.vhost, ...t.spec }));
  }

  /** Sets a topic permission (write/read expressions on routing keys of one topic exchange). */
  async setTopicPermission(user: string, vhost: string, spec: TopicPermissionSpec): Promise<void> {
    this.setTopicPermissionNow(user, vhost, spec);
    await this.commit();
  }

  private setTopicPermissionNow(user: string, vhost: string, spec: TopicPermissionSpec): void {
    this.requireUserAndVhost(user, vhost);
    for (const key of ['exchange', 'write', 'read'] as const) {
      if (typeof spec[key] !== 'string') throw badRequest(`[{key_missing,${key}}]`);
    }
    try {
      compilePattern(spec.write);
      compilePattern(spec.read);
      this.broker.permissions.setTopic(user, vhost, spec);
    } catch (err) {
      if (err instanceof PermissionPatternError) throw badRequest(`invalid_regexp: ${err.message}`);
      throw err;
    }
    this.save(topicPermissionRecord(user, vhost, spec));
  }

  /** Clears one exchange's topic permission, or all of the user's in the vhost. */
  async clearTopicPermissions(user: string, vhost: string, exchange?: string): Promise<boolean> {
    const existing = this.broker.permissions.listTopic({ user, vhost }).filter((t) => exchange === undefined || t.spec.exchange === exchange);
    if (existing.length === 0) return false;
    this.broker.permissions.clearTopic(user, vhost, exchange);
    for (const t of existing) this.forget(topicPermissionRecord(user, vhost, t.spec));
    await this.commit();
    return true;
  }

  private requireUserAndVhost(user: string, vhost: string): void {
    if (this.broker.users.get(user) === undefined || !this.broker.vhosts.has(vhost)) throw badRequest('vhost_or_user_not_found');
  }

  // ---- Policies ---------------------------------------------------------------------------------

  listPolicies(vhost?: string): PolicyView[] {
    return this.broker.policies.list(false, vhost).map(policyView);
  }

  getPolicy(vhost: string, name: string): PolicyView | undefined {
    const p = this.broker.policies.get(vhost, name, false);
    return p === undefined ? undefined : policyView(p);
  }

  listOperatorPolicies(vhost?: string): PolicyView[] {
    return this.broker.policies.list(true, vhost).map(policyView);
  }

  getOperatorPolicy(vhost: string, name: string): PolicyView | undefined {
    const p = this.broker.policies.get(vhost, name, true);
    return p === undefined ? undefined : policyView(p);
  }

  /** Sets a policy (JSON as the HTTP API takes it: pattern, apply-to, priority, definition); applies it live. */
  async putPolicy(vhost: string, name: string, input: PolicyInput): Promise<void> {
    this.putPolicyNow(vhost, name, input, false);
    this.reapplyPolicies(vhost);
    await this.commit();
  }

  /** Sets an operator policy (limits only, as RabbitMQ); applies it live. */
  async putOperatorPolicy(vhost: string, name: string, input: PolicyInput): Promise<void> {
    this.putPolicyNow(vhost, name, input, true);
    this.reapplyPolicies(vhost);
    await this.commit();
  }

  private putPolicyNow(vhost: string, name: string, input: PolicyInput, operator: boolean): void {
    this.vhostOrThrow(vhost);
    let spec: PolicySpec;
    try {
      spec = validatePolicy(vhost, name, input, operator);
    } catch (err) {
      if (err instanceof PolicyValidationError) throw badRequest(err.reason);
      throw err;
    }
    this.broker.policies.put(spec, operator);
    this.save(policyRecord(spec, operator));
  }

  async deletePolicy(vhost: string, name: string): Promise<boolean> {
    return this.deletePolicyOf(vhost, name, false);
  }

  async deleteOperatorPolicy(vhost: string, name: string): Promise<boolean> {
    return this.deletePolicyOf(vhost, name, true);
  }

  private async deletePolicyOf(vhost: string, name: string, operator: boolean): Promise<boolean> {
    const spec = this.broker.policies.get(vhost, name, operator);
    if (spec === undefined) return false;
    this.broker.policies.delete(vhost, name, operator);
    this.forget(policyRecord(spec, operator));
    this.reapplyPolicies(vhost);
    await this.commit();
    return true;
  }

  /** Re-matches every queue and exchange (of one vhost, or all) and applies what changed, live. */
  private reapplyPolicies(vhostName?: string): void {
    const { broker } = this;
    for (const vhost of broker.vhosts.values()) {
      if (vhostName !== undefined && vhost.name !== vhostName) continue;
      for (const queue of vhost.queues.values()) this.applyQueuePolicy(vhost, queue);
      for (const ex of vhost.exchanges.values()) {
        const applied = broker.policies.match(vhost.name, 'exchange', ex.name);
        if (!samePolicy(applied, ex.appliedPolicy)) ex.applyPolicy(applied);
      }
    }
  }

  private applyQueuePolicy(vhost: VHost, queue: Queue): void {
    const applied = this.broker.policies.match(vhost.name, 'queue', queue.name);
    if (samePolicy(applied, queue.appliedPolicy)) return;
    queue.appliedPolicy = applied;
    const declared = queue.declaredOptions();
    queue.applyOptions(applied === NO_POLICY ? declared : queueOptionsWithPolicy(declared, queue.args, applied.definition));
  }

  // ---- Runtime and global parameters -------------------------------------------------------------

  /**
   * Runtime parameters of plugin components (federation, shovel, …). Warren has none of those
   * plugins: the values are kept and exported so definitions round-trip, and have no effect.
   */
  listParameters(filter: { component?: string; vhost?: string } = {}): ParameterView[] {
    return [...this.parameters.values()].filter(
      (p) => (filter.component === undefined || p.component === filter.component) && (filter.vhost === undefined || p.vhost === filter.vhost),
    );
  }

  getParameter(component: string, vhost: string, name: string): ParameterView | undefined {
    return this.parameters.get(JSON.stringify([vhost, component, name]));
  }

  async putParameter(component: string, vhost: string, name: string, value: unknown): Promise<void> {
    this.putParameterNow(component, vhost, name, value);
    await this.commit();
  }

  private putParameterNow(component: string, vhost: string, name: string, value: unknown): void {
    this.vhostOrThrow(vhost);
    if (component === 'vhost-limits') {
      const v = this.vhostOrThrow(vhost);
      v.limits = validateLimits(value);
      this.save(vhostRecord(v));
      return;
    }
    if (component === 'operator_policy' || component === 'policy') {
      this.putPolicyNow(vhost, name, (value ?? {}) as PolicyInput, component === 'operator_policy');
      this.reapplyPolicies(vhost);
      return;
    }
    if (value === undefined) throw badRequest('[{key_missing,value}]');
    const p: ParameterView = { vhost, component, name, value };
    this.parameters.set(JSON.stringify([vhost, component, name]), p);
    this.save({ kind: 'parameter', ...p });
    this.broker.log.warn({ vhost, component, name }, 'runtime parameter kept; Warren has no plugin that uses it');
  }

  async deleteParameter(component: string, vhost: string, name: string): Promise<boolean> {
    const key = JSON.stringify([vhost, component, name]);
    const p = this.parameters.get(key);
    if (p === undefined) return false;
    this.parameters.delete(key);
    this.forget({ kind: 'parameter', ...p });
    await this.commit();
    return true;
  }

  listGlobalParameters(): GlobalParameterView[] {
    return [...this.globalParameters].map(([name, value]) => ({ name, value }));
  }

  getGlobalParameter(name: string): GlobalParameterView | undefined {
    return this.globalParameters.has(name) ? { name, value: this.globalParameters.get(name) } : undefined;
  }

  async putGlobalParameter(name: string, value: unknown): Promise<void> {
    this.putGlobalParameterNow(name, value);
    await this.commit();
  }

  private putGlobalParameterNow(name: string, value: unknown): void {
    if (value === undefined) throw badRequest('[{key_missing,value}]');
    this.globalParameters.set(name, value);
    this.save({ kind: 'global-parameter', name, value });
  }

  async deleteGlobalParameter(name: string): Promise<boolean> {
    if (!this.globalParameters.delete(name)) return false;
    this.forget({ kind: 'global-parameter', name, value: null });
    await this.commit();
    return true;
  }

  // ---- Queues, exchanges, bindings -------------------------------------------------------------

  /**
   * actingUser (every topology operation below takes it): when given, that user's permissions are
   * checked as AMQP checks them (403 AccessRefused with RabbitMQ's text), as RabbitMQ's management
   * API does for the user signed in. Omitted: no check (start-up, definitions import).
   */
  private authorize(actingUser: string | undefined, vhost: string, access: Access, kind: 'exchange' | 'queue', name: string): void {
    if (actingUser !== undefined) this.broker.permissions.check(actingUser, vhost, access, kind, name);
  }

  /** Topic permission on a binding key when binding to or from a topic exchange. */
  private authorizeTopicRead(actingUser: string | undefined, vhost: VHost, exchange: string, routingKey: string): void {
    if (actingUser === undefined || vhost.exchanges.get(exchange)?.type !== 'topic') return;
    this.broker.permissions.checkTopic(actingUser, vhost.name, 'read', exchange, routingKey);
  }

  /** Declares a queue (or finds an equivalent one); 406 texts as AMQP on a mismatch. */
  async declareQueue(vhostName: string, input: QueueInput, actingUser?: string): Promise<Queue> {
    this.vhostOrThrow(vhostName);
    this.authorize(actingUser, vhostName, 'configure', 'queue', input.name);
    const queue = this.declareQueueNow(vhostName, input);
    await this.commit();
    return queue;
  }

  private declareQueueNow(vhostName: string, input: QueueInput): Queue {
    const vhost = this.vhostOrThrow(vhostName);
    return vhost.declareQueue(
      {
        name: input.name,
        passive: false,
        durable: input.durable ?? true,
        exclusive: false,
        autoDelete: input.autoDelete ?? false,
        args: tableFromJson(input.arguments),
      },
      ADMIN_OWNER,
    );
  }

  /** Deletes a queue (exclusive ones too); returns how many ready messages it held. */
  async deleteQueue(vhostName: string, name: string, options: { ifUnused?: boolean; ifEmpty?: boolean } = {}, actingUser?: string): Promise<number> {
    const vhost = this.vhostOrThrow(vhostName);
    this.authorize(actingUser, vhostName, 'configure', 'queue', name);
    const queue = vhost.queues.get(name);
    if (queue === undefined) throw notFound(`no queue '${name}' in vhost '${vhostName}'`);
    if (options.ifUnused === true && queue.consumerCount > 0) throw badRequest(`queue '${name}' in vhost '${vhostName}' in use`);
    if (options.ifEmpty === true && queue.messageCount > 0) throw badRequest(`queue '${name}' in vhost '${vhostName}' not empty`);
    const count = vhost.removeQueue(queue);
    await this.commit();
    return count;
  }

  /** Removes a queue's ready messages (unacked ones stay); returns how many. */
  async purgeQueue(vhostName: string, name: string, actingUser?: string): Promise<number> {
    const vhost = this.vhostOrThrow(vhostName);
    this.authorize(actingUser, vhostName, 'read', 'queue', name);
    const queue = vhost.queues.get(name);
    if (queue === undefined) throw notFound(`no queue '${name}' in vhost '${vhostName}'`);
    const count = queue.purge();
    await this.commit();
    return count;
  }

  async declareExchange(vhostName: string, input: ExchangeInput, actingUser?: string): Promise<Exchange> {
    this.vhostOrThrow(vhostName);
    this.authorize(actingUser, vhostName, 'configure', 'exchange', input.name);
    const ex = this.declareExchangeNow(vhostName, input);
    await this.commit();
    return ex;
  }

  private declareExchangeNow(vhostName: string, input: ExchangeInput): Exchange {
    const vhost = this.vhostOrThrow(vhostName);
    return vhost.declareExchange({
      name: input.name,
      type: input.type,
      passive: false,
      durable: input.durable ?? true,
      autoDelete: input.autoDelete ?? false,
      internal: input.internal ?? false,
      args: tableFromJson(input.arguments),
    });
  }

  async deleteExchange(vhostName: string, name: string, options: { ifUnused?: boolean } = {}, actingUser?: string): Promise<void> {
    const vhost = this.vhostOrThrow(vhostName);
    this.authorize(actingUser, vhostName, 'configure', 'exchange', name);
    if (!vhost.exchanges.has(name)) throw notFound(`no exchange '${name}' in vhost '${vhostName}'`);
    vhost.deleteExchange(name, options.ifUnused === true);
    await this.commit();
  }

  /** Binds (a no-op when the same binding exists); 404 texts as AMQP when an end is missing. */
  async bind(vhostName: string, input: BindingInput, actingUser?: string): Promise<void> {
    this.authorizeBinding(vhostName, input, actingUser);
    this.bindNow(vhostName, input);
    await this.commit();
  }

  /** As queue.bind / exchange.bind: write on the destination, read on the source, topic read on the key. */
  private authorizeBinding(vhostName: string, input: BindingInput, actingUser: string | undefined): VHost {
    const vhost = this.vhostOrThrow(vhostName);
    this.authorize(actingUser, vhostName, 'write', input.destinationType, input.destination);
    this.authorize(actingUser, vhostName, 'read', 'exchange', input.source);
    this.authorizeTopicRead(actingUser, vhost, input.source, input.routingKey ?? '');
    return vhost;
  }

  private bindNow(vhostName: string, input: BindingInput): void {
    const vhost = this.vhostOrThrow(vhostName);
    vhost.getExchange(input.source);
    let destination: Queue | Exchange;
    if (input.destinationType === 'exchange') destination = vhost.getExchange(input.destination);
    else {
      // The management API may bind other connections' exclusive queues, as RabbitMQ's does.
      const queue = vhost.queues.get(input.destination);
      if (queue === undefined) throw new NotFound(`no queue '${input.destination}' in vhost '${vhostName}'`);
      destination = queue;
    }
    vhost.bind(input.source, destination, input.routingKey ?? '', tableFromJson(input.arguments));
  }

  async unbind(vhostName: string, input: BindingInput, actingUser?: string): Promise<void> {
    const vhost = this.authorizeBinding(vhostName, input, actingUser);
    const destination = input.destinationType === 'queue' ? vhost.queues.get(input.destination) : vhost.exchanges.get(input.destination);
    const owner = destination?.kind === 'queue' && destination.exclusiveOwner !== null ? destination.exclusiveOwner : ADMIN_OWNER;
    vhost.unbind(input.source, input.destinationType, input.destination, input.routingKey ?? '', tableFromJson(input.arguments), owner);
    await this.commit();
  }

  // ---- Definitions ------------------------------------------------------------------------------

  /** RabbitMQ's definitions JSON: the whole broker, or one vhost's part (no vhost fields). */
  exportDefinitions(vhostName?: string): Definitions {
    const { broker } = this;
    const perVhost = vhostName !== undefined;
    const vhosts = perVhost ? [this.vhostOrThrow(vhostName)] : [...broker.vhosts.values()];
    const withVhost = <T extends object>(vhost: string, rest: T): T & { vhost?: string } => (perVhost ? rest : { ...rest, vhost });
    const parameters: NonNullable<Definitions['parameters']> = [];
    const policies: NonNullable<Definitions['policies']> = [];
    const queues: NonNullable<Definitions['queues']> = [];
    const exchanges: NonNullable<Definitions['exchanges']> = [];
    const bindings: NonNullable<Definitions['bindings']> = [];
    for (const vhost of vhosts) {
      for (const p of broker.policies.list(true, vhost.name)) {
        const { vhost: _v, name, ...value } = policyView(p);
        parameters.push(withVhost(vhost.name, { value, component: 'operator_policy', name }));
      }
      if (Object.keys(vhost.limits).length > 0) {
        parameters.push(withVhost(vhost.name, { value: { ...vhost.limits }, component: 'vhost-limits', name: 'limits' }));
      }
      for (const p of this.listParameters({ vhost: vhost.name })) {
        parameters.push(withVhost(vhost.name, { value: p.value, component: p.component, name: p.name }));
      }
      for (const p of broker.policies.list(false, vhost.name)) {
        const { vhost: _v, ...rest } = policyView(p);
        policies.push(withVhost(vhost.name, rest));
      }
      for (const q of vhost.queues.values()) {
        if (q.exclusive) continue;
        queues.push(withVhost(vhost.name, { name: q.name, durable: q.durable, auto_delete: q.autoDelete, arguments: tableToJson(q.args) }));
      }
      for (const ex of vhost.exchanges.values()) {
        if (ex.name === '' || ex.name.startsWith('amq.')) continue;
        exchanges.push(
          withVhost(vhost.name, {
            name: ex.name,
            type: ex.type,
            durable: ex.durable,
            auto_delete: ex.autoDelete,
            internal: ex.internal,
            arguments: tableToJson(ex.args),
          }),
        );
      }
      for (const ex of vhost.exchanges.values()) {
        if (ex.name === '') continue;
        for (const b of ex.bindings.values()) {
          if (b.destination.kind === 'queue' && b.destination.exclusive) continue;
          bindings.push(
            withVhost(vhost.name, {
              source: ex.name,
              destination: b.destination.name,
              destination_type: b.destination.kind,
              routing_key: b.routingKey,
              arguments: tableToJson(b.args),
            }),
          );
        }
      }
    }
    if (perVhost) return { rabbit_version: RABBITMQ_COMPATIBLE_VERSION, parameters, policies, queues, exchanges, bindings };
    return {
      rabbit_version: RABBITMQ_COMPATIBLE_VERSION,
      rabbitmq_version: RABBITMQ_COMPATIBLE_VERSION,
      product_name: 'Warren',
      product_version: WARREN_VERSION,
      users: this.listUsers(),
      vhosts: vhosts.map((v) => {
        const out: { name: string; description?: string; tags?: string[]; default_queue_type?: string } = { name: v.name };
        if (v.description !== '') out.description = v.description;
        if (v.tags.length > 0) out.tags = [...v.tags];
        if (v.defaultQueueType !== null) out.default_queue_type = v.defaultQueueType;
        return out;
      }),
      permissions: this.listPermissions(),
      topic_permissions: this.listTopicPermissions(),
      parameters,
      global_parameters: this.listGlobalParameters(),
      policies,
      queues,
      exchanges,
      bindings,
    };
  }

  /**
   * Imports RabbitMQ definitions (a parsed JSON document): users (with their password hashes),
   * vhosts, permissions, topic permissions, parameters (vhost limits, operator policies, others
   * kept), global parameters, policies, exchanges, queues, bindings — in that order, as RabbitMQ.
   * Everything is checked before anything is changed, so a bad file changes nothing (RabbitMQ
   * stops half-way); existing queues and exchanges are kept as they are. With `vhost`, a per-vhost
   * document goes into that vhost.
   */
  async importDefinitions(doc: unknown, vhost?: string): Promise<void> {
    let defs: ParsedDefinitions;
    try {
      defs = parseDefinitions(doc, vhost);
    } catch (err) {
      if (err instanceof DefinitionsFormatError) throw badRequest(err.message);
      throw err;
    }
    if (vhost !== undefined) this.vhostOrThrow(vhost);
    this.checkDefinitions(defs);
    for (const u of defs.users) {
      const input: UserInput = { tags: u.tags, hashingAlgorithm: u.hashingAlgorithm };
      if (u.passwordHash !== undefined) input.passwordHash = u.passwordHash;
      if (u.password !== undefined) input.password = u.password;
      this.putUserNow(u.name, input);
    }
    for (const v of defs.vhosts) this.putVhostNow(v.name, { description: v.description, tags: v.tags, defaultQueueType: v.defaultQueueType });
    for (const p of defs.permissions) this.setPermissionNow(p.user, p.vhost, p);
    for (const t of defs.topicPermissions) this.setTopicPermissionNow(t.user, t.vhost, t);
    for (const p of defs.parameters) this.putParameterNow(p.component, p.vhost, p.name, p.value);
    for (const g of defs.globalParameters) this.putGlobalParameterNow(g.name, g.value);
    for (const p of defs.policies) this.putPolicyNow(p.vhost, p.name, p.input as PolicyInput, false);
    this.reapplyPolicies();
    for (const x of defs.exchanges) {
      const existing = this.broker.vhosts.get(x.vhost)?.exchanges.get(x.name);
      if (existing === undefined) this.declareExchangeNow(x.vhost, x);
    }
    for (const q of defs.queues) {
      const existing = this.broker.vhosts.get(q.vhost)?.queues.get(q.name);
      if (existing === undefined) this.declareQueueNow(q.vhost, q);
    }
    for (const b of defs.bindings) this.bindNow(b.vhost, b);
    this.broker.log.info(
      {
        users: defs.users.length,
        vhosts: defs.vhosts.length,
        policies: defs.policies.length,
        queues: defs.queues.length,
        exchanges: defs.exchanges.length,
        bindings: defs.bindings.length,
      },
      'definitions imported',
    );
    await this.commit();
  }

  /** Everything an import could refuse, checked up front (bad_request with what and where). */
  private checkDefinitions(defs: ParsedDefinitions): void {
    const users = new Set([...this.broker.users.all].map((u) => u.name).concat(defs.users.map((u) => u.name)));
    const vhosts = new Set([...this.broker.vhosts.keys()].concat(defs.vhosts.map((v) => v.name)));
    for (const u of defs.users) {
      if (u.passwordHash !== undefined && u.hashingAlgorithm !== HASHING_ALGORITHM) {
        throw badRequest(`user '${u.name}': unsupported hashing algorithm '${u.hashingAlgorithm}': Warren reads ${HASHING_ALGORITHM} only`);
      }
      if (u.passwordHash !== undefined && !isValidPasswordHash(u.passwordHash)) {
        throw badRequest(`user '${u.name}': '${u.passwordHash}' is not a salted SHA-256 password hash`);
      }
    }
    const needUserAndVhost = (user: string, vhost: string, what: string): void => {
      if (!users.has(user) || !vhosts.has(vhost)) throw badRequest(`${what} for user '${user}' in vhost '${vhost}': vhost_or_user_not_found`);
    };
    const needVhost = (vhost: string, what: string): void => {
      if (!vhosts.has(vhost)) throw badRequest(`${what}: vhost '${vhost}' not found`);
    };
    const regex = (source: string, what: string): void => {
      try {
        compilePattern(source);
      } catch (err) {
        throw badRequest(`${what}: invalid_regexp: ${(err as Error).message}`);
      }
    };
    for (const p of defs.permissions) {
      needUserAndVhost(p.user, p.vhost, 'permissions');
      for (const key of ['configure', 'write', 'read'] as const) regex(p[key], `permissions of '${p.user}' in '${p.vhost}'`);
    }
    for (const t of defs.topicPermissions) {
      needUserAndVhost(t.user, t.vhost, 'topic permissions');
      regex(t.write, `topic permissions of '${t.user}' in '${t.vhost}'`);
      regex(t.read, `topic permissions of '${t.user}' in '${t.vhost}'`);
    }
    const policyCheck = (vhost: string, name: string, input: unknown, operator: boolean): void => {
      try {
        validatePolicy(vhost, name, (input ?? {}) as PolicyInput, operator);
      } catch (err) {
        if (err instanceof PolicyValidationError) throw badRequest(`${operator ? 'operator policy' : 'policy'} '${name}' in vhost '${vhost}': ${err.reason}`);
        throw err;
      }
    };
    for (const p of defs.parameters) {
      needVhost(p.vhost, `parameter '${p.name}'`);
      if (p.component === 'vhost-limits') {
        try {
          validateLimits(p.value);
        } catch (err) {
          throw badRequest(`limits of vhost '${p.vhost}': ${(err as AdminError).reason}`);
        }
      } else if (p.component === 'operator_policy' || p.component === 'policy') {
        policyCheck(p.vhost, p.name, p.value, p.component === 'operator_policy');
      }
    }
    for (const p of defs.policies) {
      needVhost(p.vhost, `policy '${p.name}'`);
      policyCheck(p.vhost, p.name, p.input, false);
    }
    for (const x of defs.exchanges) {
      needVhost(x.vhost, `exchange '${x.name}'`);
      if (!isKnownExchangeType(x.type)) throw badRequest(`exchange '${x.name}' in vhost '${x.vhost}': unknown exchange type '${x.type}'`);
    }
    for (const q of defs.queues) {
      needVhost(q.vhost, `queue '${q.name}'`);
      try {
        validateDeclare({ durable: q.durable ?? true, exclusive: false, autoDelete: q.autoDelete ?? false, args: tableFromJson(q.arguments ?? {}) }, q.name, q.vhost);
      } catch (err) {
        throw badRequest((err as Error).message);
      }
    }
    for (const b of defs.bindings) needVhost(b.vhost, `binding from '${b.source}'`);
  }

  // ---- Internals ----------------------------------------------------------------------------------

  private applyVhostRecord(vhost: VHost, rec: VHostRecord): void {
    vhost.description = rec.description;
    vhost.tags = [...rec.tags];
    vhost.defaultQueueType = rec.defaultQueueType;
    vhost.limits = { ...rec.limits };
  }
}

function validateLimits(value: unknown): VHostLimits {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw badRequest('Validation failed\n\nlimits should be a JSON object\n');
  const entries = Object.entries(value as Record<string, unknown>);
  const unknown = entries.filter(([k]) => !(VHOST_LIMIT_KEYS as readonly string[]).includes(k));
  if (unknown.length > 0) {
    const terms = unknown.map(([k, v]) => `{<<"${k}">>,${typeof v === 'string' ? `<<"${v}">>` : String(v)}}`).join(',');
    throw badRequest(`Validation failed\n\nUnrecognised terms [${terms}] in limits\n`);
  }
  const out: VHostLimits = {};
  for (const [key, v] of entries) {
    if (typeof v !== 'number' || !Number.isInteger(v)) {
      throw badRequest(`Validation failed\n\n${key} should be a number, actually was ${typeof v === 'string' ? `<<"${v}">>` : String(v)}\n`);
    }
    out[key as keyof VHostLimits] = v;
  }
  return out;
}

function userView(user: User): UserView {
  return { name: user.name, password_hash: user.passwordHash, hashing_algorithm: HASHING_ALGORITHM, tags: [...user.tags], limits: {} };
}

function vhostView(vhost: VHost): VHostView {
  return {
    name: vhost.name,
    description: vhost.description,
    tags: [...vhost.tags],
    default_queue_type: vhost.defaultQueueType,
    limits: { ...vhost.limits },
  };
}

function policyView(p: PolicySpec): PolicyView {
  return { vhost: p.vhost, name: p.name, pattern: p.pattern, 'apply-to': p.applyTo, definition: { ...p.definition }, priority: p.priority };
}

function vhostRecord(vhost: VHost): VHostRecord {
  return {
    kind: 'vhost',
    name: vhost.name,
    description: vhost.description,
    tags: [...vhost.tags],
    defaultQueueType: vhost.defaultQueueType,
    limits: { ...vhost.limits } as Record<string, number>,
  };
}

function permissionRecord(user: string, vhost: string, spec: PermissionSpec): ModelRecord {
  return { kind: 'permission', user, vhost, configure: spec.configure, write: spec.write, read: spec.read };
}

function topicPermissionRecord(user: string, vhost: string, spec: TopicPermissionSpec): ModelRecord {
  return { kind: 'topic-permission', user, vhost, exchange: spec.exchange, write: spec.write, read: spec.read };
}

function policyRecord(p: PolicySpec, operator: boolean): PolicyRecord {
  return {
    kind: operator ? 'operator-policy' : 'policy',
    vhost: p.vhost,
    name: p.name,
    pattern: p.pattern,
    applyTo: p.applyTo,
    priority: p.priority,
    definition: { ...p.definition },
  };
}
