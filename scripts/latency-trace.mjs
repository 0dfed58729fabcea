// Where a publish-to-consume latency goes, message by message: a diagnostic for runs like
// ../shared/bench S6 (one publisher, one consumer, a fixed rate, 16-byte bodies whose first 8 bytes
// are the sender's clock in Unix nanoseconds, little-endian).
//
// Record (nothing of this is loaded unless asked for; the broker's code is untouched):
//   WARREN_LATENCY_TRACE=/tmp/run node --import ./scripts/latency-trace.mjs bin/warren ...
// writes /tmp/run.bin and /tmp/run.names.json when the broker exits (SIGTERM, SIGINT or exit).
// Every socket read (when it started and when its handlers returned, its size, the sender's stamp
// of each stamped body frame in it), every socket write, every timer and immediate
// callback (start, end, where it was scheduled from) and every garbage collection (start,
// duration, kind) is kept, in µs on one clock, in a preallocated table (4 M events; later ones are
// dropped).
//
// Report:
//   node scripts/latency-trace.mjs report /tmp/run [--slow N]
// For each stamped message: sender's stamp -> the broker's read (the client's send, the network
// and the broker's wake-up), read -> the delivery's write on the consumer's connection (the
// broker's own work), write -> the consumer's next read (its ack: the consumer's wake-up and
// reply). Then the main thread's other work (timers, GCs, other reads) and, for the slowest 1 %,
// what the main thread was doing between the send and the read: nothing means the delay was
// outside the broker's JavaScript (scheduling, the kernel, the client). --slow N prints the
// timeline around N of the slowest messages.

import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { constants as perf, performance, PerformanceObserver } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';

const READ = 1;
const READ_END = 2;
const WRITE = 3;
const CALLBACK = 4;
const CALLBACK_END = 5;
const GC = 6;
const COLUMNS = 5; // type, µs, a, b, c
const GC_KINDS = {
  [perf.NODE_PERFORMANCE_GC_MINOR]: 'scavenge',
  [perf.NODE_PERFORMANCE_GC_MAJOR]: 'mark-compact',
  [perf.NODE_PERFORMANCE_GC_INCREMENTAL]: 'incremental marking',
  [perf.NODE_PERFORMANCE_GC_WEAKCB]: 'weak callbacks',
};

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  if (process.argv[2] !== 'report' || process.argv[3] === undefined) {
    console.error('usage: node scripts/latency-trace.mjs report PREFIX [--slow N]   (record with WARREN_LATENCY_TRACE=PREFIX node --import ./scripts/latency-trace.mjs bin/warren ...)');
    process.exit(2);
  }
  const slowAt = process.argv.indexOf('--slow');
  report(process.argv[3], slowAt > 0 ? Number(process.argv[slowAt + 1]) : 0);
} else if (process.env.WARREN_LATENCY_TRACE) {
  record(process.env.WARREN_LATENCY_TRACE);
}

function record(prefix) {
  const capacity = 4_000_000;
  const table = new Float64Array(capacity * COLUMNS);
  let count = 0;
  const names = [];
  const nameIds = new Map();
  const now = () => performance.now() * 1000;
  const originUs = performance.timeOrigin * 1000; // wall clock µs at now() == 0
  const add = (type, at, a, b, c) => {
    if (count >= capacity) return;
    const o = count++ * COLUMNS;
    table[o] = type;
    table[o + 1] = at;
    table[o + 2] = a;
    table[o + 3] = b;
    table[o + 4] = c;
  };
  const nameId = (name) => {
    let id = nameIds.get(name);
    if (id === undefined) {
      id = names.length;
      names.push(name);
      nameIds.set(name, id);
    }
    return id;
  };
  /**
   * Records a read: one READ event per 16-byte body frame completed in it that carries a clock
   * stamp (several messages may arrive in one read), or one without a stamp. Frames are walked
   * across reads: `carry` holds the start of a small frame the read before ended in, `skip` the
   * rest of a large one. Bytes that make no sense as frames (the protocol header) end the walk
   * for that read.
   */
  const recordRead = (state, id, chunk) => {
    const at = now();
    let stamps = 0;
    const data = state.carry === null ? chunk : Buffer.concat([state.carry, chunk]);
    state.carry = null;
    let o = Math.min(state.skip, data.length);
    state.skip -= o;
    while (o < data.length) {
      if (data.length - o < 7) {
        state.carry = data.subarray(o);
        break;
      }
      const type = data[o];
      const size = data.readUInt32BE(o + 3);
      const end = o + 7 + size;
      if (type < 1 || type > 8) break;
      if (end >= data.length) {
        if (size <= 64) state.carry = data.subarray(o);
        else state.skip = end + 1 - data.length;
        break;
      }
      if (data[end] !== 0xce) break;
      if (type === 3 && size === 16) {
        const stamp = Number(data.readBigUInt64LE(o + 7)) / 1000 - originUs;
        if (Math.abs(stamp - at) < 10e6) {
          add(READ, at, id, stamps === 0 ? chunk.length : 0, stamp); // not a clock otherwise: some other body
          stamps++;
        }
      }
      o = end + 1;
    }
    if (stamps === 0) add(READ, at, id, chunk.length, 0);
  };
  let connections = 0;
  const emit = net.Server.prototype.emit;
  net.Server.prototype.emit = function (event, socket, ...rest) {
    if (event !== 'connection') return emit.call(this, event, socket, ...rest);
    const id = ++connections;
    const state = { carry: null, skip: 0 };
    socket.prependListener('data', (chunk) => recordRead(state, id, chunk));
    const handled = emit.call(this, event, socket, ...rest);
    socket.on('data', () => add(READ_END, now(), id, 0, 0)); // after the broker's own listener
    const write = socket.write;
    socket.write = function (data, ...args) {
      add(WRITE, now(), id, data.length, 0);
      return write.call(this, data, ...args);
    };
    return handled;
  };
  const wrap = (schedule, kind) =>
    function (callback, ...args) {
      if (typeof callback !== 'function') return schedule(callback, ...args);
      const from = (new Error().stack?.split('\n')[2] ?? '').trim().replace(/^at /, '');
      const id = nameId(`${kind} ${callback.name || '(anonymous)'} from ${from}`);
      return schedule(function (...a) {
        add(CALLBACK, now(), id, 0, 0);
        try {
          return callback.apply(this, a);
        } finally {
          add(CALLBACK_END, now(), id, 0, 0);
        }
      }, ...args);
    };
  globalThis.setTimeout = wrap(globalThis.setTimeout, 'setTimeout');
  globalThis.setInterval = wrap(globalThis.setInterval, 'setInterval');
  globalThis.setImmediate = wrap(globalThis.setImmediate, 'setImmediate');
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) add(GC, e.startTime * 1000, e.duration * 1000, e.detail?.kind ?? 0, 0);
  }).observe({ entryTypes: ['gc'] });
  let written = false;
  const save = () => {
    if (written) return;
    written = true;
    writeFileSync(`${prefix}.bin`, Buffer.from(table.buffer, 0, count * COLUMNS * 8));
    writeFileSync(`${prefix}.names.json`, JSON.stringify(names));
  };
  process.on('exit', save);
  process.prependListener('SIGTERM', save);
  process.prependListener('SIGINT', save);
}

function report(prefix, slowToShow) {
  if (!existsSync(`${prefix}.bin`) || !existsSync(`${prefix}.names.json`)) {
    console.error(`no trace at ${prefix}.bin / ${prefix}.names.json: run the broker with WARREN_LATENCY_TRACE=${prefix} node --import ./scripts/latency-trace.mjs bin/warren ..., stop it (SIGTERM), then report`);
    process.exit(1);
  }
  const bytes = readFileSync(`${prefix}.bin`);
  const table = new Float64Array(bytes.buffer, bytes.byteOffset, bytes.length / 8);
  const names = JSON.parse(readFileSync(`${prefix}.names.json`, 'utf8'));
  const events = [];
  for (let o = 0; o < table.length; o += COLUMNS) events.push({ type: table[o], at: table[o + 1], a: table[o + 2], b: table[o + 3], c: table[o + 4] });
  const publishes = events.filter((e) => e.type === READ && e.c > 0);
  if (publishes.length === 0) {
    console.log('no stamped messages in the trace');
    return;
  }
  const publisher = publishes[0].a;
  const writesPer = new Map();
  for (const e of events) if (e.type === WRITE && e.a !== publisher) writesPer.set(e.a, (writesPer.get(e.a) ?? 0) + 1);
  const consumer = [...writesPer.entries()].sort((x, y) => y[1] - x[1])[0]?.[0];
  const deliveries = events.filter((e) => e.type === WRITE && e.a === consumer).map((e) => e.at);
  const consumerReads = events.filter((e) => e.type === READ && e.a === consumer).map((e) => e.at);
  const firstAfter = (sorted, at) => {
    let lo = 0;
    let hi = sorted.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (sorted[mid] < at) lo = mid + 1;
      else hi = mid;
    }
    return lo < sorted.length ? sorted[lo] : Number.NaN;
  };
  // What kept the main thread busy: callbacks, reads (start to the end of their handlers), GCs.
  const busy = [];
  const open = new Map();
  for (const e of events) {
    if (e.type === CALLBACK) open.set(`c${e.a}`, e.at);
    else if (e.type === CALLBACK_END && open.has(`c${e.a}`)) busy.push({ from: open.get(`c${e.a}`), to: e.at, what: names[e.a] });
    else if (e.type === READ) open.set(`r${e.a}`, e);
    else if (e.type === READ_END && open.has(`r${e.a}`)) {
      const r = open.get(`r${e.a}`);
      const role = e.a === publisher ? 'publisher' : e.a === consumer ? 'consumer' : `connection ${e.a}`;
      busy.push({ from: r.at, to: e.at, what: `read (${role})${r.c > 0 ? ' with the message' : ''}`, stamp: r.c });
    } else if (e.type === GC) busy.push({ from: e.at, to: e.at + e.a, what: `gc ${GC_KINDS[e.b] ?? e.b}` });
  }
  busy.sort((x, y) => x.from - y.from);
  // The first tenth is the client's warm-up.
  const rows = publishes.slice(Math.floor(publishes.length / 10)).map((p) => {
    const write = firstAfter(deliveries, p.at);
    const ack = firstAfter(consumerReads, write);
    return { sent: p.c, read: p.at, write, toBroker: p.at - p.c, inBroker: write - p.at, toAck: ack - write, total: ack - p.c };
  }).filter((r) => Number.isFinite(r.total));
  const quantile = (values, q) => {
    const s = [...values].sort((x, y) => x - y);
    return s[Math.min(s.length - 1, Math.floor(s.length * q))];
  };
  const line = (label, values) =>
    console.log(`${label.padEnd(44)} ${[0.5, 0.9, 0.99, 0.999, 1].map((q) => quantile(values, q).toFixed(0).padStart(7)).join('')}`);
  console.log(`messages ${rows.length} (after the first tenth)`);
  console.log(`${'µs'.padEnd(44)}     p50    p90    p99  p99.9    max`);
  line('send -> broker read', rows.map((r) => r.toBroker));
  line('broker read -> delivery written', rows.map((r) => r.inBroker));
  line('delivery written -> consumer ack read', rows.map((r) => r.toAck));
  line('send -> ack read', rows.map((r) => r.total));
  const span = (events[events.length - 1].at - events[0].at) / 1e6;
  const byWhat = new Map();
  for (const b of busy) {
    if (b.what.startsWith('read')) continue;
    const s = byWhat.get(b.what) ?? { n: 0, sum: 0, max: 0 };
    s.n++;
    s.sum += b.to - b.from;
    s.max = Math.max(s.max, b.to - b.from);
    byWhat.set(b.what, s);
  }
  console.log(`\nother main-thread work over ${span.toFixed(1)} s (count, mean µs, max µs):`);
  for (const [what, s] of [...byWhat.entries()].sort((x, y) => y[1].sum - x[1].sum).slice(0, 20)) {
    console.log(`${String(s.n).padStart(7)} ${(s.sum / s.n).toFixed(0).padStart(7)} ${s.max.toFixed(0).padStart(7)}  ${what}`);
  }
  const threshold = quantile(rows.map((r) => r.toBroker + r.inBroker), 0.99);
  const slow = rows.filter((r) => r.toBroker + r.inBroker >= threshold);
  const causes = new Map();
  for (const r of slow) {
    const during = busy.filter((b) => b.to > r.sent && b.from < r.read);
    const key = during.length === 0 ? 'nothing: the delay was outside the main thread' : [...new Set(during.map((b) => b.what))].join(' + ');
    causes.set(key, (causes.get(key) ?? 0) + 1);
  }
  console.log(`\nslowest 1 % (${slow.length}, send -> delivery written >= ${threshold.toFixed(0)} µs): the main thread between send and read was busy with`);
  for (const [what, n] of [...causes.entries()].sort((x, y) => y[1] - x[1]).slice(0, 15)) console.log(`${String(n).padStart(7)}  ${what}`);
  for (const r of slow.sort((x, y) => y.toBroker + y.inBroker - (x.toBroker + x.inBroker)).slice(0, slowToShow)) {
    console.log(`\nsend -> read ${r.toBroker.toFixed(0)} µs, read -> written ${r.inBroker.toFixed(0)} µs (µs after the send):`);
    for (const b of busy.filter((b) => b.to > r.sent - 200 && b.from < r.write + 50)) console.log(`  ${(b.from - r.sent).toFixed(0).padStart(6)} ..${(b.to - r.sent).toFixed(0).padStart(6)}  ${b.what}`);
  }
}
