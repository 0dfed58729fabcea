// Fuzzing a live broker: fast-check builds frame sequences — a valid handshake, then client methods
// with random fields (names from a small pool so that they meet), content with random sizes, and
// mutations of all of it (flipped bytes, cut frames, wrong frame ends, wrong channels and types) —
// and sends each over a fresh raw connection. Throughout, a bystander connection publishes with
// confirms and consumes: it must get every message, in order, and the broker must never throw out
// of an event (an uncaught exception fails this file) nor keep a dead connection.
//
// Bounded in time (FUZZ_MS, 20 s by default); FUZZ_SEED replays a failing run.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import * as M from '../../src/protocol/generated/amqp.js';
import { encodeTable, type FieldTable } from '../../src/protocol/field-table.js';
import { frame, headerPayload, methodFrame, RawClient } from '../support/raw-client.js';
import { sleep, uniqueName, waitFor } from '../support/harness.js';
import { useTestBroker } from '../support/test-broker.js';

const FUZZ_MS = Number(process.env['FUZZ_MS'] ?? 20_000);
const SEED = process.env['FUZZ_SEED'] === undefined ? undefined : Number(process.env['FUZZ_SEED']);

const broker = useTestBroker({ handshakeTimeoutMs: 2000 });
const clients = broker.clients;


// ---- Arbitraries ----------------------------------------------------------------------------------

const name = fc.constantFrom('', 'fz-a', 'fz-b', 'fz-x', 'amq.direct', 'amq.topic', 'amq.fanout', 'amq.headers', 'amq.rabbitmq.reply-to', 'amq.gen-1', 'x'.repeat(255));
const exchangeType = fc.constantFrom('direct', 'fanout', 'topic', 'headers', 'x-delayed-message', 'bogus', '');
const key = fc.constantFrom('', 'fz-a', 'fz-b', 'a.b.c', '#', '*.b', 'x'.repeat(255));
const table: fc.Arbitrary<FieldTable> = fc.oneof(
  fc.constant({}),
  fc.record(
    {
      'x-message-ttl': fc.oneof(fc.integer({ min: -5, max: 100 }), fc.constant('1000')),
      'x-max-length': fc.integer({ min: -1, max: 5 }),
      'x-dead-letter-exchange': name,
      'x-expires': fc.integer({ min: -1, max: 2000 }),
      'x-max-priority': fc.integer({ min: -1, max: 300 }),
      'x-overflow': fc.constantFrom('drop-head', 'reject-publish', 'reject-publish-dlx', 'nope'),
      'x-queue-type': fc.constantFrom('classic', 'quorum', 'stream', 'nope'),
      'x-single-active-consumer': fc.boolean(),
      'x-delayed-type': exchangeType,
      'alternate-exchange': name,
      'x-priority': fc.integer({ min: -10, max: 10 }),
      'x-match': fc.constantFrom('all', 'any', 'bogus'),
    },
    { requiredKeys: [] },
  ),
);
const bit = fc.boolean();
const tag = fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 20 }), fc.constant(2 ** 53 - 1));
const short = fc.integer({ min: 0, max: 65535 });

/** Client methods with random fields. */
const method: fc.Arbitrary<M.Method> = fc.oneof(
  fc.constant<M.Method>({ id: M.CHANNEL_OPEN, reserved1: '' }),
  fc.record({ id: fc.constant(M.CHANNEL_CLOSE), replyCode: short, replyText: fc.string(), classId: short, methodId: short }),
  fc.constant<M.Method>({ id: M.CHANNEL_CLOSE_OK }),
  fc.record({ id: fc.constant(M.CHANNEL_FLOW), active: bit }),
  fc.record({
    id: fc.constant(M.EXCHANGE_DECLARE),
    reserved1: fc.constant(0),
    exchange: name,
    type: exchangeType,
    passive: bit,
    durable: bit,
    autoDelete: bit,
    internal: bit,
    noWait: bit,
    arguments: table,
  }),
  fc.record({ id: fc.constant(M.EXCHANGE_DELETE), reserved1: fc.constant(0), exchange: name, ifUnused: bit, noWait: bit }),
  fc.record({ id: fc.constant(M.EXCHANGE_BIND), reserved1: fc.constant(0), destination: name, source: name, routingKey: key, noWait: bit, arguments: table }),
  fc.record({ id: fc.constant(M.EXCHANGE_UNBIND), reserved1: fc.constant(0), destination: name, source: name, routingKey: key, noWait: bit, arguments: table }),
  fc.record({
    id: fc.constant(M.QUEUE_DECLARE),
    reserved1: fc.constant(0),
    queue: name,
    passive: bit,
    durable: bit,
    exclusive: bit,
    autoDelete: bit,
    noWait: bit,
    arguments: table,
  }),
  fc.record({ id: fc.constant(M.QUEUE_BIND), reserved1: fc.constant(0), queue: name, exchange: name, routingKey: key, noWait: bit, arguments: table }),
  fc.record({ id: fc.constant(M.QUEUE_UNBIND), reserved1: fc.constant(0), queue: name, exchange: name, routingKey: key, arguments: table }),
  fc.record({ id: fc.constant(M.QUEUE_PURGE), reserved1: fc.constant(0), queue: name, noWait: bit }),
  fc.record({ id: fc.constant(M.QUEUE_DELETE), reserved1: fc.constant(0), queue: name, ifUnused: bit, ifEmpty: bit, noWait: bit }),
  fc.record({ id: fc.constant(M.BASIC_QOS), prefetchSize: fc.constantFrom(0, 0, 1), prefetchCount: short, global: bit }),
  fc.record({
    id: fc.constant(M.BASIC_CONSUME),
    reserved1: fc.constant(0),
    queue: name,
    consumerTag: fc.constantFrom('', 'c1', 'c2'),
    noLocal: bit,
    noAck: bit,
    exclusive: bit,
    noWait: bit,
    arguments: table,
  }),
  fc.record({ id: fc.constant(M.BASIC_CANCEL), consumerTag: fc.constantFrom('', 'c1', 'c2'), noWait: bit }),
  fc.record({ id: fc.constant(M.BASIC_GET), reserved1: fc.constant(0), queue: name, noAck: bit }),
  fc.record({ id: fc.constant(M.BASIC_ACK), deliveryTag: tag, multiple: bit }),
  fc.record({ id: fc.constant(M.BASIC_REJECT), deliveryTag: tag, requeue: bit }),
  fc.record({ id: fc.constant(M.BASIC_NACK), deliveryTag: tag, multiple: bit, requeue: bit }),
  fc.record({ id: fc.constant(M.BASIC_RECOVER), requeue: bit }),
  fc.record({ id: fc.constant(M.BASIC_RECOVER_ASYNC), requeue: bit }),
  fc.constant<M.Method>({ id: M.TX_SELECT }),
  fc.constant<M.Method>({ id: M.TX_COMMIT }),
  fc.constant<M.Method>({ id: M.TX_ROLLBACK }),
  fc.record({ id: fc.constant(M.CONFIRM_SELECT), nowait: bit }),
  fc.record({ id: fc.constant(M.CONNECTION_CLOSE), replyCode: short, replyText: fc.string(), classId: short, methodId: short }),
  fc.constant<M.Method>({ id: M.CONNECTION_CLOSE_OK }),
  // methods only a server sends
  fc.record({ id: fc.constant(M.BASIC_DELIVER), consumerTag: fc.string(), deliveryTag: tag, redelivered: bit, exchange: name, routingKey: key }),
  fc.record({ id: fc.constant(M.QUEUE_DECLARE_OK), queue: name, messageCount: fc.nat(), consumerCount: fc.nat() }),
) as fc.Arbitrary<M.Method>;

/** Raw property bytes: well-formed tables of headers, or junk. */
const properties: fc.Arbitrary<Buffer> = fc.oneof(
  fc.constant(Buffer.from([0, 0])),
  fc.record({ deliveryMode: fc.constantFrom(1, 2), priority: fc.integer({ min: 0, max: 255 }), headers: table, expiration: fc.constantFrom('0', '10', '-1', 'x') }).map((p) => {
    // flags: content-type? no; headers (bit 13), delivery-mode (12), priority (11), expiration (8)
    const headers = encodeTable(p.headers);
    const exp = Buffer.from(p.expiration);
    return Buffer.concat([Buffer.from([0x38, 0x80]), headers, Buffer.from([p.deliveryMode, p.priority, exp.length]), exp]);
  }),
  fc.uint8Array({ minLength: 0, maxLength: 40 }).map((a) => Buffer.from(a)),
);

/** A publish: method, header (size as announced or not), body frames. */
const publish = fc
  .record({
    exchange: name,
    routingKey: key,
    mandatory: bit,
    immediate: fc.constantFrom(false, false, true),
    body: fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a)),
    announcedDelta: fc.constantFrom(0, 0, 0, 1, -1, 1000),
    props: properties,
    split: fc.integer({ min: 1, max: 3 }),
  })
  .map((p) => (channel: number): Buffer[] => {
    const out = [methodFrame(channel, { id: M.BASIC_PUBLISH, reserved1: 0, exchange: p.exchange, routingKey: p.routingKey, mandatory: p.mandatory, immediate: p.immediate })];
    out.push(frame(2, channel, headerPayload(Math.max(0, p.body.length + p.announcedDelta), p.props)));
    const step = Math.max(1, Math.ceil(p.body.length / p.split));
    for (let o = 0; o < p.body.length; o += step) out.push(frame(3, channel, p.body.subarray(o, o + step)));
    return out;
  });

/** Mutations applied to one encoded frame. */
const mutation = fc.oneof(
  fc.constant((b: Buffer) => b),
  fc.constant((b: Buffer) => b),
  fc.constant((b: Buffer) => b),
  fc.record({ at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }).map(({ at, value }) => (b: Buffer) => {
    const c = Buffer.from(b);
    c[at % c.length] = value;
    return c;
  }),
  fc.nat().map((n) => (b: Buffer) => b.subarray(0, n % b.length)),
  fc.uint8Array({ maxLength: 20 }).map((extra) => (b: Buffer) => Buffer.concat([b, Buffer.from(extra)])),
  fc.constant((b: Buffer) => {
    const c = Buffer.from(b);
    c[c.length - 1] = 0;
    return c;
  }),
  fc.constantFrom(0, 1, 2, 3, 4, 8, 9, 0xff).map((type) => (b: Buffer) => {
    const c = Buffer.from(b);
    c[0] = type;
    return c;
  }),
);

const channelNo = fc.constantFrom(0, 1, 1, 1, 2, 3, 2047, 2048, 65535);

const step: fc.Arbitrary<(channel: number) => Buffer[]> = fc.oneof(
  { weight: 6, arbitrary: method.map((m) => (channel: number) => [methodFrame(channel, m)]) },
  { weight: 3, arbitrary: publish },
  { weight: 1, arbitrary: fc.uint8Array({ minLength: 1, maxLength: 64 }).map((a) => () => [Buffer.from(a)]) },
  { weight: 1, arbitrary: fc.constant(() => [frame(8, 0, Buffer.alloc(0))]) },
);

/** A connection's worth: open a channel or two, then steps on random channels, each maybe mutated. */
const script = fc.record({
  open: fc.constantFrom([1], [1, 2], [] as number[]),
  steps: fc.array(fc.record({ channel: channelNo, build: step, mutate: mutation }), { minLength: 1, maxLength: 25 }),
  tune: fc.record({ channelMax: fc.constantFrom(1, 2, 2047), frameMax: fc.constantFrom(4096, 131072) }),
});

// ---- The run --------------------------------------------------------------------------------------

type Script = typeof script extends fc.Arbitrary<infer T> ? T : never;

async function runScript(s: Script): Promise<void> {
  let raw: RawClient;
  try {
    raw = await RawClient.handshake(broker.port, { channelMax: s.tune.channelMax, frameMax: s.tune.frameMax });
  } catch {
    return; // a tune the broker refuses ends the handshake: that is an answer too
  }
  try {
    for (const ch of s.open) raw.send(ch, { id: M.CHANNEL_OPEN, reserved1: '' });
    const bytes: Buffer[] = [];
    for (const st of s.steps) for (const f of st.build(st.channel)) bytes.push(st.mutate(f));
    raw.write(Buffer.concat(bytes));
    // Whatever it was, the broker answers or closes: give it a moment, then go away rudely or politely.
    await Promise.race([raw.waitClosed(60).catch(() => {}), sleep(30)]);
    if (!raw.closed && Math.random() < 0.5) raw.write(methodFrame(0, { id: M.CONNECTION_CLOSE, replyCode: 200, replyText: '', classId: 0, methodId: 0 }));
  } finally {
    raw.destroy();
  }
}

describe('fuzz', () => {
  it(`random and mutated frame sequences for ${FUZZ_MS / 1000} s: the broker stays up, a bystander loses nothing`, { timeout: FUZZ_MS + 60_000 }, async () => {
    // The bystander: confirmed publishes to its own queue, consumed with acks, all the time.
    const q = uniqueName('bystander');
    const pubConn = await clients.connect();
    const pub = await clients.confirmChannel(pubConn);
    await pub.assertQueue(q, { durable: true });
    const consumer = await clients.channel();
    const got: number[] = [];
    await consumer.consume(q, (m) => {
      if (m === null) return;
      got.push(Number(m.content.toString()));
      consumer.ack(m);
    });
    let sent = 0;
    let running = true;
    const publishing = (async () => {
      while (running) {
        for (let i = 0; i < 20; i++) pub.sendToQueue(q, Buffer.from(String(sent++)), { persistent: true });
        await pub.waitForConfirms();
      }
    })();

    const connectionsBefore = broker.server.connections.size;
    let runs = 0;
    await fc.assert(
      fc.asyncProperty(script, async (s) => {
        runs++;
        await runScript(s);
        return true;
      }),
      { numRuns: 1_000_000, interruptAfterTimeLimit: FUZZ_MS, ...(SEED === undefined ? {} : { seed: SEED }), markInterruptAsFailure: false },
    );
    running = false;
    await publishing;

    await waitFor(() => got.length === sent, `the bystander's ${sent} messages (have ${got.length})`, 15_000);
    expect(got).toEqual(Array.from({ length: sent }, (_, i) => i));
    expect(pub.errors).toEqual([]);
    expect(consumer.errors).toEqual([]);
    expect(pubConn.closed).toBe(false);
    // Every fuzzing connection is gone (none left half-open on the broker's side).
    await waitFor(() => broker.server.connections.size === connectionsBefore, 'the fuzzing connections to be cleaned up', 10_000);
    console.log(`fuzz: ${runs} connections, bystander ${sent} messages confirmed and consumed`);
    expect(runs).toBeGreaterThan(100);
    await pub.deleteQueue(q);
  });
});

