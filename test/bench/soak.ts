// `npm run soak`: a long run under traffic that used to make Warren's memory grow, printing the
// broker's RSS every 10 s. Not a test (it takes minutes and its figures depend on the machine):
// what to look at is whether the curve stays flat once the queues have filled their windows.
//
//   npm run soak                       10 minutes
//   npm run soak -- --minutes 2        shorter
//   npm run soak -- --watermark 300MB  another memory high watermark (default 150MB, see below)
//
// Each line: the broker's RSS; the memory the memory alarm measures (RSS less file-backed pages:
// RssAnon + RssShmem, see src/broker/process-memory.ts) and the file-backed part; whether the
// memory alarm is set (from the Prometheus endpoint) and how many times it was set so far; how
// many publishers are blocked; and each workload's progress, so a stall shows. Each time the
// broker logs that the memory alarm was set or cleared, a line says so (with the broker's figure
// and limit); at the end, per minute: RSS, the alarm's figure, file-backed, the alarm's sets and
// clears and how long it was set.
//
// bin/warren runs as a child process (fresh data folder). At the same time:
//   ttl    a queue with x-message-ttl of one hour, 1 KiB messages published and consumed (autoack)
//          as fast as they go;
//   ooo    manual acks in random order, prefetch 500, with the oldest delivery held for a minute;
//   slow   persistent 4 KiB messages at 200/s to a durable queue read by a consumer that acks
//          50/s: the queue grows all along (it pages to disk);
//   flood  a publisher sending transient 1 KiB messages as fast as it can (confirmed, counted) to a
//          queue nobody reads (x-max-length 500,000, drop-head) — into the memory alarm when this
//          Warren has one (--vm-memory-high-watermark, --watermark to change), which then blocks it
//          (and every other publisher) until the memory held is back under the watermark.
//
// The default watermark, 150MB, is one the flood reaches: paging starts at half the watermark and
// keeps the memory held near that (at 400MB the flood held 146-196 MiB and never reached the
// alarm, at 200MB 102-166 MiB), so the alarm is only reached when the workloads' own memory sits
// above the paging threshold, as in a broker short of memory.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { createInterface, type Interface } from 'node:readline';
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
async function startWarren(dataDir: string, extra: string[]): Promise<{ child: ChildProcess; lines: Interface; url: string; metricsUrl: string }> {
  const port = await freePort();
  const metricsPort = await freePort();
  // info: the memory alarm's "cleared" line is at info level (its "set" line at warn).
  const args = ['--port', String(port), '--data-dir', dataDir, '--log-level', 'info', '--prometheus-port', String(metricsPort), ...extra];
  // bin/warren itself, as users start it (its first line sets node's flags and the allocator's
  // settings), not `node bin/warren`.
  const child = spawn(WARREN_BIN, args, {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines = createInterface({ input: child.stdout! });
  await new Promise<void>((resolve, reject) => {
    const onLine = (line: string): void => {
      if (!line.includes('listening on amqp://')) return;
      lines.off('line', onLine);
      resolve();
    };
    lines.on('line', onLine);
    child.once('exit', (code) => reject(new Error(`warren exited with ${code} before listening`)));
  });
  return { child, lines, url: `amqp://guest:guest@127.0.0.1:${port}`, metricsUrl: `http://127.0.0.1:${metricsPort}/metrics` };
}

/** The memory alarm's transitions, from the broker's log lines (JSON, one per line). */
class AlarmLog {
  sets = 0;
  clears = 0;
  private setSince: number | null = null;
  /** ms the alarm was set, per minute of the run */
  readonly setMsByMinute: number[] = [];
  readonly setsByMinute: number[] = [];
  readonly clearsByMinute: number[] = [];

  constructor(private readonly started: number) {}

  /** One line of the broker's output; prints and counts the memory alarm's sets and clears. */
  line(text: string): void {
    if (!text.includes('memory resource alarm')) return;
    let entry: { msg?: string; memoryUsedBytes?: number; memoryLimitBytes?: number };
    try {
      entry = JSON.parse(text) as typeof entry;
    } catch {
      return;
    }
    const now = Date.now();
    const t = ((now - this.started) / 1000).toFixed(1);
    const figures = `held ${((entry.memoryUsedBytes ?? 0) / MIB).toFixed(1)} MiB, watermark ${((entry.memoryLimitBytes ?? 0) / MIB).toFixed(1)} MiB`;
    const minute = this.minute(now);
    if (entry.msg?.startsWith('memory resource alarm set') === true) {
      this.sets++;
      this.setsByMinute[minute] = (this.setsByMinute[minute] ?? 0) + 1;
      this.setSince = now;
      console.log(`   ${t}s memory alarm SET (${this.sets}): ${figures}`);
    } else if (entry.msg?.startsWith('memory resource alarm cleared') === true) {
      this.clears++;
      this.clearsByMinute[minute] = (this.clearsByMinute[minute] ?? 0) + 1;
      this.closeSpan(now);
      console.log(`   ${t}s memory alarm cleared (${this.clears}): ${figures}`);
    }
  }

  /** Whether the alarm is set now (per the log). */
  get isSet(): boolean {
    return this.setSince !== null;
  }

  /** The run is over: a span still open counts up to `now`. */
  finish(now: number): void {
    if (this.setSince !== null) this.closeSpan(now);
  }

  private closeSpan(now: number): void {
    if (this.setSince === null) return;
    // Spread the span over the minutes it covers.
    let from = this.setSince;
    while (from < now) {
      const minute = this.minute(from);
      const minuteEnd = this.started + (minute + 1) * 60_000;
      const to = Math.min(now, minuteEnd);
      this.setMsByMinute[minute] = (this.setMsByMinute[minute] ?? 0) + (to - from);
      from = to;
    }
    this.setSince = null;
  }

  private minute(at: number): number {
    return Math.max(0, Math.floor((at - this.started) / 60_000));
  }
}

const MIB = 1024 * 1024;

function option(name: string, fallback: string): string {
  const i = process.argv.indexOf(name);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : fallback;
}
const MINUTES = Number(option('--minutes', '10'));
const WATERMARK = option('--watermark', '150MB');
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
  const started = Date.now();
  const alarms = new AlarmLog(started);
  broker.lines.on('line', (line) => alarms.line(line));
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

  const curve: { t: number; rss: number; held: number; file: number }[] = [];
  console.log('     t   RSS MiB  held MiB  file MiB  heap MiB  alarm   sets  blocked   ttl consumed   ooo consumed  slow acked  slow depth  flood confirmed  flood depth');
  const sample = async (): Promise<void> => {
    const t = Math.round((Date.now() - started) / 1000);
    const mem = memoryMiB(pid);
    curve.push({ t, rss: mem.rss, held: mem.held, file: mem.file });
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
      String(alarms.sets).padStart(6),
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
  alarms.finish(end);

  // Per minute: the band of RSS and of the alarm's figure, the file-backed part at the minute's
  // last sample, and what the memory alarm did.
  console.log(`memory alarm at ${WATERMARK}: set ${alarms.sets} times, cleared ${alarms.clears} times`);
  console.log(' minute   RSS MiB (min-max)  held MiB (min-max)  file MiB  alarm sets  clears  set for');
  for (let minute = 0; minute < Math.ceil(MINUTES); minute++) {
    const points = curve.filter((p) => p.t > minute * 60 && p.t <= (minute + 1) * 60);
    if (points.length === 0) continue;
    const band = (key: 'rss' | 'held'): string => `${Math.min(...points.map((p) => p[key])).toFixed(0)}-${Math.max(...points.map((p) => p[key])).toFixed(0)}`;
    console.log(
      [
        String(minute + 1).padStart(7),
        band('rss').padStart(18),
        band('held').padStart(19),
        points.at(-1)!.file.toFixed(0).padStart(9),
        String(alarms.setsByMinute[minute] ?? 0).padStart(11),
        String(alarms.clearsByMinute[minute] ?? 0).padStart(7),
        `${((alarms.setMsByMinute[minute] ?? 0) / 1000).toFixed(1)}s`.padStart(8),
      ].join(' '),
    );
  }
  if (hasAlarm && alarms.sets === 0) console.log(`the flood never reached the memory alarm at ${WATERMARK}: try a lower --watermark`);

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
