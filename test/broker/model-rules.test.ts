// Pure pieces of the model, table-driven: policy merging and precedence against queue arguments
// (RabbitMQ's res_min / res_arg), Erlang-term printing in validation texts, permission checks
// (amq.default, '' matches nothing, {username}/{vhost}), and the per-channel publish cache: its
// decisions follow permission changes and its routing-key memory stays bounded.

import { describe, expect, it } from 'vitest';
import { PublishAccess, Permissions, TOPIC_CACHE_LIMIT } from '../../src/broker/permissions.js';
import { erlangTerm, mergeDefinitions, Policies, queueOptionsWithPolicy } from '../../src/broker/policies.js';
import { parseQueueArguments } from '../../src/broker/queue/arguments.js';

describe('mergeDefinitions (policy + operator policy)', () => {
  it.each([
    [{ 'message-ttl': 2000, 'dead-letter-exchange': 'd' }, { 'message-ttl': 1000 }, { 'message-ttl': 1000, 'dead-letter-exchange': 'd' }],
    [{ 'max-length': 5 }, { 'max-length': 7, expires: 10 }, { 'max-length': 5, expires: 10 }],
    [{ 'delivery-limit': 3, 'max-length-bytes': 10 }, { 'delivery-limit': 9, 'max-length-bytes': 1 }, { 'delivery-limit': 3, 'max-length-bytes': 1 }],
    [null, { 'max-length': 7 }, { 'max-length': 7 }],
    [{ 'max-length': 7 }, null, { 'max-length': 7 }],
    [null, null, {}],
  ])('%j + %j = %j', (policy, operator, merged) => {
    expect(mergeDefinitions(policy, operator)).toEqual(merged);
  });
});

describe('queueOptionsWithPolicy (arguments vs policy)', () => {
  const opts = (args: Record<string, unknown>, def: Record<string, unknown>) =>
    queueOptionsWithPolicy(parseQueueArguments(args as never, 'q', '/'), args as never, def as never);
  it.each([
    [{ 'x-message-ttl': 500 }, { 'message-ttl': 100 }, { messageTtlMs: 100 }],
    [{ 'x-message-ttl': 50 }, { 'message-ttl': 100 }, { messageTtlMs: 50 }],
    [{}, { 'message-ttl': 100, expires: 1000, 'max-length': 3, 'max-length-bytes': 9 }, { messageTtlMs: 100, expiresMs: 1000, maxLength: 3, maxLengthBytes: 9 }],
    [{ 'x-dead-letter-exchange': 'arg' }, { 'dead-letter-exchange': 'pol' }, { deadLetterExchange: 'arg' }],
    [{}, { 'dead-letter-exchange': 'pol', 'dead-letter-routing-key': 'k' }, { deadLetterExchange: 'pol', deadLetterRoutingKey: 'k' }],
    [{ 'x-overflow': 'drop-head' }, { overflow: 'reject-publish' }, { overflow: 'drop-head' }],
    [{}, { overflow: 'reject-publish' }, { overflow: 'reject-publish' }],
    [{ 'x-queue-mode': 'default' }, { 'queue-mode': 'lazy' }, { queueMode: 'default' }],
    [{}, { 'queue-mode': 'lazy' }, { queueMode: 'lazy' }],
  ])('args %j with policy %j → %j', (args, def, expected) => {
    expect(opts(args, def)).toMatchObject(expected);
  });
});

describe('policy matching', () => {
  it('highest priority wins, then the first by name; apply-to filters; patterns are searched, not anchored', () => {
    const p = new Policies();
    const put = (name: string, pattern: string, priority: number, applyTo: 'queues' | 'exchanges' | 'all' = 'all') =>
      p.put({ vhost: '/', name, pattern, priority, applyTo, definition: { 'max-length': priority } }, false);
    put('b', 'order', 1);
    put('a', 'order', 1);
    put('x', 'order', 5, 'exchanges');
    expect(p.match('/', 'queue', 'my-orders').policy).toBe('a');
    expect(p.match('/', 'exchange', 'my-orders').policy).toBe('x');
    expect(p.match('/', 'queue', 'other').policy).toBeNull();
    expect(p.match('other-vhost', 'queue', 'orders').policy).toBeNull();
  });
});

describe('erlangTerm (as RabbitMQ prints values in validation texts)', () => {
  it.each([
    ['x', '<<"x">>'],
    [10, '10'],
    [1.5, '1.5'],
    [true, 'true'],
    [{ 'max-priority': 10 }, '[{<<"max-priority">>,10}]'],
  ])('%j → %s', (value, text) => {
    expect(erlangTerm(value)).toBe(text);
  });
});

describe('Permissions', () => {
  it("checks the default exchange as amq.default; '' matches nothing; no entry refuses everything", () => {
    const p = new Permissions();
    p.set('u', '/', { configure: '', write: '^amq\\.default$', read: '.*' });
    expect(() => p.check('u', '/', 'write', 'exchange', '')).not.toThrow();
    // '' is RabbitMQ's '^$': only the empty name would pass, and no resource is checked under it.
    expect(() => p.check('u', '/', 'configure', 'queue', 'x')).toThrow("access to queue 'x' in vhost '/' refused for user 'u'");
    expect(() => p.check('u', 'other', 'read', 'queue', 'x')).toThrow("access to queue 'x' in vhost 'other' refused for user 'u'");
    expect(p.mayAccessVhost('u', '/')).toBe(true);
    expect(p.mayAccessVhost('u', 'other')).toBe(false);
  });

  it('expands {username} and {vhost} in topic permissions', () => {
    const p = new Permissions();
    p.setTopic('ann', 'v', { exchange: 't', write: '^{username}\\.', read: '^{vhost}\\.' });
    expect(() => p.checkTopic('ann', 'v', 'write', 't', 'ann.x')).not.toThrow();
    expect(() => p.checkTopic('ann', 'v', 'write', 't', 'bob.x')).toThrow("access to topic 'bob.x' in exchange 't' in vhost 'v' refused for user 'ann'");
    expect(() => p.checkTopic('ann', 'v', 'read', 't', 'v.x')).not.toThrow();
    expect(() => p.checkTopic('ann', 'v', 'write', 'other-exchange', 'anything')).not.toThrow();
  });
});

describe('PublishAccess (per-channel cache)', () => {
  const topic = { name: 't', type: 'topic' };
  it('follows permission changes (the version moves)', () => {
    const p = new Permissions();
    p.set('u', '/', { configure: '', write: '.*', read: '' });
    const access = new PublishAccess(p, 'u', '/');
    access.checkExchange(topic);
    access.checkRoutingKey(topic, 'a');
    p.set('u', '/', { configure: '', write: '^nothing$', read: '' });
    expect(() => access.checkExchange(topic)).toThrow("access to exchange 't' in vhost '/' refused for user 'u'");
    p.set('u', '/', { configure: '', write: '.*', read: '' });
    p.setTopic('u', '/', { exchange: 't', write: '^a', read: '' });
    access.checkExchange(topic);
    access.checkRoutingKey(topic, 'a1');
    expect(() => access.checkRoutingKey(topic, 'b')).toThrow("access to topic 'b' in exchange 't' in vhost '/' refused for user 'u'");
  });

  it(`remembers at most ${TOPIC_CACHE_LIMIT} routing keys, however many are published`, () => {
    const p = new Permissions();
    p.set('u', '/', { configure: '', write: '.*', read: '' });
    p.setTopic('u', '/', { exchange: 't', write: '.*', read: '' });
    const access = new PublishAccess(p, 'u', '/');
    access.checkExchange(topic);
    let peak = 0;
    for (let i = 0; i < 10_000; i++) {
      access.checkRoutingKey(topic, `key.${i}`);
      peak = Math.max(peak, access.cachedKeyCount);
    }
    expect(peak).toBe(TOPIC_CACHE_LIMIT);
    expect(access.cachedKeyCount).toBeLessThanOrEqual(TOPIC_CACHE_LIMIT);
  });
});
