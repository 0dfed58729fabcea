// Topic exchange: routing keys and binding keys are dot-separated words; in a binding key `*`
// matches exactly one word and `#` zero or more. Bindings live in a trie keyed by word, so a match
// costs the depth of the key rather than the number of bindings; results are cached per routing
// key, and the cache is dropped whenever a binding changes.
//
// Splitting follows RabbitMQ: the empty key has zero words, "a..b" has three ("a", "", "b").

import type { Binding, Destination } from '../binding.js';
import type { Message } from '../message.js';
import { Exchange, removeFromArray } from './exchange.js';

let nextNodeId = 0;

class TopicNode {
  readonly id = nextNodeId++;
  readonly children = new Map<string, TopicNode>();
  star: TopicNode | null = null;
  hash: TopicNode | null = null;
  readonly destinations: Destination[] = [];

  get isEmpty(): boolean {
    return this.children.size === 0 && this.star === null && this.hash === null && this.destinations.length === 0;
  }
}

const CACHE_LIMIT = 10_000;

export function splitTopicKey(key: string): string[] {
  return key === '' ? [] : key.split('.');
}

export class TopicExchange extends Exchange {
  readonly type = 'topic';
  override readonly routesByKey = true;
  private readonly root = new TopicNode();
  private readonly cache = new Map<string, Destination[]>();

  protected indexBinding(binding: Binding): void {
    let node = this.root;
    for (const word of splitTopicKey(binding.routingKey)) {
      if (word === '*') node = node.star ??= new TopicNode();
      else if (word === '#') node = node.hash ??= new TopicNode();
      else {
        let child = node.children.get(word);
        if (!child) {
          child = new TopicNode();
          node.children.set(word, child);
        }
        node = child;
      }
    }
    node.destinations.push(binding.destination);
    this.cache.clear();
  }

  protected unindexBinding(binding: Binding): void {
    const words = splitTopicKey(binding.routingKey);
    const path: TopicNode[] = [this.root];
    let node: TopicNode | null | undefined = this.root;
    for (const word of words) {
      node = word === '*' ? node.star : word === '#' ? node.hash : node.children.get(word);
      if (!node) return;
      path.push(node);
    }
    removeFromArray(node.destinations, binding.destination);
    // Prune empty nodes bottom-up so the trie does not keep dead branches.
    for (let i = words.length; i > 0; i--) {
      const child = path[i]!;
      if (!child.isEmpty) break;
      const parent = path[i - 1]!;
      const word = words[i - 1]!;
      if (word === '*') parent.star = null;
      else if (word === '#') parent.hash = null;
      else parent.children.delete(word);
    }
    this.cache.clear();
  }

  route(routingKey: string, _message: Message, out: Destination[]): void {
    let matched = this.cache.get(routingKey);
    if (matched === undefined) {
      matched = this.match(routingKey);
      if (this.cache.size >= CACHE_LIMIT) this.cache.clear();
      this.cache.set(routingKey, matched);
    }
    for (let i = 0; i < matched.length; i++) out.push(matched[i]!);
  }

  /** All destinations whose binding key matches, each once. */
  match(routingKey: string): Destination[] {
    const found = new Set<Destination>();
    const words = splitTopicKey(routingKey);
    // Iterative walk over (node, word index) states; `seen` stops `#.#`-style patterns from
    // revisiting a state many times.
    const seen = new Set<number>();
    const width = words.length + 1;
    const nodes: TopicNode[] = [this.root];
    const positions: number[] = [0];
    while (nodes.length > 0) {
      const node = nodes.pop()!;
      const i = positions.pop()!;
      const state = node.id * width + i;
      if (seen.has(state)) continue;
      seen.add(state);
      if (node.hash) {
        // `#` may swallow zero or more of the remaining words.
        for (let j = i; j <= words.length; j++) {
          nodes.push(node.hash);
          positions.push(j);
        }
      }
      if (i === words.length) {
        for (const d of node.destinations) found.add(d);
        continue;
      }
      const child = node.children.get(words[i]!);
      if (child) {
        nodes.push(child);
        positions.push(i + 1);
      }
      if (node.star) {
        nodes.push(node.star);
        positions.push(i + 1);
      }
    }
    return [...found];
  }
}
