// RabbitMQ's Java client (Debian's librabbitmq-client-java, run by the JDK's source launcher)
// against Warren: confirms, basic.get, nack/requeue, prefetch, reject, mandatory returns, a passive
// declare's 404, consumer cancel notification, transactions, heartbeats, TLS, and connection.blocked
// under a memory alarm. The expected values are what the same program printed against RabbitMQ 3.10.
// The test itself: library-suite.ts.

import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describeClientLibrary } from './library-suite.js';

const PROGRAM = join(dirname(fileURLToPath(import.meta.url)), 'java', 'Roundtrip.java');
const JAVA = '/usr/bin/java';
const CLIENT_JAR = '/usr/share/java/amqp-client.jar';
const CLASS_PATH = [CLIENT_JAR, '/usr/share/java/slf4j-api.jar', '/usr/share/java/slf4j-nop.jar'].join(':');

describeClientLibrary({
  name: 'RabbitMQ Java client',
  applications: 'Java client applications',
  requires: [
    [JAVA, 'default-jdk-headless'],
    [CLIENT_JAR, 'librabbitmq-client-java'],
  ],
  tls: true,
  roundtrip: (port, tls) => [JAVA, ['-cp', CLASS_PATH, PROGRAM, 'roundtrip', String(port), String(tls!.port), tls!.ca]],
  blocked: (port, queue) => [JAVA, ['-cp', CLASS_PATH, PROGRAM, 'blocked', String(port), queue]],
  roundtripTimeoutMs: 80_000,
  roundtripTestTimeoutMs: 90_000,
  blockedTestTimeoutMs: 60_000,
  expected: {
    server_product_known: true,
    confirmed: true,
    message_count: 5,
    get: {
      body: '{"n":0}',
      headers: '{attempt=0}',
      content_type: 'application/json',
      correlation_id: 'c0',
      priority: 0,
      delivery_mode: 2,
      redelivered: false,
      routing_key: 'work',
      exchange: 'java.direct.SUFFIX',
      message_count: 4,
    },
    after_nack: ['{"n":0}', true],
    prefetch_window: ['{"n":1}', '{"n":2}'],
    after_reject_requeue: ['{"n":3} redelivered', '{"n":4}'],
    left_in_queue: 0,
    returned: [312, 'NO_ROUTE', 'nowhere'],
    passive_missing: [404, "NOT_FOUND - no queue 'java.missing.SUFFIX' in vhost '/'"],
    consumer_cancelled: true,
    tx: [0, 'committed', 0],
    heartbeat_negotiated: 1,
    alive_after_idle: 'still here',
    tls: 'over tls',
  },
});
