// The publish path's Router.routeList (with its fast path for a short list of matched queues)
// against Router.route (the general worklist walk): for random topologies of direct, fanout and
// topic exchanges — queues bound several times, exchange-to-exchange bindings with cycles,
// alternate exchanges — and random routing keys with and without CC keys, both give the same
// queues in the same order.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Binding, type Destination } from '../../src/broker/binding.js';
import { DirectExchange } from '../../src/broker/exchange/direct.js';
import type { Exchange } from '../../src/broker/exchange/exchange.js';
import { FanoutExchange } from '../../src/broker/exchange/fanout.js';
import { TopicExchange } from '../../src/broker/exchange/topic.js';
import type { Message } from '../../src/broker/message.js';
import type { Queue } from '../../src/broker/queue/queue.js';
import { Router } from '../../src/broker/routing.js';

const NO_MESSAGE = {} as Message;
/** Queues are only identities to the router: a named object of kind 'queue' stands for one. */
const queue = (i: number) => ({ kind: 'queue', name: `q${i}` }) as unknown as Queue;
const words = ['a', 'b', '*', '#'];

const topology = fc.record({
  exchanges: fc.array(fc.tuple(fc.constantFrom('direct', 'fanout', 'topic'), fc.option(fc.nat(5), { nil: undefined })), { minLength: 1, maxLength: 6 }),
  bindings: fc.array(fc.tuple(fc.nat(5), fc.boolean(), fc.nat(7), fc.array(fc.constantFrom(...words), { maxLength: 3 }), fc.nat(3)), { maxLength: 30 }),
  publishes: fc.array(fc.tuple(fc.nat(5), fc.array(fc.constantFrom('a', 'b'), { maxLength: 3 }), fc.option(fc.array(fc.constantFrom('a', 'b', 'a.b'), { maxLength: 2 }), { nil: null })), { minLength: 1, maxLength: 10 }),
});

describe('Router.routeList', () => {
  it('finds what route() finds, in the same order', () => {
    fc.assert(
      fc.property(topology, ({ exchanges, bindings, publishes }) => {
        const queues = Array.from({ length: 8 }, (_, i) => queue(i));
        const xs: Exchange[] = exchanges.map(([type, ae], i) => {
          const options = { durable: false, autoDelete: false, internal: false, args: ae === undefined ? {} : { 'alternate-exchange': `x${ae}` } };
          return type === 'direct' ? new DirectExchange('/', `x${i}`, options) : type === 'fanout' ? new FanoutExchange('/', `x${i}`, options) : new TopicExchange('/', `x${i}`, options);
        });
        for (const [src, toQueue, dst, key, argsId] of bindings) {
          const source = xs[src % xs.length]!;
          const destination: Destination = toQueue ? queues[dst]! : xs[dst % xs.length]!;
          source.addBinding(new Binding(source, destination, key.join('.'), argsId === 0 ? {} : { n: argsId }));
        }
        const router = new Router((name) => xs.find((x) => x.name === name));
        for (const [x, key, cc] of publishes) {
          const ex = xs[x % xs.length]!;
          const general = [...router.route(ex, key.join('.'), cc, NO_MESSAGE)].map((q) => q.name);
          const list = router.routeList(ex, key.join('.'), cc, NO_MESSAGE).map((q) => q.name);
          expect(list).toEqual(general);
        }
      }),
      { numRuns: 500 },
    );
  });

  it('a queue bound twice is reached once, first binding first', () => {
    const x = new FanoutExchange('/', 'f', { durable: false, autoDelete: false, internal: false, args: {} });
    const [q0, q1] = [queue(0), queue(1)];
    x.addBinding(new Binding(x, q1, '', {}));
    x.addBinding(new Binding(x, q0, '', {}));
    x.addBinding(new Binding(x, q1, 'again', {}));
    const router = new Router(() => undefined);
    expect(router.routeList(x, '', null, NO_MESSAGE).map((q) => q.name)).toEqual(['q1', 'q0']);
  });

  it('nothing matched: empty without an alternate exchange or CC; the alternate exchange or the CC key otherwise', () => {
    const opts = (args: Record<string, string>) => ({ durable: false, autoDelete: false, internal: false, args });
    const plain = new TopicExchange('/', 'plain', opts({}));
    const withAe = new TopicExchange('/', 'with-ae', opts({ 'alternate-exchange': 'ae' }));
    const ae = new FanoutExchange('/', 'ae', opts({}));
    const [q0, q1, q2] = [queue(0), queue(1), queue(2)];
    plain.addBinding(new Binding(plain, q0, 'a.*', {}));
    plain.addBinding(new Binding(plain, q1, 'cc.key', {}));
    withAe.addBinding(new Binding(withAe, q0, 'a.*', {}));
    ae.addBinding(new Binding(ae, q2, '', {}));
    const router = new Router((name) => [plain, withAe, ae].find((x) => x.name === name));
    const names = (x: Exchange, key: string, cc: string[] | null) => router.routeList(x, key, cc, NO_MESSAGE).map((q) => q.name);
    expect(names(plain, 'b.c', null)).toEqual([]);
    expect(names(plain, 'a.b', null)).toEqual(['q0']);
    expect(names(withAe, 'b.c', null)).toEqual(['q2']);
    expect(names(plain, 'b.c', ['cc.key'])).toEqual(['q1']);
    expect(names(plain, 'b.c', null)).toEqual([]); // and the list the calls above filled is not left over
  });
});
