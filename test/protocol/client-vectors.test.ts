// Byte vectors from a real client. amqplib's own codec (lib/defs.js, lib/frame.js) encodes what
// amqplib really sends — connection.start-ok with its client properties, queue.declare with typed
// arguments, basic.publish + a content header with every property + body frames, basic.ack,
// basic.nack, exchange.bind, confirm.select — and Warren must decode exactly the expected values.
// The bytes are also kept below as literal hex (captured once from amqplib 2.3.1), so the test fails
// if amqplib's encoding changes. In the other direction, frames written by Warren are decoded with
// amqplib's decoder, and where both sides can express the same types the bytes are identical.

import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CommandAssembler, type Content } from '../../src/protocol/command-assembler.js';
import { Decimal, Timestamp, TypedValue, fieldTypeOf, type FieldTable, type FieldValue } from '../../src/protocol/field-table.js';
import { FrameParser } from '../../src/protocol/frame-parser.js';
import {
  HEARTBEAT_FRAME,
  contentHeaderFrameSize,
  deliverFrameSize,
  encodeBasicProperties,
  encodeMethodFrame,
  writeBodyFrameHeader,
  writeContentHeaderFrame,
  writeDeliverFrame,
  encodeShortStr,
} from '../../src/protocol/frame-writer.js';
import * as A from '../../src/protocol/generated/amqp.js';
import type { BasicProperties, Method } from '../../src/protocol/generated/amqp.js';

// ---------------------------------------------------------------------------------------------
// amqplib's codec. Its package "exports" hides lib/, so load the files by path.

interface AmqplibDefs {
  encodeMethod(id: number, channel: number, fields: Record<string, unknown>): Buffer;
  encodeProperties(id: number, channel: number, size: number, fields: Record<string, unknown>): Buffer;
  decode(id: number, buf: Buffer): Record<string, unknown>;
  [name: string]: unknown;
}
interface AmqplibFrame {
  makeBodyFrame(channel: number, payload: Buffer): Buffer;
  parseFrame(bin: Buffer, max: number): { type: number; channel: number; size: number; payload: Buffer; rest: Buffer } | false;
  decodeFrame(frame: { type: number; channel: number; payload: Buffer }): Record<string, unknown>;
  HEARTBEAT_BUF: Buffer;
}

const require = createRequire(import.meta.url);
const amqplibRoot = dirname(require.resolve('amqplib'));
const defs = require(join(amqplibRoot, 'lib/defs.js')) as AmqplibDefs;
const amqpFrame = require(join(amqplibRoot, 'lib/frame.js')) as AmqplibFrame;
const amqplibVersion = (require(join(amqplibRoot, 'package.json')) as { version: string }).version;
const id = (name: string) => defs[name] as number;

// ---------------------------------------------------------------------------------------------
// What amqplib is asked to encode (client properties as lib/connect.js builds them, with the
// platform string fixed so that the bytes do not depend on the Node version running the test).

const CLIENT_PROPERTIES = {
  product: 'amqplib',
  version: '2.3.1',
  platform: 'Node.JS v20.20.2',
  information: 'https://amqp-node.github.io/amqplib/',
  capabilities: {
    publisher_confirms: true,
    exchange_exchange_bindings: true,
    'basic.nack': true,
    consumer_cancel_notify: true,
    'connection.blocked': true,
    authentication_failure_close: true,
  },
};

const AMQPLIB_HEADERS = {
  str: 'text',
  byte: 5,
  neg: -2,
  short: 300,
  int: 100000,
  long: 2 ** 40,
  double: 1.5,
  bool: false,
  void: null,
  bytes: Buffer.from([1, 2, 3]),
  arr: [1, 'a'],
  tbl: { x: 'y' },
  ts: { '!': 'timestamp', value: 1700000000 },
  dec: { '!': 'decimal', value: { places: 2, digits: 1234 } },
  flt: { '!': 'float', value: 1.5 },
  ub: { '!': 'unsignedbyte', value: 200 },
  us: { '!': 'unsignedshort', value: 60000 },
  ui: { '!': 'unsignedint', value: 4000000000 },
  i64: { '!': 'int64', value: -5 },
};

const AMQPLIB_PROPERTIES = {
  contentType: 'application/json',
  contentEncoding: 'utf-8',
  headers: AMQPLIB_HEADERS,
  deliveryMode: 2,
  priority: 5,
  correlationId: 'corr-42',
  replyTo: 'amq.rabbitmq.reply-to',
  expiration: '60000',
  messageId: 'msg-42',
  timestamp: 1700000000,
  type: 'order.created',
  userId: 'guest',
  appId: 'shop-api',
  clusterId: 'eu-1',
};

const BODY = ['{"id":', '42}'];

const FROM_AMQPLIB: Record<keyof typeof VECTORS, () => Buffer> = {
  startOk: () =>
    defs.encodeMethod(id('ConnectionStartOk'), 0, {
      clientProperties: CLIENT_PROPERTIES,
      mechanism: 'PLAIN',
      response: Buffer.from('\0guest\0guest'),
      locale: 'en_US',
    }),
  queueDeclare: () =>
    defs.encodeMethod(id('QueueDeclare'), 1, {
      ticket: 0,
      queue: 'orders',
      passive: false,
      durable: true,
      exclusive: false,
      autoDelete: false,
      nowait: false,
      arguments: {
        'x-message-ttl': 60000,
        'x-dead-letter-exchange': 'dlx',
        'x-single-active-consumer': true,
        'x-max-length': 1000,
        'x-max-priority': 10,
        'x-big': 2 ** 40,
        'x-ratio': 0.5,
        nested: { a: 1, b: 'two' },
        list: [1, 'two', true, null],
      },
    }),
  publish: () =>
    defs.encodeMethod(id('BasicPublish'), 1, { ticket: 0, exchange: 'shop', routingKey: 'order.created', mandatory: true, immediate: false }),
  header: () => defs.encodeProperties(60, 1, 9, AMQPLIB_PROPERTIES),
  body1: () => amqpFrame.makeBodyFrame(1, Buffer.from(BODY[0]!)),
  body2: () => amqpFrame.makeBodyFrame(1, Buffer.from(BODY[1]!)),
  ack: () => defs.encodeMethod(id('BasicAck'), 1, { deliveryTag: 42, multiple: true }),
  nack: () => defs.encodeMethod(id('BasicNack'), 1, { deliveryTag: 2 ** 33 + 1, multiple: false, requeue: true }),
  exchangeBind: () =>
    defs.encodeMethod(id('ExchangeBind'), 2, {
      ticket: 0,
      destination: 'dst',
      source: 'src',
      routingKey: 'a.#',
      nowait: false,
      arguments: { 'x-match': 'all' },
    }),
  confirmSelect: () => defs.encodeMethod(id('ConfirmSelect'), 1, { nowait: false }),
};

/** Captured once from amqplib 2.3.1 with the inputs above. */
const VECTORS = {
  startOk:
    '0100000000013b000a000b000001170770726f647563745300000007616d71706c69620776657273696f6e5300000005' +
    '322e332e3108706c6174666f726d53000000104e6f64652e4a53207632302e32302e320b696e666f726d6174696f6e53' +
    '0000002468747470733a2f2f616d71702d6e6f64652e6769746875622e696f2f616d71706c69622f0c6361706162696c' +
    '6974696573460000008c127075626c69736865725f636f6e6669726d7374011a65786368616e67655f65786368616e67' +
    '655f62696e64696e677374010a62617369632e6e61636b740116636f6e73756d65725f63616e63656c5f6e6f74696679' +
    '740112636f6e6e656374696f6e2e626c6f636b656474011c61757468656e7469636174696f6e5f6661696c7572655f63' +
    '6c6f7365740105504c41494e0000000c00677565737400677565737405656e5f5553ce',
  queueDeclare:
    '010001000000d10032000a0000066f726465727302000000bf0d782d6d6573736167652d74746c490000ea6016782d64' +
    '6561642d6c65747465722d65786368616e67655300000003646c7818782d73696e676c652d6163746976652d636f6e73' +
    '756d657274010c782d6d61782d6c656e6774687303e80e782d6d61782d7072696f72697479620a05782d6269676c0000' +
    '01000000000007782d726174696f643fe0000000000000066e6573746564460000000e01616201016253000000037477' +
    '6f046c697374410000000d6201530000000374776f740156ce',
  publish:
    '0100010000001a003c002800000473686f700d6f726465722e6372656174656401ce',
  header:
    '02000100000146003c00000000000000000009fffc106170706c69636174696f6e2f6a736f6e057574662d38000000c6' +
    '0373747253000000047465787404627974656205036e656762fe0573686f727473012c03696e7449000186a0046c6f6e' +
    '676c000001000000000006646f75626c65643ff800000000000004626f6f6c740004766f696456056279746573780000' +
    '000301020303617272410000000862015300000001610374626c46000000080178530000000179027473540000000065' +
    '53f100036465634402000004d203666c74663fc0000002756242c802757375ea6002756969ee6b2800036936346cffff' +
    'fffffffffffb020507636f72722d343215616d712e7261626269746d712e7265706c792d746f053630303030066d7367' +
    '2d3432000000006553f1000d6f726465722e637265617465640567756573740873686f702d6170690465752d31ce',
  body1:
    '030001000000067b226964223ace',
  body2:
    '0300010000000334327dce',
  ack:
    '0100010000000d003c0050000000000000002a01ce',
  nack:
    '0100010000000d003c0078000000020000000102ce',
  exchangeBind:
    '010002000000270028001e0000036473740373726303612e23000000001007782d6d617463685300000003616c6cce',
  confirmSelect:
    '010001000000050055000a00ce',
};

// ---------------------------------------------------------------------------------------------
// Helpers

interface Frame {
  type: number;
  channel: number;
  buf: Buffer;
  start: number;
  end: number;
}

function warrenFrames(bytes: Buffer): Frame[] {
  const frames: Frame[] = [];
  const parser = new FrameParser(131072, (type, channel, buf, start, end) => frames.push({ type, channel, buf, start, end }));
  parser.push(bytes);
  expect(parser.bufferedBytes).toBe(0);
  return frames;
}

function warrenMethod(hex: string): { channel: number; method: Method | undefined } {
  const frames = warrenFrames(Buffer.from(hex, 'hex'));
  expect(frames).toHaveLength(1);
  const f = frames[0]!;
  expect(f.type).toBe(A.FRAME_METHOD);
  return { channel: f.channel, method: A.decodeMethodArgs(f.buf.readUInt32BE(f.start), f.buf, f.start + 4, f.end) };
}

/** Null-prototype table, as Warren's decoder builds them. */
function nt(entries: Record<string, FieldValue>): FieldTable {
  return Object.assign(Object.create(null) as FieldTable, entries);
}

/** amqplib's view of a frame Warren wrote. */
function amqplibDecode(bytes: Buffer): Record<string, unknown> {
  const parsed = amqpFrame.parseFrame(bytes, 131072);
  if (parsed === false) throw new Error('amqplib could not parse a whole frame');
  expect(parsed.rest.length).toBe(0);
  return amqpFrame.decodeFrame(parsed);
}

// ---------------------------------------------------------------------------------------------

describe('amqplib → Warren', () => {
  it(`amqplib ${amqplibVersion} still encodes the captured vectors byte for byte`, () => {
    for (const [name, encode] of Object.entries(FROM_AMQPLIB)) {
      expect({ name, hex: encode().toString('hex') }).toEqual({ name, hex: VECTORS[name as keyof typeof VECTORS] });
    }
  });

  it('connection.start-ok with amqplib\'s client properties', () => {
    const { channel, method } = warrenMethod(VECTORS.startOk);
    expect(channel).toBe(0);
    expect(method).toStrictEqual({
      id: A.CONNECTION_START_OK,
      clientProperties: nt({
        product: 'amqplib',
        version: '2.3.1',
        platform: 'Node.JS v20.20.2',
        information: 'https://amqp-node.github.io/amqplib/',
        capabilities: nt({
          publisher_confirms: true,
          exchange_exchange_bindings: true,
          'basic.nack': true,
          consumer_cancel_notify: true,
          'connection.blocked': true,
          authentication_failure_close: true,
        }),
      }),
      mechanism: 'PLAIN',
      response: Buffer.from('\0guest\0guest'),
      locale: 'en_US',
    });
    expect(Object.keys((method as A.ConnectionStartOk).clientProperties)).toEqual([
      'product',
      'version',
      'platform',
      'information',
      'capabilities',
    ]);
  });

  it('queue.declare with arguments of several types (b s I l d S t F A V as amqplib picks them)', () => {
    const { channel, method } = warrenMethod(VECTORS.queueDeclare);
    expect(channel).toBe(1);
    expect(method).toStrictEqual({
      id: A.QUEUE_DECLARE,
      reserved1: 0,
      queue: 'orders',
      passive: false,
      durable: true,
      exclusive: false,
      autoDelete: false,
      noWait: false,
      arguments: nt({
        'x-message-ttl': 60000,
        'x-dead-letter-exchange': 'dlx',
        'x-single-active-consumer': true,
        'x-max-length': 1000,
        'x-max-priority': 10,
        'x-big': 2 ** 40,
        'x-ratio': 0.5,
        nested: nt({ a: 1, b: 'two' }),
        list: [1, 'two', true, null],
      }),
    });
    // the wire type of each argument is recorded (RabbitMQ names it in reply texts)
    const args = (method as A.QueueDeclare).arguments;
    expect(Object.keys(args).map((k) => fieldTypeOf(args, k))).toEqual(['I', 'S', 't', 's', 'b', 'l', 'd', 'F', 'A']);
  });

  it('basic.publish + content header with all 14 properties + two body frames', () => {
    const stream = Buffer.from(VECTORS.publish + VECTORS.header + VECTORS.body1 + VECTORS.body2, 'hex');
    const frames = warrenFrames(stream);
    expect(frames.map((f) => [f.type, f.channel])).toEqual([
      [A.FRAME_METHOD, 1],
      [A.FRAME_HEADER, 1],
      [A.FRAME_BODY, 1],
      [A.FRAME_BODY, 1],
    ]);
    const [m, h] = frames as [Frame, Frame];
    const publish = A.decodeMethodArgs(m.buf.readUInt32BE(m.start), m.buf, m.start + 4, m.end);
    expect(publish).toStrictEqual({
      id: A.BASIC_PUBLISH,
      reserved1: 0,
      exchange: 'shop',
      routingKey: 'order.created',
      mandatory: true,
      immediate: false,
    });

    // content header: class, weight, body size, then the property flags and list
    expect(h.buf.readUInt16BE(h.start)).toBe(60);
    expect(h.buf.readUInt16BE(h.start + 2)).toBe(0);
    expect(h.buf.readUInt32BE(h.start + 4) * 2 ** 32 + h.buf.readUInt32BE(h.start + 8)).toBe(9);
    expect(h.buf.readUInt16BE(h.start + 12)).toBe(0xfffc);
    const properties = A.decodeBasicProperties(h.buf, h.start + 12, h.end);
    expect(properties).toStrictEqual({
      contentType: 'application/json',
      contentEncoding: 'utf-8',
      headers: nt({
        str: 'text',
        byte: 5,
        neg: -2,
        short: 300,
        int: 100000,
        long: 2 ** 40,
        double: 1.5,
        bool: false,
        void: null,
        bytes: Buffer.from([1, 2, 3]),
        arr: [1, 'a'],
        tbl: nt({ x: 'y' }),
        ts: new Timestamp(1700000000),
        dec: new Decimal(2, 1234),
        flt: 1.5,
        ub: 200,
        us: 60000,
        ui: 4000000000,
        i64: -5,
      }),
      deliveryMode: 2,
      priority: 5,
      correlationId: 'corr-42',
      replyTo: 'amq.rabbitmq.reply-to',
      expiration: '60000',
      messageId: 'msg-42',
      timestamp: 1700000000,
      type: 'order.created',
      userId: 'guest',
      appId: 'shop-api',
      clusterId: 'eu-1',
    });

    const headers = properties.headers!;
    expect(Object.keys(headers).map((k) => fieldTypeOf(headers, k)).join('')).toBe('SbbsIldtVxAFTDfBuil');

    // and through the assembler: one command with the raw property bytes and the joined body
    const asm = new CommandAssembler();
    expect(asm.onMethod(publish!, A.methodHasContent(publish!.id))).toBe(false);
    expect(asm.onHeader(h.buf, h.start, h.end)).toBeNull();
    expect(asm.onBody(frames[2]!.buf, frames[2]!.start, frames[2]!.end)).toBeNull();
    const content = asm.onBody(frames[3]!.buf, frames[3]!.start, frames[3]!.end) as Content;
    expect(content.body.toString()).toBe('{"id":42}');
    expect(content.bodySize).toBe(9);
    expect(content.rawProperties.equals(h.buf.subarray(h.start + 12, h.end))).toBe(true);
  });

  it('basic.ack', () => {
    expect(warrenMethod(VECTORS.ack)).toStrictEqual({
      channel: 1,
      method: { id: A.BASIC_ACK, deliveryTag: 42, multiple: true },
    });
  });

  it('basic.nack with a delivery tag above 2^32', () => {
    expect(warrenMethod(VECTORS.nack)).toStrictEqual({
      channel: 1,
      method: { id: A.BASIC_NACK, deliveryTag: 2 ** 33 + 1, multiple: false, requeue: true },
    });
  });

  it('exchange.bind', () => {
    expect(warrenMethod(VECTORS.exchangeBind)).toStrictEqual({
      channel: 2,
      method: {
        id: A.EXCHANGE_BIND,
        reserved1: 0,
        destination: 'dst',
        source: 'src',
        routingKey: 'a.#',
        noWait: false,
        arguments: nt({ 'x-match': 'all' }),
      },
    });
  });

  it('confirm.select', () => {
    expect(warrenMethod(VECTORS.confirmSelect)).toStrictEqual({ channel: 1, method: { id: A.CONFIRM_SELECT, nowait: false } });
  });

  it('Warren re-encodes the decoded methods to amqplib\'s exact bytes (where no number types collapse)', () => {
    for (const name of ['startOk', 'publish', 'ack', 'nack', 'exchangeBind', 'confirmSelect'] as const) {
      const { channel, method } = warrenMethod(VECTORS[name]);
      expect({ name, hex: encodeMethodFrame(channel, method!).toString('hex') }).toEqual({ name, hex: VECTORS[name] });
    }
  });

  it('with TypedValue, Warren writes amqplib\'s queue.declare arguments byte for byte', () => {
    const m: Method = {
      id: A.QUEUE_DECLARE,
      reserved1: 0,
      queue: 'orders',
      passive: false,
      durable: true,
      exclusive: false,
      autoDelete: false,
      noWait: false,
      arguments: {
        'x-message-ttl': 60000,
        'x-dead-letter-exchange': 'dlx',
        'x-single-active-consumer': true,
        'x-max-length': new TypedValue('s', 1000),
        'x-max-priority': new TypedValue('b', 10),
        'x-big': 2 ** 40,
        'x-ratio': 0.5,
        nested: { a: new TypedValue('b', 1), b: 'two' },
        list: [new TypedValue('b', 1), 'two', true, null],
      },
    };
    expect(encodeMethodFrame(1, m).toString('hex')).toBe(VECTORS.queueDeclare);
  });
});

// ---------------------------------------------------------------------------------------------

describe('Warren → amqplib', () => {
  /** Methods a broker sends, with the fields amqplib reports for them (amqplib's names). */
  const SERVER_METHODS: [string, Method, string, Record<string, unknown>][] = [
    [
      'connection.tune',
      { id: A.CONNECTION_TUNE, channelMax: 2047, frameMax: 131072, heartbeat: 60 },
      'ConnectionTune',
      { channelMax: 2047, frameMax: 131072, heartbeat: 60 },
    ],
    [
      'connection.close',
      { id: A.CONNECTION_CLOSE, replyCode: 320, replyText: "CONNECTION_FORCED - broker forced connection closure with reason 'shutdown'", classId: 0, methodId: 0 },
      'ConnectionClose',
      { replyCode: 320, replyText: "CONNECTION_FORCED - broker forced connection closure with reason 'shutdown'", classId: 0, methodId: 0 },
    ],
    ['connection.blocked', { id: A.CONNECTION_BLOCKED, reason: 'low on memory' }, 'ConnectionBlocked', { reason: 'low on memory' }],
    ['connection.unblocked', { id: A.CONNECTION_UNBLOCKED }, 'ConnectionUnblocked', {}],
    ['channel.open-ok', { id: A.CHANNEL_OPEN_OK, reserved1: Buffer.alloc(0) }, 'ChannelOpenOk', { channelId: Buffer.alloc(0) }],
    [
      'channel.close',
      { id: A.CHANNEL_CLOSE, replyCode: 404, replyText: "NOT_FOUND - no queue 'x' in vhost '/'", classId: 50, methodId: 10 },
      'ChannelClose',
      { replyCode: 404, replyText: "NOT_FOUND - no queue 'x' in vhost '/'", classId: 50, methodId: 10 },
    ],
    ['exchange.bind-ok', { id: A.EXCHANGE_BIND_OK }, 'ExchangeBindOk', {}],
    ['exchange.unbind-ok', { id: A.EXCHANGE_UNBIND_OK }, 'ExchangeUnbindOk', {}],
    [
      'queue.declare-ok',
      { id: A.QUEUE_DECLARE_OK, queue: 'amq.gen-JzTY20BRgKO-HjmUJj0wLg', messageCount: 5, consumerCount: 1 },
      'QueueDeclareOk',
      { queue: 'amq.gen-JzTY20BRgKO-HjmUJj0wLg', messageCount: 5, consumerCount: 1 },
    ],
    ['basic.consume-ok', { id: A.BASIC_CONSUME_OK, consumerTag: 'amq.ctag-1' }, 'BasicConsumeOk', { consumerTag: 'amq.ctag-1' }],
    [
      'basic.deliver',
      { id: A.BASIC_DELIVER, consumerTag: 'amq.ctag-1', deliveryTag: 2 ** 40 + 1, redelivered: true, exchange: 'shop', routingKey: 'order.created' },
      'BasicDeliver',
      { consumerTag: 'amq.ctag-1', deliveryTag: 2 ** 40 + 1, redelivered: true, exchange: 'shop', routingKey: 'order.created' },
    ],
    [
      'basic.get-ok',
      { id: A.BASIC_GET_OK, deliveryTag: 7, redelivered: false, exchange: '', routingKey: 'q', messageCount: 99 },
      'BasicGetOk',
      { deliveryTag: 7, redelivered: false, exchange: '', routingKey: 'q', messageCount: 99 },
    ],
    ['basic.get-empty', { id: A.BASIC_GET_EMPTY, reserved1: '' }, 'BasicGetEmpty', { clusterId: '' }],
    [
      'basic.return',
      { id: A.BASIC_RETURN, replyCode: 312, replyText: 'NO_ROUTE', exchange: 'shop', routingKey: 'nowhere' },
      'BasicReturn',
      { replyCode: 312, replyText: 'NO_ROUTE', exchange: 'shop', routingKey: 'nowhere' },
    ],
    [
      'basic.ack (confirm, largest safe tag)',
      { id: A.BASIC_ACK, deliveryTag: Number.MAX_SAFE_INTEGER, multiple: true },
      'BasicAck',
      { deliveryTag: Number.MAX_SAFE_INTEGER, multiple: true },
    ],
    [
      'basic.nack (confirm)',
      { id: A.BASIC_NACK, deliveryTag: 2 ** 32, multiple: true, requeue: false },
      'BasicNack',
      { deliveryTag: 2 ** 32, multiple: true, requeue: false },
    ],
    ['basic.cancel (consumer cancel notify)', { id: A.BASIC_CANCEL, consumerTag: 'amq.ctag-1', noWait: true }, 'BasicCancel', { consumerTag: 'amq.ctag-1', nowait: true }],
    ['confirm.select-ok', { id: A.CONFIRM_SELECT_OK }, 'ConfirmSelectOk', {}],
  ];

  it.each(SERVER_METHODS)('%s decodes in amqplib and matches amqplib\'s own bytes', (_name, method, amqplibName, fields) => {
    const bytes = encodeMethodFrame(3, method);
    expect(amqplibDecode(bytes)).toStrictEqual({ id: id(amqplibName), channel: 3, fields });
    expect(bytes.toString('hex')).toBe(defs.encodeMethod(id(amqplibName), 3, fields).toString('hex'));
  });

  it('basic.deliver from writeDeliverFrame decodes in amqplib', () => {
    const tag = encodeShortStr('ctag');
    const routing = Buffer.concat([encodeShortStr('ex'), encodeShortStr('rk')]);
    const size = deliverFrameSize(tag, routing);
    const buf = Buffer.alloc(size);
    writeDeliverFrame(buf, 0, 9, tag, 2 ** 52 + 3, false, routing);
    expect(amqplibDecode(buf)).toStrictEqual({
      id: id('BasicDeliver'),
      channel: 9,
      fields: { consumerTag: 'ctag', deliveryTag: 2 ** 52 + 3, redelivered: false, exchange: 'ex', routingKey: 'rk' },
    });
  });

  it('connection.start with server properties decodes in amqplib', () => {
    const bytes = encodeMethodFrame(0, {
      id: A.CONNECTION_START,
      versionMajor: 0,
      versionMinor: 9,
      serverProperties: {
        product: 'Warren',
        version: '0.1.0',
        platform: 'Node.js v20',
        capabilities: {
          publisher_confirms: true,
          exchange_exchange_bindings: true,
          'basic.nack': true,
          consumer_cancel_notify: true,
          'connection.blocked': true,
          consumer_priorities: true,
          authentication_failure_close: true,
          per_consumer_qos: true,
          direct_reply_to: true,
        },
        cluster_name: 'warren@localhost',
      },
      mechanisms: Buffer.from('PLAIN AMQPLAIN'),
      locales: Buffer.from('en_US'),
    });
    expect(amqplibDecode(bytes)).toStrictEqual({
      id: id('ConnectionStart'),
      channel: 0,
      fields: {
        versionMajor: 0,
        versionMinor: 9,
        serverProperties: {
          product: 'Warren',
          version: '0.1.0',
          platform: 'Node.js v20',
          capabilities: {
            publisher_confirms: true,
            exchange_exchange_bindings: true,
            'basic.nack': true,
            consumer_cancel_notify: true,
            'connection.blocked': true,
            consumer_priorities: true,
            authentication_failure_close: true,
            per_consumer_qos: true,
            direct_reply_to: true,
          },
          cluster_name: 'warren@localhost',
        },
        mechanisms: Buffer.from('PLAIN AMQPLAIN'),
        locales: Buffer.from('en_US'),
      },
    });
  });

  const WARREN_PROPERTIES: Required<BasicProperties> = {
    contentType: 'text/plain',
    contentEncoding: 'identity',
    headers: {
      bool: true,
      int: 7,
      negInt: -2147483648,
      long: 2 ** 40,
      safe: Number.MAX_SAFE_INTEGER,
      beyondSafe: 2n ** 53n + 1n, // 'l'; amqplib turns it into a (rounded) number
      negBig: -(2n ** 60n) - 1n,
      double: 2.5,
      str: 'é',
      bytes: Buffer.from([0xde, 0xad]),
      void: null,
      arr: [1, 'a', [false]],
      tbl: { x: 'y', deeper: { z: 1 } },
      ts: new Timestamp(1700000000),
      dec: new Decimal(3, 14159),
      b: new TypedValue('b', -1),
      B: new TypedValue('B', 255),
      s: new TypedValue('s', -300),
      u: new TypedValue('u', 65535),
      I: new TypedValue('I', -5),
      i: new TypedValue('i', 4294967295),
      l: new TypedValue('l', 12),
      f: new TypedValue('f', 0.25),
      d: new TypedValue('d', 4),
      S: new TypedValue('S', 'forced'),
      x: new TypedValue('x', Buffer.from('raw')),
    },
    deliveryMode: 2,
    priority: 9,
    correlationId: 'c-1',
    replyTo: 'replies',
    expiration: '60000',
    messageId: 'm-1',
    timestamp: 1700000000,
    type: 't',
    userId: 'guest',
    appId: 'warren',
    clusterId: 'cl',
  };

  it('a content header with all properties and every header type decodes in amqplib', () => {
    const raw = encodeBasicProperties(WARREN_PROPERTIES);
    const frame = Buffer.alloc(contentHeaderFrameSize(raw));
    writeContentHeaderFrame(frame, 0, 5, A.CLASS_BASIC, 2 ** 33 + 3, raw);
    expect(amqplibDecode(frame)).toStrictEqual({
      id: 60,
      channel: 5,
      size: 2 ** 33 + 3,
      fields: {
        contentType: 'text/plain',
        contentEncoding: 'identity',
        headers: {
          bool: true,
          int: 7,
          negInt: -2147483648,
          long: 2 ** 40,
          safe: Number.MAX_SAFE_INTEGER,
          beyondSafe: 9007199254740992, // amqplib decodes 'l' with Number(): 2^53 + 1 rounds to 2^53
          negBig: -1152921504606846976, // -(2^60) - 1 rounds likewise
          double: 2.5,
          str: 'é',
          bytes: Buffer.from([0xde, 0xad]),
          void: null,
          arr: [1, 'a', [false]],
          tbl: { x: 'y', deeper: { z: 1 } },
          ts: { '!': 'timestamp', value: 1700000000 },
          dec: { '!': 'decimal', value: { places: 3, digits: 14159 } },
          b: -1,
          B: 255,
          s: -300,
          u: 65535,
          I: -5,
          i: 4294967295,
          l: 12,
          f: 0.25,
          d: 4,
          S: 'forced',
          x: Buffer.from('raw'),
        },
        deliveryMode: 2,
        priority: 9,
        correlationId: 'c-1',
        replyTo: 'replies',
        expiration: '60000',
        messageId: 'm-1',
        timestamp: 1700000000,
        type: 't',
        userId: 'guest',
        appId: 'warren',
        clusterId: 'cl',
      },
    });
  });

  it('amqplib and Warren write the same content header for the same properties', () => {
    const p = { ...WARREN_PROPERTIES, headers: { a: 'b', n: new TypedValue('b', 5), ok: true } };
    const raw = encodeBasicProperties(p);
    const frame = Buffer.alloc(contentHeaderFrameSize(raw));
    writeContentHeaderFrame(frame, 0, 1, A.CLASS_BASIC, 9, raw);
    expect(frame.toString('hex')).toBe(defs.encodeProperties(60, 1, 9, { ...p, headers: { a: 'b', n: 5, ok: true } }).toString('hex'));
  });

  it('a header with no properties decodes in amqplib as no fields', () => {
    const raw = encodeBasicProperties({});
    const frame = Buffer.alloc(contentHeaderFrameSize(raw));
    writeContentHeaderFrame(frame, 0, 1, A.CLASS_BASIC, 0, raw);
    expect(amqplibDecode(frame)).toStrictEqual({ id: 60, channel: 1, size: 0, fields: {} });
  });

  it('body frames and heartbeats match amqplib\'s', () => {
    const payload = Buffer.from('hello');
    const frame = Buffer.alloc(8 + payload.length);
    const at = writeBodyFrameHeader(frame, 0, 4, payload.length);
    payload.copy(frame, at);
    frame[at + payload.length] = A.FRAME_END;
    expect(frame.toString('hex')).toBe(amqpFrame.makeBodyFrame(4, payload).toString('hex'));
    expect(amqplibDecode(frame)).toStrictEqual({ channel: 4, content: payload });
    expect(HEARTBEAT_FRAME.toString('hex')).toBe(amqpFrame.HEARTBEAT_BUF.toString('hex'));
  });
});
