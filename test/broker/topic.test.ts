// The topic exchange's trie against a naive matcher: for random sets of binding keys (with `*`,
// `#`, empty words) and random routing keys, the trie finds exactly the destinations the naive
// word-by-word matcher finds, each once — also after random bindings are removed again (pruning),
// and through the per-key cache. Plus a table of RabbitMQ's documented edge cases.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Binding, type Destination } from '../../src/broker/binding.js';
import { FanoutExchange } from '../../src/broker/exchange/fanout.js';
import { TopicExchange, splitTopicKey } from '../../src/broker/exchange/topic.js';
import type { Message } from '../../src/broker/message.js';

/** The definition, word by word: `*` is exactly one word, `#` zero or more. */
function naiveMatch(pattern: string[], words: string[]): boolean {
  if (pattern.length === 0) return words.length === 0;
  const [head, ...rest] = pattern;
  if (head === '#') {
    for (let skip = 0; skip <= words.length; skip++) if (naiveMatch(rest, words.slice(skip))) return true;
    return false;
  }
  if (words.length === 0) return false;
  return (head === '*' || head === words[0]) && naiveMatch(rest, words.slice(1));
}

const OPTIONS = { durable: false, autoDelete: false, internal: false, args: {} };
const NO_MESSAGE = {} as Message;

/** Destinations are exchanges here (any Destination will do; the trie only stores them). */
function destination(i: number): Destination {
  return new FanoutExchange('/', `d${i}`, OPTIONS);
}

function routeNames(x: TopicExchange, key: string): string[] {
  const out: Destination[] = [];
  x.route(key, NO_MESSAGE, out);
  return out.map((d) => d.name).sort();
}

const word = fc.constantFrom('a', 'b', 'c', '', '*', '#');
const bindingKey = fc.array(word, { maxLength: 5 }).map((w) => w.join('.'));
const routingKey = fc.array(fc.constantFrom('a', 'b', 'c', ''), { maxLength: 6 }).map((w) => w.join('.'));

describe('topic trie', () => {
  it('matches exactly what the naive matcher matches (bind, route, unbind, route again)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ key: bindingKey, dest: fc.integer({ min: 0, max: 5 }) }), { maxLength: 20 }),
        fc.array(routingKey, { minLength: 1, maxLength: 10 }),
        fc.array(fc.nat(), { maxLength: 10 }),
        (bindings, keys, removals) => {
          const x = new TopicExchange('/', 't', OPTIONS);
          const dests = Array.from({ length: 6 }, (_, i) => destination(i));
          const live = new Map<string, { key: string; dest: number }>();
          for (const b of bindings) {
            const binding = new Binding(x, dests[b.dest]!, b.key, {});
            if (x.addBinding(binding)) live.set(binding.key, b);
          }
          const expected = (key: string): string[] =>
            [...new Set([...live.values()].filter((b) => naiveMatch(splitTopicKey(b.key), splitTopicKey(key))).map((b) => `d${b.dest}`))].sort();
          for (const key of keys) {
            expect(routeNames(x, key), `key '${key}'`).toEqual(expected(key));
            expect(routeNames(x, key), `key '${key}' (cached)`).toEqual(expected(key));
          }
          const ids = [...live.keys()];
          for (const r of removals) {
            if (ids.length === 0) break;
            const id = ids.splice(r % ids.length, 1)[0]!;
            x.removeBinding(id);
            live.delete(id);
          }
          for (const key of keys) expect(routeNames(x, key), `key '${key}' after unbinding`).toEqual(expected(key));
        },
      ),
      { numRuns: 500 },
    );
  });

  it.each([
    ['#', '', true],
    ['#', 'a.b.c', true],
    ['*', '', false],
    ['*', 'a', true],
    ['*', 'a.b', false],
    ['a.#', 'a', true],
    ['a.#.b', 'a.b', true],
    ['a.#.b', 'a.x.y.b', true],
    ['a.*.b', 'a.b', false],
    ['#.#', 'a', true],
    ['a..b', 'a..b', true],
    ['a.*.b', 'a..b', true],
    ['', '', true],
    ['', 'a', false],
    ['*.*', 'a.', true],
  ])("binding key '%s', routing key '%s': %s", (pattern, key, matches) => {
    const x = new TopicExchange('/', 't', OPTIONS);
    x.addBinding(new Binding(x, destination(0), pattern, {}));
    expect(routeNames(x, key)).toEqual(matches ? ['d0'] : []);
    expect(naiveMatch(splitTopicKey(pattern), splitTopicKey(key))).toBe(matches);
  });

  it('unbinding everything leaves an empty trie (no dead branches)', () => {
    const x = new TopicExchange('/', 't', OPTIONS);
    const keys = ['a.b.c', 'a.*.c', 'a.#', '#', '*.*', 'a..b'];
    for (const k of keys) x.addBinding(new Binding(x, destination(0), k, {}));
    for (const b of [...x.bindings.keys()]) x.removeBinding(b);
    const root = (x as unknown as { root: { isEmpty: boolean } }).root;
    expect(root.isEmpty).toBe(true);
  });
});
