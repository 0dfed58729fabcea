// The topic exchange's routing (src/broker/exchange/topic.ts): a trie of binding-key words and a
// per-exchange cache of routing results. Checked three ways: a table of binding keys × routing keys
// whose expected matches were measured on RabbitMQ 3.10 (empty keys, empty words, `*` and `#` in
// every position, case, literal `*`/`#` words in a routing key); a property test against a naive
// recursive matcher; and the cache, which must forget results when bindings change and stay bounded.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Binding, type Destination } from '../../src/broker/binding.js';
import { FanoutExchange } from '../../src/broker/exchange/fanout.js';
import { TopicExchange, splitTopicKey } from '../../src/broker/exchange/topic.js';
import { Message } from '../../src/broker/message.js';

const OPTIONS = { durable: false, autoDelete: false, internal: false, args: {} };

/** A destination that is a real object (an exchange), named after its binding key. */
function destination(name: string): Destination {
  return new FanoutExchange('/', name, OPTIONS);
}

function bind(x: TopicExchange, key: string, dest: Destination = destination(`to ${key}`)): Binding {
  const b = new Binding(x, dest, key, {});
  x.addBinding(b);
  return b;
}

function route(x: TopicExchange, key: string): string[] {
  const out: Destination[] = [];
  x.route(key, new Message(x.name, key, Buffer.from([0, 0]), Buffer.alloc(0), 0), out);
  return out.map((d) => d.name).sort();
}

const ROUTING_KEYS = ["", ".", "a", "A", "a.b", "a..b", "a.x.b", "a.x.y.b", "b.a", "x.a.y", "..", "a.", ".a", "*", "#", "a.b.c"];

/** binding key → routing keys (of ROUTING_KEYS) RabbitMQ 3.10 delivered to a queue bound with it */
const RABBITMQ: [string, string[]][] = [
  ["", [""]],
  ["*", ["a", "A", "*", "#"]],
  ["#", ["", ".", "a", "A", "a.b", "a..b", "a.x.b", "a.x.y.b", "b.a", "x.a.y", "..", "a.", ".a", "*", "#", "a.b.c"]],
  ["*.*", [".", "a.b", "b.a", "a.", ".a"]],
  ["a.#", ["a", "a.b", "a..b", "a.x.b", "a.x.y.b", "a.", "a.b.c"]],
  ["#.a", ["a", "b.a", ".a"]],
  ["#.a.#", ["a", "a.b", "a..b", "a.x.b", "a.x.y.b", "b.a", "x.a.y", "a.", ".a", "a.b.c"]],
  ["a.*.b", ["a..b", "a.x.b"]],
  ["a.#.b", ["a.b", "a..b", "a.x.b", "a.x.y.b"]],
  ["#.#", ["", ".", "a", "A", "a.b", "a..b", "a.x.b", "a.x.y.b", "b.a", "x.a.y", "..", "a.", ".a", "*", "#", "a.b.c"]],
  ["a.*", ["a.b", "a."]],
  ["*.a", ["b.a", ".a"]],
  ["a..b", ["a..b"]],
  ["a.*.#", ["a.b", "a..b", "a.x.b", "a.x.y.b", "a.", "a.b.c"]],
  ["#.*", [".", "a", "A", "a.b", "a..b", "a.x.b", "a.x.y.b", "b.a", "x.a.y", "..", "a.", ".a", "*", "#", "a.b.c"]],
  ["A", ["A"]],
  ["*.#.*", [".", "a.b", "a..b", "a.x.b", "a.x.y.b", "b.a", "x.a.y", "..", "a.", ".a", "a.b.c"]],
];

/** Naive reference: `*` one word, `#` zero or more, anything else itself. */
function naiveMatch(pattern: readonly string[], words: readonly string[]): boolean {
  if (pattern.length === 0) return words.length === 0;
  const [p, ...rest] = pattern;
  if (p === '#') return naiveMatch(rest, words) || (words.length > 0 && naiveMatch(pattern, words.slice(1)));
  if (words.length === 0) return false;
  return (p === '*' || p === words[0]) && naiveMatch(rest, words.slice(1));
}

describe('topic routing', () => {
  it('splits keys as RabbitMQ: the empty key has no words, empty words count', () => {
    expect(splitTopicKey('')).toEqual([]);
    expect(splitTopicKey('.')).toEqual(['', '']);
    expect(splitTopicKey('a..b')).toEqual(['a', '', 'b']);
    expect(splitTopicKey('a.')).toEqual(['a', '']);
  });

  it.each(RABBITMQ)('binding key %j matches exactly what it matches on RabbitMQ 3.10', (bindingKey, expected) => {
    const x = new TopicExchange('/', 't', OPTIONS);
    bind(x, bindingKey, destination('q'));
    const matched = ROUTING_KEYS.filter((k) => route(x, k).length === 1);
    expect(matched).toEqual(expected);
  });

  it('all RabbitMQ bindings on one exchange: each routing key reaches exactly the queues it reached there', () => {
    const x = new TopicExchange('/', 't', OPTIONS);
    for (const [key] of RABBITMQ) bind(x, key, destination(`q[${key}]`));
    for (const k of ROUTING_KEYS) {
      const expected = RABBITMQ.filter(([, keys]) => keys.includes(k)).map(([b]) => `q[${b}]`).sort();
      expect(route(x, k), `routing key ${JSON.stringify(k)}`).toEqual(expected);
    }
  });

  it('a destination bound by several matching keys gets the message once', () => {
    const x = new TopicExchange('/', 't', OPTIONS);
    const q = destination('q');
    for (const key of ['#', 'a.*', 'a.b', '*.b', '#.b']) bind(x, key, q);
    expect(route(x, 'a.b')).toEqual(['q']);
    expect(route(x, 'z')).toEqual(['q']);
  });

  it('agrees with a naive matcher on random binding and routing keys (including empty words and literal * #)', () => {
    const word = fc.constantFrom('a', 'b', '', 'ab', '*', '#');
    const patternWord = fc.constantFrom('a', 'b', '', '*', '#');
    fc.assert(
      fc.property(fc.array(fc.array(patternWord, { maxLength: 5 }), { minLength: 1, maxLength: 6 }), fc.array(word, { maxLength: 6 }), (patterns, words) => {
        const x = new TopicExchange('/', 't', OPTIONS);
        const keys = [...new Set(patterns.map((p) => p.join('.')))];
        keys.forEach((key, i) => bind(x, key, destination(`d${i}`)));
        const routingKey = words.join('.');
        const expected = keys
          .map((key, i) => [key, `d${i}`] as const)
          .filter(([key]) => naiveMatch(splitTopicKey(key), splitTopicKey(routingKey)))
          .map(([, name]) => name)
          .sort();
        expect(route(x, routingKey)).toEqual(expected);
      }),
      { numRuns: 2000, seed: 8 },
    );
  });

  it('many # in a row stay cheap (no exponential walk) and still match', () => {
    const x = new TopicExchange('/', 't', OPTIONS);
    bind(x, Array.from({ length: 40 }, () => '#').join('.') + '.end', destination('q'));
    const key = Array.from({ length: 200 }, () => 'w').join('.');
    expect(route(x, key)).toEqual([]);
    expect(route(x, `${key}.end`)).toEqual(['q']);
  });

  it('the cache forgets a routing result when a binding is added or removed', () => {
    const x = new TopicExchange('/', 't', OPTIONS);
    const a = bind(x, 'a.*', destination('star'));
    expect(route(x, 'a.b')).toEqual(['star']);
    bind(x, 'a.#', destination('hash'));
    expect(route(x, 'a.b')).toEqual(['hash', 'star']);
    x.removeBinding(a.key);
    expect(route(x, 'a.b')).toEqual(['hash']);
  });

  it('unbinding prunes the trie: a removed key no longer matches, a sibling with a shared prefix still does', () => {
    const x = new TopicExchange('/', 't', OPTIONS);
    const deep = bind(x, 'a.b.c', destination('deep'));
    bind(x, 'a.b', destination('short'));
    x.removeBinding(deep.key);
    expect(route(x, 'a.b.c')).toEqual([]);
    expect(route(x, 'a.b')).toEqual(['short']);
    expect(x.match('a.b.c')).toEqual([]);
  });

  it('the routing cache is bounded: 25,000 distinct keys keep routing right', () => {
    const x = new TopicExchange('/', 't', OPTIONS);
    bind(x, 'k.*', destination('q'));
    for (let i = 0; i < 25_000; i++) expect(route(x, `k.${i}`)).toEqual(['q']);
    const cache = (x as unknown as { cache: Map<string, unknown> }).cache;
    expect(cache.size).toBeLessThanOrEqual(10_000);
  });
});
