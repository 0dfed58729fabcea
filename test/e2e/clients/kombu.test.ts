// Debian's python3-kombu (py-amqp transport, as Celery uses it) against Warren: confirms, basic.get,
// requeue, prefetch, reject, mandatory returns, a passive declare's 404, consumer cancel
// notification, transactions, heartbeats, and connection.blocked under a memory alarm. The
// expected values are what the same script printed against RabbitMQ 3.10.

import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestBroker, type TestBroker } from '../../support/broker.js';
import { NO_ALARM, publishesThroughAMemoryAlarm } from './blocked-scenario.js';
import { lastJsonLine, LineProcess, requireInstalled, runToEnd } from './client-process.js';

const here = join(dirname(fileURLToPath(import.meta.url)), 'kombu');
const PYTHON = '/usr/bin/python3';
const KOMBU = '/usr/lib/python3/dist-packages/kombu/__init__.py';
let broker: TestBroker;

beforeAll(async () => {
  requireInstalled(KOMBU, 'python3-kombu');
  broker = await startTestBroker({ vmMemoryHighWatermark: NO_ALARM });
});
afterAll(async () => {
  await broker?.stop();
});

describe('python3-kombu', () => {
  it('does what kombu applications do, with the answers RabbitMQ gives', async () => {
    const run = await runToEnd(PYTHON, [join(here, 'roundtrip.py'), String(broker.port)], { timeoutMs: 60_000 });
    expect(lastJsonLine(run)).toEqual({
      server_product_known: true,
      client_capabilities: ['authentication_failure_close', 'connection.blocked', 'consumer_cancel_notify'],
      declared_count: 5,
      get: {
        payload: { n: 0 },
        headers: { attempt: 0 },
        content_type: 'application/json',
        correlation_id: 'c0',
        priority: 0,
        redelivered: false,
        routing_key: 'work',
      },
      requeued_get: { payload: { n: 0 }, redelivered: true },
      prefetch_window: [1, 2],
      after_one_ack: [1, 2, 3],
      after_reject_requeue: [
        [3, true],
        [4, false],
      ],
      consumed: [1, 2, 3, 3, 4],
      left_in_queue: 0,
      returned: [312, 'NO_ROUTE', 'nowhere'],
      passive_missing: [404, "NOT_FOUND - no queue 'kombu.missing.SUFFIX' in vhost '/'"],
      consumer_cancelled: 'ConsumerCancelled',
      tx: { before_commit: 0, after_commit: 'committed', left: 0 },
      heartbeat_negotiated: 1,
      alive_after_idle: 'still here',
    });
  });

  it('gets connection.blocked and connection.unblocked around a memory alarm; the held publish arrives', async () => {
    // py-amqp hands its callback a fixed text rather than the broker's reason (same on RabbitMQ).
    await publishesThroughAMemoryAlarm(
      broker,
      (queue) => new LineProcess(PYTHON, [join(here, 'blocked.py'), String(broker.port), queue]),
      'BLOCKED connection blocked, see broker logs',
    );
  });
});
