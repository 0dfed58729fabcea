// A disk that fills up under a publisher: Warren must not lose or silently drop anything it
// confirmed. Waiting confirms are nacked, the publisher is blocked (connection.blocked), the
// process stays up, and after space is freed and Warren restarts, every confirmed message is there.
//
// Needs a small filesystem: a tmpfs mounted for the test (root on Linux, as CI runs). Where
// mounting is not allowed the test is skipped and says why.

import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import amqp from 'amqplib';
import { afterAll, describe, expect, it } from 'vitest';
import { waitFor } from '../support/wait.js';
import { ChildBroker } from '../support/child-broker.js';

const mountPoint = mkdtempSync(join(tmpdir(), 'warren-full-'));
let mounted = false;
let mountError = '';
try {
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=3m', 'tmpfs', mountPoint], { stdio: 'pipe' });
  mounted = true;
} catch (err) {
  mountError = (err as Error).message.split('\n')[0] ?? 'mount failed';
  console.log(`storage-failure test skipped: cannot mount a tmpfs here (${mountError})`);
}

const brokers: ChildBroker[] = [];

afterAll(async () => {
  for (const b of brokers) await b.kill();
  if (mounted) execFileSync('umount', ['-l', mountPoint]);
  rmSync(mountPoint, { recursive: true, force: true });
});

describe.runIf(mounted)('storage failure (disk full)', () => {
  it('nacks waiting confirms, blocks the publisher, stays up, and keeps every confirmed message', async () => {
    const dataDir = join(mountPoint, 'data');
    // The disk alarm (below 50 MB free by default) would block the publisher before the disk is
    // full; switched off here so that the write failure itself is what is tested.
    const broker = await ChildBroker.start(dataDir, undefined, ['--disk-free-limit', '0']);
    brokers.push(broker);
    const conn = await amqp.connect(broker.url);
    conn.on('error', () => {});
    let blockedReason: string | null = null;
    conn.on('blocked', (reason: string) => (blockedReason = reason));
    const ch = await conn.createConfirmChannel();
    ch.on('error', () => {});
    await ch.assertQueue('fill', { durable: true });

    // Incompressible 20 KB bodies fill 3 MB quickly.
    const confirmed = new Set<number>();
    let nacked = 0;
    for (let i = 0; i < 400 && blockedReason === null; i++) {
      const body = Buffer.alloc(20_000);
      for (let j = 0; j < body.length; j += 4) body.writeUInt32LE((Math.random() * 2 ** 32) >>> 0, j);
      body.writeUInt32BE(i, 0);
      ch.publish('', 'fill', body, { persistent: true }, (err) => {
        if (err) nacked++;
        else confirmed.add(i);
      });
      if (i % 10 === 9) await new Promise((r) => setTimeout(r, 20));
    }
    await waitFor(() => blockedReason !== null, 'connection.blocked', 10_000);
    expect(blockedReason).toBe('storage write failed (disk full or I/O error)');
    await waitFor(() => nacked > 0, 'a nack for a write that failed', 5000);
    expect(confirmed.size).toBeGreaterThan(0);
    // The broker is still up and answers a new connection.
    const probe = await amqp.connect(broker.url);
    const pch = await probe.createChannel();
    await pch.checkQueue('fill');
    await probe.close();
    expect(broker.process.exitCode).toBeNull();

    // Free space, restart: every confirmed message is still there.
    execFileSync('mount', ['-o', 'remount,size=64m', mountPoint]);
    await broker.kill();
    const again = await ChildBroker.start(dataDir);
    brokers.push(again);
    const conn2 = await amqp.connect(again.url);
    const ch2 = await conn2.createChannel();
    const seen = new Set<number>();
    for (;;) {
      const m = await ch2.get('fill', { noAck: true });
      if (m === false) break;
      seen.add(m.content.readUInt32BE(0));
    }
    const lost = [...confirmed].filter((i) => !seen.has(i));
    console.log(`storage failure: confirmed ${confirmed.size}, nacked ${nacked}, recovered ${seen.size}, lost ${lost.length}`);
    expect(lost).toEqual([]);
    await conn2.close();
    await again.stop();
  });
});
