// scripts/latency-trace.mjs, the S6 latency diagnostic: preloaded into bin/warren it records the
// broker's socket reads and writes, timers and GCs; its report splits each stamped message's
// latency into send -> broker read -> delivery written -> consumer's ack read. Driven here as a
// benchmark would: a publisher and a consumer connection (amqplib), one message at a time, each
// body the sender's clock in Unix ns (little-endian) as ../shared/bench S6 sends it.

import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import amqp from 'amqplib';
import { afterAll, describe, expect, it } from 'vitest';
import { tempDir } from '../support/broker.js';
import { freePort, WARREN_BIN } from '../support/child-broker.js';
import { waitFor } from '../support/wait.js';

const TOOL = join(WARREN_BIN, '..', '..', 'scripts', 'latency-trace.mjs');
const MESSAGES = 300;
/** sent at once at the end: several messages in one socket read, each found */
const BURST = 20;
const run = promisify(execFile);
let broker: ChildProcess | null = null;

afterAll(() => {
  if (broker !== null && broker.exitCode === null) broker.kill('SIGKILL');
});

/** bin/warren with the tool preloaded; resolves once it listens. */
async function startTraced(prefix: string): Promise<{ port: number; exited: Promise<number | null> }> {
  const port = await freePort();
  const args = ['--import', TOOL, WARREN_BIN, '--port', String(port), '--data-dir', tempDir(), '--log-level', 'info'];
  for (const off of ['--management-port', '--prometheus-port', '--management-tls-port', '--prometheus-tls-port']) args.push(off, '0');
  const child = spawn(process.execPath, args, { env: { ...process.env, WARREN_LATENCY_TRACE: prefix }, stdio: ['ignore', 'pipe', 'pipe'] });
  broker = child;
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  let output = '';
  child.stdout!.on('data', (c: Buffer) => (output += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (output += c.toString()));
  await waitFor(() => /"msg":"listening"/.test(output) || child.exitCode !== null, 'the traced broker to listen', 15_000);
  if (child.exitCode !== null) throw new Error(`warren exited with ${child.exitCode}:\n${output}`);
  return { port, exited };
}

function stamped(seq: number): Buffer {
  const body = Buffer.alloc(16);
  body.writeBigUInt64LE(BigInt(Date.now()) * 1_000_000n);
  body.writeUInt32LE(seq, 12);
  return body;
}

describe('latency trace (scripts/latency-trace.mjs)', () => {
  it('records a traced broker and splits each message latency into broker-side parts', async () => {
    const prefix = join(tempDir(), 'trace');
    const { port, exited } = await startTraced(prefix);
    const url = `amqp://guest:guest@127.0.0.1:${port}`;
    const publisherConnection = await amqp.connect(url);
    const consumerConnection = await amqp.connect(url);
    const publisher = await publisherConnection.createChannel();
    const consumer = await consumerConnection.createChannel();
    const { queue } = await consumer.assertQueue('', { exclusive: true });
    let received = 0;
    await consumer.consume(queue, (m) => {
      if (m === null) return;
      received++;
      consumer.ack(m);
    });
    for (let seq = 1; seq <= MESSAGES; seq++) {
      publisher.sendToQueue(queue, stamped(seq));
      await waitFor(() => received === seq, `delivery ${seq}`);
    }
    for (let seq = MESSAGES + 1; seq <= MESSAGES + BURST; seq++) publisher.sendToQueue(queue, stamped(seq));
    await waitFor(() => received === MESSAGES + BURST, 'the burst');
    await consumer.checkQueue(queue); // after the last ack on the same channel: it has been read
    await publisherConnection.close();
    await consumerConnection.close();
    broker!.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(existsSync(`${prefix}.bin`)).toBe(true);

    const { stdout } = await run(process.execPath, [TOOL, 'report', prefix, '--slow', '1']);
    // The first tenth is left out as warm-up.
    const all = MESSAGES + BURST;
    expect(stdout).toContain(`messages ${all - Math.floor(all / 10)} (after the first tenth)`);
    for (const part of ['send -> broker read', 'broker read -> delivery written', 'delivery written -> consumer ack read', 'send -> ack read']) {
      const row = stdout.split('\n').find((l) => l.startsWith(part));
      expect(row, part).toBeDefined();
      const [p50, , , , max] = row!.slice(44).trim().split(/\s+/).map(Number);
      // µs on one clock: never negative; a loopback round trip is far below ten seconds.
      expect(p50).toBeGreaterThanOrEqual(0);
      expect(max).toBeLessThan(10_000_000);
    }
    expect(stdout).toMatch(/setInterval checkMemory from /); // the memory alarm's timer is seen
    expect(stdout).toMatch(/slowest 1 % \(\d+, send -> delivery written >= \d+ µs\)/);
  });

  it('says how to use it when asked for nothing it knows, and what to do when there is no trace', async () => {
    const failed = await run(process.execPath, [TOOL]).then(
      () => null,
      (err: { code: number; stderr: string }) => err,
    );
    expect(failed?.code).toBe(2);
    expect(failed?.stderr).toContain('usage: node scripts/latency-trace.mjs report PREFIX');
    const missing = join(tempDir(), 'none');
    const noTrace = await run(process.execPath, [TOOL, 'report', missing]).then(
      () => null,
      (err: { code: number; stderr: string }) => err,
    );
    expect(noTrace?.code).toBe(1);
    expect(noTrace?.stderr).toContain(`no trace at ${missing}.bin`);
  });
});
