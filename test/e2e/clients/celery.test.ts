// A real Celery worker (Debian's python3-celery) against Warren: task round trips with results
// over AMQP (rpc:// backend), retries through the broker, a countdown (the worker holds the
// message and raises its prefetch), a failing task's exception, broadcast ping and inspect over
// the pidbox exchange, and a warm shutdown. The expected values are what the same script printed
// against RabbitMQ 3.10.

import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestBroker, type TestBroker } from '../../support/broker.js';
import { lastJsonLine, requireInstalled, runToEnd } from './client-process.js';

const here = join(dirname(fileURLToPath(import.meta.url)), 'celery');
let broker: TestBroker;

beforeAll(async () => {
  requireInstalled('/usr/lib/python3/dist-packages/celery/__init__.py', 'python3-celery');
  broker = await startTestBroker();
});
afterAll(async () => {
  await broker?.stop();
});

describe('Celery worker', () => {
  it('runs tasks sent through Warren and returns their results', { timeout: 120_000 }, async () => {
    const run = await runToEnd('/usr/bin/python3', [join(here, 'celery_roundtrip.py'), String(broker.port)], { timeoutMs: 110_000 });
    expect(lastJsonLine(run)).toEqual({
      ping: [{ ok: 'pong' }],
      add: 5,
      many: [0, 2, 4, 6, 8, 10, 12, 14, 16, 18],
      retried: 2,
      countdown: 42,
      failure: ['ValueError', 'expected failure'],
      active_queues: ['QUEUE'],
      worker_exit: 0,
      worker_errors: [],
    });
  });
});
