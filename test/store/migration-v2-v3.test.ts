// Layout 2 → 3 migration, on a data folder written by Warren at layout 2 (test/store/fixtures/
// layout-v2, made by fixtures/make-layout-v2.mjs). Layout 3 keys queue entries by priority level
// and keeps stored counts, shared-body reference counts and reserved message ids. The folder holds:
//   plain  3 persistent messages (plain-0 delivered, not acked, before the stop), 2 held for it
//          by the durable delayed exchange dx (due an hour after the fixture was made: by now
//          they are due, and released into plain as soon as the broker starts)
//   prio   x-max-priority 5: prio-0..4 with priorities 0, 3, 5, 9, 1
//   f1, f2 bound to fanout 'fan': 'fan-small' and a 5,000-byte body, each stored once and shared
//   mix    9 persistent 1 MiB bodies (A..I), 2 transient ones paged to disk (t, u), then Z
// After the migration every persistent message is there, in order, with its flags; the transient
// ones are gone; and the broker starts on it as on any layout-3 folder.

import { cpSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import amqp from 'amqplib';
import { open } from 'lmdb';
import { afterAll, describe, expect, it } from 'vitest';
import { DelayedMessageExchange } from '../../src/broker/exchange/delayed.js';
import { LAYOUT_VERSION } from '../../src/store/lmdb-store.js';
import { startTestBroker, tempDir, waitFor, type TestBroker } from '../support/broker.js';

const FIXTURE = join(dirname(fileURLToPath(import.meta.url)), 'fixtures', 'layout-v2');
const folders: string[] = [];
const brokers: TestBroker[] = [];

afterAll(async () => {
  for (const b of brokers) await b.close().catch(() => {});
  for (const d of folders) rmSync(d, { recursive: true, force: true });
});

function fixtureCopy(): string {
  const dir = tempDir('warren-migrate-');
  folders.push(dir);
  cpSync(FIXTURE, dir, { recursive: true });
  return dir;
}

async function start(dataDir: string): Promise<TestBroker> {
  const b = await startTestBroker({ dataDir });
  brokers.push(b);
  return b;
}

/** Every message of a queue: [body, redelivered] (acked as read). */
async function drain(url: string, queue: string): Promise<[string, boolean][]> {
  const conn = await amqp.connect(url);
  try {
    const ch = await conn.createChannel();
    const out: [string, boolean][] = [];
    for (;;) {
      const m = await ch.get(queue, { noAck: true });
      if (m === false) return out;
      const body = m.content.length > 100 ? `${m.content.subarray(0, 1).toString()}×${m.content.length}` : m.content.toString();
      out.push([body, m.fields.redelivered]);
    }
  } finally {
    await conn.close();
  }
}

describe('layout 2 → 3 migration', () => {
  it('the fixture is what it says: layout 2', async () => {
    const dir = fixtureCopy();
    const env = open({ path: join(dir, 'lmdb') });
    try {
      expect((env.openDB<{ version: number }, string>({ name: 'meta' }).get('layout') as { version: number }).version).toBe(2);
      expect(env.openDB({ name: 'entries', keyEncoding: 'binary', encoding: 'binary' }).getCount()).toBe(24);
    } finally {
      await env.close();
    }
  });

  it('a layout-2 folder is migrated in place and every persistent message comes back', async () => {
    expect(LAYOUT_VERSION).toBe(3);
    const dir = fixtureCopy();
    const broker = await start(dir);
    const vhost = broker.broker.vhosts.get('/')!;
    // Counts are there before anything is read.
    const counts = Object.fromEntries(['prio', 'f1', 'f2', 'mix'].map((q) => [q, vhost.queues.get(q)!.messageCount]));
    expect(counts).toEqual({ prio: 5, f1: 2, f2: 2, mix: 10 });
    const dx = vhost.exchanges.get('dx');
    expect(dx).toBeInstanceOf(DelayedMessageExchange);
    // The two delayed messages are held (counted) or, being due, already released into plain.
    const plain = vhost.queues.get('plain')!;
    expect(plain.messageCount + (dx as DelayedMessageExchange).heldCount).toBe(5);
    await waitFor(() => plain.messageCount === 5, 'the due delayed messages to be released');
    expect((dx as DelayedMessageExchange).heldCount).toBe(0);

    const fromPlain = await drain(broker.url, 'plain');
    expect(fromPlain.slice(0, 3)).toEqual([
      ['plain-0', true],
      ['plain-1', false],
      ['plain-2', false],
    ]);
    expect(fromPlain.slice(3).map(([b]) => b).sort()).toEqual(['delayed-0', 'delayed-1']);
    // By priority level (9 is capped at 5), in arrival order within a level.
    expect((await drain(broker.url, 'prio')).map(([b]) => b)).toEqual(['prio-2', 'prio-3', 'prio-1', 'prio-4', 'prio-0']);
    const fan = [['fan-small', false], ['L×5000', false]];
    expect(await drain(broker.url, 'f1')).toEqual(fan);
    expect((await drain(broker.url, 'mix')).map(([b]) => b)).toEqual([...'ABCDEFGHI'].map((c) => `${c}×1048576`).concat(['Z×1048576']));
    await broker.close();

    // The shared body is still referenced by f2; the layout is 3 and stays so.
    const env = open({ path: join(dir, 'lmdb') });
    try {
      expect((env.openDB<{ version: number; migratedFrom: number }, string>({ name: 'meta' }).get('layout') as { version: number; migratedFrom: number })).toMatchObject({ version: 3, migratedFrom: 2 });
      expect(env.openDB({ name: 'entries', keyEncoding: 'binary', encoding: 'binary' }).getCount()).toBe(0);
      expect(env.openDB({ name: 'messages', keyEncoding: 'binary', encoding: 'binary' }).getCount()).toBe(2);
    } finally {
      await env.close();
    }
    const again = await start(dir);
    expect(again.broker.vhosts.get('/')!.queues.get('f2')!.messageCount).toBe(2);
    expect(await drain(again.url, 'f2')).toEqual(fan);
    expect(((again.broker.vhosts.get('/')!.exchanges.get('dx')) as DelayedMessageExchange).heldCount).toBe(0);
  });
});
