// How much a Prometheus scrape costs a busy broker (issue 9: "a scrape of /metrics/per-object with
// 10,000 queues and 1,000 connections takes under 1 s and does not stall message flow for more
// than a few milliseconds at a time"). Not a test: run it and read the numbers.
//
//   npm run build && node dist/test/bench/scrape-scale.js [QUEUES=10000] [CONNECTIONS=1000]
//
// A broker runs in a child process (scrape-scale-broker.ts) with a 1 ms timer measuring the
// longest event-loop gap. This process opens the connections (one channel each), declares the
// queues (every tenth holds a message), keeps one publisher/consumer pair sending a message every
// millisecond (round trip measured), then: one quiet second (baseline), scrapes of /metrics,
// /metrics/per-object, and one management API overview and queue page. Each line: wall time of
// the request, the broker's longest event-loop gap during it, and the longest message round trip.

import { fork, type ChildProcess } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import amqp from 'amqplib';

const QUEUES = Number(process.argv[2] ?? 10_000);
const CONNECTIONS = Number(process.argv[3] ?? 1_000);

const here = dirname(fileURLToPath(import.meta.url));
const child: ChildProcess = fork(join(here, 'scrape-scale-broker.js'), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
const replies: unknown[] = [];
const waiting: ((m: unknown) => void)[] = [];
child.on('message', (m) => {
  const w = waiting.shift();
  if (w !== undefined) w(m);
  else replies.push(m);
});
function nextReply<T>(): Promise<T> {
  const r = replies.shift();
  if (r !== undefined) return Promise.resolve(r as T);
  return new Promise((resolve) => waiting.push((m) => resolve(m as T)));
}
async function ask<T>(what: string): Promise<T> {
  child.send(what);
  return nextReply<T>();
}

const ports = await nextReply<{ amqp: number; metrics: number; management: number }>();
const url = `amqp://guest:guest@127.0.0.1:${ports.amqp}`;
const connections: amqp.ChannelModel[] = [];
for (let i = 0; i < CONNECTIONS; i++) {
  const c = await amqp.connect(url);
  await c.createChannel();
  connections.push(c);
}
const setup = await connections[0]!.createChannel();
for (let i = 0; i < QUEUES; i++) {
  void setup.assertQueue(`scale.q.${i}`, { durable: false });
  if (i % 500 === 499) await setup.checkQueue(`scale.q.${i}`);
}
await setup.checkQueue(`scale.q.${QUEUES - 1}`);
for (let i = 0; i < QUEUES; i += 10) setup.sendToQueue(`scale.q.${i}`, Buffer.from('x'), { timestamp: Math.floor(Date.now() / 1000) });
await setup.checkQueue('scale.q.0');

// Message flow during the scrapes: one message a millisecond, its round trip measured.
const flow = await connections[1 % CONNECTIONS]!.createChannel();
await flow.assertQueue('scale.flow', { durable: false });
let maxRttMs = 0;
await flow.consume(
  'scale.flow',
  (m) => {
    if (m === null) return;
    const rtt = performance.now() - Number(m.content.toString());
    if (rtt > maxRttMs) maxRttMs = rtt;
  },
  { noAck: true },
);
const pump = setInterval(() => flow.sendToQueue('scale.flow', Buffer.from(String(performance.now()))), 1);

interface Stall {
  maxGapMs: number;
  longestRenderSliceMs: number;
}
const round = (n: number): number => Math.round(n * 10) / 10;

async function measure(label: string, request: (() => Promise<string>) | null): Promise<void> {
  await new Promise((r) => setTimeout(r, 300));
  await ask('reset');
  maxRttMs = 0;
  const t0 = performance.now();
  let bytes = 0;
  if (request === null) await new Promise((r) => setTimeout(r, 1000));
  else bytes = (await request()).length;
  const ms = performance.now() - t0;
  await new Promise((r) => setTimeout(r, 20)); // the last messages' round trips
  const stall = await ask<Stall>('report');
  console.log(
    JSON.stringify({
      what: label,
      requestMs: request === null ? null : Math.round(ms),
      bytes,
      brokerMaxEventLoopGapMs: round(stall.maxGapMs),
      longestRenderSliceMs: round(stall.longestRenderSliceMs),
      maxMessageRoundTripMs: round(maxRttMs),
    }),
  );
}

const auth = `Basic ${Buffer.from('guest:guest').toString('base64')}`;
const get = (port: number, path: string, headers: Record<string, string> = {}) => async (): Promise<string> => {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, { headers });
  if (res.status !== 200) throw new Error(`${path}: HTTP ${res.status}`);
  return res.text();
};

console.log(JSON.stringify({ queues: QUEUES, connections: CONNECTIONS }));
for (let i = 0; i < 2; i++) await measure('baseline (no request, 1 s)', null);
for (let i = 0; i < 2; i++) await measure('GET /metrics', get(ports.metrics, '/metrics'));
for (let i = 0; i < 3; i++) await measure('GET /metrics/per-object', get(ports.metrics, '/metrics/per-object'));
for (let i = 0; i < 2; i++) await measure('GET /metrics/detailed?family=queue_coarse_metrics', get(ports.metrics, '/metrics/detailed?family=queue_coarse_metrics'));
for (let i = 0; i < 2; i++) await measure('GET /api/overview', get(ports.management, '/api/overview', { authorization: auth }));
for (let i = 0; i < 2; i++) await measure('GET /api/queues?page=1&page_size=100', get(ports.management, '/api/queues?page=1&page_size=100', { authorization: auth }));
// The management rate sampler walks every object every 5 s: a 6 s quiet window catches one tick.
await ask('reset');
maxRttMs = 0;
await new Promise((r) => setTimeout(r, 6000));
const tick = await ask<Stall>('report');
console.log(JSON.stringify({ what: 'quiet 6 s (one management rate sample)', brokerMaxEventLoopGapMs: round(tick.maxGapMs), maxMessageRoundTripMs: round(maxRttMs) }));

clearInterval(pump);
for (const c of connections) await c.close().catch(() => undefined);
child.send('stop');
await new Promise((r) => child.once('exit', r));
