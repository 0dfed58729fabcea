// `npm run bench -- --micro`: nanoseconds per operation for each piece of the hot path, in this
// process, so a regression in one piece shows in seconds without a broker or a load generator:
//   frame parse    FrameParser.push over 64 KiB chunks of publish frames (method + header + body)
//   publish decode basic.publish arguments: the per-channel PublishDecoder (same names as the last
//                  publish, and 1,000 routing keys in turn) and the general decoder
//   CC/BCC scan    the allocation-free scan of a 6-header table against decoding the whole table
//   route          direct exchange, one binding per key; S5's topic exchange (1,000 routing keys,
//                  100 bindings with * and #) through its route cache and through the route memo
//   store encode   a stored entry's key and inline record (persistent messages to durable queues)
//   deliver encode basic.deliver + content header + body frame into an output buffer
// The enqueue/dequeue side is `npm run bench` (queue operations at 10 k → 1 M messages).
// Figures are medians of 5 timed passes after a warm-up pass; compare runs on the same machine.

import { FrameParser } from '../../src/protocol/frame-parser.js';
import {
  contentHeaderFrameSize,
  deliverFrameSize,
  encodeMethodFrame,
  encodeShortStr,
  writeBodyFrameHeader,
  writeContentHeaderFrame,
  writeDeliverFrame,
} from '../../src/protocol/frame-writer.js';
import { encodeTable, readTable, TypedValue } from '../../src/protocol/field-table.js';
import { scanRoutingHeaderKeys } from '../../src/protocol/table-scan.js';
import { PublishDecoder } from '../../src/protocol/publish-decoder.js';
import * as M from '../../src/protocol/generated/amqp.js';
import { Binding, type Destination } from '../../src/broker/binding.js';
import { DirectExchange } from '../../src/broker/exchange/direct.js';
import { TopicExchange } from '../../src/broker/exchange/topic.js';
import { RouteMemo } from '../../src/broker/exchange/route-memo.js';
import { Router } from '../../src/broker/routing.js';
import { Message } from '../../src/broker/message.js';
import type { Queue } from '../../src/broker/queue/queue.js';
import { entryKey } from '../../src/store/keys.js';
import { encodeInlineEntry } from '../../src/store/records.js';

/** Runs `pass` (which does `ops` operations) 6 times; the median of the last 5, in ns/op. */
function timed(ops: number, pass: () => void): number {
  pass();
  const samples: number[] = [];
  for (let i = 0; i < 5; i++) {
    const t0 = process.hrtime.bigint();
    pass();
    samples.push(Number(process.hrtime.bigint() - t0) / ops);
  }
  samples.sort((a, b) => a - b);
  return samples[2]!;
}

function row(label: string, ns: number): void {
  console.log(`${label.padEnd(58)} ${ns.toFixed(1).padStart(8)} ns/op`);
}

/** The S11 headers: strings, ints and a nested table, as task frameworks send. */
function taskHeaders(): Buffer {
  return encodeTable({
    'content-type': 'application/json',
    task: 'proj.tasks.add',
    id: 'a4c2e0b6-5d0f-4e2b-9f7e-2d6a1c3b8e90',
    retries: new TypedValue('I', 0),
    eta: new TypedValue('l', 1_700_000_000),
    origin: { host: 'worker-1', pid: new TypedValue('I', 4242) },
  });
}

function frameParse(): void {
  const publish = encodeMethodFrame(1, { id: M.BASIC_PUBLISH, reserved1: 0, exchange: '', routingKey: 'bench-queue', mandatory: false, immediate: false });
  const properties = Buffer.from([0x10, 0x00, 2]); // delivery-mode only
  const header = Buffer.alloc(contentHeaderFrameSize(properties));
  writeContentHeaderFrame(header, 0, 1, 60, 16, properties);
  const body = Buffer.alloc(8 + 16, 0x61);
  writeBodyFrameHeader(body, 0, 1, 16);
  body[body.length - 1] = 0xce;
  const message = Buffer.concat([publish, header, body]);
  const stream = Buffer.concat(Array.from({ length: 10_000 }, () => message));
  const chunks: Buffer[] = [];
  for (let o = 0; o < stream.length; o += 65_536) chunks.push(stream.subarray(o, Math.min(o + 65_536, stream.length)));
  let frames = 0;
  const parser = new FrameParser(131_072, () => {
    frames++;
  });
  row('frame parse (per frame; 3 frames a message)', timed(30_000, () => {
    for (const c of chunks) parser.push(c);
  }));
  if (frames !== 30_000 * 6) throw new Error(`parsed ${frames} frames, expected ${30_000 * 6}`);
}

function publishDecode(): void {
  const frame = encodeMethodFrame(1, { id: M.BASIC_PUBLISH, reserved1: 0, exchange: 'orders', routingKey: 'eu.created.n42', mandatory: false, immediate: false });
  const start = 7 + 4; // frame header, class and method ids
  const end = frame.length - 1;
  const decoder = new PublishDecoder();
  const N = 1_000_000;
  row('publish decode, PublishDecoder (same names as last)', timed(N, () => {
    for (let i = 0; i < N; i++) decoder.decode(frame, start, end);
  }));
  // A topic publisher cycling through 1,000 routing keys: the channel's last pair misses every time.
  const cycling = Array.from({ length: 1000 }, (_, n) =>
    encodeMethodFrame(1, { id: M.BASIC_PUBLISH, reserved1: 0, exchange: 'orders', routingKey: `k.${Math.floor(n / 100) % 10}.${Math.floor(n / 10) % 10}.${n % 10}`, mandatory: false, immediate: false }),
  );
  // As a socket read holds them: one buffer, hundreds of publishes.
  const read = Buffer.concat(cycling);
  const at: number[] = [];
  for (let i = 0, o = 0; i < cycling.length; o += cycling[i]!.length, i++) at.push(o);
  row('publish decode, PublishDecoder (1,000 routing keys in turn)', timed(N, () => {
    for (let i = 0; i < N; i++) {
      const k = i % 1000;
      decoder.decode(read, at[k]! + start, at[k]! + cycling[k]!.length - 1);
    }
  }));
  row('publish decode, general decoder', timed(N, () => {
    for (let i = 0; i < N; i++) M.decodeMethodArgs(M.BASIC_PUBLISH, frame, start, end);
  }));
}

function headerScan(): void {
  const table = taskHeaders();
  const N = 500_000;
  row('CC/BCC scan of 6 headers (none present)', timed(N, () => {
    for (let i = 0; i < N; i++) scanRoutingHeaderKeys(table, 0, table.length);
  }));
  row('decoding the same 6 headers in full', timed(N, () => {
    for (let i = 0; i < N; i++) readTable(table, 0, table.length);
  }));
}

function route(): void {
  const ex = new DirectExchange('/', 'bench', { durable: false, autoDelete: false, internal: false, args: {} });
  for (let i = 0; i < 1000; i++) ex.addBinding(new Binding(ex, { kind: 'queue', name: `q${i}` } as unknown as Queue, `key-${i}`, {}));
  const keys = Array.from({ length: 1000 }, (_, i) => `key-${(i * 7) % 1000}`);
  const message = new Message('bench', '', Buffer.from([0, 0]), Buffer.alloc(16), Date.now());
  const out: Destination[] = [];
  const N = 1_000_000;
  row('route, direct exchange with 1,000 bindings', timed(N, () => {
    for (let i = 0; i < N; i++) {
      out.length = 0;
      ex.route(keys[i % 1000]!, message, out);
    }
  }));
}

/** S5's topology (../shared/bench): 100 bindings with * and # over 10 queues, 1,000 keys in turn. */
function topicRoute(): void {
  const ex = new TopicExchange('/', 'bench', { durable: false, autoDelete: false, internal: false, args: {} });
  const queues = Array.from({ length: 10 }, (_, i) => ({ kind: 'queue', name: `q${i}` }) as unknown as Queue);
  for (let j = 0; j < 100; j++) {
    const a = j % 10;
    const b = Math.floor(j / 10);
    const key = [`k.${a}.${b}.*`, `k.${a}.*.${b}`, `*.${a}.${b}.#`, `#.${a}.${b}`][j % 4]!;
    ex.addBinding(new Binding(ex, queues[j % 10]!, key, {}));
  }
  const keys = Array.from({ length: 1000 }, (_, n) => `k.${Math.floor(n / 100) % 10}.${Math.floor(n / 10) % 10}.${n % 10}`);
  const memos = keys.map(() => new RouteMemo());
  const router = new Router(() => undefined);
  const message = new Message('bench', '', Buffer.from([0, 0]), Buffer.alloc(16), Date.now());
  const N = 1_000_000;
  row('route, S5 topic exchange (1,000 keys), route cache', timed(N, () => {
    for (let i = 0; i < N; i++) router.routeList(ex, keys[i % 1000]!, null, message);
  }));
  row('route, S5 topic exchange (1,000 keys), route memo', timed(N, () => {
    for (let i = 0; i < N; i++) router.routeList(ex, keys[i % 1000]!, null, message, memos[i % 1000]!);
  }));
}

function storeEncode(): void {
  const message = new Message('orders', 'eu.created.n42', Buffer.from([0x10, 0x00, 2]), Buffer.alloc(16, 0x61), Date.now(), Buffer.concat([encodeShortStr('orders'), encodeShortStr('eu.created.n42')]));
  const N = 500_000;
  row('store entry encode (key + inline record, 16 B body)', timed(N, () => {
    for (let i = 0; i < N; i++) {
      entryKey(7, 0, i);
      encodeInlineEntry(i, 0, 0, message.publishedAt, message.exchange, message.routingKey, message.rawProperties, message.body, message.routingBytes);
    }
  }));
}

function deliverEncode(): void {
  const tag = encodeShortStr('amq.ctag-bench');
  const routing = Buffer.concat([encodeShortStr(''), encodeShortStr('bench-queue')]);
  const properties = Buffer.from([0x10, 0x00, 2]);
  const body = Buffer.alloc(16, 0x61);
  const perMessage = deliverFrameSize(tag, routing) + contentHeaderFrameSize(properties) + 8 + body.length;
  const out = Buffer.alloc(65_536);
  const N = 1_000_000;
  let tagNo = 0;
  row('deliver encode (deliver + header + 16 B body frames)', timed(N, () => {
    let o = 0;
    for (let i = 0; i < N; i++) {
      if (o + perMessage > out.length) o = 0;
      o = writeDeliverFrame(out, o, 1, tag, ++tagNo, false, routing);
      o = writeContentHeaderFrame(out, o, 1, 60, body.length, properties);
      o = writeBodyFrameHeader(out, o, 1, body.length);
      out.set(body, o);
      o += body.length;
      out[o++] = 0xce;
    }
  }));
}

export function microBenchmarks(): void {
  console.log('hot path pieces (median of 5 passes):');
  frameParse();
  publishDecode();
  headerScan();
  route();
  topicRoute();
  storeEncode();
  deliverEncode();
}
