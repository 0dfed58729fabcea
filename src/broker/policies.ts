// Policies and operator policies, as RabbitMQ 3.10 has them: per vhost, a name, a pattern (a
// regular expression searched in queue/exchange names), what they apply to, a priority and a
// definition. For each queue and exchange the matching policy with the highest priority applies,
// and separately the matching operator policy with the highest priority. The two definitions are
// merged (numeric limits: the lower wins; other keys: the operator's), and the result meets the
// queue's own x-arguments: TTLs and limits take the lower value, dead-lettering, overflow and
// queue mode take the argument when there is one (RabbitMQ's res_min / res_arg). Exchanges take
// alternate-exchange from their argument first, from the policy otherwise.
//
// Validation follows RabbitMQ's keys, checks and texts ("Validation failed\n\n… is not a valid
// message TTL\n"); a policy that fails validation is never stored or applied.

import type { FieldTable } from '../protocol/field-table.js';
import type { QueueArguments } from './queue/arguments.js';

/** A JSON value as found in a policy definition. */
export type PolicyValue = string | number | boolean | null | PolicyValue[] | { [key: string]: PolicyValue };
export type PolicyDefinition = Record<string, PolicyValue>;
export type ApplyTo = 'queues' | 'exchanges' | 'all';

/** A policy as stored and exported (the fields of RabbitMQ's definitions JSON). */
export interface PolicySpec {
  vhost: string;
  name: string;
  pattern: string;
  applyTo: ApplyTo;
  priority: number;
  definition: PolicyDefinition;
}

/** What applies to one queue or exchange: names for the API, and the merged definition. */
export interface AppliedPolicy {
  /** name of the policy in force, or null */
  readonly policy: string | null;
  /** name of the operator policy in force, or null */
  readonly operatorPolicy: string | null;
  /** the merged definition (the API's effective_policy_definition) */
  readonly definition: Readonly<PolicyDefinition>;
}

export const NO_POLICY: AppliedPolicy = Object.freeze({ policy: null, operatorPolicy: null, definition: Object.freeze({}) });

export class PolicyValidationError extends Error {
  /** RabbitMQ's reason text, e.g. "Validation failed\n\n-1 is not a valid message TTL\n" */
  readonly reason: string;
  constructor(detail: string) {
    super(detail);
    this.reason = `Validation failed\n\n${detail}\n`;
  }
}

// ---- Validation -----------------------------------------------------------------------------------

/** A JSON value printed as an Erlang term, as RabbitMQ's messages show it. */
export function erlangTerm(value: unknown): string {
  if (typeof value === 'string') return `<<${JSON.stringify(value)}>>`;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (value === null || value === undefined) return 'null';
  if (Array.isArray(value)) return `[${value.map(erlangTerm).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>).map(([k, v]) => `{<<${JSON.stringify(k)}>>,${erlangTerm(v)}}`);
  return `[${entries.join(',')}]`;
}

const isNonNegInt = (v: PolicyValue): boolean => typeof v === 'number' && Number.isInteger(v) && v >= 0;
const isString = (v: PolicyValue): boolean => typeof v === 'string';

type KeyCheck = (v: PolicyValue) => string | null;
const check = (ok: (v: PolicyValue) => boolean, what: string): KeyCheck => (v) => (ok(v) ? null : `${erlangTerm(v)} ${what}`);
const oneOf = (values: readonly string[], what: string): KeyCheck =>
  check((v) => typeof v === 'string' && values.includes(v), what);
const anything: KeyCheck = () => null;

/** Keys RabbitMQ 3.10 recognises in a policy, and their checks. */
const POLICY_KEYS: Record<string, KeyCheck> = {
  'alternate-exchange': check(isString, 'is not a valid alternate exchange name'),
  'dead-letter-exchange': check(isString, 'is not a valid dead letter exchange name'),
  'dead-letter-routing-key': check(isString, 'is not a valid dead letter routing key'),
  'dead-letter-strategy': oneOf(['at-most-once', 'at-least-once'], 'is not a valid dead letter strategy'),
  'message-ttl': check(isNonNegInt, 'is not a valid message TTL'),
  expires: check((v) => isNonNegInt(v) && (v as number) >= 1, 'is not a valid queue expiry'),
  'max-length': check(isNonNegInt, 'is not a valid maximum length'),
  'max-length-bytes': check(isNonNegInt, 'is not a valid maximum length in bytes'),
  'max-in-memory-length': check(isNonNegInt, 'is not a valid maximum memory in bytes'),
  'max-in-memory-bytes': check(isNonNegInt, 'is not a valid maximum memory in bytes'),
  'delivery-limit': check(isNonNegInt, 'is not a valid delivery limit'),
  'queue-mode': oneOf(['default', 'lazy'], 'is not a valid queue-mode value'),
  'queue-version': check((v) => v === 1 || v === 2, 'is not a valid queue version'),
  overflow: oneOf(['drop-head', 'reject-publish', 'reject-publish-dlx'], 'is not a valid overflow value'),
  'queue-master-locator': oneOf(['min-masters', 'client-local', 'random'], 'is not a valid master locator'),
  'queue-leader-locator': oneOf(['client-local', 'balanced'], 'is not a valid leader locator'),
  'max-age': check(isString, 'is not a valid max age'),
  'stream-max-segment-size-bytes': check(isNonNegInt, 'is not a valid segment size'),
  'initial-cluster-size': check(isNonNegInt, 'is not a valid cluster size'),
  // Accepted as newer RabbitMQ versions accept it (3.10 does not know it); no effect on classic queues yet.
  'consumer-timeout': check(isNonNegInt, 'is not a valid consumer timeout'),
  // Classic mirroring: meaningless on a single node, accepted so definitions import.
  'ha-mode': oneOf(['all', 'exactly', 'nodes'], 'is not a valid ha-mode value'),
  'ha-params': anything,
  'ha-sync-mode': oneOf(['manual', 'automatic'], 'is not a valid ha-sync-mode value'),
  'ha-sync-batch-size': check(isNonNegInt, 'is not a valid ha-sync-batch-size value'),
  'ha-promote-on-shutdown': oneOf(['when-synced', 'always'], 'is not a valid ha-promote-on-shutdown value'),
  'ha-promote-on-failure': oneOf(['when-synced', 'always'], 'is not a valid ha-promote-on-failure value'),
};

/** Keys an operator policy may hold in RabbitMQ 3.10 (limits only). */
const OPERATOR_POLICY_KEYS = new Set([
  'expires',
  'message-ttl',
  'max-length',
  'max-length-bytes',
  'max-in-memory-length',
  'max-in-memory-bytes',
  'delivery-limit',
]);

/** Keys whose policy and operator-policy values merge to the lower one. */
const MIN_MERGED_KEYS = new Set([
  'message-ttl',
  'max-length',
  'max-length-bytes',
  'max-in-memory-length',
  'max-in-memory-bytes',
  'expires',
  'delivery-limit',
]);

/** Input for a policy as the HTTP API and definitions give it (loosely typed JSON). */
export interface PolicyInput {
  pattern?: unknown;
  'apply-to'?: unknown;
  priority?: unknown;
  definition?: unknown;
}

/** Validates a policy given as JSON; returns the spec or throws PolicyValidationError. */
export function validatePolicy(vhost: string, name: string, input: PolicyInput, operator: boolean): PolicySpec {
  if (input.pattern === undefined) throw new PolicyValidationError('pattern is missing');
  if (typeof input.pattern !== 'string') throw new PolicyValidationError(`pattern should be a string, actually was ${erlangTerm(input.pattern)}`);
  const pattern = input.pattern;
  try {
    new RegExp(pattern);
  } catch (err) {
    throw new PolicyValidationError(`pattern should be regular expression but is invalid: ${(err as Error).message}`);
  }
  const applyToRaw = input['apply-to'] ?? 'all';
  if (applyToRaw !== 'queues' && applyToRaw !== 'exchanges' && applyToRaw !== 'all') {
    throw new PolicyValidationError(`apply-to '${String(applyToRaw)}' unrecognised; should be 'queues', 'exchanges' or 'all'`);
  }
  let priority = 0;
  if (input.priority !== undefined) {
    const p = typeof input.priority === 'string' && /^-?\d+$/.test(input.priority) ? Number(input.priority) : input.priority;
    if (typeof p !== 'number' || !Number.isInteger(p)) {
      throw new PolicyValidationError(`priority should be a number, actually was ${erlangTerm(input.priority)}`);
    }
    priority = p;
  }
  const definition = input.definition;
  if (definition === null || typeof definition !== 'object' || Array.isArray(definition)) {
    throw new PolicyValidationError(`definition should be a JSON object, actually was ${erlangTerm(definition)}`);
  }
  const def = definition as PolicyDefinition;
  const keys = Object.keys(def);
  if (keys.length === 0) throw new PolicyValidationError('no policy provided');
  const unknown = keys.filter((k) => POLICY_KEYS[k] === undefined || (operator && !OPERATOR_POLICY_KEYS.has(k)));
  if (unknown.length > 0) {
    throw new PolicyValidationError(`${erlangTerm(Object.fromEntries(unknown.map((k) => [k, def[k]!])))} are not recognised policy settings`);
  }
  for (const key of keys) {
    const problem = POLICY_KEYS[key]!(def[key]!);
    if (problem !== null) throw new PolicyValidationError(problem);
  }
  const haSettings = ['ha-params', 'ha-sync-mode', 'ha-promote-on-shutdown', 'ha-promote-on-failure', 'ha-sync-batch-size'];
  if (def['ha-mode'] === undefined && keys.some((k) => haSettings.includes(k))) {
    throw new PolicyValidationError('ha-mode must be specified to specify ha-params, ha-sync-mode or ha-promote-on-shutdown');
  }
  return { vhost, name, pattern, applyTo: applyToRaw, priority, definition: { ...def } };
}

// ---- Matching -------------------------------------------------------------------------------------

class CompiledPolicy {
  readonly regex: RegExp;
  constructor(readonly spec: PolicySpec) {
    this.regex = new RegExp(spec.pattern);
  }

  appliesTo(kind: 'queue' | 'exchange', name: string): boolean {
    const to = this.spec.applyTo;
    if (to !== 'all' && to !== (kind === 'queue' ? 'queues' : 'exchanges')) return false;
    return this.regex.test(name);
  }
}

/** Highest priority wins; among equals, the first by name (RabbitMQ leaves ties unspecified). */
function better(a: CompiledPolicy, b: CompiledPolicy | null): boolean {
  if (b === null) return true;
  if (a.spec.priority !== b.spec.priority) return a.spec.priority > b.spec.priority;
  return a.spec.name < b.spec.name;
}

/** Merges a policy's and an operator policy's definitions as RabbitMQ's rabbit_policy:get does. */
export function mergeDefinitions(policy: PolicyDefinition | null, operator: PolicyDefinition | null): PolicyDefinition {
  if (operator === null) return policy === null ? {} : { ...policy };
  if (policy === null) return { ...operator };
  const out: PolicyDefinition = { ...policy };
  for (const [key, opValue] of Object.entries(operator)) {
    const value = out[key];
    if (value !== undefined && MIN_MERGED_KEYS.has(key) && typeof value === 'number' && typeof opValue === 'number') {
      out[key] = Math.min(value, opValue);
    } else out[key] = opValue;
  }
  return out;
}

/** Every policy and operator policy, per vhost. */
export class Policies {
  private readonly byVhost = new Map<string, Map<string, CompiledPolicy>>();
  private readonly operatorByVhost = new Map<string, Map<string, CompiledPolicy>>();

  private table(operator: boolean): Map<string, Map<string, CompiledPolicy>> {
    return operator ? this.operatorByVhost : this.byVhost;
  }

  /** Adds or replaces a (validated) policy. */
  put(spec: PolicySpec, operator: boolean): void {
    const table = this.table(operator);
    let byName = table.get(spec.vhost);
    if (byName === undefined) table.set(spec.vhost, (byName = new Map()));
    byName.set(spec.name, new CompiledPolicy(spec));
  }

  delete(vhost: string, name: string, operator: boolean): boolean {
    const table = this.table(operator);
    const byName = table.get(vhost);
    if (byName === undefined || !byName.delete(name)) return false;
    if (byName.size === 0) table.delete(vhost);
    return true;
  }

  get(vhost: string, name: string, operator: boolean): PolicySpec | undefined {
    return this.table(operator).get(vhost)?.get(name)?.spec;
  }

  list(operator: boolean, vhost?: string): PolicySpec[] {
    const out: PolicySpec[] = [];
    for (const [v, byName] of this.table(operator)) {
      if (vhost !== undefined && v !== vhost) continue;
      for (const p of byName.values()) out.push(p.spec);
    }
    return out;
  }

  removeVhost(vhost: string): void {
    this.byVhost.delete(vhost);
    this.operatorByVhost.delete(vhost);
  }

  /** Whether the vhost has any policy at all (declares skip matching when not). */
  hasAny(vhost: string): boolean {
    return this.byVhost.has(vhost) || this.operatorByVhost.has(vhost);
  }

  private best(operator: boolean, vhost: string, kind: 'queue' | 'exchange', name: string): CompiledPolicy | null {
    const byName = this.table(operator).get(vhost);
    if (byName === undefined) return null;
    let found: CompiledPolicy | null = null;
    for (const p of byName.values()) if (p.appliesTo(kind, name) && better(p, found)) found = p;
    return found;
  }

  /** What applies to a queue or exchange of this name. */
  match(vhost: string, kind: 'queue' | 'exchange', name: string): AppliedPolicy {
    if (!this.hasAny(vhost)) return NO_POLICY;
    const policy = this.best(false, vhost, kind, name);
    const operator = this.best(true, vhost, kind, name);
    if (policy === null && operator === null) return NO_POLICY;
    return {
      policy: policy?.spec.name ?? null,
      operatorPolicy: operator?.spec.name ?? null,
      definition: mergeDefinitions(policy?.spec.definition ?? null, operator?.spec.definition ?? null),
    };
  }
}

/** Whether two applied policies have the same effect and names (nothing to re-apply). */
export function samePolicy(a: AppliedPolicy, b: AppliedPolicy): boolean {
  return a.policy === b.policy && a.operatorPolicy === b.operatorPolicy && JSON.stringify(a.definition) === JSON.stringify(b.definition);
}

// ---- Effect on queues -----------------------------------------------------------------------------

function minDefined(arg: number | undefined, policy: PolicyValue | undefined): number | undefined {
  if (typeof policy !== 'number') return arg;
  return arg === undefined ? policy : Math.min(arg, policy);
}

function argFirst<T extends string>(argSet: boolean, arg: T, policy: PolicyValue | undefined): T {
  if (argSet || typeof policy !== 'string') return arg;
  return policy as T;
}

/**
 * A queue's effective settings: its declared (parsed) arguments combined with the applied policy
 * definition, by RabbitMQ's rules (lower of the two for TTLs and limits, the argument first for
 * dead-lettering, overflow and queue mode).
 */
export function queueOptionsWithPolicy(declared: QueueArguments, args: FieldTable, def: Readonly<PolicyDefinition>): QueueArguments {
  if (Object.keys(def).length === 0) return declared;
  const dlx = def['dead-letter-exchange'];
  const dlrk = def['dead-letter-routing-key'];
  return {
    ...declared,
    messageTtlMs: minDefined(declared.messageTtlMs, def['message-ttl']),
    expiresMs: minDefined(declared.expiresMs, def['expires']),
    maxLength: minDefined(declared.maxLength, def['max-length']),
    maxLengthBytes: minDefined(declared.maxLengthBytes, def['max-length-bytes']),
    deadLetterExchange: declared.deadLetterExchange ?? (typeof dlx === 'string' ? dlx : undefined),
    deadLetterRoutingKey: declared.deadLetterRoutingKey ?? (typeof dlrk === 'string' ? dlrk : undefined),
    overflow: argFirst(args['x-overflow'] !== undefined, declared.overflow, def['overflow']),
    queueMode: argFirst(args['x-queue-mode'] !== undefined, declared.queueMode, def['queue-mode']),
  };
}

/** An exchange's alternate exchange: its argument first, the policy otherwise. */
export function policyAlternateExchange(def: Readonly<PolicyDefinition>): string | undefined {
  const ae = def['alternate-exchange'];
  return typeof ae === 'string' ? ae : undefined;
}
