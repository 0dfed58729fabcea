// Declaring quorum queues and streams (amqplib): the properties they require, the arguments each
// type accepts and refuses, the order RabbitMQ checks them in, redeclare equivalence, and
// conditional deletes. Every expectation was checked against RabbitMQ 3.10
// (WARREN_TEST_AMQP_URL=amqp://guest:guest@127.0.0.1:PORT npx vitest run … quorum-declare).

import { describe, expect, it } from 'vitest';
import { rejection, useBroker } from '../support/harness.js';

const h = useBroker();

const QUORUM = { 'x-queue-type': 'quorum' };
const STREAM = { 'x-queue-type': 'stream' };

interface Case {
  what: string;
  type: 'quorum' | 'stream';
  durable?: boolean;
  exclusive?: boolean;
  autoDelete?: boolean;
  args?: Record<string, unknown>;
  /** the reply text with Q for the queue name; undefined = accepted */
  refused?: string;
}

const module = { quorum: 'rabbit_quorum_queue', stream: 'rabbit_stream_queue' };
const unsupported = (type: 'quorum' | 'stream', arg: string): string =>
  `PRECONDITION_FAILED - invalid arg '${arg}' for queue 'Q' in vhost '/' of queue type ${module[type]}`;
const invalid = (arg: string, detail: string): string => `PRECONDITION_FAILED - invalid arg '${arg}' for queue 'Q' in vhost '/': ${detail}`;
const property = (p: string): string => `PRECONDITION_FAILED - invalid property '${p}' for queue 'Q' in vhost '/'`;

const CASES: Case[] = [
  // Properties: durable only, never exclusive or auto-delete (auto-delete is reported first).
  { what: 'non-durable', type: 'quorum', durable: false, refused: property('non-durable') },
  { what: 'exclusive', type: 'quorum', exclusive: true, refused: property('exclusive-owner') },
  { what: 'auto-delete', type: 'quorum', autoDelete: true, refused: property('auto-delete') },
  { what: 'exclusive and non-durable', type: 'quorum', durable: false, exclusive: true, refused: property('exclusive-owner') },
  { what: 'all three', type: 'quorum', durable: false, exclusive: true, autoDelete: true, refused: property('auto-delete') },
  { what: 'non-durable', type: 'stream', durable: false, refused: property('non-durable') },
  { what: 'exclusive', type: 'stream', exclusive: true, refused: property('exclusive-owner') },
  { what: 'auto-delete', type: 'stream', autoDelete: true, refused: property('auto-delete') },
  // Arguments are checked before properties; values before support.
  { what: 'a bad argument on a non-durable queue', type: 'quorum', durable: false, args: { 'x-max-priority': 3 }, refused: unsupported('quorum', 'x-max-priority') },
  { what: 'a bad value before an unsupported argument', type: 'quorum', args: { 'x-max-priority': 3, 'x-max-length': -1 }, refused: invalid('x-max-length', '{value_negative,-1}') },
  { what: 'the first unsupported argument in table order', type: 'quorum', args: { 'x-queue-mode': 'lazy', 'x-max-priority': 1 }, refused: unsupported('quorum', 'x-queue-mode') },
  // Quorum: accepted arguments.
  {
    what: 'its own argument set',
    type: 'quorum',
    args: {
      'x-delivery-limit': 3,
      'x-dead-letter-strategy': 'at-least-once',
      'x-dead-letter-exchange': 'dlx',
      'x-dead-letter-routing-key': 'k',
      'x-max-length': 10,
      'x-max-length-bytes': 1000,
      'x-overflow': 'reject-publish',
      'x-message-ttl': 1000,
      'x-expires': 60000,
      'x-single-active-consumer': true,
      'x-quorum-initial-group-size': 3,
      'x-max-in-memory-length': 5,
      'x-queue-leader-locator': 'balanced',
    },
  },
  { what: 'overflow drop-head', type: 'quorum', args: { 'x-overflow': 'drop-head' } },
  { what: 'overflow reject-publish-dlx (accepted, as RabbitMQ)', type: 'quorum', args: { 'x-overflow': 'reject-publish-dlx' } },
  { what: 'a negative delivery limit', type: 'quorum', args: { 'x-delivery-limit': -1 } },
  { what: 'an argument nobody knows', type: 'quorum', args: { 'x-foo': 1 } },
  // Quorum: refused arguments and values.
  { what: 'x-max-priority', type: 'quorum', args: { 'x-max-priority': 5 }, refused: unsupported('quorum', 'x-max-priority') },
  { what: 'x-queue-mode', type: 'quorum', args: { 'x-queue-mode': 'lazy' }, refused: unsupported('quorum', 'x-queue-mode') },
  { what: 'x-queue-version', type: 'quorum', args: { 'x-queue-version': 2 }, refused: unsupported('quorum', 'x-queue-version') },
  { what: 'x-queue-master-locator', type: 'quorum', args: { 'x-queue-master-locator': 'min-masters' }, refused: unsupported('quorum', 'x-queue-master-locator') },
  { what: 'x-max-age', type: 'quorum', args: { 'x-max-age': '1h' }, refused: unsupported('quorum', 'x-max-age') },
  { what: 'x-stream-max-segment-size-bytes', type: 'quorum', args: { 'x-stream-max-segment-size-bytes': 100 }, refused: unsupported('quorum', 'x-stream-max-segment-size-bytes') },
  { what: 'x-initial-cluster-size', type: 'quorum', args: { 'x-initial-cluster-size': 3 }, refused: unsupported('quorum', 'x-initial-cluster-size') },
  { what: 'an unknown overflow', type: 'quorum', args: { 'x-overflow': 'foo' }, refused: invalid('x-overflow', 'invalid_overflow') },
  { what: 'an unknown dead-letter strategy', type: 'quorum', args: { 'x-dead-letter-strategy': 'bogus' }, refused: invalid('x-dead-letter-strategy', 'invalid_dlx_strategy') },
  { what: 'a numeric dead-letter strategy', type: 'quorum', args: { 'x-dead-letter-strategy': 5 }, refused: invalid('x-dead-letter-strategy', '{unacceptable_type,byte}') },
  { what: 'a string group size', type: 'quorum', args: { 'x-quorum-initial-group-size': 'a' }, refused: invalid('x-quorum-initial-group-size', '"expected integer, got longstr"') },
  { what: 'a dead-letter routing key without exchange', type: 'quorum', args: { 'x-dead-letter-routing-key': 'k' }, refused: invalid('x-dead-letter-routing-key', 'routing_key_but_no_dlx_defined') },
  { what: 'a negative TTL', type: 'quorum', args: { 'x-message-ttl': -1 }, refused: invalid('x-message-ttl', '{value_negative,-1}') },
  { what: 'x-expires 0', type: 'quorum', args: { 'x-expires': 0 }, refused: invalid('x-expires', '{value_zero,0}') },
  { what: 'a string single-active-consumer', type: 'quorum', args: { 'x-single-active-consumer': 'yes' }, refused: invalid('x-single-active-consumer', '{unacceptable_type,longstr}') },
  { what: 'a bad leader locator', type: 'quorum', args: { 'x-queue-leader-locator': 'bogus' }, refused: invalid('x-queue-leader-locator', 'invalid_queue_locator_arg') },
  // Values are checked only for arguments the type supports; others are refused by name.
  { what: 'an out-of-range priority (unsupported first)', type: 'quorum', args: { 'x-max-priority': 300 }, refused: unsupported('quorum', 'x-max-priority') },
  { what: 'an unknown queue version (unsupported first)', type: 'stream', args: { 'x-queue-version': 3 }, refused: unsupported('stream', 'x-queue-version') },
  { what: 'a negative in-memory length', type: 'quorum', args: { 'x-max-in-memory-length': -1 }, refused: invalid('x-max-in-memory-length', '{value_negative,-1}') },
  { what: 'group size 0', type: 'quorum', args: { 'x-quorum-initial-group-size': 0 }, refused: invalid('x-quorum-initial-group-size', '{value_zero,0}') },
  { what: 'cluster size 0', type: 'stream', args: { 'x-initial-cluster-size': 0 }, refused: invalid('x-initial-cluster-size', '{value_zero,0}') },
  // Streams: accepted arguments.
  {
    what: 'its own argument set',
    type: 'stream',
    args: { 'x-max-length-bytes': 1000, 'x-max-age': '7D', 'x-stream-max-segment-size-bytes': 1000, 'x-initial-cluster-size': 1, 'x-queue-leader-locator': 'balanced' },
  },
  ...['1Y', '2M', '30m', '30s', '1h'].map((age): Case => ({ what: `x-max-age ${age}`, type: 'stream', args: { 'x-max-age': age } })),
  // Streams: refused arguments and values.
  ...['x-message-ttl', 'x-expires', 'x-max-length', 'x-max-priority', 'x-delivery-limit', 'x-quorum-initial-group-size', 'x-queue-version', 'x-max-in-memory-length'].map(
    (arg): Case => ({ what: arg, type: 'stream', args: { [arg]: 3 }, refused: unsupported('stream', arg) }),
  ),
  ...(
    [
      ['x-dead-letter-exchange', 'x'],
      ['x-overflow', 'reject-publish'],
      ['x-single-active-consumer', true],
      ['x-queue-mode', 'lazy'],
      ['x-queue-master-locator', 'min-masters'],
      ['x-dead-letter-strategy', 'at-least-once'],
    ] as [string, unknown][]
  ).map(([arg, value]): Case => ({ what: arg, type: 'stream', args: { [arg]: value }, refused: unsupported('stream', arg) })),
  { what: 'the first of two unsupported arguments', type: 'stream', args: { 'x-message-ttl': 3, 'x-max-priority': 1 }, refused: unsupported('stream', 'x-message-ttl') },
  ...['7X', '1.5h', '10', '1h30m', '1d', '0s'].map(
    (age): Case => ({ what: `x-max-age '${age}'`, type: 'stream', args: { 'x-max-age': age }, refused: invalid('x-max-age', 'invalid_max_age') }),
  ),
  { what: 'a numeric x-max-age', type: 'stream', args: { 'x-max-age': 7 }, refused: invalid('x-max-age', '{unacceptable_type,byte}') },
  { what: 'a negative size limit', type: 'stream', args: { 'x-max-length-bytes': -1 }, refused: invalid('x-max-length-bytes', '{value_negative,-1}') },
  { what: 'a string size limit', type: 'stream', args: { 'x-max-length-bytes': 'a' }, refused: invalid('x-max-length-bytes', '"expected integer, got longstr"') },
  { what: 'a negative segment size', type: 'stream', args: { 'x-stream-max-segment-size-bytes': -1 }, refused: invalid('x-stream-max-segment-size-bytes', '{value_negative,-1}') },
  { what: 'a segment size above 3 GB', type: 'stream', args: { 'x-stream-max-segment-size-bytes': 4_000_000_000 }, refused: 'PRECONDITION_FAILED - Exceeded max value for x-stream-max-segment-size-bytes' },
  { what: 'a string cluster size', type: 'stream', args: { 'x-initial-cluster-size': 'a' }, refused: invalid('x-initial-cluster-size', '"expected integer, got longstr"') },
];

describe('quorum queue and stream declaration', () => {
  for (const c of CASES) {
    it(`${c.type}: ${c.what} → ${c.refused === undefined ? 'accepted' : c.refused.slice(0, 60)}`, async () => {
      const ch = await h.channel();
      const q = h.queue(`decl-${c.type}`);
      const declared = ch.assertQueue(q, {
        durable: c.durable ?? true,
        exclusive: c.exclusive ?? false,
        autoDelete: c.autoDelete ?? false,
        arguments: { ...(c.type === 'quorum' ? QUORUM : STREAM), ...c.args },
      });
      if (c.refused === undefined) {
        expect(await declared).toEqual({ queue: q, messageCount: 0, consumerCount: 0 });
        return;
      }
      expect(await rejection(declared)).toEqual(expect.objectContaining({ code: 406, text: c.refused.replaceAll("'Q'", `'${q}'`), classId: 50, methodId: 10 }));
    });
  }

  it('a server-named quorum queue or stream is refused', async () => {
    for (const type of ['quorum', 'stream'] as const) {
      const ch = await h.channel();
      // Checked first: even a non-durable declare gets this answer.
      const f = await rejection(ch.assertQueue('', { durable: false, arguments: { 'x-queue-type': type } }));
      expect(f).toEqual(expect.objectContaining({ code: 406, text: `PRECONDITION_FAILED - Cannot declare a server-named queue for type ${module[type]}` }));
    }
  });

  it('classic queues refuse the other types’ arguments', async () => {
    for (const arg of ['x-delivery-limit', 'x-max-age', 'x-dead-letter-strategy', 'x-queue-leader-locator', 'x-initial-cluster-size', 'x-max-in-memory-length']) {
      const ch = await h.channel();
      const q = h.queue('decl-classic');
      const value = arg === 'x-max-age' ? '1h' : arg === 'x-dead-letter-strategy' ? 'at-least-once' : arg === 'x-queue-leader-locator' ? 'balanced' : 1;
      const f = await rejection(ch.assertQueue(q, { durable: true, arguments: { [arg]: value } }));
      expect(f.text).toBe(`PRECONDITION_FAILED - invalid arg '${arg}' for queue '${q}' in vhost '/' of queue type rabbit_classic_queue`);
    }
  });

  it('an unknown type, or a type that is not a string, is refused', async () => {
    let ch = await h.channel();
    const q = h.queue('decl-type');
    expect((await rejection(ch.assertQueue(q, { durable: true, arguments: { 'x-queue-type': 'foo' } }))).text).toBe(
      `PRECONDITION_FAILED - invalid arg 'x-queue-type' for queue '${q}' in vhost '/': "unsupported queue type 'foo'"`,
    );
    ch = await h.channel();
    expect((await rejection(ch.assertQueue(q, { durable: true, arguments: { 'x-queue-type': 5 } }))).text).toBe(
      `PRECONDITION_FAILED - invalid arg 'x-queue-type' for queue '${q}' in vhost '/': {unacceptable_type,byte}`,
    );
  });
});

describe('redeclaring', () => {
  it('a quorum queue: the type and its arguments must match', async () => {
    const conn = await h.connect();
    const q = h.queue('redecl-q');
    await (await h.channel(conn)).assertQueue(q, { durable: true, arguments: QUORUM });
    const expectRefusal = async (opts: object, text: string): Promise<void> => {
      const ch = await h.channel(conn);
      expect((await rejection(ch.assertQueue(q, opts))).text).toBe(text);
    };
    await expectRefusal(
      { durable: true },
      `PRECONDITION_FAILED - inequivalent arg 'x-queue-type' for queue '${q}' in vhost '/': received none but current is the value 'quorum' of type 'longstr'`,
    );
    await expectRefusal(
      { durable: true, arguments: { 'x-queue-type': 'classic' } },
      `PRECONDITION_FAILED - inequivalent arg 'x-queue-type' for queue '${q}' in vhost '/': received 'classic' but current is 'quorum'`,
    );
    await expectRefusal(
      { durable: true, arguments: { 'x-queue-type': 'stream' } },
      `PRECONDITION_FAILED - inequivalent arg 'x-queue-type' for queue '${q}' in vhost '/': received 'stream' but current is 'quorum'`,
    );
    await expectRefusal(
      { durable: true, arguments: { ...QUORUM, 'x-delivery-limit': 5 } },
      `PRECONDITION_FAILED - inequivalent arg 'x-delivery-limit' for queue '${q}' in vhost '/': received the value '5' of type 'byte' but current is none`,
    );
    await expectRefusal(
      { durable: true, arguments: { ...QUORUM, 'x-dead-letter-strategy': 'at-least-once' } },
      `PRECONDITION_FAILED - inequivalent arg 'x-dead-letter-strategy' for queue '${q}' in vhost '/': received the value 'at-least-once' of type 'longstr' but current is none`,
    );
    await expectRefusal(
      { durable: true, arguments: { ...QUORUM, 'x-quorum-initial-group-size': 5 } },
      `PRECONDITION_FAILED - inequivalent arg 'x-quorum-initial-group-size' for queue '${q}' in vhost '/': received the value '5' of type 'byte' but current is none`,
    );
    await expectRefusal(
      { durable: false, arguments: QUORUM },
      `PRECONDITION_FAILED - inequivalent arg 'durable' for queue '${q}' in vhost '/': received 'false' but current is 'true'`,
    );
    const ch = await h.channel(conn);
    expect(await ch.assertQueue(q, { durable: true, arguments: QUORUM })).toEqual({ queue: q, messageCount: 0, consumerCount: 0 });
    expect(await ch.checkQueue(q)).toEqual({ queue: q, messageCount: 0, consumerCount: 0 });
  });

  it('a classic queue redeclared as quorum is refused', async () => {
    const conn = await h.connect();
    const q = h.queue('redecl-c');
    await (await h.channel(conn)).assertQueue(q, { durable: true });
    const ch = await h.channel(conn);
    expect((await rejection(ch.assertQueue(q, { durable: true, arguments: QUORUM }))).text).toBe(
      `PRECONDITION_FAILED - inequivalent arg 'x-queue-type' for queue '${q}' in vhost '/': received the value 'quorum' of type 'longstr' but current is none`,
    );
  });

  it('a stream: its retention arguments must match', async () => {
    const conn = await h.connect();
    const q = h.queue('redecl-s');
    await (await h.channel(conn)).assertQueue(q, { durable: true, arguments: STREAM });
    for (const [arg, value, type] of [
      ['x-max-age', '1h', 'longstr'],
      ['x-max-length-bytes', 10, 'byte'],
      ['x-stream-max-segment-size-bytes', 10, 'byte'],
    ] as const) {
      const ch = await h.channel(conn);
      expect((await rejection(ch.assertQueue(q, { durable: true, arguments: { ...STREAM, [arg]: value } }))).text).toBe(
        `PRECONDITION_FAILED - inequivalent arg '${arg}' for queue '${q}' in vhost '/': received the value '${value}' of type '${type}' but current is none`,
      );
    }
  });
});

describe('conditional delete', () => {
  it('quorum queues refuse if-unused and if-empty (540, connection closed)', async () => {
    for (const [flag, opts] of [
      ['if-unused', { ifUnused: true }],
      ['if-empty', { ifEmpty: true }],
    ] as const) {
      const conn = await h.connect();
      const ch = await h.channel(conn);
      const q = h.queue('del-q');
      await ch.assertQueue(q, { durable: true, arguments: QUORUM });
      await rejection(ch.deleteQueue(q, opts));
      const error = await h.firstError(conn);
      expect(error).toEqual(
        expect.objectContaining({
          code: 540,
          text: `NOT_IMPLEMENTED - cannot delete queue '${q}' in vhost '/'. queue.delete operations with ${flag} flag set are not supported by quorum queues`,
        }),
      );
      const check = await h.channel();
      expect(await check.checkQueue(q)).toEqual({ queue: q, messageCount: 0, consumerCount: 0 });
    }
  });

  it('streams accept both flags', async () => {
    const ch = await h.channel();
    const q = h.queue('del-s');
    await ch.assertQueue(q, { durable: true, arguments: STREAM });
    expect(await ch.deleteQueue(q, { ifEmpty: true, ifUnused: true })).toEqual({ messageCount: 0 });
  });
});
