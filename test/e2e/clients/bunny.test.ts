// Debian's ruby-bunny against Warren: confirms, basic.get, nack/requeue, prefetch, reject, mandatory
// returns, a passive declare's 404, consumer cancel notification, transactions, heartbeats, TLS with
// certificate verification, and connection.blocked under a memory alarm. The expected values are
// what the same script printed against RabbitMQ 3.10. The test itself: library-suite.ts.

import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describeClientLibrary, rubyAndPhpRoundtrip } from './library-suite.js';

const here = join(dirname(fileURLToPath(import.meta.url)), 'bunny');
const RUBY = '/usr/bin/ruby';

describeClientLibrary({
  name: 'ruby-bunny',
  applications: 'Bunny applications',
  requires: [[RUBY, 'ruby-bunny']],
  tls: true,
  roundtrip: (port, tls) => [RUBY, [join(here, 'roundtrip.rb'), String(port), String(tls!.port), tls!.ca]],
  blocked: (port, queue) => [RUBY, [join(here, 'blocked.rb'), String(port), queue]],
  expected: {
    server_product_known: true,
    server_capabilities: [
      'authentication_failure_close',
      'basic.nack',
      'connection.blocked',
      'consumer_cancel_notify',
      'consumer_priorities',
      'direct_reply_to',
      'exchange_exchange_bindings',
      'per_consumer_qos',
      'publisher_confirms',
    ],
    confirmed: true,
    nacked: [],
    ...rubyAndPhpRoundtrip('bunny'),
  },
});
