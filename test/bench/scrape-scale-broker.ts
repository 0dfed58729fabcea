// The broker side of test/bench/scrape-scale.ts: an embedded Warren in its own process (so the
// load generator's work does not count as the broker's stall), with a 1 ms timer that records the
// longest gap between its ticks — how long the event loop was held — and the longest synchronous
// slice the metrics renderer reported. The parent asks over IPC: 'reset', 'report', 'stop'.

import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:net';
import { startBroker } from '../../src/index.js';

/** A port free right now (the management listener has no "pick one" setting). */
async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

const dataDir = mkdtempSync(join(tmpdir(), 'warren-scrape-scale-'));
const managementPort = await freePort();
const broker = await startBroker({ port: 0, dataDir, metricsOnFreePort: true, managementPort, managementBind: '127.0.0.1', channelMax: 2047 });
const collector = broker.metrics!.collector;

let last = performance.now();
let maxGapMs = 0;
let longestRenderSliceMs = 0;
const render = collector.render.bind(collector);
collector.render = async (...args: Parameters<typeof render>) => {
  const result = await render(...args);
  longestRenderSliceMs = Math.max(longestRenderSliceMs, result.longestSliceMs);
  return result;
};
const ticker = setInterval(() => {
  const now = performance.now();
  if (now - last > maxGapMs) maxGapMs = now - last;
  last = now;
}, 1);

process.on('message', (m: string) => {
  if (m === 'reset') {
    maxGapMs = 0;
    longestRenderSliceMs = 0;
    last = performance.now();
    process.send!({ reset: true });
  } else if (m === 'report') {
    process.send!({ maxGapMs, longestRenderSliceMs });
  } else if (m === 'stop') {
    clearInterval(ticker);
    void broker.close().then(() => process.exit(0));
  }
});
process.send!({ amqp: broker.port, metrics: broker.metrics!.port, management: broker.management!.port });
