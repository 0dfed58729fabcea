// Layout v1 → v2 in place, on a data folder written by the Warren of layout 1
// (test/fixtures/v1-data, made by test/fixtures/make-v1-data.mjs with commit 042546d): it opens,
// its queues, exchange, binding and messages are all there, the folder now says layout 2, and the
// first start of v2 wrote the default user, the vhost and the user's permissions — guest logs in.
// A second start reads it as a plain v2 folder.

import { cpSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import amqp from 'amqplib';
import { open } from 'lmdb';
import { afterEach, describe, expect, it } from 'vitest';
import { LAYOUT_VERSION } from '../../src/store/lmdb-store.js';
import { startTestBroker, tempDir, type TestBroker } from '../support/broker.js';

const FIXTURE = fileURLToPath(new URL('../fixtures/v1-data', import.meta.url));

const live = new Set<TestBroker>();
const dirs = new Set<string>();
afterEach(async () => {
  for (const b of live) await b.stop();
  live.clear();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  dirs.clear();
});

function copyFixture(): string {
  const dir = tempDir('warren-v1-');
  dirs.add(dir);
  cpSync(FIXTURE, dir, { recursive: true });
  return dir;
}

function layoutOf(dataDir: string): { version: number; migratedFrom?: number } {
  const env = open({ path: join(dataDir, 'lmdb'), maxDbs: 16, readOnly: true });
  try {
    return env.openDB<{ version: number; migratedFrom?: number }, string>({ name: 'meta' }).get('layout')!;
  } finally {
    void env.close();
  }
}

async function drain(conn: amqp.ChannelModel, queue: string): Promise<string[]> {
  const ch = await conn.createChannel();
  const out: string[] = [];
  for (;;) {
    const m = await ch.get(queue, { noAck: true });
    if (m === false) break;
    out.push(m.content.length > 100 ? `${m.content.length} bytes` : m.content.toString());
  }
  await ch.close();
  return out;
}

// The chain runs on: a layout-1 folder is brought to the current layout (v1 → v2 → …).
describe('migration v1 → v2', () => {
  it('the fixture is a layout 1 folder', () => {
    expect(layoutOf(copyFixture()).version).toBe(1);
    expect(LAYOUT_VERSION).toBeGreaterThanOrEqual(2);
  });

  it('opens a v1 folder in place: topology and messages kept, default user, vhost and permissions written', async () => {
    const dataDir = copyFixture();
    let b = await startTestBroker({ dataDir });
    live.add(b);
    expect(layoutOf(dataDir)).toMatchObject({ version: LAYOUT_VERSION, migratedFrom: 1 });
    expect(b.broker.admin.listUsers().map((u) => [u.name, u.tags])).toEqual([['guest', ['administrator']]]);
    expect(b.broker.admin.listVhosts().map((v) => v.name)).toEqual(['/']);
    expect(b.broker.admin.listPermissions()).toEqual([{ user: 'guest', vhost: '/', configure: '.*', write: '.*', read: '.*' }]);

    let conn = await amqp.connect(b.url);
    const ch = await conn.createChannel();
    expect(await ch.checkQueue('v1.q')).toMatchObject({ messageCount: 3 });
    expect(await ch.checkQueue('v1.args')).toMatchObject({ messageCount: 1 });
    await ch.checkExchange('v1.x');
    await ch.close();
    await conn.close();

    // Second start: a plain current-layout folder (nothing migrated or seeded again).
    await b.close();
    live.delete(b);
    b = await startTestBroker({ dataDir });
    live.add(b);
    expect(layoutOf(dataDir)).toMatchObject({ version: LAYOUT_VERSION, migratedFrom: 1 });
    conn = await amqp.connect(b.url);
    const pub = await conn.createConfirmChannel();
    pub.publish('v1.x', '', Buffer.from('after'), { persistent: true });
    await pub.waitForConfirms();
    expect(await drain(conn, 'v1.q')).toEqual(['first', '2048 bytes', 'third', 'after']);
    expect(await drain(conn, 'v1.args')).toEqual(['args']);
    await conn.close();
  });
});
