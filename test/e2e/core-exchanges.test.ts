// Exchanges end to end (amqplib): the default and predeclared exchanges, the four exchange types
// with their edge cases, exchange.declare / delete / bind / unbind, bindings. Every expectation
// here is RabbitMQ's (run with WARREN_TEST_AMQP_URL pointing at a RabbitMQ to check).

import amqp from 'amqplib';
import { describe, expect, it } from 'vitest';
import * as M from '../../src/protocol/generated/amqp.js';
import { RawClient } from '../support/raw-client.js';
import { QUIET_MS, rejection, sleep, waitFor, useBroker } from '../support/harness.js';

const h = useBroker();

describe('vhost and the default exchange', () => {
  it("vhost '/' exists (explicit %2F in the URL)", async () => {
    const u = new URL(h.url);
    u.pathname = '/%2F';
    const conn = await amqp.connect(u.toString());
    try {
      const ch = await conn.createChannel();
      await ch.checkExchange('amq.direct');
    } finally {
      await conn.close();
    }
  });

  it('routes to the queue named by the routing key, and nowhere else', async () => {
    const conn = await h.connect();
    const ch = await h.channel(conn);
    const q1 = h.queue();
    const q2 = h.queue();
    await ch.assertQueue(q1, { durable: false });
    await ch.assertQueue(q2, { durable: false });
    const got = await h.route(
      conn,
      [
        { exchange: '', key: q1, label: 'one' },
        { exchange: '', key: q2, label: 'two' },
        { exchange: '', key: q1, label: 'three' },
        { exchange: '', key: `${q1}-missing`, label: 'lost' },
      ],
      [q1, q2],
    );
    expect(got).toEqual({ [q1]: ['one', 'three'], [q2]: ['two'] });
  });

  it('refuses queue.bind to the default exchange with 403', async () => {
    const ch = await h.channel();
    const q = h.queue();
    await ch.assertQueue(q, { durable: false });
    expect(await rejection(ch.bindQueue(q, '', q))).toMatchObject({
      code: 403,
      text: 'ACCESS_REFUSED - operation not permitted on the default exchange',
      classId: 50,
      methodId: 20,
    });
  });

  it('refuses queue.unbind from the default exchange with 403', async () => {
    const ch = await h.channel();
    const q = h.queue();
    await ch.assertQueue(q, { durable: false });
    expect(await rejection(ch.unbindQueue(q, '', q))).toMatchObject({
      code: 403,
      text: 'ACCESS_REFUSED - operation not permitted on the default exchange',
      classId: 50,
      methodId: 50,
    });
  });

  it('refuses exchange.bind with the default exchange as source or destination with 403', async () => {
    const conn = await h.connect();
    const x = h.exchange();
    const ch = await h.channel(conn);
    await ch.assertExchange(x, 'fanout', { durable: false });
    expect(await rejection(ch.bindExchange(x, '', 'k'))).toMatchObject({
      code: 403,
      text: 'ACCESS_REFUSED - operation not permitted on the default exchange',
      classId: 40,
      methodId: 30,
    });
    const ch2 = await h.channel(conn);
    expect(await rejection(ch2.bindExchange('', x, 'k'))).toMatchObject({
      code: 403,
      text: 'ACCESS_REFUSED - operation not permitted on the default exchange',
      classId: 40,
      methodId: 30,
    });
  });

  it("'amq.default' is not a name for it: 404 for publish, passive declare and bind", async () => {
    const conn = await h.connect();
    const ch = await h.channel(conn);
    const q = h.queue();
    await ch.assertQueue(q, { durable: false });
    ch.publish('amq.default', q, Buffer.from('x'));
    expect(await h.firstError(ch)).toMatchObject({ code: 404, text: "NOT_FOUND - no exchange 'amq.default' in vhost '/'", classId: 60, methodId: 40 });
    expect(await rejection((await h.channel(conn)).checkExchange('amq.default'))).toMatchObject({
      code: 404,
      text: "NOT_FOUND - no exchange 'amq.default' in vhost '/'",
    });
    expect(await rejection((await h.channel(conn)).bindQueue(q, 'amq.default', 'k'))).toMatchObject({
      code: 404,
      text: "NOT_FOUND - no exchange 'amq.default' in vhost '/'",
    });
  });

  it('refuses deleting the default exchange with 403', async () => {
    const ch = await h.channel();
    expect(await rejection(ch.deleteExchange(''))).toMatchObject({
      code: 403,
      text: 'ACCESS_REFUSED - operation not permitted on the default exchange',
      classId: 40,
      methodId: 20,
    });
  });

  it('refuses declaring the default exchange with 403, even passively', async () => {
    const conn = await h.connect();
    const ch = await h.channel(conn);
    expect(await rejection(ch.checkExchange(''))).toMatchObject({
      code: 403,
      text: 'ACCESS_REFUSED - operation not permitted on the default exchange',
      classId: 40,
      methodId: 10,
    });
    const ch2 = await h.channel(conn);
    expect(await rejection(ch2.assertExchange('', 'direct', { durable: true }))).toMatchObject({
      code: 403,
      text: 'ACCESS_REFUSED - operation not permitted on the default exchange',
      classId: 40,
      methodId: 10,
    });
  });
});

describe('predeclared exchanges', () => {
  it.each([
    ['amq.direct', 'direct'],
    ['amq.fanout', 'fanout'],
    ['amq.topic', 'topic'],
    ['amq.headers', 'headers'],
    ['amq.match', 'headers'],
  ])('%s exists, is a durable %s exchange', async (name, type) => {
    const conn = await h.connect();
    const ch = await h.channel(conn);
    await ch.checkExchange(name);
    // Redeclaring an existing amq.* exchange equivalently is allowed.
    await ch.assertExchange(name, type, { durable: true, autoDelete: false, internal: false });
    // …but not with a different type.
    const other = type === 'fanout' ? 'direct' : 'fanout';
    expect(await rejection(ch.assertExchange(name, other, { durable: true }))).toEqual(
      expect.objectContaining({
        code: 406,
        text: `PRECONDITION_FAILED - inequivalent arg 'type' for exchange '${name}' in vhost '/': received '${other}' but current is '${type}'`,
      }),
    );
  });

  it("refuses declaring a new exchange named 'amq.*' with 403", async () => {
    const ch = await h.channel();
    const name = `amq.${h.exchange('warren')}`;
    expect(await rejection(ch.assertExchange(name, 'direct', { durable: false }))).toMatchObject({
      code: 403,
      text: `ACCESS_REFUSED - exchange name '${name}' contains reserved prefix 'amq.*'`,
      classId: 40,
      methodId: 10,
    });
  });

  it("passive declare of a missing 'amq.*' exchange is 404", async () => {
    const ch = await h.channel();
    expect(await rejection(ch.checkExchange('amq.nothing-here'))).toMatchObject({
      code: 404,
      text: "NOT_FOUND - no exchange 'amq.nothing-here' in vhost '/'",
    });
  });
});

describe('exchange types', () => {
  it('direct: exact routing-key match, several queues per key, several keys per queue', async () => {
    const conn = await h.connect();
    const ch = await h.channel(conn);
    const x = h.exchange();
    const [qa, qb, qab] = [h.queue(), h.queue(), h.queue()];
    await ch.assertExchange(x, 'direct', { durable: false });
    for (const q of [qa, qb, qab]) await ch.assertQueue(q, { durable: false });
    await ch.bindQueue(qa, x, 'a');
    await ch.bindQueue(qb, x, 'b');
    await ch.bindQueue(qab, x, 'a');
    await ch.bindQueue(qab, x, 'b');
    await ch.bindQueue(qab, x, 'b'); // a duplicate binding is one binding
    const got = await h.route(
      conn,
      ['a', 'b', 'c', 'A', 'a.b', '', 'b'].map((key, i) => ({ exchange: x, key, label: `${i}:${key}` })),
      [qa, qb, qab],
    );
    expect(got).toEqual({
      [qa]: ['0:a'],
      [qb]: ['1:b', '6:b'],
      [qab]: ['0:a', '1:b', '6:b'],
    });
  });

  it('direct: the empty routing key is a key like any other', async () => {
    const conn = await h.connect();
    const ch = await h.channel(conn);
    const x = h.exchange();
    const q = h.queue();
    await ch.assertExchange(x, 'direct', { durable: false });
    await ch.assertQueue(q, { durable: false });
    await ch.bindQueue(q, x, '');
    const got = await h.route(conn, [{ exchange: x, key: '', label: 'empty' }, { exchange: x, key: 'k', label: 'k' }], [q]);
    expect(got).toEqual({ [q]: ['empty'] });
  });

  it('fanout: every bound queue gets every message, routing key ignored, once per queue', async () => {
    const conn = await h.connect();
    const ch = await h.channel(conn);
    const x = h.exchange();
    const [q1, q2] = [h.queue(), h.queue()];
    await ch.assertExchange(x, 'fanout', { durable: false });
    await ch.assertQueue(q1, { durable: false });
    await ch.assertQueue(q2, { durable: false });
    await ch.bindQueue(q1, x, 'ignored');
    await ch.bindQueue(q1, x, 'other'); // two bindings, still one copy
    await ch.bindQueue(q2, x, '');
    const got = await h.route(
      conn,
      [
        { exchange: x, key: 'x', label: 'm1' },
        { exchange: x, key: '', label: 'm2' },
      ],
      [q1, q2],
    );
    expect(got).toEqual({ [q1]: ['m1', 'm2'], [q2]: ['m1', 'm2'] });
  });

  it('topic: * is one word, # is zero or more, empty words and the empty key', async () => {
    const conn = await h.connect();
    const ch = await h.channel(conn);
    const x = h.exchange();
    await ch.assertExchange(x, 'topic', { durable: false });
    const patterns = ['#', '*', '#.#', 'a.#.b', 'a.*.b', 'a.#', '#.b', '*.*', 'a..b', '', 'a.*', '*.b.#', '#.a.#', 'a.b', '#.*', '*.#'];
    const queues: Record<string, string> = {};
    for (const p of patterns) {
      const q = h.queue();
      queues[p] = q;
      await ch.assertQueue(q, { durable: false });
      await ch.bindQueue(q, x, p);
    }
    const keys = ['', 'a', 'b', 'a.b', 'a.c.b', 'a.c.d.b', 'a..b', 'a.b.c', '.', 'a.', '.b', 'b.a', 'a.b.b', 'x.a.y'];
    const got = await h.route(
      conn,
      keys.map((key) => ({ exchange: x, key, label: key === '' ? '<empty>' : key })),
      Object.values(queues),
    );
    const byPattern: Record<string, string[]> = {};
    for (const p of patterns) byPattern[p] = got[queues[p]!]!;
    expect(byPattern).toEqual({
      '#': ['<empty>', 'a', 'b', 'a.b', 'a.c.b', 'a.c.d.b', 'a..b', 'a.b.c', '.', 'a.', '.b', 'b.a', 'a.b.b', 'x.a.y'],
      '*': ['a', 'b'],
      '#.#': ['<empty>', 'a', 'b', 'a.b', 'a.c.b', 'a.c.d.b', 'a..b', 'a.b.c', '.', 'a.', '.b', 'b.a', 'a.b.b', 'x.a.y'],
      'a.#.b': ['a.b', 'a.c.b', 'a.c.d.b', 'a..b', 'a.b.b'],
      'a.*.b': ['a.c.b', 'a..b', 'a.b.b'],
      'a.#': ['a', 'a.b', 'a.c.b', 'a.c.d.b', 'a..b', 'a.b.c', 'a.', 'a.b.b'],
      '#.b': ['b', 'a.b', 'a.c.b', 'a.c.d.b', 'a..b', '.b', 'a.b.b'],
      '*.*': ['a.b', '.', 'a.', '.b', 'b.a'],
      'a..b': ['a..b'],
      '': ['<empty>'],
      'a.*': ['a.b', 'a.'],
      '*.b.#': ['a.b', 'a.b.c', '.b', 'a.b.b'],
      '#.a.#': ['a', 'a.b', 'a.c.b', 'a.c.d.b', 'a..b', 'a.b.c', 'a.', 'b.a', 'a.b.b', 'x.a.y'],
      'a.b': ['a.b'],
      '#.*': ['a', 'b', 'a.b', 'a.c.b', 'a.c.d.b', 'a..b', 'a.b.c', '.', 'a.', '.b', 'b.a', 'a.b.b', 'x.a.y'],
      '*.#': ['a', 'b', 'a.b', 'a.c.b', 'a.c.d.b', 'a..b', 'a.b.c', '.', 'a.', '.b', 'b.a', 'a.b.b', 'x.a.y'],
    });
  });

  it('topic: 255-byte routing and binding keys', async () => {
    const conn = await h.connect();
    const ch = await h.channel(conn);
    const x = h.exchange();
    await ch.assertExchange(x, 'topic', { durable: false });
    const left = 'l'.repeat(127);
    const right = 'r'.repeat(127);
    const key = `${left}.${right}`; // 255 bytes
    expect(Buffer.byteLength(key)).toBe(255);
    const exact = h.queue();
    const star = h.queue();
    const hash = h.queue();
    await ch.assertQueue(exact, { durable: false });
    await ch.assertQueue(star, { durable: false });
    await ch.assertQueue(hash, { durable: false });
    await ch.bindQueue(exact, x, key);
    await ch.bindQueue(star, x, `*.${right}`);
    await ch.bindQueue(hash, x, `${left}.#`);
    const got = await h.route(
      conn,
      [
        { exchange: x, key, label: 'full' },
        { exchange: x, key: `${left}.${right.slice(1)}x`, label: 'near' },
        { exchange: x, key: `${'z'.repeat(127)}.${right}`, label: 'other-left' },
      ],
      [exact, star, hash],
    );
    expect(got).toEqual({ [exact]: ['full'], [star]: ['full', 'other-left'], [hash]: ['full', 'near'] });
  });

  it('headers: x-match all / any, default all, x- keys ignored, void = presence, routing key ignored', async () => {
    const conn = await h.connect();
    const ch = await h.channel(conn);
    const x = h.exchange();
    await ch.assertExchange(x, 'headers', { durable: false });
    const bindings: Record<string, Record<string, unknown>> = {
      all: { 'x-match': 'all', a: 'one', b: 2 },
      any: { 'x-match': 'any', a: 'one', b: 2 },
      dflt: { a: 'one', b: 2 },
      allx: { 'x-match': 'all', 'x-extra': 'v', a: 'one' },
      anyx: { 'x-match': 'any', 'x-extra': 'v' },
      allEmpty: { 'x-match': 'all' },
      anyEmpty: { 'x-match': 'any' },
      voidAll: { 'x-match': 'all', a: null },
      voidAny: { 'x-match': 'any', a: null, c: 'three' },
      bool: { flag: true },
    };
    const queues: Record<string, string> = {};
    for (const [name, args] of Object.entries(bindings)) {
      const q = h.queue();
      queues[name] = q;
      await ch.assertQueue(q, { durable: false });
      await ch.bindQueue(q, x, 'ignored-key', args);
    }
    const messages: [string, Record<string, unknown> | undefined][] = [
      ['none', undefined],
      ['empty', {}],
      ['a', { a: 'one' }],
      ['ab', { a: 'one', b: 2 }],
      ['abc', { a: 'one', b: 2, c: 'three' }],
      ['a-wrong', { a: 'two' }],
      ['b', { b: 2 }],
      ['a-other-type', { a: 7 }],
      ['xextra', { 'x-extra': 'v' }],
      ['a-xextra', { a: 'one', 'x-extra': 'v' }],
      ['c', { c: 'three' }],
      ['flag', { flag: true }],
      ['flag-false', { flag: false }],
    ];
    const got = await h.route(
      conn,
      messages.map(([label, headers]) => ({ exchange: x, key: 'anything', label, ...(headers ? { headers } : {}) })),
      Object.values(queues),
    );
    const byBinding: Record<string, string[]> = {};
    for (const name of Object.keys(bindings)) byBinding[name] = got[queues[name]!]!;
    expect(byBinding).toEqual({
      all: ['ab', 'abc'],
      any: ['a', 'ab', 'abc', 'b', 'a-xextra'],
      dflt: ['ab', 'abc'],
      allx: ['a', 'ab', 'abc', 'a-xextra'],
      anyx: [],
      allEmpty: messages.map(([label]) => label),
      anyEmpty: [],
      voidAll: ['a', 'ab', 'abc', 'a-wrong', 'a-other-type', 'a-xextra'],
      voidAny: ['a', 'ab', 'abc', 'a-wrong', 'a-other-type', 'a-xextra', 'c'],
      bool: ['flag'],
    });
  });

  it('headers: all-with-x and any-with-x also match x- keys', async () => {
    const conn = await h.connect();
    const ch = await h.channel(conn);
    const x = h.exchange();
    await ch.assertExchange(x, 'headers', { durable: false });
    const bindings: Record<string, Record<string, unknown>> = {
      allWithX: { 'x-match': 'all-with-x', 'x-extra': 'v', a: 'one' },
      anyWithX: { 'x-match': 'any-with-x', 'x-extra': 'v', a: 'one' },
      anyWithXOnly: { 'x-match': 'any-with-x', 'x-extra': 'v' },
      allWithXEmpty: { 'x-match': 'all-with-x' },
    };
    const queues: Record<string, string> = {};
    for (const [name, args] of Object.entries(bindings)) {
      const q = h.queue();
      queues[name] = q;
      await ch.assertQueue(q, { durable: false });
      await ch.bindQueue(q, x, '', args);
    }
    const messages: [string, Record<string, unknown>][] = [
      ['a', { a: 'one' }],
      ['xextra', { 'x-extra': 'v' }],
      ['both', { a: 'one', 'x-extra': 'v' }],
      ['xextra-wrong', { a: 'one', 'x-extra': 'w' }],
      ['none', {}],
    ];
    const got = await h.route(
      conn,
      messages.map(([label, headers]) => ({ exchange: x, key: '', label, headers })),
      Object.values(queues),
    );
    const byBinding: Record<string, string[]> = {};
    for (const name of Object.keys(bindings)) byBinding[name] = got[queues[name]!]!;
    expect(byBinding).toEqual({
      allWithX: ['both'],
      anyWithX: ['a', 'xextra', 'both', 'xextra-wrong'],
      anyWithXOnly: ['xextra', 'both'],
      allWithXEmpty: ['a', 'xextra', 'both', 'xextra-wrong', 'none'],
    });
  });

  it('headers: numbers of any field type compare by value; strings, byte arrays and numbers do not mix', async () => {
    const conn = await h.connect();
    const ch = await h.channel(conn);
    const x = h.exchange();
    await ch.assertExchange(x, 'headers', { durable: false });
    // amqplib encodes 5 as a signed byte ('b'); typed values pick another field type.
    const bindings: Record<string, Record<string, unknown>> = {
      byte5: { n: 5 },
      int5: { n: { '!': 'int', value: 5 } },
      long5: { n: { '!': 'long', value: 5 } },
      double5: { n: { '!': 'double', value: 5 } },
      double2_5: { n: 2.5 },
      str5: { n: '5' },
      bytes5: { n: Buffer.from('5') },
      boolTrue: { n: true },
      void: { n: null },
    };
    const queues: Record<string, string> = {};
    for (const [name, args] of Object.entries(bindings)) {
      const q = h.queue();
      queues[name] = q;
      await ch.assertQueue(q, { durable: false });
      await ch.bindQueue(q, x, '', args);
    }
    const messages: [string, Record<string, unknown>][] = [
      ['byte5', { n: 5 }],
      ['byte6', { n: 6 }],
      ['short5', { n: { '!': 'short', value: 5 } }],
      ['int5', { n: { '!': 'int', value: 5 } }],
      ['long5', { n: { '!': 'long', value: 5 } }],
      ['ubyte5', { n: { '!': 'unsignedbyte', value: 5 } }],
      ['uint5', { n: { '!': 'unsignedint', value: 5 } }],
      ['double5', { n: { '!': 'double', value: 5 } }],
      ['float5', { n: { '!': 'float', value: 5 } }],
      ['double2_5', { n: 2.5 }],
      ['float2_5', { n: { '!': 'float', value: 2.5 } }],
      ['str5', { n: '5' }],
      ['bytes5', { n: Buffer.from('5') }],
      ['bool1', { n: true }],
      ['byte1', { n: 1 }],
      ['void', { n: null }],
    ];
    const got = await h.route(
      conn,
      messages.map(([label, headers]) => ({ exchange: x, key: '', label, headers })),
      Object.values(queues),
    );
    const byBinding: Record<string, string[]> = {};
    for (const name of Object.keys(bindings)) byBinding[name] = got[queues[name]!]!;
    const fives = ['byte5', 'short5', 'int5', 'long5', 'ubyte5', 'uint5', 'double5', 'float5'];
    expect(byBinding).toEqual({
      byte5: fives,
      int5: fives,
      long5: fives,
      double5: fives,
      double2_5: ['double2_5', 'float2_5'],
      str5: ['str5', 'bytes5'],
      bytes5: ['str5', 'bytes5'],
      boolTrue: ['bool1'],
      void: messages.map(([label]) => label),
    });
  });

  it('headers: an invalid x-match value is refused with 406', async () => {
    const ch = await h.channel();
    const x = h.exchange();
    const q = h.queue();
    await ch.assertExchange(x, 'headers', { durable: false });
    await ch.assertQueue(q, { durable: false });
    expect(await rejection(ch.bindQueue(q, x, '', { 'x-match': 'some' }))).toMatchObject({
      code: 406,
      text: "PRECONDITION_FAILED - Invalid x-match field value <<\"some\">>; expected all, any, all-with-x, or any-with-x",
      classId: 50,
      methodId: 20,
    });
  });

  it('headers: unbinding needs the same arguments', async () => {
    const conn = await h.connect();
    const ch = await h.channel(conn);
    const x = h.exchange();
    const q = h.queue();
    await ch.assertExchange(x, 'headers', { durable: false });
    await ch.assertQueue(q, { durable: false });
    await ch.bindQueue(q, x, '', { 'x-match': 'any', a: 'one' });
    await ch.unbindQueue(q, x, '', { 'x-match': 'any', a: 'two' }); // no such binding: still ok
    expect(await h.route(conn, [{ exchange: x, key: '', label: 'm1', headers: { a: 'one' } }], [q])).toEqual({ [q]: ['m1'] });
    await ch.unbindQueue(q, x, '', { 'x-match': 'any', a: 'one' });
    expect(await h.route(conn, [{ exchange: x, key: '', label: 'm2', headers: { a: 'one' } }], [q])).toEqual({ [q]: [] });
  });
});

describe('exchange.declare', () => {
  it('passive declare of a missing exchange is 404 and closes the channel', async () => {
    const conn = await h.connect();
    const ch = await h.channel(conn);
    const x = h.exchange();
    expect(await rejection(ch.checkExchange(x))).toEqual(
      expect.objectContaining({ code: 404, text: `NOT_FOUND - no exchange '${x}' in vhost '/'`, classId: 40, methodId: 10 }),
    );
    expect(ch.closed).toBe(true);
    // The connection is fine.
    const ch2 = await h.channel(conn);
    await ch2.checkExchange('amq.direct');
  });

  it('declare-ok for a new exchange, and an equivalent redeclare succeeds', async () => {
    const ch = await h.channel();
    const x = h.exchange();
    expect(await ch.assertExchange(x, 'topic', { durable: true })).toEqual({ exchange: x });
    expect(await ch.assertExchange(x, 'topic', { durable: true })).toEqual({ exchange: x });
    await ch.checkExchange(x);
  });

  it('redeclare with a different type is 406', async () => {
    const conn = await h.connect();
    const ch = await h.channel(conn);
    const x = h.exchange();
    await ch.assertExchange(x, 'direct', { durable: false });
    expect(await rejection(ch.assertExchange(x, 'fanout', { durable: false }))).toMatchObject({
      code: 406,
      text: `PRECONDITION_FAILED - inequivalent arg 'type' for exchange '${x}' in vhost '/': received 'fanout' but current is 'direct'`,
      classId: 40,
      methodId: 10,
    });
  });

  it('redeclare with a different durable flag is 406', async () => {
    const conn = await h.connect();
    const ch = await h.channel(conn);
    const x = h.exchange();
    await ch.assertExchange(x, 'direct', { durable: true });
    expect(await rejection(ch.assertExchange(x, 'direct', { durable: false }))).toMatchObject({
      code: 406,
      text: `PRECONDITION_FAILED - inequivalent arg 'durable' for exchange '${x}' in vhost '/': received 'false' but current is 'true'`,
    });
    const ch2 = await h.channel(conn);
    const y = h.exchange();
    await ch2.assertExchange(y, 'direct', { durable: false });
    expect(await rejection(ch2.assertExchange(y, 'direct', { durable: true }))).toMatchObject({
      code: 406,
      text: `PRECONDITION_FAILED - inequivalent arg 'durable' for exchange '${y}' in vhost '/': received 'true' but current is 'false'`,
    });
  });

  it('redeclare with a different auto-delete flag is 406', async () => {
    const ch = await h.channel();
    const x = h.exchange();
    await ch.assertExchange(x, 'direct', { durable: false, autoDelete: false });
    expect(await rejection(ch.assertExchange(x, 'direct', { durable: false, autoDelete: true }))).toMatchObject({
      code: 406,
      text: `PRECONDITION_FAILED - inequivalent arg 'auto_delete' for exchange '${x}' in vhost '/': received 'true' but current is 'false'`,
    });
  });

  it('redeclare with a different internal flag is 406', async () => {
    const ch = await h.channel();
    const x = h.exchange();
    await ch.assertExchange(x, 'direct', { durable: false, internal: true });
    expect(await rejection(ch.assertExchange(x, 'direct', { durable: false, internal: false }))).toMatchObject({
      code: 406,
      text: `PRECONDITION_FAILED - inequivalent arg 'internal' for exchange '${x}' in vhost '/': received 'false' but current is 'true'`,
    });
  });

  it('redeclare with a different alternate-exchange argument is 406', async () => {
    const conn = await h.connect();
    const ch = await h.channel(conn);
    const x = h.exchange();
    await ch.assertExchange(x, 'direct', { durable: false, alternateExchange: 'ae1' });
    expect(await rejection(ch.assertExchange(x, 'direct', { durable: false, alternateExchange: 'ae2' }))).toMatchObject({
      code: 406,
      text: `PRECONDITION_FAILED - inequivalent arg 'alternate-exchange' for exchange '${x}' in vhost '/': received 'ae2' but current is 'ae1'`,
    });
    const ch2 = await h.channel(conn);
    expect(await rejection(ch2.assertExchange(x, 'direct', { durable: false }))).toMatchObject({
      code: 406,
      text: `PRECONDITION_FAILED - inequivalent arg 'alternate-exchange' for exchange '${x}' in vhost '/': received none but current is the value 'ae1' of type 'longstr'`,
    });
    const ch3 = await h.channel(conn);
    const y = h.exchange();
    await ch3.assertExchange(y, 'direct', { durable: false });
    expect(await rejection(ch3.assertExchange(y, 'direct', { durable: false, alternateExchange: 'ae2' }))).toMatchObject({
      code: 406,
      text: `PRECONDITION_FAILED - inequivalent arg 'alternate-exchange' for exchange '${y}' in vhost '/': received the value 'ae2' of type 'longstr' but current is none`,
    });
  });

  it('arguments other than alternate-exchange are not compared on redeclare', async () => {
    const ch = await h.channel();
    const x = h.exchange();
    await ch.assertExchange(x, 'direct', { durable: false, arguments: { foo: 'a' } });
    await ch.assertExchange(x, 'direct', { durable: false, arguments: { foo: 'b' } });
    await ch.assertExchange(x, 'direct', { durable: false });
    await ch.checkExchange(x);
  });

  it('an unknown exchange type is 503 COMMAND_INVALID and closes the connection', async () => {
    const conn = await h.connect();
    const ch = await h.channel(conn);
    const x = h.exchange();
    const err = await rejection(ch.assertExchange(x, 'no-such-type', { durable: false }));
    expect(err.code).not.toBe(200);
    const connErr = await h.firstError(conn);
    expect(connErr).toMatchObject({ code: 503, text: "COMMAND_INVALID - unknown exchange type 'no-such-type'" });
    await waitFor(() => conn.closed, 'the connection to close');
  });

  it('an unknown exchange type: the connection.close names exchange.declare (raw socket)', async () => {
    const c = await RawClient.handshake(h.port);
    h.cleanup(() => c.destroy());
    await c.openChannel(1);
    const x = h.exchange();
    c.send(1, { id: M.EXCHANGE_DECLARE, reserved1: 0, exchange: x, type: 'x-nope', passive: false, durable: false, autoDelete: false, internal: false, noWait: false, arguments: {} });
    expect(await c.expectConnectionClose()).toEqual({
      id: M.CONNECTION_CLOSE,
      replyCode: 503,
      replyText: "COMMAND_INVALID - unknown exchange type 'x-nope'",
      classId: 40,
      methodId: 10,
    });
    c.send(0, { id: M.CONNECTION_CLOSE_OK });
    await c.waitClosed();
  });

  it('a durable exchange is still there for a new connection; a passive declare does not care about flags', async () => {
    const ch = await h.channel();
    const x = h.exchange();
    await ch.assertExchange(x, 'fanout', { durable: true });
    const other = await h.channel();
    await other.checkExchange(x);
  });
});


describe('auto-delete exchanges', () => {
  it('are not deleted before they had a binding', async () => {
    const ch = await h.channel();
    const x = h.exchange();
    await ch.assertExchange(x, 'direct', { durable: false, autoDelete: true });
    await sleep(QUIET_MS);
    await ch.checkExchange(x);
  });

  it('are deleted when the last queue binding is removed by unbind', async () => {
    const conn = await h.connect();
    const ch = await h.channel(conn);
    const x = h.exchange();
    const q = h.queue();
    await ch.assertExchange(x, 'direct', { durable: false, autoDelete: true });
    await ch.assertQueue(q, { durable: false });
    await ch.bindQueue(q, x, 'k1');
    await ch.bindQueue(q, x, 'k2');
    await ch.unbindQueue(q, x, 'k1');
    await ch.checkExchange(x); // one binding left
    await ch.unbindQueue(q, x, 'k2');
    expect(await rejection(ch.checkExchange(x))).toMatchObject({ code: 404, text: `NOT_FOUND - no exchange '${x}' in vhost '/'` });
  });

  it('are deleted when the bound queue is deleted', async () => {
    const conn = await h.connect();
    const ch = await h.channel(conn);
    const x = h.exchange();
    const q = h.queue();
    await ch.assertExchange(x, 'fanout', { durable: false, autoDelete: true });
    await ch.assertQueue(q, { durable: false });
    await ch.bindQueue(q, x, '');
    await ch.deleteQueue(q);
    expect(await rejection(ch.checkExchange(x))).toMatchObject({ code: 404, text: `NOT_FOUND - no exchange '${x}' in vhost '/'` });
  });

  it('are deleted when the last exchange-to-exchange binding (as source) goes', async () => {
    const conn = await h.connect();
    const ch = await h.channel(conn);
    const src = h.exchange();
    const dst = h.exchange();
    await ch.assertExchange(src, 'fanout', { durable: false, autoDelete: true });
    await ch.assertExchange(dst, 'fanout', { durable: false });
    await ch.bindExchange(dst, src, '');
    await ch.unbindExchange(dst, src, '');
    expect(await rejection(ch.checkExchange(src))).toMatchObject({ code: 404, text: `NOT_FOUND - no exchange '${src}' in vhost '/'` });
    const ch2 = await h.channel(conn);
    await ch2.checkExchange(dst);
  });

  it('are deleted when their only queue goes with its exclusive owner', async () => {
    const owner = await h.connect();
    const och = await h.channel(owner);
    const x = h.exchange();
    const q = h.queue();
    await och.assertExchange(x, 'fanout', { durable: false, autoDelete: true });
    await och.assertQueue(q, { exclusive: true, durable: false });
    await och.bindQueue(q, x, '');
    await owner.close();
    const watcher = await h.connect();
    await waitFor(
      async () =>
        (await h.channel(watcher)).checkExchange(x).then(
          () => false,
          () => true,
        ),
      'the exchange to go',
    );
    expect(await rejection((await h.channel(watcher)).checkExchange(x))).toMatchObject({
      code: 404,
      text: `NOT_FOUND - no exchange '${x}' in vhost '/'`,
    });
  });

  it('are not deleted when they lose a binding as destination only', async () => {
    const conn = await h.connect();
    const ch = await h.channel(conn);
    const src = h.exchange();
    const dst = h.exchange();
    await ch.assertExchange(src, 'fanout', { durable: false });
    await ch.assertExchange(dst, 'fanout', { durable: false, autoDelete: true });
    await ch.bindExchange(dst, src, '');
    await ch.unbindExchange(dst, src, '');
    await ch.checkExchange(dst);
  });
});

describe('internal exchanges', () => {
  it('refuses publishing to an internal exchange with 403', async () => {
    const conn = await h.connect();
    const ch = await h.channel(conn);
    const x = h.exchange();
    await ch.assertExchange(x, 'fanout', { durable: false, internal: true });
    ch.publish(x, 'k', Buffer.from('hi'));
    expect(await h.firstError(ch)).toMatchObject({
      code: 403,
      text: `ACCESS_REFUSED - cannot publish to internal exchange '${x}' in vhost '/'`,
      classId: 60,
      methodId: 40,
    });
  });

  it('can be the destination of an exchange-to-exchange binding', async () => {
    const conn = await h.connect();
    const ch = await h.channel(conn);
    const front = h.exchange();
    const inner = h.exchange();
    const q = h.queue();
    await ch.assertExchange(front, 'direct', { durable: false });
    await ch.assertExchange(inner, 'topic', { durable: false, internal: true });
    await ch.assertQueue(q, { durable: false });
    await ch.bindExchange(inner, front, 'a.b');
    await ch.bindQueue(q, inner, 'a.*');
    const got = await h.route(
      conn,
      [
        { exchange: front, key: 'a.b', label: 'through' },
        { exchange: front, key: 'a.c', label: 'not-bound-on-front' },
      ],
      [q],
    );
    expect(got).toEqual({ [q]: ['through'] });
  });
});

describe('alternate exchanges', () => {
  it('receive what the exchange cannot route, and only that', async () => {
    const conn = await h.connect();
    const ch = await h.channel(conn);
    const x = h.exchange();
    const ae = h.exchange();
    const q = h.queue();
    const qae = h.queue();
    await ch.assertExchange(ae, 'fanout', { durable: false });
    await ch.assertExchange(x, 'direct', { durable: false, alternateExchange: ae });
    await ch.assertQueue(q, { durable: false });
    await ch.assertQueue(qae, { durable: false });
    await ch.bindQueue(q, x, 'known');
    await ch.bindQueue(qae, ae, '');
    const returned: string[] = [];
    const pub = await h.channel(conn);
    pub.on('return', (m) => returned.push(m.content.toString()));
    pub.publish(x, 'known', Buffer.from('routed'), { mandatory: true });
    pub.publish(x, 'unknown', Buffer.from('to-ae'), { mandatory: true });
    const got = await h.route(conn, [{ exchange: x, key: 'other', label: 'to-ae-2' }], [q, qae]);
    expect(got).toEqual({ [q]: ['routed'], [qae]: ['to-ae', 'to-ae-2'] });
    await sleep(QUIET_MS);
    expect(returned).toEqual([]);
  });

  it("an intermediate exchange's alternate exchange takes what that exchange cannot route", async () => {
    const conn = await h.connect();
    const ch = await h.channel(conn);
    const x1 = h.exchange();
    const x2 = h.exchange();
    const ae = h.exchange();
    const q = h.queue();
    const qae = h.queue();
    await ch.assertExchange(ae, 'fanout', { durable: false });
    await ch.assertExchange(x1, 'fanout', { durable: false });
    await ch.assertExchange(x2, 'direct', { durable: false, alternateExchange: ae });
    await ch.bindExchange(x2, x1, '');
    await ch.assertQueue(q, { durable: false });
    await ch.assertQueue(qae, { durable: false });
    await ch.bindQueue(q, x2, 'k');
    await ch.bindQueue(qae, ae, '');
    const got = await h.route(
      conn,
      [
        { exchange: x1, key: 'k', label: 'k' },
        { exchange: x1, key: 'other', label: 'other' },
      ],
      [q, qae],
    );
    expect(got).toEqual({ [q]: ['k'], [qae]: ['other'] });
  });

  it('a missing alternate exchange: unroutable stays unroutable (returned when mandatory)', async () => {
    const conn = await h.connect();
    const ch = await h.channel(conn);
    const x = h.exchange();
    await ch.assertExchange(x, 'direct', { durable: false, alternateExchange: h.exchange('missing-ae') });
    const returned: { code: number; text: string; body: string }[] = [];
    ch.on('return', (m: { fields: { replyCode: number; replyText: string }; content: Buffer }) =>
      returned.push({ code: m.fields.replyCode, text: m.fields.replyText, body: m.content.toString() }),
    );
    ch.publish(x, 'nowhere', Buffer.from('lost'), { mandatory: true });
    await waitFor(() => returned.length === 1, 'the return');
    expect(returned).toEqual([{ code: 312, text: 'NO_ROUTE', body: 'lost' }]);
  });
});


describe('exchange.delete', () => {
  it('if-unused on an exchange with a queue binding is 406', async () => {
    const conn = await h.connect();
    const ch = await h.channel(conn);
    const x = h.exchange();
    const q = h.queue();
    await ch.assertExchange(x, 'direct', { durable: false });
    await ch.assertQueue(q, { durable: false });
    await ch.bindQueue(q, x, 'k');
    expect(await rejection(ch.deleteExchange(x, { ifUnused: true }))).toMatchObject({
      code: 406,
      text: `PRECONDITION_FAILED - exchange '${x}' in vhost '/' in use`,
      classId: 40,
      methodId: 20,
    });
    const ch2 = await h.channel(conn);
    await ch2.checkExchange(x);
    await ch2.unbindQueue(q, x, 'k');
    await ch2.deleteExchange(x, { ifUnused: true });
    expect(await rejection(ch2.checkExchange(x))).toMatchObject({ code: 404 });
  });

  it('if-unused on an exchange that is the source of an exchange binding is 406', async () => {
    const conn = await h.connect();
    const ch = await h.channel(conn);
    const src = h.exchange();
    const dst = h.exchange();
    await ch.assertExchange(src, 'fanout', { durable: false });
    await ch.assertExchange(dst, 'fanout', { durable: false });
    await ch.bindExchange(dst, src, '');
    expect(await rejection(ch.deleteExchange(src, { ifUnused: true }))).toMatchObject({
      code: 406,
      text: `PRECONDITION_FAILED - exchange '${src}' in vhost '/' in use`,
    });
  });

  it('if-unused succeeds on an exchange that is only a destination', async () => {
    const conn = await h.connect();
    const ch = await h.channel(conn);
    const src = h.exchange();
    const dst = h.exchange();
    await ch.assertExchange(src, 'fanout', { durable: false });
    await ch.assertExchange(dst, 'fanout', { durable: false });
    await ch.bindExchange(dst, src, '');
    await ch.deleteExchange(dst, { ifUnused: true });
    expect(await rejection(ch.checkExchange(dst))).toMatchObject({ code: 404 });
  });

  it('deleting a missing exchange succeeds', async () => {
    const ch = await h.channel();
    await expect(ch.deleteExchange(h.exchange())).resolves.toEqual({});
    await ch.checkExchange('amq.direct'); // the channel is still open
  });

  it('deleting an exchange removes its bindings (a recreated one routes nowhere)', async () => {
    const conn = await h.connect();
    const ch = await h.channel(conn);
    const x = h.exchange();
    const q = h.queue();
    await ch.assertExchange(x, 'fanout', { durable: false });
    await ch.assertQueue(q, { durable: false });
    await ch.bindQueue(q, x, '');
    await ch.deleteExchange(x);
    await ch.assertExchange(x, 'fanout', { durable: false });
    expect(await h.route(conn, [{ exchange: x, key: '', label: 'm' }], [q])).toEqual({ [q]: [] });
  });
});

describe('exchange-to-exchange bindings', () => {
  it('bind routes through, unbind stops it', async () => {
    const conn = await h.connect();
    const ch = await h.channel(conn);
    const src = h.exchange();
    const dst = h.exchange();
    const q = h.queue();
    await ch.assertExchange(src, 'topic', { durable: false });
    await ch.assertExchange(dst, 'direct', { durable: false });
    await ch.assertQueue(q, { durable: false });
    await ch.bindExchange(dst, src, 'a.*');
    await ch.bindQueue(q, dst, 'a.b');
    const got = await h.route(
      conn,
      [
        { exchange: src, key: 'a.b', label: '1' },
        { exchange: src, key: 'a.c', label: '2' }, // reaches dst, no queue binding for a.c
        { exchange: src, key: 'b.b', label: '3' },
      ],
      [q],
    );
    expect(got).toEqual({ [q]: ['1'] });
    await ch.unbindExchange(dst, src, 'a.*');
    expect(await h.route(conn, [{ exchange: src, key: 'a.b', label: '4' }], [q])).toEqual({ [q]: [] });
  });

  it('a queue reached by two paths gets one copy', async () => {
    const conn = await h.connect();
    const ch = await h.channel(conn);
    const src = h.exchange();
    const mid = h.exchange();
    const q = h.queue();
    await ch.assertExchange(src, 'fanout', { durable: false });
    await ch.assertExchange(mid, 'fanout', { durable: false });
    await ch.assertQueue(q, { durable: false });
    await ch.bindExchange(mid, src, '');
    await ch.bindQueue(q, mid, '');
    await ch.bindQueue(q, src, '');
    expect(await h.route(conn, [{ exchange: src, key: '', label: 'once' }], [q])).toEqual({ [q]: ['once'] });
  });

  it('a cycle x1 → x2 → x1 delivers exactly once to each bound queue', async () => {
    const conn = await h.connect();
    const ch = await h.channel(conn);
    const x1 = h.exchange();
    const x2 = h.exchange();
    const q1 = h.queue();
    const q2 = h.queue();
    await ch.assertExchange(x1, 'fanout', { durable: false });
    await ch.assertExchange(x2, 'fanout', { durable: false });
    await ch.bindExchange(x2, x1, '');
    await ch.bindExchange(x1, x2, '');
    await ch.assertQueue(q1, { durable: false });
    await ch.assertQueue(q2, { durable: false });
    await ch.bindQueue(q1, x1, '');
    await ch.bindQueue(q2, x2, '');
    const got = await h.route(
      conn,
      [
        { exchange: x1, key: '', label: 'via-x1' },
        { exchange: x2, key: '', label: 'via-x2' },
      ],
      [q1, q2],
    );
    expect(got).toEqual({ [q1]: ['via-x1', 'via-x2'], [q2]: ['via-x1', 'via-x2'] });
  });

  it('deleting the destination exchange removes the exchange binding', async () => {
    const conn = await h.connect();
    const ch = await h.channel(conn);
    const x1 = h.exchange();
    const x2 = h.exchange();
    const q = h.queue();
    await ch.assertExchange(x1, 'fanout', { durable: false });
    await ch.assertExchange(x2, 'fanout', { durable: false });
    await ch.bindExchange(x2, x1, '');
    await ch.assertQueue(q, { durable: false });
    await ch.deleteExchange(x2);
    await ch.assertExchange(x2, 'fanout', { durable: false });
    await ch.bindQueue(q, x2, '');
    expect(await h.route(conn, [{ exchange: x1, key: '', label: 'via' }], [q])).toEqual({ [q]: [] });
  });

  it('an exchange bound to itself delivers once', async () => {
    const conn = await h.connect();
    const ch = await h.channel(conn);
    const x = h.exchange();
    const q = h.queue();
    await ch.assertExchange(x, 'fanout', { durable: false });
    await ch.bindExchange(x, x, '');
    await ch.assertQueue(q, { durable: false });
    await ch.bindQueue(q, x, '');
    expect(await h.route(conn, [{ exchange: x, key: '', label: 'self' }], [q])).toEqual({ [q]: ['self'] });
  });

  it('binding from or to a missing exchange is 404', async () => {
    const conn = await h.connect();
    const x = h.exchange();
    const missing = h.exchange('missing');
    const ch = await h.channel(conn);
    await ch.assertExchange(x, 'fanout', { durable: false });
    expect(await rejection(ch.bindExchange(x, missing, ''))).toMatchObject({
      code: 404,
      text: `NOT_FOUND - no exchange '${missing}' in vhost '/'`,
      classId: 40,
      methodId: 30,
    });
    const ch2 = await h.channel(conn);
    expect(await rejection(ch2.bindExchange(missing, x, ''))).toMatchObject({
      code: 404,
      text: `NOT_FOUND - no exchange '${missing}' in vhost '/'`,
    });
  });
});

describe('bindings', () => {
  it('unbinding a binding that does not exist succeeds', async () => {
    const conn = await h.connect();
    const ch = await h.channel(conn);
    const x = h.exchange();
    const q = h.queue();
    await ch.assertExchange(x, 'direct', { durable: false });
    await ch.assertQueue(q, { durable: false });
    await expect(ch.unbindQueue(q, x, 'never-bound')).resolves.toEqual({});
    await expect(ch.unbindExchange(x, 'amq.fanout', 'never-bound')).resolves.toEqual({});
    await ch.checkQueue(q);
  });

  it('queue.bind to a missing exchange is 404', async () => {
    const ch = await h.channel();
    const q = h.queue();
    const x = h.exchange('missing');
    await ch.assertQueue(q, { durable: false });
    expect(await rejection(ch.bindQueue(q, x, 'k'))).toMatchObject({
      code: 404,
      text: `NOT_FOUND - no exchange '${x}' in vhost '/'`,
      classId: 50,
      methodId: 20,
    });
  });

  it('queue.bind of a missing queue is 404', async () => {
    const ch = await h.channel();
    const q = h.queue('missing');
    expect(await rejection(ch.bindQueue(q, 'amq.direct', 'k'))).toMatchObject({
      code: 404,
      text: `NOT_FOUND - no queue '${q}' in vhost '/'`,
      classId: 50,
      methodId: 20,
    });
  });

  it('queue.unbind of a missing queue or from a missing exchange', async () => {
    const conn = await h.connect();
    const q = h.queue('missing');
    const x = h.exchange('missing');
    const ch = await h.channel(conn);
    const r1 = await ch.unbindQueue(q, 'amq.direct', 'k').then(
      () => 'ok',
      (e: unknown) => e,
    );
    const ch2 = await h.channel(conn);
    const real = h.queue();
    await ch2.assertQueue(real, { durable: false });
    const r2 = await ch2.unbindQueue(real, x, 'k').then(
      () => 'ok',
      (e: unknown) => e,
    );
    expect([r1, r2]).toEqual(['ok', 'ok']);
  });

  it('bindings with different routing keys or arguments are distinct', async () => {
    const conn = await h.connect();
    const ch = await h.channel(conn);
    const x = h.exchange();
    const q = h.queue();
    await ch.assertExchange(x, 'direct', { durable: false });
    await ch.assertQueue(q, { durable: false });
    await ch.bindQueue(q, x, 'k', { tag: 1 });
    await ch.bindQueue(q, x, 'k', { tag: 2 });
    await ch.unbindQueue(q, x, 'k', { tag: 1 });
    expect(await h.route(conn, [{ exchange: x, key: 'k', label: 'still' }], [q])).toEqual({ [q]: ['still'] });
    await ch.unbindQueue(q, x, 'k', { tag: 2 });
    expect(await h.route(conn, [{ exchange: x, key: 'k', label: 'gone' }], [q])).toEqual({ [q]: [] });
  });
});
