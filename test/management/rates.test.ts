// Message rates come from sampling the counters the broker keeps anyway: each tick reads them and
// keeps the per-second change since the previous tick. Driven here with explicit sample times.

import { describe, expect, it } from 'vitest';
import { RateSampler, type Visit } from '../../src/management/rates.js';

describe('RateSampler', () => {
  it('reports 0 until two samples exist, then the change per second, rounded to 0.1', () => {
    const queue = {};
    let published = 0;
    const sampler = new RateSampler((visit: Visit) => visit(queue, { publish: published }));
    expect(sampler.details(queue, 'publish')).toEqual({ rate: 0 });
    sampler.tick(10_000);
    expect(sampler.rate(queue, 'publish')).toBe(0);
    published = 251;
    sampler.tick(15_000);
    expect(sampler.details(queue, 'publish')).toEqual({ rate: 50.2 });
    sampler.tick(20_000);
    expect(sampler.rate(queue, 'publish')).toBe(0);
  });

  it('levels (queue depth) may fall, counters never report a negative rate', () => {
    const vhost = {};
    let messages = 100;
    let publish = 100;
    const sampler = new RateSampler((visit: Visit) => visit(vhost, { messages, publish }));
    sampler.tick(0);
    messages = 0;
    publish = 40; // a queue was deleted: the sum over live queues dropped
    sampler.tick(5_000);
    expect(sampler.rate(vhost, 'messages')).toBe(-20);
    expect(sampler.rate(vhost, 'publish')).toBe(0);
  });

  it('forgets objects that are gone (weakly held) and unknown keys read 0', () => {
    const sampler = new RateSampler(() => {});
    sampler.tick(0);
    expect(sampler.rate({}, 'publish')).toBe(0);
  });
});
