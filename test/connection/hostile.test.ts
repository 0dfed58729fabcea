// Hostile bytes over a raw socket. Each case gets the answer RabbitMQ 3.10 gives (reply code, text,
// class/method ids; measured against the real broker), the process stays up, and a well-behaved
// amqplib connection keeps publishing and consuming throughout.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as M from '../../src/protocol/generated/amqp.js';
import { startTestBroker, type TestBroker } from '../support/broker.js';
import { Bystander } from '../support/bystander.js';
import { waitFor } from '../support/wait.js';
import { PROTOCOL_HEADER, RawClient, frame, headerPayload, methodFrame } from '../support/raw-client.js';

let broker: TestBroker;
let bystander: Bystander;

beforeAll(async () => {
  broker = await startTestBroker();
  bystander = await Bystander.start(broker.url);
});

afterAll(async () => {
  // The bystander saw every one of its messages while the hostile clients came and went.
  await bystander.allReceived();
  expect(bystander.received).toBeGreaterThan(10);
  await bystander.close();
  await broker.stop();
});

/** Publishes on the well-behaved connection; called between hostile steps. */
const bystanderPublishes = (): void => bystander.publish();

async function expectClose(raw: RawClient, replyCode: number, replyText: string, classId = 0, methodId = 0) {
  const close = await raw.expectConnectionClose();
  expect(close).toEqual({ id: M.CONNECTION_CLOSE, replyCode, replyText, classId, methodId });
  bystanderPublishes();
  return close;
}

describe('protocol header', () => {
  for (const [name, bytes] of [
    ['AMQP 0-9-0', Buffer.from('AMQP\x00\x00\x09\x00', 'latin1')],
    ['AMQP 0-8', Buffer.from('AMQP\x00\x00\x08\x00', 'latin1')],
    ['HTTP', Buffer.from('GET / HTTP/1.1\r\n\r\n', 'latin1')],
    ['AMQP 1.0', Buffer.from('AMQP\x00\x01\x00\x00', 'latin1')],
  ] as const) {
    it(`answers ${name} with the 0-9-1 header and closes`, async () => {
      const raw = await RawClient.open(broker.port);
      raw.write(bytes);
      await raw.waitClosed();
      expect(raw.received()).toEqual(PROTOCOL_HEADER);
      bystanderPublishes();
    });
  }

  it('accepts the legacy 0-9-1 header (AMQP 1 1 0 9) as RabbitMQ does', async () => {
    const raw = await RawClient.open(broker.port);
    raw.startParsing();
    raw.write(Buffer.from('AMQP\x01\x01\x00\x09', 'latin1'));
    const start = (await raw.waitForMethod(M.CONNECTION_START)) as M.ConnectionStart;
    expect([start.versionMajor, start.versionMinor]).toEqual([0, 9]);
    raw.destroy();
  });

  it('closes a connection that never finishes the handshake', async () => {
    const quick = await startTestBroker({ handshakeTimeoutMs: 300 });
    const raw = await RawClient.open(quick.port);
    raw.write(PROTOCOL_HEADER.subarray(0, 7));
    await raw.waitClosed(3000);
    expect(raw.received().length).toBe(0);
    await quick.stop();
  });
});

describe('framing errors', () => {
  it('bad frame-end octet → 501 and the socket closes', async () => {
    const raw = await RawClient.handshake(broker.port);
    raw.write(frame(1, 1, Buffer.from([0, 20, 0, 10, 0]), 0x00));
    await expectClose(raw, 501, 'FRAME_ERROR - type 1, all octets = <<0,20,0,10,0>>: {invalid_frame_end_marker,0}');
    raw.send(0, { id: M.CONNECTION_CLOSE_OK });
    await raw.waitClosed(5000);
  });

  it('frame larger than the negotiated frame_max → 501, judged on the header alone', async () => {
    const raw = await RawClient.handshake(broker.port, { frameMax: 4096 });
    const header = Buffer.alloc(7);
    header[0] = 3;
    header.writeUInt16BE(1, 1);
    header.writeUInt32BE(10000, 3);
    raw.write(header);
    await expectClose(raw, 501, 'FRAME_ERROR - type 3, all octets = <<>>: {frame_too_large,10000,4088}');
    await raw.waitClosed(5000);
  });

  it('accepts a payload of exactly frame_max bytes, as RabbitMQ does', async () => {
    const raw = await RawClient.handshake(broker.port, { frameMax: 4096 });
    await raw.openChannel(1);
    raw.send(1, { id: M.QUEUE_DECLARE, reserved1: 0, queue: '', passive: false, durable: false, exclusive: true, autoDelete: false, noWait: false, arguments: {} });
    const ok = (await raw.waitForMethod(M.QUEUE_DECLARE_OK, 1)) as M.QueueDeclareOk;
    raw.send(1, { id: M.BASIC_PUBLISH, reserved1: 0, exchange: '', routingKey: ok.queue, mandatory: false, immediate: false });
    raw.write(frame(2, 1, headerPayload(4096)));
    raw.write(frame(3, 1, Buffer.alloc(4096, 7)));
    raw.send(1, { id: M.BASIC_GET, reserved1: 0, queue: ok.queue, noAck: true });
    const got = (await raw.waitForMethod(M.BASIC_GET_OK, 1)) as M.BasicGetOk;
    expect(got.messageCount).toBe(0);
    raw.destroy();
  });

  it('unknown frame type → 501 unknown_frame', async () => {
    const raw = await RawClient.handshake(broker.port);
    raw.write(frame(5, 1, Buffer.from([1, 2, 3, 4])));
    await expectClose(raw, 501, 'FRAME_ERROR - type 5, all octets = <<1,2,3,4>>: unknown_frame');
    raw.send(0, { id: M.CONNECTION_CLOSE_OK });
    await raw.waitClosed();
  });

  it('heartbeat on a non-zero channel → 505', async () => {
    const raw = await RawClient.handshake(broker.port);
    raw.write(frame(8, 1, Buffer.alloc(0)));
    await expectClose(raw, 505, 'UNEXPECTED_FRAME - type 8, all octets = <<>>');
  });

  it('truncated method arguments → 501 cannot decode, with the method ids', async () => {
    const raw = await RawClient.handshake(broker.port);
    await raw.openChannel(1);
    raw.write(frame(1, 1, Buffer.from([0, 50, 0, 10, 0, 0])));
    await expectClose(raw, 501, 'FRAME_ERROR - cannot decode <<0,0>>', 50, 10);
  });

  it('a field table with an unknown type byte → 501, not a crash', async () => {
    const raw = await RawClient.handshake(broker.port);
    await raw.openChannel(1);
    // queue.declare "q" with arguments {x-foo: 'Z' ...}
    const args = Buffer.from('0000000b05782d666f6f5a00000001', 'hex');
    const payload = Buffer.concat([Buffer.from([0, 50, 0, 10, 0, 0, 1]), Buffer.from('q'), Buffer.from([0]), args]);
    raw.write(frame(1, 1, payload));
    const close = await raw.expectConnectionClose();
    expect(close.replyCode).toBe(501);
    expect(close.replyText).toMatch(/^FRAME_ERROR - cannot decode <</);
    expect([close.classId, close.methodId]).toEqual([50, 10]);
    bystanderPublishes();
  });

  it('a truncated frame followed by a disconnect leaves nothing behind', async () => {
    const before = broker.server.connections.size;
    const raw = await RawClient.handshake(broker.port);
    await raw.openChannel(1);
    raw.write(methodFrame(1, { id: M.BASIC_PUBLISH, reserved1: 0, exchange: '', routingKey: 'x', mandatory: false, immediate: false }));
    raw.write(frame(2, 1, headerPayload(100000)).subarray(0, 10));
    raw.destroy();
    await waitFor(() => broker.server.connections.size === before, 'the broken connection to be cleaned up');
    bystanderPublishes();
  });
});

describe('methods and channels', () => {
  it('unknown class/method id → 540 NOT_IMPLEMENTED with the ids', async () => {
    const raw = await RawClient.handshake(broker.port);
    await raw.openChannel(1);
    raw.write(frame(1, 1, Buffer.from([0, 60, 0, 99])));
    await expectClose(raw, 540, 'NOT_IMPLEMENTED - unknown method: class 60, method 99', 60, 99);
  });

  it('a method on a channel that was never opened → 504', async () => {
    const raw = await RawClient.handshake(broker.port);
    raw.send(5, { id: M.QUEUE_DECLARE, reserved1: 0, queue: 'q', passive: false, durable: false, exclusive: false, autoDelete: false, noWait: false, arguments: {} });
    await expectClose(raw, 504, "CHANNEL_ERROR - expected 'channel.open'", 50, 10);
  });

  it('a second channel.open on an open channel → 504', async () => {
    const raw = await RawClient.handshake(broker.port);
    await raw.openChannel(1);
    raw.send(1, { id: M.CHANNEL_OPEN, reserved1: '' });
    await expectClose(raw, 504, "CHANNEL_ERROR - second 'channel.open' seen", 20, 10);
  });

  it('a header frame without a method → 505', async () => {
    const raw = await RawClient.handshake(broker.port);
    await raw.openChannel(1);
    raw.write(frame(2, 1, headerPayload(5)));
    await expectClose(raw, 505, 'UNEXPECTED_FRAME - expected method frame, got non method frame instead');
  });

  it('a method between basic.publish and its header → 505 naming the publish', async () => {
    const raw = await RawClient.handshake(broker.port);
    await raw.openChannel(1);
    raw.send(1, { id: M.BASIC_PUBLISH, reserved1: 0, exchange: '', routingKey: 'x', mandatory: false, immediate: false });
    raw.send(1, { id: M.QUEUE_DECLARE, reserved1: 0, queue: 'q', passive: false, durable: false, exclusive: false, autoDelete: false, noWait: false, arguments: {} });
    await expectClose(raw, 505, 'UNEXPECTED_FRAME - expected content header for class 60, got non content header frame instead', 60, 40);
  });

  it('a body longer than its header announced → 501', async () => {
    const raw = await RawClient.handshake(broker.port);
    await raw.openChannel(1);
    raw.send(1, { id: M.BASIC_PUBLISH, reserved1: 0, exchange: '', routingKey: 'x', mandatory: false, immediate: false });
    raw.write(frame(2, 1, headerPayload(5)));
    raw.write(frame(3, 1, Buffer.alloc(10)));
    const close = await raw.expectConnectionClose();
    expect(close.replyCode).toBe(501);
    expect([close.classId, close.methodId]).toEqual([60, 40]);
    bystanderPublishes();
  });

  it('a content header whose class does not match the method → 505', async () => {
    const raw = await RawClient.handshake(broker.port);
    await raw.openChannel(1);
    raw.send(1, { id: M.BASIC_PUBLISH, reserved1: 0, exchange: '', routingKey: 'x', mandatory: false, immediate: false });
    raw.write(frame(2, 1, headerPayload(5, Buffer.from([0, 0]), 50)));
    await expectClose(raw, 505, 'UNEXPECTED_FRAME - expected content header for class 60, got one for class 50 instead', 60, 40);
  });

  it('content on channel 0 → 505', async () => {
    const raw = await RawClient.handshake(broker.port);
    raw.write(frame(3, 0, Buffer.from('hello')));
    await expectClose(raw, 505, 'UNEXPECTED_FRAME - type 3, all octets = <<"hello">>');
  });

  it('a channel method on channel 0 → 504', async () => {
    const raw = await RawClient.handshake(broker.port);
    raw.send(0, { id: M.CHANNEL_OPEN, reserved1: '' });
    await expectClose(raw, 504, 'CHANNEL_ERROR - unexpected method in connection state running', 20, 10);
  });

  it('channel_max limits channel numbers (the spec; RabbitMQ 3.10 only counts open channels, 530)', async () => {
    const raw = await RawClient.handshake(broker.port, { channelMax: 2 });
    await raw.openChannel(1);
    await raw.openChannel(2);
    raw.send(3, { id: M.CHANNEL_OPEN, reserved1: '' });
    await expectClose(raw, 504, 'CHANNEL_ERROR - channel 3 is above the negotiated channel_max (2)', 20, 10);
  });

  it('drops everything but close-ok after a connection error, then closes on close-ok', async () => {
    const raw = await RawClient.handshake(broker.port);
    await raw.openChannel(1);
    raw.send(1, { id: M.CHANNEL_OPEN, reserved1: '' });
    await raw.expectConnectionClose();
    raw.send(1, { id: M.QUEUE_DECLARE, reserved1: 0, queue: 'q', passive: false, durable: false, exclusive: false, autoDelete: false, noWait: false, arguments: {} });
    raw.send(2, { id: M.CHANNEL_OPEN, reserved1: '' });
    raw.send(0, { id: M.CONNECTION_CLOSE_OK });
    await raw.waitClosed();
    expect(raw.frames.filter((f) => f.type === 1)).toEqual([]);
    bystanderPublishes();
  });

  it('a channel error closes only that channel; frames on it are dropped until close-ok', async () => {
    const raw = await RawClient.handshake(broker.port);
    await raw.openChannel(1);
    await raw.openChannel(2);
    raw.send(1, { id: M.QUEUE_DECLARE, reserved1: 0, queue: 'nope', passive: true, durable: false, exclusive: false, autoDelete: false, noWait: false, arguments: {} });
    const close = await raw.expectChannelClose(1);
    expect(close).toEqual({ id: M.CHANNEL_CLOSE, replyCode: 404, replyText: "NOT_FOUND - no queue 'nope' in vhost '/'", classId: 50, methodId: 10 });
    raw.send(1, { id: M.QUEUE_DECLARE, reserved1: 0, queue: '', passive: false, durable: false, exclusive: true, autoDelete: false, noWait: false, arguments: {} });
    raw.send(2, { id: M.QUEUE_DECLARE, reserved1: 0, queue: '', passive: false, durable: false, exclusive: true, autoDelete: false, noWait: false, arguments: {} });
    await raw.waitForMethod(M.QUEUE_DECLARE_OK, 2);
    expect(raw.frames.some((f) => f.channel === 1 && f.method?.id === M.QUEUE_DECLARE_OK)).toBe(false);
    raw.send(1, { id: M.CHANNEL_CLOSE_OK });
    await raw.openChannel(1);
    raw.destroy();
  });
});

describe('handshake', () => {
  it('bad password without authentication_failure_close: silent close', async () => {
    const raw = await RawClient.open(broker.port);
    raw.startParsing();
    raw.write(PROTOCOL_HEADER);
    await raw.waitForMethod(M.CONNECTION_START);
    raw.send(0, { id: M.CONNECTION_START_OK, clientProperties: {}, mechanism: 'PLAIN', response: Buffer.from('\0guest\0nope'), locale: 'en_US' });
    await raw.waitClosed(6000);
    expect(raw.frames.filter((f) => f.method?.id !== M.CONNECTION_START)).toEqual([]);
  });

  it('tune-ok with frame_max below 4096 ends the handshake', async () => {
    const raw = await RawClient.handshakeUntilOpen(broker.port, { clientProperties: {}, channelMax: 2047, frameMax: 1000 });
    await raw.waitClosed(6000);
    expect(raw.frames.some((f) => f.method?.id === M.CONNECTION_OPEN_OK)).toBe(false);
  });
});
