// `npm run soak`: a long run under traffic that used to make Warren's memory grow, printing the
// broker's RSS every 10 s. Not a test (it takes minutes and its figures depend on the machine):
// what to look at is whether the curve stays flat once the queues have filled their windows.
//
//   npm run soak                       10 minutes
//   npm run soak -- --minutes 2        shorter
//
// bin/warren runs as a child process (fresh data folder). At the same time:
//   ttl    a queue with x-message-ttl of one hour, 1 KiB messages published and consumed (autoack)
//          as fast as they go;
//   ooo    manual acks in random order, prefetch 500, with the oldest delivery held for a minute;
//   slow   persistent 4 KiB messages at 200/s to a durable queue read by a consumer that acks
//          50/s: the queue grows all along (it pages to disk);
//   flood  a publisher sending transient 1 KiB messages as fast as it can to a queue nobody reads
//          (x-max-length 500,000, drop-head) — into the memory alarm when this Warren has one
//          (--vm-memory-high-watermark), which then blocks it.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import amqp, { type Channel, type ChannelModel, type ConsumeMessage } from 'amqplib';

/** This file runs compiled, from dist/test/bench. */
const WARREN_BIN = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'bin', 'warren');

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** Starts bin/warren and resolves once it listens. */
async function startWarren(dataDir: string, extra: string[]): Promise<{ child: ChildProcess; url: string }> {
  const port = await freePort();
  const child = spawn(process.execPath, [WARREN_BIN, '--port', String(port), '--data-dir', dataDir, '--log-level', 'warn', ...extra], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await new Promise<void>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      if (out.includes('listening on amqp://')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`warren exited with ${code} before listening`)));
  });
  return { child, url: `amqp://guest:guest@127.0.0.1:${port}` };
}

const argMinutes = process.argv.indexOf('--minutes');
const MINUTES = argMinutes >= 0 ? Number(process.argv[argMinutes + 1]) : 10;
const SAMPLE_MS = 10_000;

function rssMiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = /VmRSS:\s+(\d+) kB/.exec(status);
  return m ? Number(m[1]) / 1024 : NaN;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Publishes while `running()`, waiting for 'drain' when the channel's buffer is full. */
async function publishLoop(ch: Channel, queue: string, body: Buffer, options: amqp.Options.Publish, perSecond: number, running: () => boolean): Promise<void> {
  const interval = perSecond > 0 ? 1000 / perSecond : 0;
  let next = Date.now();
  while (running()) {
    if (!ch.sendToQueue(queue, body, options)) {
      await new Promise<void>((r) => {
        ch.once('drain', () => r());
        ch.once('close', () => r());
      });
    }
    if (interval > 0) {
      next += interval;
      const wait = next - Date.now();
      if (wait > 0) await sleep(wait);
    } else if (Math.random() < 0.01) await new Promise((r) => setImmediate(r));
  }
}

async function main(): Promise<void> {
  const help = spawnSync(process.execPath, [WARREN_BIN, '--help'], { encoding: 'utf8' }).stdout;
  const hasAlarm = help.includes('--vm-memory-high-watermark');
  const extra = ['--management-port', '0', ...(hasAlarm ? ['--vm-memory-high-watermark', '400MB'] : [])];
  const dataDir = mkdtempSync(join(tmpdir(), 'warren-soak-'));
  const broker = await startWarren(dataDir, extra);
  const pid = broker.child.pid!;
  console.log(`soak: ${MINUTES} min against bin/warren (pid ${pid}, data ${dataDir})`);
  console.log(hasAlarm ? 'flood: into a memory alarm at 400MB' : 'flood: this Warren has no memory alarm yet (--vm-memory-high-watermark): flooding without one');
  const end = Date.now() + MINUTES * 60_000;
  const running = (): boolean => Date.now() < end;
  const connections: ChannelModel[] = [];
  const connect = async (): Promise<ChannelModel> => {
    const c = await amqp.connect(broker.url);
    c.on('error', () => {});
    c.on('blocked', () => {});
    connections.push(c);
    return c;
  };

  const admin = await (await connect()).createChannel();
  await admin.assertQueue('soak.ttl', { durable: false, arguments: { 'x-message-ttl': 3_600_000 } });
  await admin.assertQueue('soak.ooo', { durable: false });
  await admin.assertQueue('soak.slow', { durable: true });
  await admin.assertQueue('soak.flood', { durable: false, arguments: { 'x-max-length': 500_000 } });

  const counts = { ttl: 0, ooo: 0, slow: 0 };
  const tasks: Promise<unknown>[] = [];

  // ttl
  const ttlCon = await (await connect()).createChannel();
  await ttlCon.consume('soak.ttl', () => counts.ttl++, { noAck: true });
  tasks.push(publishLoop(await (await connect()).createChannel(), 'soak.ttl', Buffer.alloc(1024, 1), {}, 0, running));

  // ooo: acks in random order; the oldest is held for a minute at a time.
  const oooCon = await (await connect()).createChannel();
  await oooCon.prefetch(500);
  const held: ConsumeMessage[] = [];
  let oldest: ConsumeMessage | null = null;
  let oldestSince = Date.now();
  await oooCon.consume('soak.ooo', (m) => {
    if (m === null) return;
    counts.ooo++;
    if (oldest === null) {
      oldest = m;
      oldestSince = Date.now();
      return;
    }
    held.push(m);
    if (!running()) return;
    if (held.length >= 50) {
      const i = Math.floor(Math.random() * held.length);
      oooCon.ack(held[i]!);
      held[i] = held[held.length - 1]!;
      held.pop();
    }
    if (Date.now() - oldestSince > 60_000) {
      oooCon.ack(oldest);
      oldest = null;
    }
  });
  tasks.push(publishLoop(await (await connect()).createChannel(), 'soak.ooo', Buffer.alloc(256, 2), {}, 2000, running));

  // slow
  const slowCon = await (await connect()).createChannel();
  await slowCon.prefetch(10);
  await slowCon.consume('soak.slow', (m) => {
    if (m === null) return;
    setTimeout(() => {
      counts.slow++;
      try {
        slowCon.ack(m);
      } catch {
        // the run is over and the channel closed
      }
    }, 200);
  });
  tasks.push(publishLoop(await (await connect()).createChannel(), 'soak.slow', Buffer.alloc(4096, 3), { persistent: true }, 200, running));

  // flood
  tasks.push(publishLoop(await (await connect()).createChannel(), 'soak.flood', Buffer.alloc(1024, 4), {}, 0, running));

  const started = Date.now();
  const curve: { t: number; rss: number }[] = [];
  console.log('     t   RSS MiB   ttl consumed   ooo consumed   slow depth   flood depth');
  const sample = async (): Promise<void> => {
    const t = Math.round((Date.now() - started) / 1000);
    const rss = rssMiB(pid);
    curve.push({ t, rss });
    const slow = (await admin.checkQueue('soak.slow')).messageCount;
    const flood = (await admin.checkQueue('soak.flood')).messageCount;
    console.log(`${String(t).padStart(5)}s ${rss.toFixed(1).padStart(9)} ${String(counts.ttl).padStart(14)} ${String(counts.ooo).padStart(14)} ${String(slow).padStart(12)} ${String(flood).padStart(13)}`);
  };
  while (running()) {
    await sleep(Math.min(SAMPLE_MS, Math.max(0, end - Date.now())));
    await sample().catch((err: unknown) => console.log(`sample failed: ${String(err)}`));
  }
  // Publishers held by an alarm wait for 'drain' forever: closing their connections ends them.
  for (const c of connections) await c.close().catch(() => {});
  await Promise.race([Promise.allSettled(tasks), sleep(5000)]);
  await new Promise<void>((resolve) => {
    broker.child.once('exit', () => resolve());
    broker.child.kill('SIGTERM');
  });
  rmSync(dataDir, { recursive: true, force: true });

  // After the first two minutes the windows are full; from there on the curve should be flat.
  const settled = curve.filter((p) => p.t >= Math.min(120, (MINUTES * 60) / 3));
  if (settled.length >= 2) {
    const first = settled[0]!.rss;
    const max = Math.max(...settled.map((p) => p.rss));
    const last = settled[settled.length - 1]!.rss;
    console.log(`RSS after the windows filled: ${first.toFixed(0)} MiB at ${settled[0]!.t}s, max ${max.toFixed(0)} MiB, last ${last.toFixed(0)} MiB (${(((last - first) / first) * 100).toFixed(0)}% change)`);
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
