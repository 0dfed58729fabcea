// Queues end to end (amqplib, plus a raw socket for the nowait variants that amqplib does not
// expose): queue.declare with its flags and edge cases, exclusive and auto-delete queues,
// queue.bind / unbind / purge / delete. Every expectation here is RabbitMQ's.

import { describe, expect, it } from 'vitest';
import * as M from '../../src/protocol/generated/amqp.js';
import { RawClient } from '../support/raw-client.js';
import { collector, failure, QUIET_MS, rejection, sleep, waitFor, useBroker } from '../support/harness.js';

const h = useBroker();

const lockedText = (q: string): string =>
  `RESOURCE_LOCKED - cannot obtain exclusive access to locked queue '${q}' in vhost '/'. ` +
  'It could be originally declared on another connection or the exclusive property value does not match that of the original declaration.';

describe('queue.declare', () => {
  it('passive declare of a missing queue is 404 and closes the channel only', async () => {
    const conn = await h.connect();
    const ch = await h.channel(conn);
    const q = h.queue();
    expect(await rejection(ch.checkQueue(q))).toEqual(
      expect.objectContaining({ code: 404, text: `NOT_FOUND - no queue '${q}' in vhost '/'`, classId: 50, methodId: 10 }),
    );
    expect(ch.closed).toBe(true);
    expect(conn.closed).toBe(false);
    await (await h.channel(conn)).checkExchange('amq.direct');
  });

  it('declare-ok carries the name and zero counts for a new queue; passive declare reports the same', async () => {
    const ch = await h.channel();
    const q = h.queue();
    expect(await ch.assertQueue(q, { durable: false })).toEqual({ queue: q, messageCount: 0, consumerCount: 0 });
    expect(await ch.checkQueue(q)).toEqual({ queue: q, messageCount: 0, consumerCount: 0 });
  });

  it('declare-ok counts ready messages (not unacked ones) and consumers', async () => {
    const conn = await h.connect();
    const ch = await h.channel(conn);
    const q = h.queue();
    await ch.assertQueue(q, { durable: false });
    for (let i = 0; i < 5; i++) ch.sendToQueue(q, Buffer.from(`m${i}`));
    await waitFor(async () => (await ch.checkQueue(q)).messageCount === 5, '5 messages');
    const consumerCh = await h.channel(conn);
    await consumerCh.prefetch(2);
    const c = collector();
    await consumerCh.consume(q, c.onMessage);
    await c.waitFor(2);
    await sleep(QUIET_MS); // prefetch 2: no third delivery
    expect(c.messages.length).toBe(2);
    expect(await ch.checkQueue(q)).toEqual({ queue: q, messageCount: 3, consumerCount: 1 });
    expect(await ch.assertQueue(q, { durable: false })).toEqual({ queue: q, messageCount: 3, consumerCount: 1 });
  });

  it('an empty name gets a server-generated amq.gen- name of 22 characters', async () => {
    const ch = await h.channel();
    const a = await ch.assertQueue('', { exclusive: true });
    const b = await ch.assertQueue('', { exclusive: true });
    expect(a.queue).toMatch(/^amq\.gen-[A-Za-z0-9_-]{22}$/);
    expect(b.queue).toMatch(/^amq\.gen-[A-Za-z0-9_-]{22}$/);
    expect(a.queue).not.toBe(b.queue);
    expect(a).toEqual({ queue: a.queue, messageCount: 0, consumerCount: 0 });
    // The default exchange routes to it by name.
    ch.sendToQueue(a.queue, Buffer.from('hi'));
    const m = await waitFor(() => ch.get(a.queue, { noAck: true }), 'the message');
    expect(m && m.content.toString()).toBe('hi');
  });

  it("a name starting with 'amq.' is 403", async () => {
    const ch = await h.channel();
    const q = `amq.${h.queue('warren')}`;
    expect(await rejection(ch.assertQueue(q, { durable: false }))).toMatchObject({
      code: 403,
      text: `ACCESS_REFUSED - queue name '${q}' contains reserved prefix 'amq.*'`,
      classId: 50,
      methodId: 10,
    });
  });

  it("passive declare of a missing 'amq.' queue is 404", async () => {
    const ch = await h.channel();
    expect(await rejection(ch.checkQueue('amq.gen-nothing'))).toMatchObject({
      code: 404,
      text: "NOT_FOUND - no queue 'amq.gen-nothing' in vhost '/'",
    });
  });

  it('a durable queue is visible to another connection and keeps its messages', async () => {
    const ch = await h.channel();
    const q = h.queue();
    await ch.assertQueue(q, { durable: true });
    ch.sendToQueue(q, Buffer.from('kept'), { persistent: true });
    const other = await h.channel();
    await waitFor(async () => (await other.checkQueue(q)).messageCount === 1, 'the message');
    const m = await other.get(q, { noAck: true });
    expect(m && m.content.toString()).toBe('kept');
  });

  it('redeclare with a different durable flag is 406 inequivalent arg', async () => {
    const conn = await h.connect();
    const ch = await h.channel(conn);
    const q = h.queue();
    await ch.assertQueue(q, { durable: true });
    expect(await rejection(ch.assertQueue(q, { durable: false }))).toMatchObject({
      code: 406,
      text: `PRECONDITION_FAILED - inequivalent arg 'durable' for queue '${q}' in vhost '/': received 'false' but current is 'true'`,
      classId: 50,
      methodId: 10,
    });
  });

  it('redeclare with a different auto-delete flag is 406 inequivalent arg', async () => {
    const ch = await h.channel();
    const q = h.queue();
    await ch.assertQueue(q, { durable: false, autoDelete: false });
    expect(await rejection(ch.assertQueue(q, { durable: false, autoDelete: true }))).toMatchObject({
      code: 406,
      text: `PRECONDITION_FAILED - inequivalent arg 'auto_delete' for queue '${q}' in vhost '/': received 'true' but current is 'false'`,
    });
  });

  it('redeclare with different arguments is 406 inequivalent arg', async () => {
    const conn = await h.connect();
    const ch = await h.channel(conn);
    const q = h.queue();
    await ch.assertQueue(q, { durable: false, arguments: { 'x-message-ttl': 60000 } });
    expect(await rejection(ch.assertQueue(q, { durable: false, arguments: { 'x-message-ttl': 30000 } }))).toMatchObject({
      code: 406,
      text: `PRECONDITION_FAILED - inequivalent arg 'x-message-ttl' for queue '${q}' in vhost '/': received '30000' but current is '60000'`,
    });
    const ch2 = await h.channel(conn);
    expect(await rejection(ch2.assertQueue(q, { durable: false }))).toMatchObject({
      code: 406,
      text: `PRECONDITION_FAILED - inequivalent arg 'x-message-ttl' for queue '${q}' in vhost '/': received none but current is the value '60000' of type 'signedint'`,
    });
    const ch3 = await h.channel(conn);
    const q2 = h.queue();
    await ch3.assertQueue(q2, { durable: false });
    expect(await rejection(ch3.assertQueue(q2, { durable: false, arguments: { 'x-max-length': 10 } }))).toMatchObject({
      code: 406,
      text: `PRECONDITION_FAILED - inequivalent arg 'x-max-length' for queue '${q2}' in vhost '/': received the value '10' of type 'byte' but current is none`,
    });
  });

  it('only the arguments RabbitMQ knows are compared; integer widths do not matter', async () => {
    const conn = await h.connect();
    const ch = await h.channel(conn);
    const q = h.queue();
    await ch.assertQueue(q, { durable: false, arguments: { foo: 1 } });
    await ch.assertQueue(q, { durable: false, arguments: { foo: 2 } });
    await ch.assertQueue(q, { durable: false });
    const q2 = h.queue();
    await ch.assertQueue(q2, { durable: false, arguments: { 'x-max-length': { '!': 'int', value: 10 } } });
    await ch.assertQueue(q2, { durable: false, arguments: { 'x-max-length': 10 } }); // a byte
    await ch.assertQueue(q2, { durable: false, arguments: { 'x-max-length': { '!': 'long', value: 10 } } });
    const q3 = h.queue();
    await ch.assertQueue(q3, { durable: false, arguments: { 'x-expires': 100000 } });
    expect(await rejection(ch.assertQueue(q3, { durable: false, arguments: { 'x-expires': 200000 } }))).toMatchObject({
      code: 406,
      text: `PRECONDITION_FAILED - inequivalent arg 'x-expires' for queue '${q3}' in vhost '/': received '200000' but current is '100000'`,
    });
    const ch2 = await h.channel(conn);
    const q4 = h.queue();
    await ch2.assertQueue(q4, { durable: false, arguments: { 'x-dead-letter-exchange': 'a' } });
    expect(await rejection(ch2.assertQueue(q4, { durable: false, arguments: { 'x-dead-letter-exchange': 'b' } }))).toMatchObject({
      code: 406,
      text: `PRECONDITION_FAILED - inequivalent arg 'x-dead-letter-exchange' for queue '${q4}' in vhost '/': received 'b' but current is 'a'`,
    });
  });

  it("x-queue-type 'classic' given explicitly is the same as none, both ways round", async () => {
    const ch = await h.channel();
    const q = h.queue();
    await ch.assertQueue(q, { durable: false });
    await ch.assertQueue(q, { durable: false, arguments: { 'x-queue-type': 'classic' } });
    const q2 = h.queue();
    await ch.assertQueue(q2, { durable: true, arguments: { 'x-queue-type': 'classic' } });
    await ch.assertQueue(q2, { durable: true });
    expect(ch.errors).toEqual([]);
  });

  it('redeclare with the same arguments succeeds; a passive redeclare ignores flags and arguments', async () => {
    const ch = await h.channel();
    const q = h.queue();
    await ch.assertQueue(q, { durable: true, arguments: { 'x-max-length': 1000 } });
    await ch.assertQueue(q, { durable: true, arguments: { 'x-max-length': 1000 } });
    expect(await ch.checkQueue(q)).toEqual({ queue: q, messageCount: 0, consumerCount: 0 });
  });
});

describe('exclusive queues', () => {
  it('another connection gets 405 RESOURCE_LOCKED for declare, passive declare, consume, bind, unbind, purge, delete and get', async () => {
    const owner = await h.connect();
    const och = await h.channel(owner);
    const q = h.queue();
    await och.assertQueue(q, { exclusive: true, durable: false });
    await och.bindQueue(q, 'amq.direct', 'k');
    const other = await h.connect();
    const attempts: [string, (ch: Awaited<ReturnType<typeof h.channel>>) => Promise<unknown>, number, number][] = [
      ['declare', (ch) => ch.assertQueue(q, { exclusive: true, durable: false }), 50, 10],
      ['declare non-exclusive', (ch) => ch.assertQueue(q, { exclusive: false, durable: false }), 50, 10],
      ['passive declare', (ch) => ch.checkQueue(q), 50, 10],
      ['consume', (ch) => ch.consume(q, () => {}), 60, 20],
      ['bind', (ch) => ch.bindQueue(q, 'amq.direct', 'k'), 50, 20],
      ['unbind', (ch) => ch.unbindQueue(q, 'amq.direct', 'k'), 50, 50],
      ['purge', (ch) => ch.purgeQueue(q), 50, 30],
      ['delete', (ch) => ch.deleteQueue(q), 50, 40],
      ['get', (ch) => ch.get(q), 60, 70],
    ];
    const results: Record<string, unknown> = {};
    for (const [what, op] of attempts) {
      const ch = await h.channel(other);
      results[what] = await op(ch).then(
        (ok) => ({ ok }),
        (e: unknown) => {
          const f = failure(e);
          return { code: f.code, text: f.text, classId: f.classId, methodId: f.methodId };
        },
      );
    }
    const expected: Record<string, unknown> = {};
    for (const [what, , classId, methodId] of attempts) expected[what] = { code: 405, text: lockedText(q), classId, methodId };
    expect(results).toEqual(expected);
    expect(other.closed).toBe(false);
    // RabbitMQ quirk: unbinding a binding that does not exist succeeds without the exclusivity check.
    expect(await (await h.channel(other)).unbindQueue(q, 'amq.direct', 'never-bound')).toEqual({});
    // The owner still has it, on any of its channels.
    const och2 = await h.channel(owner);
    expect(await och2.checkQueue(q)).toEqual({ queue: q, messageCount: 0, consumerCount: 0 });
    await och2.bindQueue(q, 'amq.direct', q);
    await och2.unbindQueue(q, 'amq.direct', q);
  });

  it('redeclaring without exclusive on the owner connection is 405', async () => {
    const ch = await h.channel();
    const q = h.queue();
    await ch.assertQueue(q, { exclusive: true, durable: false });
    expect(await rejection(ch.assertQueue(q, { exclusive: false, durable: false }))).toMatchObject({
      code: 405,
      text: lockedText(q),
    });
  });

  it('declaring an existing non-exclusive queue as exclusive is 405', async () => {
    const ch = await h.channel();
    const q = h.queue();
    await ch.assertQueue(q, { exclusive: false, durable: false });
    expect(await rejection(ch.assertQueue(q, { exclusive: true, durable: false }))).toMatchObject({
      code: 405,
      text: lockedText(q),
    });
  });

  it('publishing to another connection\'s exclusive queue is allowed', async () => {
    const owner = await h.channel();
    const q = h.queue();
    await owner.assertQueue(q, { exclusive: true, durable: false });
    const other = await h.channel();
    other.sendToQueue(q, Buffer.from('from outside'));
    const m = await waitFor(() => owner.get(q, { noAck: true }), 'the message');
    expect(m && m.content.toString()).toBe('from outside');
  });

  it('is deleted when its owner connection closes', async () => {
    const owner = await h.connect();
    const och = await h.channel(owner);
    const q = h.queue();
    await och.assertQueue(q, { exclusive: true, durable: false });
    const watcher = await h.connect();
    expect(await rejection((await h.channel(watcher)).checkQueue(q))).toMatchObject({ code: 405 });
    await owner.close();
    await waitFor(async () => {
      const ch = await h.channel(watcher);
      const f = await ch.checkQueue(q).then(
        () => null,
        (e: unknown) => e,
      );
      return f !== null && (f as { code?: number }).code === 404;
    }, 'the exclusive queue to go');
    expect(await rejection((await h.channel(watcher)).checkQueue(q))).toMatchObject({
      code: 404,
      text: `NOT_FOUND - no queue '${q}' in vhost '/'`,
    });
  });

  it('is not deleted when only the declaring channel closes', async () => {
    const owner = await h.connect();
    const och = await h.channel(owner);
    const q = h.queue();
    await och.assertQueue(q, { exclusive: true, durable: false });
    await och.close();
    expect(await (await h.channel(owner)).checkQueue(q)).toEqual({ queue: q, messageCount: 0, consumerCount: 0 });
  });
});

describe('auto-delete queues', () => {
  it('are not deleted before they ever had a consumer', async () => {
    const ch = await h.channel();
    const q = h.queue();
    await ch.assertQueue(q, { autoDelete: true, durable: false });
    ch.sendToQueue(q, Buffer.from('x'));
    await sleep(QUIET_MS);
    expect(await ch.checkQueue(q)).toEqual({ queue: q, messageCount: 1, consumerCount: 0 });
    const m = await ch.get(q, { noAck: true }); // basic.get is not a consumer
    expect(m && m.content.toString()).toBe('x');
    await sleep(QUIET_MS);
    expect(await ch.checkQueue(q)).toEqual({ queue: q, messageCount: 0, consumerCount: 0 });
  });

  it('are deleted when the last consumer is cancelled, not before', async () => {
    const conn = await h.connect();
    const ch = await h.channel(conn);
    const q = h.queue();
    await ch.assertQueue(q, { autoDelete: true, durable: false });
    const c1 = await ch.consume(q, () => {});
    const c2 = await ch.consume(q, () => {});
    await ch.cancel(c1.consumerTag);
    expect(await ch.checkQueue(q)).toEqual({ queue: q, messageCount: 0, consumerCount: 1 });
    await ch.cancel(c2.consumerTag);
    const probe = await h.channel(conn);
    expect(await rejection(probe.checkQueue(q))).toMatchObject({ code: 404, text: `NOT_FOUND - no queue '${q}' in vhost '/'` });
  });

  it('are deleted when the last consumer goes with its channel', async () => {
    const conn = await h.connect();
    const cch = await h.channel(conn);
    const q = h.queue();
    await cch.assertQueue(q, { autoDelete: true, durable: false });
    await cch.consume(q, () => {});
    await cch.close();
    const probe = await h.connect();
    await waitFor(async () => {
      const ch = await h.channel(probe);
      return ch.checkQueue(q).then(
        () => false,
        () => true,
      );
    }, 'the auto-delete queue to go');
  });

  it('are not deleted when a basic.get-only client is done', async () => {
    const conn = await h.connect();
    const ch = await h.channel(conn);
    const q = h.queue();
    await ch.assertQueue(q, { autoDelete: true, durable: false });
    expect(await ch.get(q)).toBe(false);
    await ch.close();
    await sleep(QUIET_MS);
    expect(await (await h.channel(conn)).checkQueue(q)).toEqual({ queue: q, messageCount: 0, consumerCount: 0 });
  });
});

describe('queue.bind / queue.unbind', () => {
  it('bind makes messages arrive, unbind stops them; rebinding is idempotent', async () => {
    const conn = await h.connect();
    const ch = await h.channel(conn);
    const q = h.queue();
    await ch.assertQueue(q, { durable: false });
    expect(await ch.bindQueue(q, 'amq.direct', q)).toEqual({});
    expect(await ch.bindQueue(q, 'amq.direct', q)).toEqual({});
    expect(await h.route(conn, [{ exchange: 'amq.direct', key: q, label: 'bound' }], [q])).toEqual({ [q]: ['bound'] });
    expect(await ch.unbindQueue(q, 'amq.direct', q)).toEqual({});
    expect(await h.route(conn, [{ exchange: 'amq.direct', key: q, label: 'unbound' }], [q])).toEqual({ [q]: [] });
  });
});

describe("the empty queue name means the channel's last declared queue", () => {
  it('for queue.bind (with an empty routing key meaning the queue name), basic.get, queue.purge, queue.delete', async () => {
    const conn = await h.connect();
    const ch = await h.channel(conn);
    const { queue } = await ch.assertQueue('', { exclusive: true });
    await ch.bindQueue('', 'amq.direct', '');
    expect(await h.route(conn, [{ exchange: 'amq.direct', key: queue, label: 'by-name' }], [queue])).toEqual({ [queue]: ['by-name'] });
    ch.sendToQueue(queue, Buffer.from('x'));
    ch.sendToQueue(queue, Buffer.from('y'));
    const m = await waitFor(() => ch.get(''), 'a message');
    expect(m.content.toString()).toBe('x');
    await waitFor(async () => (await ch.checkQueue(queue)).messageCount === 1, 'y to be queued');
    expect(await ch.purgeQueue('')).toEqual({ messageCount: 1 });
    expect(await ch.deleteQueue('')).toEqual({ messageCount: 0 });
    const probe = await h.channel(conn);
    expect(await rejection(probe.checkQueue(queue))).toMatchObject({ code: 404 });
  });

  it('without a previously declared queue it is 404', async () => {
    const ch = await h.channel();
    expect(await rejection(ch.bindQueue('', 'amq.direct', 'k'))).toMatchObject({
      code: 404,
      text: 'NOT_FOUND - no previously declared queue',
      classId: 50,
      methodId: 20,
    });
  });
});

describe('queue.purge', () => {
  it('removes ready messages only and returns their count; unacked ones come back when the consumer channel closes', async () => {
    const conn = await h.connect();
    const ch = await h.channel(conn);
    const q = h.queue();
    await ch.assertQueue(q, { durable: false });
    for (let i = 0; i < 5; i++) ch.sendToQueue(q, Buffer.from(`m${i}`));
    await waitFor(async () => (await ch.checkQueue(q)).messageCount === 5, '5 messages');
    const cch = await h.channel(conn);
    await cch.prefetch(2);
    const c = collector();
    await cch.consume(q, c.onMessage);
    await c.waitFor(2);
    expect(c.bodies()).toEqual(['m0', 'm1']);
    expect(await ch.purgeQueue(q)).toEqual({ messageCount: 3 });
    expect(await ch.checkQueue(q)).toEqual({ queue: q, messageCount: 0, consumerCount: 1 });
    expect(await ch.purgeQueue(q)).toEqual({ messageCount: 0 });
    await cch.close();
    await waitFor(async () => (await ch.checkQueue(q)).messageCount === 2, 'the 2 unacked messages back');
    const got = [];
    for (;;) {
      const m = await ch.get(q, { noAck: true });
      if (m === false) break;
      got.push({ body: m.content.toString(), redelivered: m.fields.redelivered });
    }
    expect(got).toEqual([
      { body: 'm0', redelivered: true },
      { body: 'm1', redelivered: true },
    ]);
  });

  it('of a missing queue is 404', async () => {
    const ch = await h.channel();
    const q = h.queue();
    expect(await rejection(ch.purgeQueue(q))).toMatchObject({
      code: 404,
      text: `NOT_FOUND - no queue '${q}' in vhost '/'`,
      classId: 50,
      methodId: 30,
    });
  });
});

describe('queue.delete', () => {
  it('returns the number of messages in the queue', async () => {
    const ch = await h.channel();
    const q = h.queue();
    await ch.assertQueue(q, { durable: false });
    for (let i = 0; i < 4; i++) ch.sendToQueue(q, Buffer.from(`m${i}`));
    await waitFor(async () => (await ch.checkQueue(q)).messageCount === 4, '4 messages');
    expect(await ch.deleteQueue(q)).toEqual({ messageCount: 4 });
    expect(await rejection(ch.checkQueue(q))).toMatchObject({ code: 404 });
  });

  it('if-unused with a consumer is 406; without one it deletes', async () => {
    const conn = await h.connect();
    const ch = await h.channel(conn);
    const q = h.queue();
    await ch.assertQueue(q, { durable: false });
    const cch = await h.channel(conn);
    const { consumerTag } = await cch.consume(q, () => {});
    expect(await rejection(ch.deleteQueue(q, { ifUnused: true }))).toMatchObject({
      code: 406,
      text: `PRECONDITION_FAILED - queue '${q}' in vhost '/' in use`,
      classId: 50,
      methodId: 40,
    });
    await cch.cancel(consumerTag);
    const ch2 = await h.channel(conn);
    expect(await ch2.deleteQueue(q, { ifUnused: true })).toEqual({ messageCount: 0 });
  });

  it('if-empty with ready messages is 406; once empty it deletes', async () => {
    const conn = await h.connect();
    const ch = await h.channel(conn);
    const q = h.queue();
    await ch.assertQueue(q, { durable: false });
    ch.sendToQueue(q, Buffer.from('x'));
    await waitFor(async () => (await ch.checkQueue(q)).messageCount === 1, 'the message');
    expect(await rejection(ch.deleteQueue(q, { ifEmpty: true }))).toMatchObject({
      code: 406,
      text: `PRECONDITION_FAILED - queue '${q}' in vhost '/' not empty`,
      classId: 50,
      methodId: 40,
    });
    const ch2 = await h.channel(conn);
    await ch2.purgeQueue(q);
    expect(await ch2.deleteQueue(q, { ifEmpty: true })).toEqual({ messageCount: 0 });
  });

  it('if-empty with only unacked messages: deleted (they do not count), and the count is 0', async () => {
    const conn = await h.connect();
    const ch = await h.channel(conn);
    const q = h.queue();
    await ch.assertQueue(q, { durable: false });
    ch.sendToQueue(q, Buffer.from('x'));
    const cch = await h.channel(conn);
    const c = collector();
    await cch.consume(q, c.onMessage);
    await c.waitFor(1);
    expect(await ch.deleteQueue(q, { ifEmpty: true })).toEqual({ messageCount: 0 });
    await waitFor(() => c.cancelled, 'the consumer to be cancelled');
  });

  it('deleting a missing queue succeeds with a count of 0', async () => {
    const ch = await h.channel();
    expect(await ch.deleteQueue(h.queue())).toEqual({ messageCount: 0 });
    await ch.checkExchange('amq.direct');
  });

  it('deleting a queue removes its bindings: a queue recreated with the name gets nothing', async () => {
    const conn = await h.connect();
    const ch = await h.channel(conn);
    const q = h.queue();
    await ch.assertQueue(q, { durable: false });
    await ch.bindQueue(q, 'amq.fanout', '');
    await ch.deleteQueue(q);
    await ch.assertQueue(q, { durable: false });
    expect(await h.route(conn, [{ exchange: 'amq.fanout', key: '', label: 'old-binding' }], [q])).toEqual({ [q]: [] });
  });

  it("sends basic.cancel to the queue's consumers (amqplib calls back with null)", async () => {
    const conn = await h.connect();
    const ch = await h.channel(conn);
    const q = h.queue();
    await ch.assertQueue(q, { durable: false });
    const other = await h.channel(await h.connect());
    const cancels: string[] = [];
    other.on('cancel', (f: { consumerTag: string }) => cancels.push(f.consumerTag));
    const c = collector();
    const { consumerTag } = await other.consume(q, c.onMessage);
    await ch.deleteQueue(q);
    await waitFor(() => c.cancelled, 'the consumer callback with null');
    expect(c.messages).toEqual([]);
    expect(cancels).toEqual([consumerTag]);
    // The channel stays open.
    await other.checkExchange('amq.direct');
  });
});

describe('nowait variants (raw socket; amqplib does not expose nowait)', () => {
  async function raw(): Promise<RawClient> {
    const c = await RawClient.handshake(h.port);
    h.cleanup(() => c.destroy());
    await c.openChannel(1);
    return c;
  }

  /** passive queue.declare until the ready count is n (publishes are not synchronous with it) */
  async function rawCount(c: RawClient, q: string, n: number): Promise<M.QueueDeclareOk> {
    const deadline = Date.now() + 5000;
    for (;;) {
      c.send(1, { id: M.QUEUE_DECLARE, reserved1: 0, queue: q, passive: true, durable: false, exclusive: false, autoDelete: false, noWait: false, arguments: {} });
      const ok = (await c.waitForMethod(M.QUEUE_DECLARE_OK, 1)) as M.QueueDeclareOk;
      if (ok.messageCount === n || Date.now() > deadline) return ok;
      await sleep(5);
    }
  }

  it('queue.declare, queue.bind, queue.purge, queue.unbind, queue.delete with nowait send no reply and take effect', async () => {
    const c = await raw();
    const q = h.queue();
    const x = h.exchange();
    c.send(1, { id: M.EXCHANGE_DECLARE, reserved1: 0, exchange: x, type: 'fanout', passive: false, durable: false, autoDelete: false, internal: false, noWait: true, arguments: {} });
    c.send(1, { id: M.QUEUE_DECLARE, reserved1: 0, queue: q, passive: false, durable: false, exclusive: false, autoDelete: false, noWait: true, arguments: {} });
    c.send(1, { id: M.QUEUE_BIND, reserved1: 0, queue: q, exchange: x, routingKey: '', noWait: true, arguments: {} });
    c.publish(1, x, '', Buffer.from('one'));
    // A synchronous method after them: its reply is the first frame we get.
    expect(await rawCount(c, q, 1)).toEqual({ id: M.QUEUE_DECLARE_OK, queue: q, messageCount: 1, consumerCount: 0 });
    c.send(1, { id: M.QUEUE_PURGE, reserved1: 0, queue: q, noWait: true });
    c.send(1, { id: M.QUEUE_UNBIND, reserved1: 0, queue: q, exchange: x, routingKey: '', arguments: {} });
    await c.waitForMethod(M.QUEUE_UNBIND_OK, 1);
    c.publish(1, x, '', Buffer.from('two'));
    c.publish(1, '', q, Buffer.from('three'));
    // 'two' went nowhere (unbound), 'three' arrived after the purge.
    expect(await rawCount(c, q, 1)).toEqual({ id: M.QUEUE_DECLARE_OK, queue: q, messageCount: 1, consumerCount: 0 });
    c.send(1, { id: M.QUEUE_DELETE, reserved1: 0, queue: q, ifUnused: false, ifEmpty: false, noWait: true });
    c.send(1, { id: M.EXCHANGE_DELETE, reserved1: 0, exchange: x, ifUnused: false, noWait: true });
    c.send(1, { id: M.QUEUE_DECLARE, reserved1: 0, queue: q, passive: true, durable: false, exclusive: false, autoDelete: false, noWait: false, arguments: {} });
    const close = await c.expectChannelClose(1);
    expect(close).toEqual({ id: M.CHANNEL_CLOSE, replyCode: 404, replyText: `NOT_FOUND - no queue '${q}' in vhost '/'`, classId: 50, methodId: 10 });
    // Nothing but the replies to the synchronous methods was sent on the channel.
    const methods = c.frames.filter((f) => f.channel === 1 && f.method).map((f) => M.METHOD_NAMES.get(f.method!.id));
    expect(methods).toEqual([]);
    c.send(1, { id: M.CHANNEL_CLOSE_OK });
  });

  it('exchange.declare, exchange.bind, exchange.unbind, exchange.delete with nowait take effect', async () => {
    const c = await raw();
    const x1 = h.exchange();
    const x2 = h.exchange();
    const q = h.queue();
    for (const x of [x1, x2]) {
      c.send(1, { id: M.EXCHANGE_DECLARE, reserved1: 0, exchange: x, type: 'fanout', passive: false, durable: false, autoDelete: false, internal: false, noWait: true, arguments: {} });
    }
    c.send(1, { id: M.EXCHANGE_BIND, reserved1: 0, destination: x2, source: x1, routingKey: '', noWait: true, arguments: {} });
    c.send(1, { id: M.QUEUE_DECLARE, reserved1: 0, queue: q, passive: false, durable: false, exclusive: false, autoDelete: false, noWait: true, arguments: {} });
    c.send(1, { id: M.QUEUE_BIND, reserved1: 0, queue: q, exchange: x2, routingKey: '', noWait: true, arguments: {} });
    c.publish(1, x1, '', Buffer.from('via'));
    c.send(1, { id: M.EXCHANGE_UNBIND, reserved1: 0, destination: x2, source: x1, routingKey: '', noWait: true, arguments: {} });
    c.publish(1, x1, '', Buffer.from('not-via'));
    c.publish(1, '', q, Buffer.from('direct'));
    expect(await rawCount(c, q, 2)).toEqual({ id: M.QUEUE_DECLARE_OK, queue: q, messageCount: 2, consumerCount: 0 });
    c.send(1, { id: M.BASIC_GET, reserved1: 0, queue: q, noAck: true });
    expect(await c.waitForMethod(M.BASIC_GET_OK, 1)).toMatchObject({ exchange: x1, messageCount: 1 });
    c.send(1, { id: M.BASIC_GET, reserved1: 0, queue: q, noAck: true });
    expect(await c.waitForMethod(M.BASIC_GET_OK, 1)).toMatchObject({ exchange: '', messageCount: 0 });
    c.send(1, { id: M.EXCHANGE_DELETE, reserved1: 0, exchange: x1, ifUnused: false, noWait: true });
    c.send(1, { id: M.EXCHANGE_DECLARE, reserved1: 0, exchange: x1, type: 'fanout', passive: true, durable: false, autoDelete: false, internal: false, noWait: false, arguments: {} });
    expect(await c.expectChannelClose(1)).toEqual({
      id: M.CHANNEL_CLOSE,
      replyCode: 404,
      replyText: `NOT_FOUND - no exchange '${x1}' in vhost '/'`,
      classId: 40,
      methodId: 10,
    });
    expect(c.frames.filter((f) => f.channel === 1 && f.method).map((f) => M.METHOD_NAMES.get(f.method!.id))).toEqual([]);
    c.send(1, { id: M.CHANNEL_CLOSE_OK });
  });

  it('basic.consume and basic.cancel with nowait: deliveries use the given tag, no consume-ok / cancel-ok', async () => {
    const c = await raw();
    const q = h.queue();
    c.send(1, { id: M.QUEUE_DECLARE, reserved1: 0, queue: q, passive: false, durable: false, exclusive: false, autoDelete: false, noWait: true, arguments: {} });
    c.send(1, { id: M.BASIC_CONSUME, reserved1: 0, queue: q, consumerTag: 'nowait-tag', noLocal: false, noAck: true, exclusive: false, noWait: true, arguments: {} });
    c.publish(1, '', q, Buffer.from('hello'));
    const d = (await c.waitForMethod(M.BASIC_DELIVER, 1)) as M.BasicDeliver;
    expect(d).toEqual({ id: M.BASIC_DELIVER, consumerTag: 'nowait-tag', deliveryTag: 1, redelivered: false, exchange: '', routingKey: q });
    c.send(1, { id: M.BASIC_CANCEL, consumerTag: 'nowait-tag', noWait: true });
    expect(await rawCount(c, q, 0)).toEqual({ id: M.QUEUE_DECLARE_OK, queue: q, messageCount: 0, consumerCount: 0 });
    const methods = c.frames.filter((f) => f.channel === 1 && f.method).map((f) => M.METHOD_NAMES.get(f.method!.id));
    expect(methods).toEqual([]);
  });

  it('a failing nowait method still closes the channel with the error', async () => {
    const c = await raw();
    const q = h.queue();
    c.send(1, { id: M.QUEUE_BIND, reserved1: 0, queue: q, exchange: 'amq.direct', routingKey: '', noWait: true, arguments: {} });
    expect(await c.expectChannelClose(1)).toEqual({
      id: M.CHANNEL_CLOSE,
      replyCode: 404,
      replyText: `NOT_FOUND - no queue '${q}' in vhost '/'`,
      classId: 50,
      methodId: 20,
    });
    c.send(1, { id: M.CHANNEL_CLOSE_OK });
  });
});
