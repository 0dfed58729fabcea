// `npm run bench -- --pipeline S1,S2`: the broker's CPU time per message on fixed workloads, for
// A/B comparisons that hold up on a busy machine. ../shared/bench measures throughput with a
// closed-loop load generator whose batching follows the machine's load; here a client in this
// process writes exactly `batch` messages in one write, waits until all of them are delivered (and
// acknowledged, confirmed), and goes on, so the broker sees the same reads and does the same work
// whatever else runs. The broker is a child process (bin/warren of one or more builds, alternated
// round by round); its CPU time is read from /proc/PID/stat around the measured messages.
//
//   node dist/test/bench/pipeline.js [--root NAME=DIR]... [--rounds N] [--count N] [--batch N] S1,S2,...
//
// Profiling the broker under a scenario: PIPELINE_NODE_ARGS="--cpu-prof --cpu-prof-dir=DIR".
//
// Scenarios follow ../shared/bench's shapes: S1 autoack, S2 manual acks (prefetch 100), S3
// persistent with confirms, S4 fanout to 10 queues, S5 topic (1000 keys, 100 bindings), S9 1 MiB
// messages (manual acks, prefetch 10, in body frames of frame_max, batches of at most 10, a fiftieth
// of --count), S11 S2 with 6 headers; S1T is S1 over TLS, each frame its own TLS record (as
// amqp091-go writes them). µs/msg counts deliveries for S4 and S5, as ampbench does.

import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, connect as netConnect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { Duplex } from 'node:stream';
import { dirname, join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { fileURLToPath } from 'node:url';
import { encodeMethodFrame } from '../../src/protocol/frame-writer.js';
import { FrameParser } from '../../src/protocol/frame-parser.js';
import { encodeTable, TypedValue, type FieldTable } from '../../src/protocol/field-table.js';
import * as M from '../../src/protocol/generated/amqp.js';

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const PROTOCOL_HEADER = Buffer.from('AMQP\x00\x00\x09\x01', 'latin1');

/**
 * TCP under the bench's TLS client, writing everything TLS wrote in one turn with one write, as
 * ampbench's coalescing connection under amqp091-go's TLS does: the broker then reads many small
 * TLS records (one per frame) at once.
 */
class CoalescingStream extends Duplex {
  private pending: Buffer[] = [];
  constructor(private readonly tcp: Socket) {
    super();
    tcp.on('data', (d: Buffer) => this.push(d));
    tcp.on('end', () => this.push(null));
    tcp.on('error', (err) => this.destroy(err));
  }
  override _read(): void {}
  override _write(chunk: Buffer, _encoding: BufferEncoding, done: (err?: Error | null) => void): void {
    if (this.pending.length === 0) {
      setImmediate(() => {
        const all = this.pending;
        this.pending = [];
        this.tcp.write(all.length === 1 ? all[0]! : Buffer.concat(all));
      });
    }
    this.pending.push(chunk);
    done();
  }
  override _destroy(err: Error | null, done: (err?: Error | null) => void): void {
    this.tcp.destroy();
    done(err);
  }
}

// ---- A small client: handshake and setup by awaiting methods, the measured loop by counting ------

type FrameHandler = (type: number, channel: number, buf: Buffer, start: number, end: number) => void;

class BenchConnection {
  private readonly parser: FrameParser;
  private handler: FrameHandler;
  private waiting: { id: number; resolve: (m: M.Method) => void } | null = null;
  private readonly early: M.Method[] = [];

  /** frame_max the broker proposed (and this client accepted) */
  frameMax = 0;

  private constructor(readonly socket: Socket) {
    this.handler = this.setupFrame;
    this.parser = new FrameParser(1 << 30, (t, c, b, s, e) => this.handler(t, c, b, s, e));
    socket.on('data', (chunk: Buffer) => this.parser.push(chunk));
    socket.on('error', () => {});
  }

  static async open(port: number, tls: boolean): Promise<BenchConnection> {
    const socket = await new Promise<Socket>((resolve, reject) => {
      const s: Socket = tls
        ? tlsConnect({ socket: new CoalescingStream(netConnect({ host: '127.0.0.1', port, noDelay: true })), rejectUnauthorized: false }, () => resolve(s))
        : netConnect({ host: '127.0.0.1', port, noDelay: true }, () => resolve(s));
      s.once('error', reject);
    });
    socket.setNoDelay(true);
    const c = new BenchConnection(socket);
    socket.write(PROTOCOL_HEADER);
    await c.expect(M.CONNECTION_START);
    c.send(0, {
      id: M.CONNECTION_START_OK,
      clientProperties: { product: 'warren-pipeline-bench', capabilities: { publisher_confirms: true, consumer_cancel_notify: true } },
      mechanism: 'PLAIN',
      response: Buffer.from('\0guest\0guest'),
      locale: 'en_US',
    });
    const tune = (await c.expect(M.CONNECTION_TUNE)) as M.ConnectionTune;
    c.frameMax = tune.frameMax;
    c.send(0, { id: M.CONNECTION_TUNE_OK, channelMax: tune.channelMax, frameMax: tune.frameMax, heartbeat: 0 });
    c.send(0, { id: M.CONNECTION_OPEN, virtualHost: '/', reserved1: '', reserved2: false });
    await c.expect(M.CONNECTION_OPEN_OK);
    c.send(1, { id: M.CHANNEL_OPEN, reserved1: '' });
    await c.expect(M.CHANNEL_OPEN_OK);
    return c;
  }

  send(channel: number, method: M.Method): void {
    this.socket.write(encodeMethodFrame(channel, method));
  }

  async call(method: M.Method, reply: number): Promise<M.Method> {
    this.send(1, method);
    return this.expect(reply);
  }

  expect(id: number): Promise<M.Method> {
    const i = this.early.findIndex((m) => m.id === id);
    if (i >= 0) return Promise.resolve(this.early.splice(i, 1)[0]!);
    return new Promise((resolve) => (this.waiting = { id, resolve }));
  }

  private readonly setupFrame: FrameHandler = (type, _channel, buf, start, end) => {
    if (type !== 1) return;
    const method = M.decodeMethodArgs(buf.readUInt32BE(start), buf, start + 4, end)!;
    if (method.id === M.CONNECTION_CLOSE || method.id === M.CHANNEL_CLOSE) {
      throw new Error(`broker closed: ${(method as M.ChannelClose).replyText}`);
    }
    if (this.waiting?.id === method.id) {
      const w = this.waiting;
      this.waiting = null;
      w.resolve(method);
    } else this.early.push(method);
  };

  /** From now on frames go to a counting handler (no decoding). */
  count(handler: FrameHandler): void {
    this.handler = handler;
  }

  /** Back to awaiting methods (call/expect), after a counted loop. */
  stopCounting(): void {
    this.handler = this.setupFrame;
  }

  close(): void {
    this.socket.destroy();
  }
}

// ---- Scenarios ------------------------------------------------------------------------------------

interface Shape {
  queues: number;
  exchangeType: '' | 'fanout' | 'topic';
  bindings: string[];
  routingKeys: string[];
  autoAck: boolean;
  persistent: boolean;
  confirm: boolean;
  headers: number;
  tls: boolean;
  /** body bytes per message */
  bodySize: number;
  /** basic.qos prefetch of manual-ack consumers */
  prefetch: number;
}

function s5Bindings(): string[] {
  const list: string[] = [];
  for (let j = 0; j < 100; j++) {
    const a = j % 10;
    const b = Math.floor(j / 10);
    list.push([`k.${a}.${b}.*`, `k.${a}.*.${b}`, `*.${a}.${b}.#`, `#.${a}.${b}`][j % 4]!);
  }
  return list;
}

function shape(name: string): Shape {
  const base: Shape = { queues: 1, exchangeType: '', bindings: [], routingKeys: [], autoAck: true, persistent: false, confirm: false, headers: 0, tls: false, bodySize: 16, prefetch: 100 };
  switch (name) {
    case 'S1':
      return base;
    case 'S1T':
      return { ...base, tls: true };
    case 'S2':
      return { ...base, autoAck: false };
    case 'S3':
      return { ...base, autoAck: false, persistent: true, confirm: true };
    case 'S4':
      return { ...base, queues: 10, exchangeType: 'fanout' };
    case 'S5': {
      const keys: string[] = [];
      for (let n = 0; n < 1000; n++) keys.push(`k.${Math.floor(n / 100) % 10}.${Math.floor(n / 10) % 10}.${n % 10}`);
      return { ...base, queues: 10, exchangeType: 'topic', bindings: s5Bindings(), routingKeys: keys };
    }
    case 'S9':
      return { ...base, autoAck: false, bodySize: 1024 * 1024, prefetch: 10 };
    case 'S11':
      return { ...base, autoAck: false, headers: 6 };
    default:
      throw new Error(`unknown scenario ${name} (S1 S1T S2 S3 S4 S5 S9 S11)`);
  }
}

/** AMQP topic matching, for the number of queues each S5 key reaches. */
function topicMatches(pattern: string[], words: string[]): boolean {
  if (pattern.length === 0) return words.length === 0;
  const [p, ...rest] = pattern;
  if (p === '#') {
    for (let i = 0; i <= words.length; i++) if (topicMatches(rest, words.slice(i))) return true;
    return false;
  }
  if (words.length === 0) return false;
  return (p === '*' || p === words[0]) && topicMatches(rest, words.slice(1));
}

/** ampbench's -headers N: strings, an int and a nested table. */
function benchHeaders(n: number): FieldTable {
  const h: FieldTable = {};
  for (let i = 0; i < n; i++) {
    if (i % 3 === 0) h[`x-app-${i}`] = `value-${i}-of-a-header`;
    else if (i % 3 === 1) h[`retries-${i}`] = new TypedValue('I', i);
    else h[`meta-${i}`] = { origin: 'ampbench', n: new TypedValue('l', i) };
  }
  return h;
}

/** One published message as bytes: basic.publish, content header, body frames of at most frameMax. */
function publishBytes(exchange: string, routingKey: string, s: Shape, frameMax: number): Buffer {
  const method = encodeMethodFrame(1, { id: M.BASIC_PUBLISH, reserved1: 0, exchange, routingKey, mandatory: false, immediate: false });
  const props: Buffer[] = [];
  let flags = 1 << 12; // delivery-mode, as amqp091-go always sends it
  if (s.headers > 0) {
    flags |= 1 << 13;
    props.push(encodeTable(benchHeaders(s.headers)));
  }
  props.push(Buffer.from([s.persistent ? 2 : 1]));
  const propBytes = Buffer.concat([Buffer.from([flags >> 8, flags & 0xff]), ...props]);
  const header = Buffer.alloc(8 + 12 + propBytes.length);
  header[0] = 2;
  header.writeUInt16BE(1, 1);
  header.writeUInt32BE(12 + propBytes.length, 3);
  header.writeUInt16BE(60, 7);
  header.writeUInt32BE(s.bodySize, 15);
  propBytes.copy(header, 19);
  header[header.length - 1] = 0xce;
  const bodyFrames: Buffer[] = [];
  const maxPayload = frameMax - 8;
  for (let offset = 0; offset < s.bodySize; offset += maxPayload) {
    const size = Math.min(maxPayload, s.bodySize - offset);
    const body = Buffer.alloc(8 + size);
    body[0] = 3;
    body.writeUInt16BE(1, 1);
    body.writeUInt32BE(size, 3);
    for (let i = 0; i < size; i++) body[7 + i] = 48 + ((offset + i) % 16);
    body[body.length - 1] = 0xce;
    bodyFrames.push(body);
  }
  return Buffer.concat([method, header, ...bodyFrames]);
}

/** The frames of one message's bytes (views, no copy). */
function frames(bytes: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let o = 0; o < bytes.length; ) {
    const end = o + 8 + bytes.readUInt32BE(o + 3);
    out.push(bytes.subarray(o, end));
    o = end;
  }
  return out;
}

interface RunResult {
  messages: number;
  deliveries: number;
  cpuSeconds: number;
  wallSeconds: number;
}

/** utime + stime of a process, in seconds. */
function cpuOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

async function drive(port: number, pid: number, name: string, count: number, batch: number): Promise<RunResult> {
  const s = shape(name);
  const publisher = await BenchConnection.open(port, s.tls);
  const consumers: BenchConnection[] = [];
  const prefix = `pipeline-${process.pid}-${Date.now()}`;
  const queueNames = Array.from({ length: s.queues }, (_, i) => `${prefix}-q${i}`);
  const exchange = s.exchangeType === '' ? '' : `${prefix}-x`;
  if (exchange !== '') {
    await publisher.call({ id: M.EXCHANGE_DECLARE, reserved1: 0, exchange, type: s.exchangeType, passive: false, durable: false, autoDelete: false, internal: false, noWait: false, arguments: {} }, M.EXCHANGE_DECLARE_OK);
  }
  for (const q of queueNames) {
    await publisher.call({ id: M.QUEUE_DECLARE, reserved1: 0, queue: q, passive: false, durable: s.persistent, exclusive: false, autoDelete: false, noWait: false, arguments: {} }, M.QUEUE_DECLARE_OK);
  }
  const bindings = s.exchangeType === 'fanout' ? queueNames.map(() => '') : s.bindings;
  for (let j = 0; j < bindings.length; j++) {
    await publisher.call({ id: M.QUEUE_BIND, reserved1: 0, queue: queueNames[j % s.queues]!, exchange, routingKey: bindings[j]!, noWait: false, arguments: {} }, M.QUEUE_BIND_OK);
  }
  // Messages per key and how many deliveries each makes.
  const keys = s.routingKeys.length > 0 ? s.routingKeys : [s.exchangeType === '' ? queueNames[0]! : ''];
  const fanout = keys.map((k) => {
    if (s.exchangeType === '') return 1;
    if (s.exchangeType === 'fanout') return s.queues;
    const matched = new Set<number>();
    bindings.forEach((b, j) => topicMatches(b.split('.'), k.split('.')) && matched.add(j % s.queues));
    return matched.size;
  });
  const templates = keys.map((k) => publishBytes(exchange, k, s, publisher.frameMax));
  if (s.confirm) await publisher.call({ id: M.CONFIRM_SELECT, nowait: false }, M.CONFIRM_SELECT_OK);

  let delivered = 0;
  let confirmed = 0;
  let wake: (() => void) | null = null;
  const check = (): void => wake?.();
  for (const q of queueNames) {
    const c = await BenchConnection.open(port, s.tls);
    if (!s.autoAck) await c.call({ id: M.BASIC_QOS, prefetchSize: 0, prefetchCount: s.prefetch, global: false }, M.BASIC_QOS_OK);
    await c.call({ id: M.BASIC_CONSUME, reserved1: 0, queue: q, consumerTag: '', noLocal: false, noAck: s.autoAck, exclusive: false, noWait: false, arguments: {} }, M.BASIC_CONSUME_OK);
    // Deliveries are counted by their body bytes; manual acks go back one per delivery, all the
    // acks of one read in one write (as a client library acking each message does).
    const acks: Buffer[] = [];
    let bodyBytes = 0;
    let pendingAck = false;
    c.count((type, _ch, buf, start, end) => {
      if (type === 1 && !s.autoAck && buf.readUInt32BE(start) === M.BASIC_DELIVER) {
        const tagLen = buf[start + 4]!;
        const at = start + 5 + tagLen;
        const tag = buf.readUInt32BE(at) * 4294967296 + buf.readUInt32BE(at + 4);
        acks.push(encodeMethodFrame(1, { id: M.BASIC_ACK, deliveryTag: tag, multiple: false }));
        if (!pendingAck) {
          pendingAck = true;
          queueMicrotask(() => {
            pendingAck = false;
            c.socket.write(Buffer.concat(acks));
            acks.length = 0;
          });
        }
      }
      if (type === 3) {
        bodyBytes += end - start;
        if (bodyBytes >= s.bodySize) {
          bodyBytes -= s.bodySize;
          delivered++;
          check();
        }
      }
    });
    consumers.push(c);
  }
  publisher.count((type, _ch, buf, start) => {
    if (type !== 1) return;
    const id = buf.readUInt32BE(start);
    if (id === M.BASIC_ACK) {
      const tag = buf.readUInt32BE(start + 4) * 4294967296 + buf.readUInt32BE(start + 8);
      const multiple = (buf[start + 12]! & 1) !== 0;
      confirmed = multiple ? tag : confirmed + 1;
      check();
    }
  });

  let sent = 0;
  let expected = 0;
  const runBatches = async (messages: number): Promise<void> => {
    let left = messages;
    while (left > 0) {
      const n = Math.min(batch, left);
      const parts: Buffer[] = [];
      for (let i = 0; i < n; i++) {
        const k = (sent + i) % templates.length;
        parts.push(templates[k]!);
        expected += fanout[k]!;
      }
      sent += n;
      left -= n;
      if (s.tls) {
        // As amqp091-go over TLS (ampbench): it flushes every frame, so each frame is a TLS record
        // of its own, and the broker decrypts three records per message.
        for (const m of parts) for (const f of frames(m)) publisher.socket.write(f);
      } else publisher.socket.write(Buffer.concat(parts));
      await new Promise<void>((resolve) => {
        wake = () => {
          if (delivered >= expected && (!s.confirm || confirmed >= sent)) {
            wake = null;
            resolve();
          }
        };
        wake();
      });
    }
  };
  await runBatches(Math.max(batch, Math.floor(count / 5))); // warm-up: JIT, buffers
  const cpu0 = cpuOf(pid);
  const t0 = process.hrtime.bigint();
  const d0 = delivered;
  await runBatches(count);
  const wallSeconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpuSeconds = cpuOf(pid) - cpu0;
  const result = { messages: count, deliveries: delivered - d0, cpuSeconds, wallSeconds };
  publisher.stopCounting();
  for (const q of queueNames) {
    await publisher.call({ id: M.QUEUE_DELETE, reserved1: 0, queue: q, ifUnused: false, ifEmpty: false, noWait: false }, M.QUEUE_DELETE_OK).catch(() => {});
  }
  for (const c of [publisher, ...consumers]) c.close();
  return result;
}

// ---- Brokers --------------------------------------------------------------------------------------

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}

let tlsFiles: { cert: string; key: string } | null = null;
function selfSignedCertificate(dir: string): { cert: string; key: string } {
  if (tlsFiles !== null) return tlsFiles;
  const cert = join(dir, 'cert.pem');
  const key = join(dir, 'key.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=localhost'], { stdio: 'ignore' });
  tlsFiles = { cert, key };
  return tlsFiles;
}

/** The node options in a script's `#!/usr/bin/env -S node --flag …` line (none for `#!/usr/bin/env node`). */
function shebangNodeArgs(script: string): string[] {
  const first = readFileSync(script, 'utf8').split('\n', 1)[0]!;
  const m = /^#!\S*env -S node\s+(.*)$/.exec(first);
  return m === null ? [] : m[1]!.split(/\s+/).filter((a) => a !== '');
}

async function startBroker(root: string, tls: boolean, work: string): Promise<{ child: ChildProcess; port: number; dataDir: string }> {
  const port = await freePort();
  const dataDir = mkdtempSync(join(tmpdir(), 'warren-pipeline-'));
  const args = [join(root, 'bin', 'warren'), '--data-dir', dataDir, '--management-port', '0', '--prometheus-port', '0', '--log-level', 'warn'];
  if (tls) {
    const files = selfSignedCertificate(work);
    args.push('--port', '0', '--tls-port', String(port), '--tls-cert', files.cert, '--tls-key', files.key);
  } else args.push('--port', String(port), '--tls-port', '0');
  // Node options as bin/warren's own first line gives them (`#!/usr/bin/env -S node …`), then
  // PIPELINE_NODE_ARGS, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof".
  const nodeArgs = [...shebangNodeArgs(join(root, 'bin', 'warren')), ...(process.env['PIPELINE_NODE_ARGS'] ?? '').split(' ').filter((a) => a !== '')];
  const child = spawn(process.execPath, [...nodeArgs, ...args], { stdio: ['ignore', 'ignore', 'inherit'] });
  const deadline = Date.now() + 30_000;
  for (;;) {
    const up = await new Promise<boolean>((resolve) => {
      const s = netConnect({ host: '127.0.0.1', port }, () => {
        s.destroy();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
    if (up) break;
    if (Date.now() > deadline || child.exitCode !== null) throw new Error(`broker from ${root} did not start`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return { child, port, dataDir };
}

async function stopBroker(b: { child: ChildProcess; dataDir: string }): Promise<void> {
  const exited = new Promise((resolve) => b.child.once('exit', resolve));
  b.child.kill('SIGTERM');
  await exited;
  rmSync(b.dataDir, { recursive: true, force: true });
}

// ---- Main -----------------------------------------------------------------------------------------

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export async function pipelineBench(argv: string[]): Promise<void> {
  const roots: [string, string][] = [];
  let rounds = 3;
  let count = 100_000;
  let batch = 100;
  let scenarios = 'S1,S2,S3,S4,S5,S9,S11';
  let json: string | null = null;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--root') {
      const v = argv[++i]!;
      const eq = v.indexOf('=');
      roots.push(eq > 0 ? [v.slice(0, eq), v.slice(eq + 1)] : [v, v]);
    } else if (a === '--rounds') rounds = Number(argv[++i]);
    else if (a === '--count') count = Number(argv[++i]);
    else if (a === '--batch') batch = Number(argv[++i]);
    else if (a === '--json') json = argv[++i]!;
    else if (/^S\d/.test(a)) scenarios = a;
  }
  if (roots.length === 0) roots.push(['this', repoRoot]);
  const work = mkdtempSync(join(tmpdir(), 'warren-pipeline-work-'));
  const results = new Map<string, { us: number[]; rate: number[] }>();
  console.log(`broker CPU per message (µs; deliveries for S4/S5), batches of ${batch}, ${count} messages per run, ${rounds} round(s)`);
  try {
    for (let r = 0; r < rounds; r++) {
      for (const name of scenarios.split(',')) {
        for (const [label, root] of roots) {
          const s = shape(name);
          const broker = await startBroker(root, s.tls, work);
          try {
            const perRun = name === 'S4' ? Math.floor(count / 5) : name === 'S9' ? Math.floor(count / 50) : count;
            const res = await drive(broker.port, broker.child.pid!, name, perRun, name === 'S9' ? Math.min(batch, 10) : batch);
            const per = name === 'S4' || name === 'S5' ? res.deliveries : res.messages;
            const us = (1e6 * res.cpuSeconds) / per;
            const key = `${name}\t${label}`;
            const entry = results.get(key) ?? { us: [], rate: [] };
            entry.us.push(us);
            entry.rate.push(per / res.wallSeconds);
            results.set(key, entry);
            console.log(`  round ${r + 1} ${name.padEnd(4)} ${label.padEnd(10)} ${us.toFixed(2).padStart(7)} µs/msg  ${Math.round(per / res.wallSeconds).toString().padStart(8)} /s wall`);
          } finally {
            await stopBroker(broker);
          }
        }
      }
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  console.log('\nscenario  build       median µs/msg  (min–max)        median /s (wall, load-dependent)');
  for (const [key, e] of results) {
    const [name, label] = key.split('\t');
    console.log(
      `${name!.padEnd(9)} ${label!.padEnd(10)} ${median(e.us).toFixed(2).padStart(8)}       (${Math.min(...e.us).toFixed(2)}–${Math.max(...e.us).toFixed(2)})   ${Math.round(median(e.rate)).toString().padStart(10)}`,
    );
  }
  if (json !== null) writeFileSync(json, JSON.stringify(Object.fromEntries(results), null, 1));
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  await pipelineBench(process.argv.slice(2));
}
