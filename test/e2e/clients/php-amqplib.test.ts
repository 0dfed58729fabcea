// Debian's php-amqplib against Warren (AMQPLAIN login, its default): confirms, basic.get,
// nack/requeue, prefetch, reject, mandatory returns, a passive declare's 404, consumer cancel
// notification, transactions, heartbeats, TLS with certificate verification, and connection.blocked
// under a memory alarm. The expected values are what the same script printed against RabbitMQ 3.10.
// The test itself: library-suite.ts.

import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describeClientLibrary } from './library-suite.js';

const here = join(dirname(fileURLToPath(import.meta.url)), 'php-amqplib');
const PHP = '/usr/bin/php';

describeClientLibrary({
  name: 'php-amqplib',
  applications: 'php-amqplib applications',
  requires: [
    [PHP, 'php-cli'],
    ['/usr/share/php/PhpAmqpLib/autoload.php', 'php-amqplib'],
  ],
  tls: true,
  roundtrip: (port, tls) => [PHP, [join(here, 'roundtrip.php'), String(port), String(tls!.port), tls!.ca]],
  blocked: (port, queue) => [PHP, [join(here, 'blocked.php'), String(port), queue]],
  expected: {
    server_product_known: true,
    acks: 5,
    nacks: 0,
    message_count: 5,
    get: {
      body: { n: 0 },
      headers: { attempt: 0 },
      content_type: 'application/json',
      correlation_id: 'c0',
      priority: 0,
      delivery_mode: 2,
      redelivered: false,
      routing_key: 'work',
      exchange: 'php.direct.SUFFIX',
    },
    after_nack: { body: { n: 0 }, redelivered: true },
    prefetch_window: [1, 2],
    after_reject_requeue: [
      [3, true],
      [4, false],
    ],
    left_in_queue: 0,
    returned: [312, 'NO_ROUTE', 'nowhere'],
    passive_missing: [404, "NOT_FOUND - no queue 'php.missing.SUFFIX' in vhost '/'"],
    consumer_cancelled: true,
    tx: { before_commit: 0, after_commit: 'committed', left: 0 },
    heartbeat_negotiated: 1,
    alive_after_idle: 'still here',
    tls: 'over tls',
  },
});
