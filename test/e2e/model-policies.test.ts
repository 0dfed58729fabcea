// Policies and operator policies through the admin façade: RabbitMQ 3.10's validation texts, live
// effect on existing queues (TTL, dead-lettering, max-length) and exchanges (alternate exchange),
// RabbitMQ's precedence between queue arguments, policies and operator policies, the effective
// definition the API shows, and survival across a restart. The precedence case and its expected
// effective definition were measured on RabbitMQ 3.10.8 (same queue, policy and operator policy).

import amqp from 'amqplib';
import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestBroker, tempDir, type TestBroker } from '../support/broker.js';
import { QUIET_MS, recordedChannel, sleep, uniqueName, waitFor } from '../support/harness.js';

let b: TestBroker;
let conn: amqp.ChannelModel;
const dataDir = tempDir();

beforeAll(async () => {
  b = await startTestBroker({ dataDir });
  conn = await amqp.connect(b.url);
});
afterAll(async () => {
  await conn.close().catch(() => {});
  await b.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

const admin = () => b.broker.admin;
const queue = (name: string) => b.broker.vhosts.get('/')!.queues.get(name)!;

async function count(name: string): Promise<number> {
  const ch = await conn.createChannel();
  const { messageCount } = await ch.checkQueue(name);
  await ch.close();
  return messageCount;
}

async function fill(name: string, n: number, args: Record<string, unknown> = {}): Promise<void> {
  const ch = await conn.createConfirmChannel();
  await ch.assertQueue(name, { durable: true, arguments: args });
  for (let i = 0; i < n; i++) ch.sendToQueue(name, Buffer.from(`m${i}`), { persistent: true });
  await ch.waitForConfirms();
  await ch.close();
}

async function deadLetterTarget(): Promise<{ dlx: string; dead: string }> {
  const dlx = uniqueName('dlx');
  const dead = uniqueName('dead');
  const ch = await conn.createChannel();
  await ch.assertExchange(dlx, 'fanout');
  await ch.assertQueue(dead);
  await ch.bindQueue(dead, dlx, '');
  await ch.close();
  return { dlx, dead };
}

async function bodies(name: string): Promise<{ body: string; reason: unknown }[]> {
  const ch = await conn.createChannel();
  const out: { body: string; reason: unknown }[] = [];
  for (;;) {
    const m = await ch.get(name, { noAck: true });
    if (m === false) break;
    const deaths = m.properties.headers?.['x-death'] as { reason: string }[] | undefined;
    out.push({ body: m.content.toString(), reason: deaths?.[0]?.reason });
  }
  await ch.close();
  return out;
}

describe('validation (RabbitMQ 3.10 texts)', () => {
  it.each([
    [{ pattern: '.*', definition: { 'max-priority': 10 } }, false, '[{<<"max-priority">>,10}] are not recognised policy settings'],
    [{ pattern: '.*', definition: { 'dead-letter-exchange': 'x' } }, true, '[{<<"dead-letter-exchange">>,<<"x">>}] are not recognised policy settings'],
    [{ pattern: '.*', definition: { 'message-ttl': -1 } }, false, '-1 is not a valid message TTL'],
    [{ pattern: '.*', definition: { 'message-ttl': 'a' } }, false, '<<"a">> is not a valid message TTL'],
    [{ pattern: '.*', definition: { expires: 0 } }, false, '0 is not a valid queue expiry'],
    [{ pattern: '.*', definition: { 'max-length': -1 } }, false, '-1 is not a valid maximum length'],
    [{ pattern: '.*', definition: { 'max-length-bytes': 1.5 } }, false, '1.5 is not a valid maximum length in bytes'],
    [{ pattern: '.*', definition: { overflow: 'x' } }, false, '<<"x">> is not a valid overflow value'],
    [{ pattern: '.*', definition: { 'dead-letter-exchange': 1 } }, false, '1 is not a valid dead letter exchange name'],
    [{ pattern: '.*', definition: { 'alternate-exchange': 5 } }, false, '5 is not a valid alternate exchange name'],
    [{ pattern: '.*', definition: { 'delivery-limit': -1 } }, false, '-1 is not a valid delivery limit'],
    [{ pattern: '.*', definition: { 'queue-mode': 'x' } }, false, '<<"x">> is not a valid queue-mode value'],
    [{ pattern: '.*', definition: {} }, false, 'no policy provided'],
    [{ pattern: 'a', 'apply-to': 'foo', definition: { 'message-ttl': 1 } }, false, "apply-to 'foo' unrecognised; should be 'queues', 'exchanges' or 'all'"],
    [{ pattern: '.*', definition: { 'message-ttl': 5 }, priority: 'x' }, false, 'priority should be a number, actually was <<"x">>'],
    [{ pattern: '.*', definition: { 'ha-sync-mode': 'automatic' } }, false, 'ha-mode must be specified to specify ha-params, ha-sync-mode or ha-promote-on-shutdown'],
  ])('%j (operator: %s) → %s', async (input, operator, text) => {
    const put = operator ? admin().putOperatorPolicy('/', 'v', input) : admin().putPolicy('/', 'v', input);
    await expect(put).rejects.toMatchObject({ kind: 'bad_request', reason: `Validation failed\n\n${text}\n` });
    expect(admin().getPolicy('/', 'v')).toBeUndefined();
    expect(admin().getOperatorPolicy('/', 'v')).toBeUndefined();
  });

  it('accepts delivery-limit, queue-mode and consumer-timeout (no effect on classic queues)', async () => {
    await admin().putPolicy('/', 'accepted', { pattern: '^nothing-matches$', definition: { 'delivery-limit': 3, 'queue-mode': 'lazy', 'consumer-timeout': 60000 } });
    expect(admin().getPolicy('/', 'accepted')).toEqual({
      vhost: '/',
      name: 'accepted',
      pattern: '^nothing-matches$',
      'apply-to': 'all',
      definition: { 'delivery-limit': 3, 'queue-mode': 'lazy', 'consumer-timeout': 60000 },
      priority: 0,
    });
    expect(await admin().deletePolicy('/', 'accepted')).toBe(true);
    expect(await admin().deletePolicy('/', 'accepted')).toBe(false);
  });
});

describe('live effect on existing queues', () => {
  it('message-ttl: messages already queued keep their expiry, new ones get the policy TTL', async () => {
    const name = uniqueName('pol-ttl');
    await fill(name, 3);
    await admin().putPolicy('/', 'ttl', { pattern: `^${name}$`, definition: { 'message-ttl': 100 }, 'apply-to': 'queues' });
    expect(queue(name).appliedPolicy).toEqual({ policy: 'ttl', operatorPolicy: null, definition: { 'message-ttl': 100 } });
    try {
      // (No count right after publishing: on a busy machine 100 ms can pass before it is read.)
      await fill(name, 2);
      await waitFor(async () => (await count(name)) === 3, 'the two new messages to expire');
      await sleep(QUIET_MS);
      expect(await count(name)).toBe(3);
      expect(queue(name).options.messageTtlMs).toBe(100);
    } finally {
      await admin().deletePolicy('/', 'ttl');
    }
  });

  it('dead-letter-exchange: a live queue starts dead-lettering rejected messages', async () => {
    const name = uniqueName('pol-dlx');
    const { dlx, dead } = await deadLetterTarget();
    await fill(name, 2);
    await admin().putPolicy('/', 'dlx', { pattern: `^${name}$`, definition: { 'dead-letter-exchange': dlx } });
    const ch = await conn.createChannel();
    const m = await ch.get(name);
    expect(m).not.toBe(false);
    ch.nack(m as amqp.GetMessage, false, false);
    await waitFor(async () => (await count(dead)) === 1, 'the dead-lettered message');
    expect(await bodies(dead)).toEqual([{ body: 'm0', reason: 'rejected' }]);
    await admin().deletePolicy('/', 'dlx');
    const m2 = await ch.get(name);
    ch.nack(m2 as amqp.GetMessage, false, false);
    await sleep(QUIET_MS);
    expect(await count(dead)).toBe(0);
    await ch.close();
  });

  it('max-length: applied at once (drop-head, dead-lettered as maxlen); removed, the queue grows again', async () => {
    const name = uniqueName('pol-len');
    const { dlx, dead } = await deadLetterTarget();
    await fill(name, 5);
    await admin().putPolicy('/', 'len', { pattern: `^${name}$`, definition: { 'max-length': 2, 'dead-letter-exchange': dlx } });
    expect(await count(name)).toBe(2);
    expect(await bodies(dead)).toEqual(['m0', 'm1', 'm2'].map((body) => ({ body, reason: 'maxlen' })));
    await fill(name, 1);
    expect(await count(name)).toBe(2);
    await admin().deletePolicy('/', 'len');
    await fill(name, 3);
    expect(await count(name)).toBe(5);
  });

  it('overflow reject-publish from a policy nacks publishes over the limit', async () => {
    const name = uniqueName('pol-reject');
    await fill(name, 1);
    await admin().putPolicy('/', 'rej', { pattern: `^${name}$`, definition: { 'max-length': 1, overflow: 'reject-publish' } });
    const ch = await conn.createConfirmChannel();
    const nacked = await new Promise<boolean>((resolve) => ch.sendToQueue(name, Buffer.from('x'), {}, (err) => resolve(err !== null && err !== undefined)));
    expect(nacked).toBe(true);
    expect(await count(name)).toBe(1);
    await ch.close();
    await admin().deletePolicy('/', 'rej');
  });
});

describe('precedence (measured on RabbitMQ 3.10.8)', () => {
  it('arguments vs policy vs operator policy: limits take the lowest, dead-lettering the argument', async () => {
    const name = uniqueName('prec');
    await fill(name, 0, { 'x-message-ttl': 60000, 'x-dead-letter-exchange': 'argdlx', 'x-max-length': 3 });
    const other = uniqueName('prec-noargs');
    await fill(other, 0);
    const pattern = `^(${name}|${other})$`;
    await admin().putPolicy('/', 'pol', {
      pattern,
      definition: { 'message-ttl': 2000, 'max-length': 5, 'dead-letter-exchange': 'poldlx', expires: 100000, overflow: 'reject-publish' },
      priority: 1,
    });
    await admin().putOperatorPolicy('/', 'op', { pattern, definition: { 'message-ttl': 1000, 'max-length': 7, expires: 50000 } });
    // What RabbitMQ's API shows as effective_policy_definition (the same for both queues).
    const effective = { 'dead-letter-exchange': 'poldlx', expires: 50000, 'max-length': 5, 'message-ttl': 1000, overflow: 'reject-publish' };
    expect(queue(name).appliedPolicy).toEqual({ policy: 'pol', operatorPolicy: 'op', definition: effective });
    expect(queue(other).appliedPolicy).toEqual({ policy: 'pol', operatorPolicy: 'op', definition: effective });
    expect(queue(name).options).toMatchObject({ messageTtlMs: 1000, maxLength: 3, expiresMs: 50000, deadLetterExchange: 'argdlx', overflow: 'reject-publish' });
    expect(queue(other).options).toMatchObject({ messageTtlMs: 1000, maxLength: 5, expiresMs: 50000, deadLetterExchange: 'poldlx', overflow: 'reject-publish' });

    await admin().deletePolicy('/', 'pol');
    expect(queue(other).appliedPolicy).toEqual({ policy: null, operatorPolicy: 'op', definition: { expires: 50000, 'max-length': 7, 'message-ttl': 1000 } });
    expect(queue(other).options).toMatchObject({ maxLength: 7, deadLetterExchange: undefined, overflow: 'drop-head' });
    await admin().deleteOperatorPolicy('/', 'op');
    expect(queue(other).appliedPolicy).toEqual({ policy: null, operatorPolicy: null, definition: {} });
    expect(queue(name).options).toMatchObject({ messageTtlMs: 60000, maxLength: 3, expiresMs: undefined, deadLetterExchange: 'argdlx' });
  });

  it('the matching policy with the highest priority wins; apply-to limits what it matches', async () => {
    const name = uniqueName('prio');
    await fill(name, 0);
    await admin().putPolicy('/', 'low', { pattern: '^prio', definition: { 'max-length': 10 }, priority: 1 });
    await admin().putPolicy('/', 'high', { pattern: '^prio', definition: { 'max-length': 20 }, priority: 2 });
    await admin().putPolicy('/', 'exchanges-only', { pattern: '^prio', definition: { 'max-length': 30 }, priority: 9, 'apply-to': 'exchanges' });
    expect(queue(name).appliedPolicy.policy).toBe('high');
    expect(queue(name).options.maxLength).toBe(20);
    await admin().putPolicy('/', 'low', { pattern: '^prio', definition: { 'max-length': 10 }, priority: 3 });
    expect(queue(name).appliedPolicy.policy).toBe('low');
    for (const p of ['low', 'high', 'exchanges-only']) await admin().deletePolicy('/', p);
  });

  it('new queues get the policy at declare', async () => {
    await admin().putPolicy('/', 'fresh', { pattern: '^fresh-', definition: { 'max-length': 1 } });
    const name = uniqueName('fresh');
    await fill(name, 3);
    expect(await count(name)).toBe(1);
    await admin().deletePolicy('/', 'fresh');
  });
});

describe('exchanges', () => {
  it('alternate-exchange from a policy applies live; the exchange argument wins over it', async () => {
    const x = uniqueName('ae-src');
    const withArg = uniqueName('ae-arg');
    const ae = uniqueName('ae');
    const caught = uniqueName('caught');
    const caughtArg = uniqueName('caught-arg');
    const ch = await recordedChannel(conn);
    await ch.assertExchange(ae, 'fanout');
    await ch.assertQueue(caught);
    await ch.bindQueue(caught, ae, '');
    await ch.assertExchange(`${ae}-arg`, 'fanout');
    await ch.assertQueue(caughtArg);
    await ch.bindQueue(caughtArg, `${ae}-arg`, '');
    await ch.assertExchange(x, 'direct');
    await ch.assertExchange(withArg, 'direct', { arguments: { 'alternate-exchange': `${ae}-arg` } });
    await admin().putPolicy('/', 'ae', { pattern: `^(${x}|${withArg})$`, definition: { 'alternate-exchange': ae }, 'apply-to': 'exchanges' });
    expect(b.broker.vhosts.get('/')!.exchanges.get(x)!.appliedPolicy.policy).toBe('ae');
    const pub = await conn.createConfirmChannel();
    pub.publish(x, 'nowhere', Buffer.from('via-policy'));
    pub.publish(withArg, 'nowhere', Buffer.from('via-arg'));
    await pub.waitForConfirms();
    expect(await bodies(caught)).toEqual([{ body: 'via-policy', reason: undefined }]);
    expect(await bodies(caughtArg)).toEqual([{ body: 'via-arg', reason: undefined }]);
    await admin().deletePolicy('/', 'ae');
    pub.publish(x, 'nowhere', Buffer.from('dropped'));
    await pub.waitForConfirms();
    expect(await count(caught)).toBe(0);
  });
});

describe('other queue types', () => {
  it('a policy over quorum queues and streams: quorum queues take its limits, streams keep their own settings', async () => {
    const quorum = uniqueName('typed-quorum');
    const stream = uniqueName('typed-stream');
    const ch = await conn.createChannel();
    await ch.assertQueue(quorum, { durable: true, arguments: { 'x-queue-type': 'quorum' } });
    await ch.assertQueue(stream, { durable: true, arguments: { 'x-queue-type': 'stream' } });
    await ch.close();
    await admin().putPolicy('/', 'typed', { pattern: '^typed-', definition: { 'max-length': 2, 'message-ttl': 60000 } });
    expect(queue(quorum).appliedPolicy.policy).toBe('typed');
    expect(queue(quorum).options).toMatchObject({ maxLength: 2, messageTtlMs: 60000 });
    expect(queue(stream).appliedPolicy.policy).toBe('typed');
    expect(queue(stream).options.maxLength).toBeUndefined();
    await fill(quorum, 3, { 'x-queue-type': 'quorum' });
    expect(await count(quorum)).toBe(2);
    await admin().deletePolicy('/', 'typed');
    expect(queue(quorum).options.maxLength).toBeUndefined();
  });
});

describe('persistence', () => {
  it('policies and operator policies survive a restart and apply to recovered queues', async () => {
    const name = uniqueName('kept');
    await fill(name, 4);
    await admin().putPolicy('/', 'kept', { pattern: '^kept-', definition: { 'max-length': 3 }, priority: 4, 'apply-to': 'queues' });
    await admin().putOperatorPolicy('/', 'kept-op', { pattern: '^kept-', definition: { 'max-length': 2 } });
    expect(await count(name)).toBe(2);
    await conn.close();
    await b.close();
    b = await startTestBroker({ dataDir });
    conn = await amqp.connect(b.url);
    expect(admin().listPolicies()).toEqual([
      { vhost: '/', name: 'kept', pattern: '^kept-', 'apply-to': 'queues', definition: { 'max-length': 3 }, priority: 4 },
    ]);
    expect(admin().listOperatorPolicies()).toEqual([
      { vhost: '/', name: 'kept-op', pattern: '^kept-', 'apply-to': 'all', definition: { 'max-length': 2 }, priority: 0 },
    ]);
    expect(queue(name).appliedPolicy).toEqual({ policy: 'kept', operatorPolicy: 'kept-op', definition: { 'max-length': 2 } });
    // Quorum queues and streams recovered under a matching policy start fine.
    await admin().putPolicy('/', 'everything', { pattern: '.*', definition: { 'max-length-bytes': 1000000 } });
    await conn.close();
    await b.close();
    b = await startTestBroker({ dataDir });
    conn = await amqp.connect(b.url);
    expect(admin().getPolicy('/', 'everything')).toBeDefined();
    await fill(name, 2);
    expect(await count(name)).toBe(2);
  });
});
