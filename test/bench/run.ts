// `npm run bench`: benchmarks that are not tests.
//
//   npm run bench                      per-operation cost of queue operations at 10 k → 1 M messages
//                                      (and consumers), start-up and purge time with 10 k → 1 M
//                                      stored messages, then routing cost: topic exchange with
//                                      100,000 bindings, ns/message
//   npm run bench -- --compare S1,S2   also throughput against RabbitMQ with ../shared/bench
//                                      (builds bin/warren first: run `npm ci` before)
//   npm run bench -- --micro           only the hot path's pieces (frame parse, publish decode,
//                                      CC/BCC scan, route, deliver encode), ns per operation
//   npm run bench -- --pipeline S1,S2  only the broker's CPU µs per message on fixed workloads,
//                                      A/B across builds (see pipeline.ts for its options)
//
// Figures are for notes as ratios against RabbitMQ measured in the same run; absolute numbers on
// shared machines drift.

import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Message } from '../../src/broker/message.js';
import { Binding, type Destination } from '../../src/broker/binding.js';
import { TopicExchange } from '../../src/broker/exchange/topic.js';
import type { Queue } from '../../src/broker/queue/queue.js';
import { microBenchmarks } from './micro.js';
import { printTable, queueBenchmarks, storeBenchmarks } from './queue-ops.js';

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

function fakeQueue(i: number): Queue {
  // Routing only needs identity and kind; a full Queue would drag in a vhost.
  return { kind: 'queue', name: `q${i}` } as unknown as Queue;
}

function randomWord(rand: () => number): string {
  const words = ['order', 'user', 'eu', 'us', 'created', 'deleted', 'updated', 'payment', 'ship', 'audit'];
  return words[Math.floor(rand() * words.length)]!;
}

/** Deterministic PRNG so runs are comparable. */
function mulberry32(seed: number): () => number {
  let a = seed;
  return () => {
    a |= 0;
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function routingBenchmark(): void {
  const rand = mulberry32(42);
  const ex = new TopicExchange('/', 'bench', { durable: false, autoDelete: false, internal: false, args: {} });
  const BINDINGS = 100_000;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < BINDINGS; i++) {
    // Mostly literal 4-word keys with some wildcards, like real topic hierarchies.
    const words = [randomWord(rand), randomWord(rand), `n${i % 1000}`, randomWord(rand)];
    const r = rand();
    if (r < 0.05) words[1] = '*';
    else if (r < 0.08) words[3] = '#';
    ex.addBinding(new Binding(ex, fakeQueue(i), words.join('.'), {}));
  }
  const bindMs = Number(process.hrtime.bigint() - t0) / 1e6;
  const message = new Message('bench', '', Buffer.from([0, 0]), Buffer.alloc(16), Date.now());
  const out: Destination[] = [];
  const measure = (label: string, keys: string[], rounds: number): void => {
    let matched = 0;
    const start = process.hrtime.bigint();
    for (let r = 0; r < rounds; r++) {
      for (const key of keys) {
        out.length = 0;
        ex.route(key, message, out);
        matched += out.length;
      }
    }
    const ns = Number(process.hrtime.bigint() - start) / (rounds * keys.length);
    console.log(`${label.padEnd(46)} ${ns.toFixed(0).padStart(7)} ns/message  (${(matched / (rounds * keys.length)).toFixed(1)} queues/message)`);
  };
  const keys = (n: number): string[] =>
    Array.from({ length: n }, () => [randomWord(rand), randomWord(rand), `n${Math.floor(rand() * 1000)}`, randomWord(rand)].join('.'));
  console.log(`topic exchange, ${BINDINGS} bindings (built in ${bindMs.toFixed(0)} ms)`);
  const warm = keys(1000);
  measure('1,000 distinct keys, first passes (warming up)', warm, 20);
  measure('1,000 distinct keys (match cache warm)', warm, 500);
  // Each key seen once: every lookup walks the trie.
  const cold = keys(200_000);
  measure('200,000 distinct keys (every lookup walks the trie)', cold, 1);
}

function compare(scenarios: string): void {
  const bench = join(repoRoot, '..', 'shared', 'bench');
  if (!existsSync(join(bench, 'compare.sh'))) {
    console.error(`no ${bench}/compare.sh: the shared benchmark folder must sit beside the repository`);
    process.exit(1);
  }
  if (!existsSync(join(bench, 'bin', 'ampbench'))) {
    console.log('building ampbench (installs Go from Debian if missing)…');
    const built = spawnSync('bash', [join(bench, 'build.sh')], { stdio: 'inherit' });
    if (built.status !== 0) process.exit(built.status ?? 1);
  }
  const dataDir = mkdtempSync(join(tmpdir(), 'warren-bench-'));
  console.log(`comparing Warren with RabbitMQ on ${scenarios} (this takes a few minutes)…`);
  const result = spawnSync(
    'bash',
    [
      join(bench, 'compare.sh'),
      '--scenarios',
      scenarios,
      '--rounds',
      '1',
      'ref:rabbitmq:5690',
      'warren=amqp://guest:guest@127.0.0.1:5699/',
      '--start',
      `warren=exec ${join(repoRoot, 'bin', 'warren')} --port 5699 --log-level warn --data-dir ${dataDir}`,
    ],
    { stdio: 'inherit' },
  );
  process.exit(result.status ?? 1);
}

// `npm run bench -- --pipeline [options] S1,S2`: only the broker's CPU per message (pipeline.ts).
const pipelineAt = process.argv.indexOf('--pipeline');
if (pipelineAt >= 0) {
  const { pipelineBench } = await import('./pipeline.js');
  await pipelineBench(process.argv.slice(pipelineAt + 1));
  process.exit(0);
}

// `npm run bench -- --micro`: only the hot path's pieces, in ns per operation (micro.ts).
if (process.argv.includes('--micro')) {
  microBenchmarks();
  process.exit(0);
}

const SIZES = [10_000, 100_000, 1_000_000];
microBenchmarks();
console.log('');
printTable('queue operations: cost per operation should not grow with N', SIZES, queueBenchmarks(SIZES));
console.log('');
printTable('store operations on a durable queue: whole-operation time should not grow with N', SIZES, await storeBenchmarks(SIZES));
console.log('');
routingBenchmark();
const i = process.argv.indexOf('--compare');
if (i >= 0) compare(process.argv[i + 1] ?? 'S1,S2,S4,S5');
