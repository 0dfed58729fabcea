// Permissions and topic permissions set through the admin façade, enforced at the channel's check
// point, with RabbitMQ 3.10's 403 texts (each expectation below was observed on RabbitMQ 3.10.8
// with the same user, vhost and expressions). Also: passive declares need no permission, the
// default exchange is checked as amq.default, and a change applies to channels already open.

import amqp from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestBroker, type TestBroker } from '../support/broker.js';
import { firstError, recordedChannel, recordedConfirmChannel, rejection, waitFor } from '../support/harness.js';

let b: TestBroker;
const conns: amqp.ChannelModel[] = [];

beforeAll(async () => {
  b = await startTestBroker();
  const admin = b.broker.admin;
  await admin.putVhost('v1');
  await admin.putUser('u1', { password: 'p1' });
  await admin.setPermission('u1', 'v1', { configure: '^c', write: '^w', read: '^r' });
  await admin.putUser('u2', { password: 'p2' });
  await admin.setPermission('u2', 'v1', { configure: '.*', write: '.*', read: '.*' });
  await admin.setTopicPermission('u2', 'v1', { exchange: 'amq.topic', write: '^{username}\\.', read: '^r\\.{vhost}' });
  await admin.setPermission('guest', 'v1', { configure: '.*', write: '.*', read: '.*' });
  const setup = await connect('guest', 'guest');
  const ch = await setup.createChannel();
  await ch.assertQueue('c.q');
  await ch.assertQueue('r.q');
  await ch.assertExchange('c.e', 'topic');
  await ch.assertExchange('w.e', 'topic');
});

afterAll(async () => {
  for (const c of conns) await c.close().catch(() => {});
  await b.stop();
});

async function connect(user: string, pass: string): Promise<amqp.ChannelModel> {
  const c = await amqp.connect(`amqp://${user}:${pass}@127.0.0.1:${b.port}/v1`);
  c.on('error', () => {});
  conns.push(c);
  return c;
}

const refusedText = (kind: string, name: string): string => `ACCESS_REFUSED - access to ${kind} '${name}' in vhost 'v1' refused for user 'u1'`;

describe('permissions (configure ^c, write ^w, read ^r)', () => {
  let conn: amqp.ChannelModel;
  beforeAll(async () => {
    conn = await connect('u1', 'p1');
  });

  async function denied(op: (ch: amqp.Channel) => Promise<unknown>): Promise<{ code: number; text: string }> {
    const ch = await recordedChannel(conn);
    const f = await rejection(op(ch));
    return { code: f.code, text: f.text };
  }

  it.each([
    ['queue.declare', (ch: amqp.Channel) => ch.assertQueue('x.q'), 'queue', 'x.q'],
    ['exchange.declare', (ch: amqp.Channel) => ch.assertExchange('x.e', 'topic'), 'exchange', 'x.e'],
    ['queue.bind (write on the queue)', (ch: amqp.Channel) => ch.bindQueue('c.q', 'c.e', 'k'), 'queue', 'c.q'],
    ['queue.delete (configure)', (ch: amqp.Channel) => ch.deleteQueue('x.q'), 'queue', 'x.q'],
    ['queue.purge (read)', (ch: amqp.Channel) => ch.purgeQueue('c.q'), 'queue', 'c.q'],
    ['basic.get (read)', (ch: amqp.Channel) => ch.get('c.q'), 'queue', 'c.q'],
    ['basic.consume (read)', (ch: amqp.Channel) => ch.consume('c.q', () => {}), 'queue', 'c.q'],
    ['exchange.bind (write on the destination)', (ch: amqp.Channel) => ch.bindExchange('c.e', 'amq.topic', 'k'), 'exchange', 'c.e'],
    ['exchange.delete (configure)', (ch: amqp.Channel) => ch.deleteExchange('x.e'), 'exchange', 'x.e'],
  ])('%s is 403 with RabbitMQ text', async (_name, op, kind, resource) => {
    expect(await denied(op)).toEqual({ code: 403, text: refusedText(kind, resource) });
  });

  it('a server-named queue is checked under its generated name', async () => {
    const f = await denied((ch) => ch.assertQueue('', { exclusive: true }));
    expect(f.code).toBe(403);
    expect(f.text).toMatch(/^ACCESS_REFUSED - access to queue 'amq\.gen-[A-Za-z0-9_-]{22}' in vhost 'v1' refused for user 'u1'$/);
  });

  it('allowed operations succeed; passive declares need no permission (404 / ok as RabbitMQ)', async () => {
    const ch = await recordedChannel(conn);
    await ch.assertQueue('c.q2', { exclusive: true });
    await ch.checkExchange('c.e');
    await ch.checkQueue('c.q');
    expect(await denied((c) => c.checkQueue('x.q'))).toEqual({ code: 404, text: "NOT_FOUND - no queue 'x.q' in vhost 'v1'" });
    const m = await ch.get('r.q');
    expect(m).toBe(false);
  });

  it('publishing: write on the exchange; the default exchange is amq.default; a missing exchange is 403 before 404', async () => {
    for (const [exchange, shown] of [
      ['c.e', 'c.e'],
      ['', 'amq.default'],
      ['nonexistent', 'nonexistent'],
    ] as const) {
      const ch = await recordedChannel(conn);
      ch.publish(exchange, 'k', Buffer.from('x'));
      expect(await firstError(ch)).toMatchObject({ code: 403, text: refusedText('exchange', shown) });
    }
    const ok = await recordedConfirmChannel(conn);
    ok.publish('w.e', 'k', Buffer.from('x'));
    await ok.waitForConfirms();
    expect(ok.errors).toEqual([]);
  });

  it('a permission change applies to channels already open (cached decisions are dropped)', async () => {
    const admin = b.broker.admin;
    await admin.putUser('u3', { password: 'p3' });
    await admin.setPermission('u3', 'v1', { configure: '', write: '.*', read: '' });
    const c3 = await connect('u3', 'p3');
    const ch = await recordedConfirmChannel(c3);
    for (let i = 0; i < 3; i++) ch.publish('w.e', 'k', Buffer.from('x'));
    await ch.waitForConfirms();
    await admin.setPermission('u3', 'v1', { configure: '', write: '^nothing$', read: '' });
    ch.publish('w.e', 'k', Buffer.from('x'));
    expect(await firstError(ch)).toMatchObject({ code: 403, text: "ACCESS_REFUSED - access to exchange 'w.e' in vhost 'v1' refused for user 'u3'" });
  });
});

describe('topic permissions (amq.topic: write ^{username}\\. , read ^r\\.{vhost})', () => {
  let conn: amqp.ChannelModel;
  beforeAll(async () => {
    conn = await connect('u2', 'p2');
  });
  const topicText = (key: string, exchange = 'amq.topic'): string =>
    `ACCESS_REFUSED - access to topic '${key}' in exchange '${exchange}' in vhost 'v1' refused for user 'u2'`;

  it('publish: routing keys matching the expanded write expression pass, others are 403', async () => {
    const ok = await recordedConfirmChannel(conn);
    ok.publish('amq.topic', 'u2.x', Buffer.from('x'));
    ok.publish('amq.topic', 'u2.y', Buffer.from('x'));
    await ok.waitForConfirms();
    const ch = await recordedChannel(conn);
    ch.publish('amq.topic', 'zz.x', Buffer.from('x'));
    expect(await firstError(ch)).toMatchObject({ code: 403, text: topicText('zz.x') });
  });

  it('queue.bind / queue.unbind / exchange.bind need read on the binding key', async () => {
    const ch = await recordedChannel(conn);
    await ch.bindQueue('c.q', 'amq.topic', 'r.v1');
    expect(await rejection((await recordedChannel(conn)).bindQueue('c.q', 'amq.topic', 'r.x'))).toMatchObject({ code: 403, text: topicText('r.x') });
    expect(await rejection((await recordedChannel(conn)).unbindQueue('c.q', 'amq.topic', 'zzz'))).toMatchObject({ code: 403, text: topicText('zzz') });
    expect(await rejection((await recordedChannel(conn)).bindExchange('c.e', 'amq.topic', 'zzz'))).toMatchObject({ code: 403, text: topicText('zzz') });
  });

  it('exchanges without a topic permission, and non-topic exchanges, are not restricted', async () => {
    const ok = await recordedConfirmChannel(conn);
    ok.publish('c.e', 'anything', Buffer.from('x'));
    ok.publish('amq.direct', 'anything', Buffer.from('x'));
    await ok.waitForConfirms();
    expect(ok.errors).toEqual([]);
  });

  it('clearing the topic permission lifts the restriction on open channels', async () => {
    const ch = await recordedConfirmChannel(conn);
    ch.publish('amq.topic', 'u2.a', Buffer.from('x'));
    await ch.waitForConfirms();
    expect(await b.broker.admin.clearTopicPermissions('u2', 'v1', 'amq.topic')).toBe(true);
    ch.publish('amq.topic', 'other.key', Buffer.from('x'));
    await ch.waitForConfirms();
    expect(ch.errors).toEqual([]);
    await b.broker.admin.setTopicPermission('u2', 'v1', { exchange: 'amq.topic', write: '^{username}\\.', read: '^r\\.{vhost}' });
    ch.publish('amq.topic', 'other.key', Buffer.from('x'));
    await waitFor(() => ch.errors.length > 0, 'the 403');
    expect(ch.errors[0]).toMatchObject({ code: 403, text: topicText('other.key') });
  });

  it('bad expressions are refused by the façade and change nothing', async () => {
    await expect(b.broker.admin.setPermission('u2', 'v1', { configure: '(', write: '.*', read: '.*' })).rejects.toMatchObject({ kind: 'bad_request' });
    expect(b.broker.admin.getPermission('u2', 'v1')).toMatchObject({ configure: '.*' });
    await expect(b.broker.admin.setPermission('nobody', 'v1', { configure: '.*', write: '.*', read: '.*' })).rejects.toMatchObject({
      reason: 'vhost_or_user_not_found',
    });
  });
});

describe('impersonator tag', () => {
  it('a user tagged impersonator may publish with another user_id; others get 406 as RabbitMQ', async () => {
    const admin = b.broker.admin;
    await admin.putUser('imp', { password: 'pi', tags: ['impersonator'] });
    await admin.setPermission('imp', 'v1', { configure: '.*', write: '.*', read: '.*' });
    const imp = await connect('imp', 'pi');
    const ok = await recordedConfirmChannel(imp);
    ok.sendToQueue('c.q', Buffer.from('x'), { userId: 'someone-else' });
    await ok.waitForConfirms();
    expect(ok.errors).toEqual([]);
    await admin.setUserTags('imp', []);
    const ch = await recordedChannel(imp);
    ch.sendToQueue('c.q', Buffer.from('x'), { userId: 'someone-else' });
    expect(await firstError(ch)).toMatchObject({
      code: 406,
      text: "PRECONDITION_FAILED - user_id property set to 'someone-else' but authenticated user was 'imp'",
    });
  });
});

describe('the façade acting for a user (what the management API does for its signed-in user)', () => {
  it('checks that user as AMQP does; without an acting user there is no check', async () => {
    const admin = b.broker.admin;
    await expect(admin.declareQueue('v1', { name: 'x.adm' }, 'u1')).rejects.toMatchObject({ replyCode: 403, replyText: refusedText('queue', 'x.adm') });
    await admin.declareQueue('v1', { name: 'c.adm', durable: false }, 'u1');
    await expect(admin.purgeQueue('v1', 'c.adm', 'u1')).rejects.toMatchObject({ replyText: refusedText('queue', 'c.adm') });
    await expect(admin.bind('v1', { source: 'c.e', destination: 'c.adm', destinationType: 'queue', routingKey: 'k' }, 'u1')).rejects.toMatchObject({
      replyText: refusedText('queue', 'c.adm'),
    });
    await expect(admin.bind('v1', { source: 'amq.topic', destination: 'c.adm', destinationType: 'queue', routingKey: 'zz' }, 'u2')).rejects.toMatchObject({
      replyText: "ACCESS_REFUSED - access to topic 'zz' in exchange 'amq.topic' in vhost 'v1' refused for user 'u2'",
    });
    await admin.bind('v1', { source: 'amq.topic', destination: 'c.adm', destinationType: 'queue', routingKey: 'r.v1' }, 'u2');
    await expect(admin.deleteQueue('v1', 'c.adm', {}, 'u2')).resolves.toBe(0);
  });
});
