// Memory is given back after a flood is consumed: bin/warren takes 200 MB of 4 KiB messages into
// one queue (in memory: under the memory budget and far from the watermark), a consumer drains it,
// and the memory Warren holds (RssAnon + RssShmem, the memory alarm's figure) comes back down near
// where it started.
//
// It used to stay up: the socket read buffers (64 KiB) and the copies of queued messages come from
// glibc's main heap, which only shrinks from its top by itself, and a few blocks still live above
// the freed ones kept it all resident (measured after the drain: 240-362 MiB anonymous, of which a
// 220-311 MiB heap with almost nothing in use; now 50-80 MiB: the memory gauge has glibc give the
// free pages back after it collected, src/broker/allocator.ts). The same flood drained by a slow
// consumer (over 25 s) used to leave what was released after the gauge's last collection resident
// (89 MiB held against 25 at rest); the gauge now owes one last collection once the bodies held
// have settled (memory.ts, SETTLED_COLLECT_BYTES). A failure gives the memory curve and the gauge's
// debug lines (its collections and trims).
//
// The wait polls /proc/PID/status, which reads counters. It used to read /proc/PID/smaps every 5 ms:
// that walks the broker's page tables under its mmap lock, the lock every brk, munmap and madvise of
// the broker's allocator waits for, so the measurement itself slowed the release it waits for.

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { publishConfirmed, type ConfirmChannel, type Connection, type Message } from '../support/amqp.js';
import { outputLines, statusMiB, usePerTestChildBroker } from '../support/per-test-child-broker.js';
import { waitFor } from '../support/wait.js';

const BODY_BYTES = 4096;
const FLOOD_BYTES = 200e6;
/**
 * How long the memory may take to come back once the flood is drained. It takes one or two gauge
 * ticks (1 s each) on an idle machine; the bound is for a loaded CI machine, where V8 frees dead
 * buffers on background threads that may wait for a core.
 */
const RELEASE_WAIT_MS = 45_000;
/** What the broker may hold above its figure at rest once the flood is drained. */
const RELEASED_WITHIN_MIB = 96;

/** The paced drain: what it may leave above the figure at rest (see the second test). */
const PACED_RELEASED_WITHIN_MIB = 32;
/** The paced consumer acks at most this many messages per ACK_EVERY_MS: 2000/s, 7.8 MiB/s. */
const PACED_PREFETCH = 200;
const ACK_EVERY_MS = 100;

const warren = usePerTestChildBroker();

/** The broker's anonymous + shmem resident memory (the alarm's figure), in MiB: a cheap read. */
function heldMiB(): number {
  const mib = statusMiB(warren.broker);
  return mib('RssAnon') + mib('RssShmem');
}

/** The memory held and the resident part of the C heap, in MiB (walks the page tables: for the curve's milestones only). */
function memory(): { held: number; heap: number } {
  const smaps = readFileSync(`/proc/${warren.broker.process.pid!}/smaps`, 'utf8');
  const at = smaps.indexOf('[heap]');
  const heap = at < 0 ? 0 : Number(/\nRss:\s+(\d+) kB/.exec(smaps.slice(at))?.[1] ?? Number.NaN);
  return { held: heldMiB(), heap: heap / 1024 };
}
const show = (m: { held: number; heap: number }): string => `held ${m.held.toFixed(0)} heap ${m.heap.toFixed(0)}`;

/**
 * Starts bin/warren, fills queue 'flood' with FLOOD_BYTES of 4 KiB messages (confirmed), checks
 * that the memory held rose by most of it, and returns the connection and its channel, the message
 * count and the memory curve so far (first entry: at rest).
 */
async function flood(): Promise<{ conn: Connection; ch: ConfirmChannel; count: number; atRest: { held: number; heap: number }; curve: string[] }> {
  // Debug: the gauge logs its collections and trims, which a failure prints.
  await warren.start('warren-mem-release-', ['--log-level', 'debug']);
  const conn = await warren.clients.connect();
  const ch = await conn.createConfirmChannel();
  await ch.assertQueue('flood', { durable: false });
  const atRest = memory();
  const curve: string[] = [`at rest: ${show(atRest)}`];

  const body = Buffer.alloc(BODY_BYTES, 7);
  const count = Math.floor(FLOOD_BYTES / BODY_BYTES);
  await publishConfirmed(ch, 'flood', body, count);
  expect((await ch.checkQueue('flood')).messageCount).toBe(count);
  const flooded = memory();
  curve.push(`flooded: ${show(flooded)}`);
  // The flood is in memory: the figure must have risen by most of it, or this test measures nothing.
  expect(flooded.held - atRest.held).toBeGreaterThan(FLOOD_BYTES / 2 ** 20 / 2);
  return { conn, ch, count, atRest, curve };
}

/**
 * Waits (RELEASE_WAIT_MS at most) for the memory held to come back under `bound` MiB; a failure
 * gives the curve (a sample a second) and the gauge's debug lines.
 */
async function expectReleasedUnder(bound: number, curve: string[]): Promise<void> {
  const start = Date.now();
  let nextSample = start;
  try {
    await waitFor(
      () => {
        const held = heldMiB();
        if (Date.now() >= nextSample) {
          curve.push(`${((Date.now() - start) / 1000).toFixed(0)} s: held ${held.toFixed(0)}`);
          nextSample += 1000;
        }
        return held < bound;
      },
      `the memory held to come back under ${bound.toFixed(0)} MiB`,
      RELEASE_WAIT_MS,
    );
  } catch (err) {
    const gauge = outputLines(warren.broker).filter((line) => line.includes('garbage collection'));
    throw new Error(`${(err as Error).message}; MiB: ${curve.join(' | ')}; now ${show(memory())}\ngauge:\n${gauge.join('\n')}`);
  }
  // The addon that gives memory back was built (npm ci, with the C compiler CI has): no warning.
  expect(warren.broker.output.join('')).not.toContain('malloc-trim addon not built');
}

describe('memory after a flood is consumed (bin/warren)', () => {
  it('200 MB of 4 KiB messages queued, then drained: the memory Warren holds comes back to near its figure at rest', { timeout: 150_000 }, async () => {
    const { conn, ch, count, atRest, curve } = await flood();
    const reader = await conn.createChannel();
    await reader.prefetch(1000);
    let got = 0;
    await reader.consume('flood', (m) => {
      if (m === null) return;
      got++;
      reader.ack(m);
    });
    await waitFor(() => got === count, `the ${count} messages (have ${got})`, 60_000);
    expect((await ch.checkQueue('flood')).messageCount).toBe(0);
    await expectReleasedUnder(atRest.held + RELEASED_WITHIN_MIB, curve);
  });

  // A consumer slower than the flood drains it over many gauge ticks (25 s here), as under load
  // or in production: the gauge collects each time 64 MiB more were released, and what is released
  // after the last of those collections (here 190 MiB - 2 x 64-72 MiB, 47-63 MiB) used to stay
  // resident for good, as an idle broker allocates too little for V8 to collect by itself. The
  // gauge owes one last collection once the queues' bodies have settled.
  it('the same flood drained slowly (2000 messages a second): the memory held comes back to within 32 MiB of its figure at rest', { timeout: 180_000 }, async () => {
    const { conn, ch, count, atRest, curve } = await flood();
    const reader = await conn.createChannel();
    await reader.prefetch(PACED_PREFETCH);
    let got = 0;
    let last: Message | null = null;
    await reader.consume('flood', (m) => {
      if (m === null) return;
      got++;
      last = m;
    });
    // The consumer acks everything it holds once per ACK_EVERY_MS: at most PACED_PREFETCH a time.
    const pacer = setInterval(() => {
      if (last !== null) reader.ack(last, true);
      last = null;
    }, ACK_EVERY_MS);
    try {
      await waitFor(() => got === count, `the ${count} messages (have ${got})`, 90_000);
    } finally {
      clearInterval(pacer);
    }
    if (last !== null) reader.ack(last, true);
    expect((await ch.checkQueue('flood')).messageCount).toBe(0);
    await expectReleasedUnder(atRest.held + PACED_RELEASED_WITHIN_MIB, curve);
  });
});
