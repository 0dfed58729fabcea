// Headers exchange: bindings match on the message's headers table instead of its routing key.
// `x-match` = all (default) | any | all-with-x | any-with-x, as RabbitMQ 3.10. With all/any,
// binding arguments whose names start with "x-" are not part of the pattern. A pattern value of
// type void means "header present, any value". Values match when they are equal by value
// (numbers by numeric value). Patterns are compiled once, at bind time.

import { PreconditionFailed } from '../../protocol/errors.js';
import type { FieldTable, FieldValue } from '../../protocol/field-table.js';
import type { Binding, Destination } from '../binding.js';
import { fieldValuesEqual } from '../field-equality.js';
import type { Message } from '../message.js';
import { Exchange, removeFromArray } from './exchange.js';

type MatchMode = 'all' | 'any' | 'all-with-x' | 'any-with-x';

interface CompiledPattern {
  readonly destination: Destination;
  readonly all: boolean;
  readonly keys: string[];
  /** undefined = presence only (void) */
  readonly values: (FieldValue | undefined)[];
}

const MODES: readonly string[] = ['all', 'any', 'all-with-x', 'any-with-x'];

function matchMode(args: FieldTable): MatchMode {
  const mode = args['x-match'];
  if (mode === undefined) return 'all';
  if (typeof mode === 'string' && MODES.includes(mode)) return mode as MatchMode;
  throw new PreconditionFailed(
    `Invalid x-match field value ${typeof mode === 'string' ? `<<"${mode}">>` : String(mode)}; expected all, any, all-with-x, or any-with-x`,
  );
}

export function compilePattern(args: FieldTable, destination: Destination): CompiledPattern {
  const mode = matchMode(args);
  const withX = mode === 'all-with-x' || mode === 'any-with-x';
  const keys: string[] = [];
  const values: (FieldValue | undefined)[] = [];
  for (const key of Object.keys(args)) {
    if (key === 'x-match') continue;
    if (!withX && key.startsWith('x-')) continue;
    keys.push(key);
    const value = args[key];
    values.push(value === null ? undefined : value);
  }
  return { destination, all: mode === 'all' || mode === 'all-with-x', keys, values };
}

export function patternMatches(pattern: CompiledPattern, headers: FieldTable | undefined): boolean {
  const { keys, values } = pattern;
  if (pattern.all) {
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i]!;
      if (headers === undefined || !(key in headers)) return false;
      const want = values[i];
      if (want !== undefined && !fieldValuesEqual(want, headers[key])) return false;
    }
    return true;
  }
  if (headers === undefined) return false;
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i]!;
    if (!(key in headers)) continue;
    const want = values[i];
    if (want === undefined || fieldValuesEqual(want, headers[key])) return true;
  }
  return false;
}

export class HeadersExchange extends Exchange {
  readonly type = 'headers';
  private readonly patterns: CompiledPattern[] = [];
  private readonly byBinding = new Map<Binding, CompiledPattern>();

  override validateBindingArgs(args: FieldTable): void {
    matchMode(args);
  }

  protected indexBinding(binding: Binding): void {
    const pattern = compilePattern(binding.args, binding.destination);
    this.patterns.push(pattern);
    this.byBinding.set(binding, pattern);
  }

  protected unindexBinding(binding: Binding): void {
    const pattern = this.byBinding.get(binding);
    if (!pattern) return;
    this.byBinding.delete(binding);
    removeFromArray(this.patterns, pattern);
  }

  route(_routingKey: string, message: Message, out: Destination[]): void {
    if (this.patterns.length === 0) return;
    const headers = message.headers;
    for (const pattern of this.patterns) {
      if (patternMatches(pattern, headers)) out.push(pattern.destination);
    }
  }
}
