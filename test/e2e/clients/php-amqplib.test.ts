// Debian's php-amqplib against Warren (AMQPLAIN login, its default): confirms, basic.get,
// nack/requeue, prefetch, reject, mandatory returns, a passive declare's 404, consumer cancel
// notification, transactions, heartbeats, TLS with certificate verification, and connection.blocked
// under a memory alarm. The expected values are what the same script printed against RabbitMQ 3.10.
// The test itself: library-suite.ts.

import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describeClientLibrary, rubyAndPhpRoundtrip } from './library-suite.js';

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
    ...rubyAndPhpRoundtrip('php'),
  },
});
