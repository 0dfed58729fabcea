// Debian's python3-kombu (py-amqp transport, as Celery uses it) against Warren: confirms, basic.get,
// requeue, prefetch, reject, mandatory returns, a passive declare's 404, consumer cancel
// notification, transactions, heartbeats, and connection.blocked under a memory alarm. The
// expected values are what the same script printed against RabbitMQ 3.10. The test itself:
// library-suite.ts.

import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describeClientLibrary } from './library-suite.js';

const here = join(dirname(fileURLToPath(import.meta.url)), 'kombu');
const PYTHON = '/usr/bin/python3';

describeClientLibrary({
  name: 'python3-kombu',
  applications: 'kombu applications',
  requires: [['/usr/lib/python3/dist-packages/kombu/__init__.py', 'python3-kombu']],
  tls: false,
  roundtrip: (port) => [PYTHON, [join(here, 'roundtrip.py'), String(port)]],
  blocked: (port, queue) => [PYTHON, [join(here, 'blocked.py'), String(port), queue]],
  // py-amqp hands its callback a fixed text rather than the broker's reason (same on RabbitMQ).
  blockedLine: 'BLOCKED connection blocked, see broker logs',
  expected: {
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
  },
});
