// `npm run soak`: a long run under traffic that used to make Warren's memory grow, printing the
// broker's RSS every 10 s. Not a test (it takes minutes and its figures depend on the machine):
// what to look at is whether the curve stays flat once the queues have filled their windows.
//
//   npm run soak                       10 minutes
//   npm run soak -- --minutes 2        shorter
//   npm run soak -- --watermark 300MB  another memory high watermark (default 400MB)
//
// Each line: the broker's RSS; the memory the memory alarm measures (RSS less file-backed pages:
// RssAnon + RssShmem, see src/broker/process-memory.ts) and the file-backed part; whether the
// memory alarm is set (from the Prometheus endpoint); how many publishers are blocked; and each
// workload's progress, so a stall shows.
//
// bin/warren runs as a child process (fresh data folder). At the same time:
//   ttl    a queue with x-message-ttl of one hour, 1 KiB messages published and consumed (autoack)
//          as fast as they go;
//   ooo    manual acks in random order, prefetch 500, with the oldest delivery held for a minute;
//   slow   persistent 4 KiB messages at 200/s to a durable queue read by a consumer that acks
//          50/s: the queue grows all along (it pages to disk);
//   flood  a publisher sending transient 1 KiB messages as fast as it can (confirmed, counted) to a
//          queue nobody reads (x-max-length 500,000, drop-head) — into the memory alarm when this
//          Warren has one (--vm-memory-high-watermark, --watermark to change), which then blocks it.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import amqp, { type Channel, type ChannelModel, type ConfirmChannel, type ConsumeMessage } from 'amqplib';

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
async function startWarren(dataDir: string, extra: string[]): Promise<{ child: ChildProcess; url: string; metricsUrl: string }> {
  const port = await freePort();
  const metricsPort = await freePort();
  const args = ['--port', String(port), '--data-dir', dataDir, '--log-level', 'warn', '--prometheus-port', String(metricsPort), ...extra];
  // bin/warren itself, as users start it (its first line sets node's flags and the allocator's
  // settings), not `node bin/warren`.
  const child = spawn(WARREN_BIN, args, {
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
  return { child, url: `amqp://guest:guest@127.0.0.1:${port}`, metricsUrl: `http://127.0.0.1:${metricsPort}/metrics` };
}

function option(name: string, fallback: string): string {
  const i = process.argv.indexOf(name);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : fallback;
}
const MINUTES = Number(option('--minutes', '10'));
const WATERMARK = option('--watermark', '400MB');
const SAMPLE_MS = 10_000;

/**
 * The broker's memory from /proc: RSS, the part the memory alarm counts (anonymous + shmem),
 * file-backed pages, and the resident part of the C allocator's main heap (the `[heap]` mapping:
 * what glibc's malloc holds below its break, freed or not; large blocks it maps on their own are
 * not in it).
 */
function memoryMiB(pid: number): { rss: number; held: number; file: number; heap: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (key: string): number => {
    const m = new RegExp(`${key}:\\s+(\\d+) kB`).exec(status);
    return m ? Number(m[1]) : NaN;
  };
  let heap = 0;
  try {
    const smaps = readFileSync(`/proc/${pid}/smaps`, 'utf8');
    const at = smaps.indexOf('[heap]');
    if (at >= 0) heap = Number(/\nRss:\s+(\d+) kB/.exec(smaps.slice(at))?.[1] ?? 0);
  } catch {
    heap = NaN;
  }
  return { rss: kb('VmRSS') / 1024, held: (kb('RssAnon') + kb('RssShmem')) / 1024, file: kb('RssFile') / 1024, heap: heap / 1024 };
}

/** 1 when the memory alarm is set (RabbitMQ's rabbitmq_alarms_memory_used_watermark), from the broker's Prometheus endpoint. */
async function memoryAlarm(metricsUrl: string): Promise<string> {
  try {
    const text = await (await fetch(metricsUrl)).text();
    const m = /^rabbitmq_alarms_memory_used_watermark (\d+)/m.exec(text);
    return m ? m[1]! : '?';
  } catch {
    return '?';
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Publishes while `running()`, waiting for 'drain' when the channel's buffer is full. */
async function publishLoop(
  ch: Channel | ConfirmChannel,
  queue: string,
  body: Buffer,
  options: amqp.Options.Publish,
  perSecond: number,
  running: () => boolean,
  onConfirm?: (err: unknown) => void,
): Promise<void> {
  const interval = perSecond > 0 ? 1000 / perSecond : 0;
  let next = Date.now();
  while (running()) {
    const accepted = onConfirm !== undefined ? (ch as ConfirmChannel).sendToQueue(queue, body, options, onConfirm) : ch.sendToQueue(queue, body, options);
    if (!accepted) {
      // Whichever comes first; the other listener goes too (they used to pile up on 'close').
      await new Promise<void>((r) => {
        const done = (): void => {
          ch.off('drain', done);
          ch.off('close', done);
          r();
        };
        ch.once('drain', done);
        ch.once('close', done);
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
  const extra = ['--management-port', '0', ...(hasAlarm ? ['--vm-memory-high-watermark', WATERMARK] : [])];
  const dataDir = mkdtempSync(join(tmpdir(), 'warren-soak-'));
  const broker = await startWarren(dataDir, extra);
  const pid = broker.child.pid!;
  console.log(`soak: ${MINUTES} min against bin/warren (pid ${pid}, data ${dataDir})`);
  console.log(hasAlarm ? `flood: into a memory alarm at ${WATERMARK}` : 'flood: this Warren has no memory alarm yet (--vm-memory-high-watermark): flooding without one');
  const end = Date.now() + MINUTES * 60_000;
  const running = (): boolean => Date.now() < end;
  const connections: ChannelModel[] = [];
  const blocked = new Set<ChannelModel>();
  const connect = async (): Promise<ChannelModel> => {
    const c = await amqp.connect(broker.url);
    c.on('error', () => {});
    c.on('blocked', () => blocked.add(c));
    c.on('unblocked', () => blocked.delete(c));
    connections.push(c);
    return c;
  };

  const admin = await (await connect()).createChannel();
  await admin.assertQueue('soak.ttl', { durable: false, arguments: { 'x-message-ttl': 3_600_000 } });
  await admin.assertQueue('soak.ooo', { durable: false });
  await admin.assertQueue('soak.slow', { durable: true });
  await admin.assertQueue('soak.flood', { durable: false, arguments: { 'x-max-length': 500_000 } });

  const counts = { ttl: 0, ooo: 0, slow: 0, flood: 0 };
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
  const floodConfirmed = (err: unknown): void => {
    if (err === null || err === undefined) counts.flood++;
  };
  tasks.push(publishLoop(await (await connect()).createConfirmChannel(), 'soak.flood', Buffer.alloc(1024, 4), {}, 0, running, floodConfirmed));

  const started = Date.now();
  const curve: { t: number; rss: number; held: number }[] = [];
  console.log('     t   RSS MiB  held MiB  file MiB  heap MiB  alarm  blocked   ttl consumed   ooo consumed  slow acked  slow depth  flood confirmed  flood depth');
  const sample = async (): Promise<void> => {
    const t = Math.round((Date.now() - started) / 1000);
    const mem = memoryMiB(pid);
    curve.push({ t, rss: mem.rss, held: mem.held });
    const alarm = await memoryAlarm(broker.metricsUrl);
    const slow = (await admin.checkQueue('soak.slow')).messageCount;
    const flood = (await admin.checkQueue('soak.flood')).messageCount;
    const cols = [
      `${String(t).padStart(5)}s`,
      mem.rss.toFixed(1).padStart(9),
      mem.held.toFixed(1).padStart(9),
      mem.file.toFixed(1).padStart(9),
      mem.heap.toFixed(1).padStart(9),
      alarm.padStart(6),
      String(blocked.size).padStart(8),
      String(counts.ttl).padStart(14),
      String(counts.ooo).padStart(14),
      String(counts.slow).padStart(11),
      String(slow).padStart(11),
      String(counts.flood).padStart(16),
      String(flood).padStart(12),
    ];
    console.log(cols.join(' '));
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

  // After the first two minutes the windows are full; from there on the curve should be flat: a
  // bounded band (min-max) and no upward trend (least-squares slope, and the mean of the last half
  // against the first half).
  const settled = curve.filter((p) => p.t >= Math.min(120, (MINUTES * 60) / 3));
  if (settled.length >= 4) {
    for (const key of ['rss', 'held'] as const) {
      const ys = settled.map((p) => p[key]);
      const ts = settled.map((p) => p.t / 60);
      const n = ys.length;
      const mt = ts.reduce((a, b) => a + b, 0) / n;
      const my = ys.reduce((a, b) => a + b, 0) / n;
      let num = 0;
      let den = 0;
      for (let i = 0; i < n; i++) {
        num += (ts[i]! - mt) * (ys[i]! - my);
        den += (ts[i]! - mt) ** 2;
      }
      const half = Math.floor(n / 2);
      const mean = (a: number[]): number => a.reduce((x, y) => x + y, 0) / a.length;
      console.log(
        `${key === 'rss' ? 'RSS ' : 'held'} from ${settled[0]!.t}s: band ${Math.min(...ys).toFixed(0)}-${Math.max(...ys).toFixed(0)} MiB, ` +
          `last ${ys[n - 1]!.toFixed(0)} MiB, slope ${(num / den).toFixed(1)} MiB/min, ` +
          `mean first half ${mean(ys.slice(0, half)).toFixed(0)} MiB, last half ${mean(ys.slice(half)).toFixed(0)} MiB`,
      );
    }
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
