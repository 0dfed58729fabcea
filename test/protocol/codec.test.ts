// Round trips through the generated codec: every method in the spec (RabbitMQ's extensions
// included) is encoded with the frame writer, parsed back with the frame parser and decoded, and
// must come back exactly as it went in; the 14 basic properties likewise. Truncated argument lists
// must be refused with 501 FRAME_ERROR, never read past the end of a frame.

import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { AmqpException, FrameError } from '../../src/protocol/errors.js';
import { Decimal, Timestamp, type FieldTable, type FieldValue } from '../../src/protocol/field-table.js';
import { FrameParser } from '../../src/protocol/frame-parser.js';
import {
  HEARTBEAT_FRAME,
  contentHeaderFrameSize,
  deliverFrameSize,
  encodeBasicProperties,
  encodeMethodFrame,
  methodFrameSize,
  writeBodyFrameHeader,
  writeContentHeaderFrame,
  writeDeliverFrame,
  encodeShortStr,
  writeMethodFrame,
} from '../../src/protocol/frame-writer.js';
import * as A from '../../src/protocol/generated/amqp.js';
import type { BasicProperties, Method } from '../../src/protocol/generated/amqp.js';

const RUNS = 60;

// ---------------------------------------------------------------------------------------------
// Arbitraries per AMQP domain type.

const bit = fc.boolean();
const octet = fc.integer({ min: 0, max: 0xff });
const short = fc.integer({ min: 0, max: 0xffff });
const long = fc.integer({ min: 0, max: 0xffffffff });
const longlong = fc.oneof(
  { weight: 3, arbitrary: fc.maxSafeNat() },
  { weight: 1, arbitrary: fc.constantFrom(0, 1, 0xffffffff, 2 ** 32, 2 ** 32 + 1, Number.MAX_SAFE_INTEGER) },
);
/** Short strings up to the 255-byte limit, with multi-byte characters right at the limit. */
const shortstr = fc.oneof(
  { weight: 6, arbitrary: fc.string({ unit: 'binary', maxLength: 60 }) },
  {
    weight: 1,
    arbitrary: fc.constantFrom('', 'x'.repeat(255), 'é'.repeat(127) + 'a', '€'.repeat(85), '😀'.repeat(63) + 'abc'),
  },
);
const bytes = (maxLength: number) => fc.uint8Array({ maxLength }).map((a) => Buffer.from(a));
const longstr = bytes(600);

/** Null-prototype table, as the decoder builds them. */
function nullProtoTable(entries: readonly (readonly [string, FieldValue])[]): FieldTable {
  const t = Object.create(null) as FieldTable;
  for (const [k, v] of entries) t[k] = v;
  return t;
}

/**
 * Field values whose decoded form is identical to what was encoded (the natural JS → AMQP mapping
 * with no type collapse), so a decoded table must deep-equal the original one.
 */
const { value: canonicalValue } = fc.letrec<{ value: FieldValue; table: FieldTable; array: FieldValue[] }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.boolean(),
    fc.integer(), // 'I'
    fc.oneof(
      fc.integer({ min: Number.MIN_SAFE_INTEGER, max: -2147483649 }),
      fc.integer({ min: 2147483648, max: Number.MAX_SAFE_INTEGER }),
    ), // 'l' decoding back to a number
    fc.oneof(
      fc.bigInt({ min: -(2n ** 63n), max: -(2n ** 53n) }),
      fc.bigInt({ min: 2n ** 53n, max: 2n ** 63n - 1n }),
    ), // 'l' decoding back to a bigint
    fc.double().filter((d) => !Number.isInteger(d)), // 'd' (NaN and ±Infinity included)
    fc.string({ unit: 'binary', maxLength: 40 }), // 'S'
    bytes(40), // 'x'
    fc.constant(null), // 'V'
    fc.maxSafeNat().map((s) => new Timestamp(s)), // 'T'
    fc.tuple(octet, long).map(([scale, v]) => new Decimal(scale, v)), // 'D'
    tie('array'),
    tie('table'),
  ),
  array: fc.array(tie('value'), { maxLength: 4 }),
  table: fc
    .array(fc.tuple(fc.oneof(fc.string({ unit: 'binary', maxLength: 20 }), fc.constantFrom('__proto__', 'x-match')), tie('value')), {
      maxLength: 4,
    })
    .map(nullProtoTable),
}));

const table = fc
  .array(fc.tuple(fc.string({ unit: 'binary', maxLength: 20 }), canonicalValue), { maxLength: 5 })
  .map(nullProtoTable);

// ---------------------------------------------------------------------------------------------
// One arbitrary of arguments per method key. Field names and order follow the generated interfaces.

type Args = Record<string, unknown>;
const rec = (fields: Record<string, fc.Arbitrary<unknown>>) => fc.record(fields) as fc.Arbitrary<Args>;
const none = fc.constant({} as Args);

const ARGS: ReadonlyMap<number, fc.Arbitrary<Args>> = new Map<number, fc.Arbitrary<Args>>([
  [A.CONNECTION_START, rec({ versionMajor: octet, versionMinor: octet, serverProperties: table, mechanisms: longstr, locales: longstr })],
  [A.CONNECTION_START_OK, rec({ clientProperties: table, mechanism: shortstr, response: longstr, locale: shortstr })],
  [A.CONNECTION_SECURE, rec({ challenge: longstr })],
  [A.CONNECTION_SECURE_OK, rec({ response: longstr })],
  [A.CONNECTION_TUNE, rec({ channelMax: short, frameMax: long, heartbeat: short })],
  [A.CONNECTION_TUNE_OK, rec({ channelMax: short, frameMax: long, heartbeat: short })],
  [A.CONNECTION_OPEN, rec({ virtualHost: shortstr, reserved1: shortstr, reserved2: bit })],
  [A.CONNECTION_OPEN_OK, rec({ reserved1: shortstr })],
  [A.CONNECTION_CLOSE, rec({ replyCode: short, replyText: shortstr, classId: short, methodId: short })],
  [A.CONNECTION_CLOSE_OK, none],
  [A.CONNECTION_BLOCKED, rec({ reason: shortstr })],
  [A.CONNECTION_UNBLOCKED, none],
  [A.CONNECTION_UPDATE_SECRET, rec({ newSecret: longstr, reason: shortstr })],
  [A.CONNECTION_UPDATE_SECRET_OK, none],
  [A.CHANNEL_OPEN, rec({ reserved1: shortstr })],
  [A.CHANNEL_OPEN_OK, rec({ reserved1: longstr })],
  [A.CHANNEL_FLOW, rec({ active: bit })],
  [A.CHANNEL_FLOW_OK, rec({ active: bit })],
  [A.CHANNEL_CLOSE, rec({ replyCode: short, replyText: shortstr, classId: short, methodId: short })],
  [A.CHANNEL_CLOSE_OK, none],
  [
    A.EXCHANGE_DECLARE,
    rec({
      reserved1: short,
      exchange: shortstr,
      type: shortstr,
      passive: bit,
      durable: bit,
      autoDelete: bit,
      internal: bit,
      noWait: bit,
      arguments: table,
    }),
  ],
  [A.EXCHANGE_DECLARE_OK, none],
  [A.EXCHANGE_DELETE, rec({ reserved1: short, exchange: shortstr, ifUnused: bit, noWait: bit })],
  [A.EXCHANGE_DELETE_OK, none],
  [
    A.EXCHANGE_BIND,
    rec({ reserved1: short, destination: shortstr, source: shortstr, routingKey: shortstr, noWait: bit, arguments: table }),
  ],
  [A.EXCHANGE_BIND_OK, none],
  [
    A.EXCHANGE_UNBIND,
    rec({ reserved1: short, destination: shortstr, source: shortstr, routingKey: shortstr, noWait: bit, arguments: table }),
  ],
  [A.EXCHANGE_UNBIND_OK, none],
  [
    A.QUEUE_DECLARE,
    rec({
      reserved1: short,
      queue: shortstr,
      passive: bit,
      durable: bit,
      exclusive: bit,
      autoDelete: bit,
      noWait: bit,
      arguments: table,
    }),
  ],
  [A.QUEUE_DECLARE_OK, rec({ queue: shortstr, messageCount: long, consumerCount: long })],
  [A.QUEUE_BIND, rec({ reserved1: short, queue: shortstr, exchange: shortstr, routingKey: shortstr, noWait: bit, arguments: table })],
  [A.QUEUE_BIND_OK, none],
  [A.QUEUE_PURGE, rec({ reserved1: short, queue: shortstr, noWait: bit })],
  [A.QUEUE_PURGE_OK, rec({ messageCount: long })],
  [A.QUEUE_DELETE, rec({ reserved1: short, queue: shortstr, ifUnused: bit, ifEmpty: bit, noWait: bit })],
  [A.QUEUE_DELETE_OK, rec({ messageCount: long })],
  [A.QUEUE_UNBIND, rec({ reserved1: short, queue: shortstr, exchange: shortstr, routingKey: shortstr, arguments: table })],
  [A.QUEUE_UNBIND_OK, none],
  [A.BASIC_QOS, rec({ prefetchSize: long, prefetchCount: short, global: bit })],
  [A.BASIC_QOS_OK, none],
  [
    A.BASIC_CONSUME,
    rec({
      reserved1: short,
      queue: shortstr,
      consumerTag: shortstr,
      noLocal: bit,
      noAck: bit,
      exclusive: bit,
      noWait: bit,
      arguments: table,
    }),
  ],
  [A.BASIC_CONSUME_OK, rec({ consumerTag: shortstr })],
  [A.BASIC_CANCEL, rec({ consumerTag: shortstr, noWait: bit })],
  [A.BASIC_CANCEL_OK, rec({ consumerTag: shortstr })],
  [A.BASIC_PUBLISH, rec({ reserved1: short, exchange: shortstr, routingKey: shortstr, mandatory: bit, immediate: bit })],
  [A.BASIC_RETURN, rec({ replyCode: short, replyText: shortstr, exchange: shortstr, routingKey: shortstr })],
  [
    A.BASIC_DELIVER,
    rec({ consumerTag: shortstr, deliveryTag: longlong, redelivered: bit, exchange: shortstr, routingKey: shortstr }),
  ],
  [A.BASIC_GET, rec({ reserved1: short, queue: shortstr, noAck: bit })],
  [
    A.BASIC_GET_OK,
    rec({ deliveryTag: longlong, redelivered: bit, exchange: shortstr, routingKey: shortstr, messageCount: long }),
  ],
  [A.BASIC_GET_EMPTY, rec({ reserved1: shortstr })],
  [A.BASIC_ACK, rec({ deliveryTag: longlong, multiple: bit })],
  [A.BASIC_REJECT, rec({ deliveryTag: longlong, requeue: bit })],
  [A.BASIC_RECOVER_ASYNC, rec({ requeue: bit })],
  [A.BASIC_RECOVER, rec({ requeue: bit })],
  [A.BASIC_RECOVER_OK, none],
  [A.BASIC_NACK, rec({ deliveryTag: longlong, multiple: bit, requeue: bit })],
  [A.TX_SELECT, none],
  [A.TX_SELECT_OK, none],
  [A.TX_COMMIT, none],
  [A.TX_COMMIT_OK, none],
  [A.TX_ROLLBACK, none],
  [A.TX_ROLLBACK_OK, none],
  [A.CONFIRM_SELECT, rec({ nowait: bit })],
  [A.CONFIRM_SELECT_OK, none],
]);

function methodArb(key: number): fc.Arbitrary<Method> {
  const args = ARGS.get(key);
  if (!args) throw new Error(`no arbitrary for ${A.METHOD_NAMES.get(key)}`);
  return args.map((a) => ({ id: key, ...a }) as unknown as Method);
}

const channelArb = fc.integer({ min: 0, max: 0xffff });

// ---------------------------------------------------------------------------------------------
// Helpers

interface ParsedFrame {
  type: number;
  channel: number;
  buf: Buffer;
  start: number;
  end: number;
}

function parseFrames(bytes: Buffer, maxPayloadSize = 1 << 20): ParsedFrame[] {
  const frames: ParsedFrame[] = [];
  const parser = new FrameParser(maxPayloadSize, (type, channel, buf, start, end) => frames.push({ type, channel, buf, start, end }));
  parser.push(bytes);
  expect(parser.bufferedBytes).toBe(0);
  return frames;
}

function parseOne(bytes: Buffer): ParsedFrame {
  const frames = parseFrames(bytes);
  expect(frames).toHaveLength(1);
  return frames[0]!;
}

function decodeMethodFrame(f: ParsedFrame): Method | undefined {
  const key = f.buf.readUInt32BE(f.start);
  return A.decodeMethodArgs(key, f.buf, f.start + 4, f.end);
}

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error('expected an exception, none was thrown');
}

function expectFrameError(fn: () => unknown): void {
  const err = thrown(fn);
  expect(err).toBeInstanceOf(FrameError);
  expect((err as AmqpException).replyCode).toBe(501);
  expect((err as AmqpException & { hard: boolean }).hard).toBe(true);
}

const EXTENSIONS = [
  A.CONFIRM_SELECT,
  A.CONFIRM_SELECT_OK,
  A.EXCHANGE_BIND,
  A.EXCHANGE_BIND_OK,
  A.EXCHANGE_UNBIND,
  A.EXCHANGE_UNBIND_OK,
  A.BASIC_NACK,
  A.CONNECTION_BLOCKED,
  A.CONNECTION_UNBLOCKED,
  A.CONNECTION_UPDATE_SECRET,
  A.CONNECTION_UPDATE_SECRET_OK,
];

// ---------------------------------------------------------------------------------------------

describe('generated method table', () => {
  it('has an argument arbitrary for exactly the methods in METHOD_NAMES (64, extensions included)', () => {
    expect([...A.METHOD_NAMES.keys()].sort((a, b) => a - b)).toEqual([...ARGS.keys()].sort((a, b) => a - b));
    expect(A.METHOD_NAMES.size).toBe(64);
    for (const key of EXTENSIONS) expect(A.METHOD_NAMES.has(key)).toBe(true);
  });

  it.each([
    [A.CONFIRM_SELECT, 85, 10, 'confirm.select'],
    [A.CONFIRM_SELECT_OK, 85, 11, 'confirm.select-ok'],
    [A.EXCHANGE_BIND, 40, 30, 'exchange.bind'],
    [A.EXCHANGE_BIND_OK, 40, 31, 'exchange.bind-ok'],
    [A.EXCHANGE_UNBIND, 40, 40, 'exchange.unbind'],
    [A.EXCHANGE_UNBIND_OK, 40, 51, 'exchange.unbind-ok'], // 51, not 41: RabbitMQ's numbering
    [A.BASIC_NACK, 60, 120, 'basic.nack'],
    [A.CONNECTION_BLOCKED, 10, 60, 'connection.blocked'],
    [A.CONNECTION_UNBLOCKED, 10, 61, 'connection.unblocked'],
    [A.CONNECTION_UPDATE_SECRET, 10, 70, 'connection.update-secret'],
    [A.CONNECTION_UPDATE_SECRET_OK, 10, 71, 'connection.update-secret-ok'],
    [A.BASIC_PUBLISH, 60, 40, 'basic.publish'],
    [A.QUEUE_UNBIND_OK, 50, 51, 'queue.unbind-ok'],
  ])('key %i is class %i method %i (%s)', (key, classId, methodId, name) => {
    expect(key).toBe((classId << 16) | methodId);
    expect(A.METHOD_NAMES.get(key)).toBe(name);
  });

  it('marks exactly basic.publish, return, deliver and get-ok as carrying content', () => {
    const withContent = [...A.METHOD_NAMES.keys()].filter((k) => A.methodHasContent(k));
    expect(withContent.sort((a, b) => a - b)).toEqual([A.BASIC_PUBLISH, A.BASIC_RETURN, A.BASIC_DELIVER, A.BASIC_GET_OK]);
  });
});

describe('method round trip: encodeMethodFrame → FrameParser → decodeMethodArgs', () => {
  for (const [key, name] of A.METHOD_NAMES) {
    it(`${name} round-trips`, () => {
      fc.assert(
        fc.property(channelArb, methodArb(key), (channel, m) => {
          const frame = encodeMethodFrame(channel, m);
          expect(frame.length).toBe(methodFrameSize(m));
          const f = parseOne(frame);
          expect(f.type).toBe(A.FRAME_METHOD);
          expect(f.channel).toBe(channel);
          expect(f.buf.readUInt32BE(f.start)).toBe(key);
          expect(f.end - f.start).toBe(4 + A.methodArgsSize(m));
          const decoded = decodeMethodFrame(f);
          expect(decoded).toStrictEqual(m);
          // Re-encoding the decoded method reproduces the frame byte for byte.
          expect(encodeMethodFrame(channel, decoded!).equals(frame)).toBe(true);
        }),
        { numRuns: RUNS },
      );
    });
  }

  it('writeMethodFrame writes at an offset inside a larger buffer and returns the end', () => {
    const m: Method = { id: A.BASIC_ACK, deliveryTag: 2 ** 40 + 7, multiple: true };
    const buf = Buffer.alloc(100, 0xaa);
    const end = writeMethodFrame(buf, 10, 3, m);
    expect(end).toBe(10 + methodFrameSize(m));
    expect(buf.subarray(10, end).toString('hex')).toBe('010003' + '0000000d' + '003c0050' + '0000010000000007' + '01' + 'ce');
    expect(buf[9]).toBe(0xaa);
    expect(buf[end]).toBe(0xaa);
  });

  it('encodes bits of one method packed into one octet, in spec order', () => {
    const m: Method = {
      id: A.QUEUE_DECLARE,
      reserved1: 0,
      queue: 'q',
      passive: true,
      durable: false,
      exclusive: true,
      autoDelete: false,
      noWait: true,
      arguments: {},
    };
    // reserved1(2) 'q'(2) bits(1) table(4)
    expect(encodeMethodFrame(1, m).subarray(11, -1).toString('hex')).toBe('0000' + '0171' + '15' + '00000000');
    const nack: Method = { id: A.BASIC_NACK, deliveryTag: 1, multiple: false, requeue: true };
    expect(encodeMethodFrame(1, nack).subarray(11, -1).toString('hex')).toBe('0000000000000001' + '02');
  });
});

describe('truncated method payloads', () => {
  const withArgs = [...A.METHOD_NAMES].filter(([key]) => ARGS.get(key) !== none);

  for (const [key, name] of withArgs) {
    it(`${name}: every shorter payload throws FrameError 501`, () => {
      fc.assert(
        fc.property(methodArb(key), fc.nat(), (m, cutSeed) => {
          const f = parseOne(encodeMethodFrame(1, m));
          const argsStart = f.start + 4;
          const argsLen = f.end - argsStart;
          expect(argsLen).toBeGreaterThan(0);
          const cut = argsStart + (cutSeed % argsLen);
          expectFrameError(() => A.decodeMethodArgs(key, f.buf, argsStart, cut));
        }),
        { numRuns: 20 },
      );
    });
  }

  it('exhaustively: every cut of a queue.declare with arguments throws 501', () => {
    const m: Method = {
      id: A.QUEUE_DECLARE,
      reserved1: 0,
      queue: 'orders',
      passive: false,
      durable: true,
      exclusive: false,
      autoDelete: false,
      noWait: false,
      arguments: nullProtoTable([
        ['x-message-ttl', 60000],
        ['x-dead-letter-exchange', 'dlx'],
      ]),
    };
    const f = parseOne(encodeMethodFrame(1, m));
    const argsStart = f.start + 4;
    for (let cut = argsStart; cut < f.end; cut++) {
      expectFrameError(() => A.decodeMethodArgs(A.QUEUE_DECLARE, f.buf, argsStart, cut));
    }
    expect(A.decodeMethodArgs(A.QUEUE_DECLARE, f.buf, argsStart, f.end)).toStrictEqual(m);
  });

  it('names the method in the error text', () => {
    const f = parseOne(encodeMethodFrame(1, { id: A.BASIC_ACK, deliveryTag: 1, multiple: false }));
    const err = thrown(() => A.decodeMethodArgs(A.BASIC_ACK, f.buf, f.start + 4, f.start + 8)) as FrameError;
    expect(err.replyText).toBe('FRAME_ERROR - cannot decode basic.ack: arguments run past the end of the frame');
  });
});

describe('unknown method keys', () => {
  it.each([
    ['access.request (class 30, not in 0-9-1 as RabbitMQ speaks it)', (30 << 16) | 10],
    ['basic method 99', (60 << 16) | 99],
    ['class 0', 0],
    ['all ones', 0xffffffff],
  ])('decodeMethodArgs returns undefined for %s', (_what, key) => {
    const buf = Buffer.alloc(64);
    expect(A.decodeMethodArgs(key, buf, 0, buf.length)).toBeUndefined();
  });
});

// ---------------------------------------------------------------------------------------------
// Content properties

const PROPERTY_ARBS = {
  contentType: shortstr,
  contentEncoding: shortstr,
  headers: table,
  deliveryMode: octet,
  priority: octet,
  correlationId: shortstr,
  replyTo: shortstr,
  expiration: shortstr,
  messageId: shortstr,
  timestamp: longlong,
  type: shortstr,
  userId: shortstr,
  appId: shortstr,
  clusterId: shortstr,
};
const propertiesArb = fc.record(PROPERTY_ARBS, { requiredKeys: [], noNullPrototype: true }) as fc.Arbitrary<BasicProperties>;
const allPropertiesArb = fc.record(PROPERTY_ARBS, { noNullPrototype: true }) as fc.Arbitrary<BasicProperties>;

const FULL_PROPERTIES: Required<BasicProperties> = {
  contentType: 'application/json',
  contentEncoding: 'gzip',
  headers: nullProtoTable([
    ['x-retries', 3],
    ['trace', 'abc'],
  ]),
  deliveryMode: 2,
  priority: 9,
  correlationId: 'corr-1',
  replyTo: 'amq.rabbitmq.reply-to',
  expiration: '60000',
  messageId: 'msg-1',
  timestamp: 1700000000,
  type: 'order.created',
  userId: 'guest',
  appId: 'shop',
  clusterId: 'c1',
};

describe('basic properties', () => {
  it('PROPERTY_FLAGS lists the 14 properties, bit 15 first, in spec order', () => {
    expect(Object.keys(A.PROPERTY_FLAGS)).toEqual(Object.keys(FULL_PROPERTIES));
    expect(Object.values(A.PROPERTY_FLAGS)).toEqual([15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2].map((b) => 1 << b));
  });

  it('any subset of the 14 properties round-trips (encodeBasicProperties → decodeBasicProperties)', () => {
    fc.assert(
      fc.property(propertiesArb, (p) => {
        const buf = encodeBasicProperties(p);
        expect(buf.length).toBe(A.basicPropertiesSize(p));
        let flags = 0;
        for (const k of Object.keys(p) as (keyof BasicProperties)[]) flags |= A.PROPERTY_FLAGS[k];
        expect(buf.readUInt16BE(0)).toBe(flags);
        expect(A.decodeBasicProperties(buf, 0, buf.length)).toStrictEqual(p);
      }),
      { numRuns: 200 },
    );
  });

  it('all 14 properties set round-trip; flags are 0xfffc', () => {
    fc.assert(
      fc.property(allPropertiesArb, (p) => {
        const buf = encodeBasicProperties(p);
        expect(buf.readUInt16BE(0)).toBe(0xfffc);
        const decoded = A.decodeBasicProperties(buf, 0, buf.length);
        expect(Object.keys(decoded)).toHaveLength(14);
        expect(decoded).toStrictEqual(p);
      }),
      { numRuns: 100 },
    );
  });

  it('encodes all 14 properties to the exact bytes', () => {
    const hex = encodeBasicProperties(FULL_PROPERTIES).toString('hex');
    const s = (v: string) => Buffer.from([v.length]).toString('hex') + Buffer.from(v).toString('hex');
    const headers = '0000001d' + s('x-retries') + '49' + '00000003' + s('trace') + '53' + '00000003' + Buffer.from('abc').toString('hex');
    expect(hex).toBe(
      'fffc' +
        s('application/json') +
        s('gzip') +
        headers +
        '02' +
        '09' +
        s('corr-1') +
        s('amq.rabbitmq.reply-to') +
        s('60000') +
        s('msg-1') +
        '000000006553f100' +
        s('order.created') +
        s('guest') +
        s('shop') +
        s('c1'),
    );
  });

  it('each property alone sets exactly its own flag', () => {
    for (const [name, value] of Object.entries(FULL_PROPERTIES)) {
      const p = { [name]: value } as BasicProperties;
      const buf = encodeBasicProperties(p);
      expect(buf.readUInt16BE(0)).toBe(A.PROPERTY_FLAGS[name as keyof BasicProperties]);
      expect(A.decodeBasicProperties(buf, 0, buf.length)).toStrictEqual(p);
    }
  });

  it('no properties → flags 0 and an empty object', () => {
    const buf = encodeBasicProperties({});
    expect(buf.toString('hex')).toBe('0000');
    expect(A.decodeBasicProperties(buf, 0, 2)).toStrictEqual({});
  });

  it('writeBasicProperties writes at an offset and returns the end', () => {
    const size = A.basicPropertiesSize(FULL_PROPERTIES);
    const buf = Buffer.alloc(size + 20, 0x55);
    const end = A.writeBasicProperties(buf, 7, FULL_PROPERTIES);
    expect(end).toBe(7 + size);
    expect(buf.subarray(7, end).equals(encodeBasicProperties(FULL_PROPERTIES))).toBe(true);
    expect(buf[6]).toBe(0x55);
    expect(buf[end]).toBe(0x55);
    expect(A.decodeBasicProperties(buf, 7, end)).toStrictEqual(FULL_PROPERTIES);
  });

  it('every truncation of a full property list throws FrameError 501', () => {
    const buf = encodeBasicProperties(FULL_PROPERTIES);
    for (let cut = 0; cut < buf.length; cut++) {
      expectFrameError(() => A.decodeBasicProperties(buf, 0, cut));
    }
  });

  it('round-trips through a content header frame (writeContentHeaderFrame → FrameParser)', () => {
    fc.assert(
      fc.property(channelArb, fc.maxSafeNat(), propertiesArb, (channel, bodySize, p) => {
        const raw = encodeBasicProperties(p);
        const frame = Buffer.alloc(contentHeaderFrameSize(raw));
        expect(writeContentHeaderFrame(frame, 0, channel, A.CLASS_BASIC, bodySize, raw)).toBe(frame.length);
        const f = parseOne(frame);
        expect(f.type).toBe(A.FRAME_HEADER);
        expect(f.channel).toBe(channel);
        expect(f.buf.readUInt16BE(f.start)).toBe(A.CLASS_BASIC);
        expect(f.buf.readUInt16BE(f.start + 2)).toBe(0);
        expect(f.buf.readUInt32BE(f.start + 4) * 2 ** 32 + f.buf.readUInt32BE(f.start + 8)).toBe(bodySize);
        expect(f.buf.subarray(f.start + 12, f.end).equals(raw)).toBe(true);
        expect(A.decodeBasicProperties(f.buf, f.start + 12, f.end)).toStrictEqual(p);
      }),
      { numRuns: 100 },
    );
  });
});

// ---------------------------------------------------------------------------------------------
// Hand-written frame writers agree with the generated codec.

describe('frame writer', () => {
  it('writeDeliverFrame writes the same bytes as the generated basic.deliver encoder', () => {
    fc.assert(
      fc.property(channelArb, methodArb(A.BASIC_DELIVER), (channel, m) => {
        const d = m as A.BasicDeliver;
        const expected = encodeMethodFrame(channel, d);
        const tag = encodeShortStr(d.consumerTag);
        const routing = Buffer.concat([encodeShortStr(d.exchange), encodeShortStr(d.routingKey)]);
        const size = deliverFrameSize(tag, routing);
        expect(size).toBe(expected.length);
        const buf = Buffer.alloc(size + 4, 0x77);
        const end = writeDeliverFrame(buf, 2, channel, tag, d.deliveryTag, d.redelivered, routing);
        expect(end).toBe(2 + size);
        expect(buf.subarray(2, end).equals(expected)).toBe(true);
      }),
      { numRuns: 200 },
    );
  });

  it('HEARTBEAT_FRAME is type 8, channel 0, empty payload', () => {
    expect(HEARTBEAT_FRAME.toString('hex')).toBe('08000000000000ce');
    const f = parseOne(HEARTBEAT_FRAME);
    expect([f.type, f.channel, f.end - f.start]).toEqual([8, 0, 0]);
  });

  it('writeBodyFrameHeader writes type 3, channel and size', () => {
    const buf = Buffer.alloc(10, 0xee);
    expect(writeBodyFrameHeader(buf, 1, 513, 70000)).toBe(8);
    expect(buf.toString('hex')).toBe('ee' + '03' + '0201' + '00011170' + 'eeee');
  });
});
