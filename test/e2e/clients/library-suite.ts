// The test every client library of another language gets (Bunny, php-amqplib, the Java client,
// kombu): a broker of its own for the file, then two cases.
// - The round trip: the library's script does what its applications do (confirms, basic.get,
//   nack/requeue, prefetch, reject, mandatory returns, a passive declare's 404, consumer cancel
//   notification, transactions, heartbeats, and TLS with certificate verification where the
//   library has it) and prints one JSON line, which must equal the line the same script printed
//   against RabbitMQ 3.10 (`expected`, kept in each library's test file).
// - Publishing through a memory alarm (blocked-scenario.ts).
// Each library's file says only what differs: how to run its scripts and what RabbitMQ answered.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestBroker, type TestBroker } from '../../support/broker.js';
import { makeTestPki, type TestPki } from '../../support/tls-certificates.js';
import { NO_ALARM, publishesThroughAMemoryAlarm } from './blocked-scenario.js';
import { lastJsonLine, LineProcess, requireInstalled, runToEnd } from './client-process.js';

/** A command and its arguments. */
export type Command = readonly [command: string, args: string[]];

export interface ClientLibrary {
  /** the describe() title */
  name: string;
  /** who runs the round trip in its title: 'does what <applications> do, …' */
  applications: string;
  /** files the scripts need, each with the Debian packages that install it */
  requires: readonly (readonly [path: string, debianPackages: string])[];
  /** TLS: the broker gets an AMQPS listener with a test PKI, and the round trip its port and CA file */
  tls: boolean;
  /** the round-trip script for the broker's AMQP port (and, with tls, its AMQPS port and CA file) */
  roundtrip(port: number, tls: { port: number; ca: string } | null): Command;
  /** the memory-alarm script (blocked-scenario.ts's protocol) for a queue */
  blocked(port: number, queue: string): Command;
  /** the JSON line the round trip printed against RabbitMQ 3.10 */
  expected: unknown;
  /** what the script prints for connection.blocked, when the library does not pass RabbitMQ's reason on */
  blockedLine?: string;
  /** the round trip's time limit (default 60 s) */
  roundtripTimeoutMs?: number;
  /** vitest's limits for the two cases, for slow starters (the JVM) */
  roundtripTestTimeoutMs?: number;
  blockedTestTimeoutMs?: number;
}

export function describeClientLibrary(lib: ClientLibrary): void {
  let broker: TestBroker;
  let pki: TestPki | null = null;

  beforeAll(async () => {
    for (const [path, packages] of lib.requires) requireInstalled(path, packages);
    if (lib.tls) {
      pki = await makeTestPki();
      broker = await startTestBroker({ vmMemoryHighWatermark: NO_ALARM, tlsCert: pki.server.cert, tlsKey: pki.server.key });
    } else {
      broker = await startTestBroker({ vmMemoryHighWatermark: NO_ALARM });
    }
  });
  afterAll(async () => {
    await broker?.stop();
    pki?.remove();
  });

  const timeout = (ms: number | undefined): { timeout?: number } => (ms === undefined ? {} : { timeout: ms });

  describe(lib.name, () => {
    it(`does what ${lib.applications} do, with the answers RabbitMQ gives`, timeout(lib.roundtripTestTimeoutMs), async () => {
      const [command, args] = lib.roundtrip(broker.port, pki === null ? null : { port: broker.tlsPort, ca: pki.ca });
      const run = await runToEnd(command, args, { timeoutMs: lib.roundtripTimeoutMs ?? 60_000 });
      expect(lastJsonLine(run)).toEqual(lib.expected);
    });

    const blockedTitle =
      lib.blockedLine === undefined
        ? 'gets connection.blocked with RabbitMQ’s reason and connection.unblocked; the held publish arrives'
        : 'gets connection.blocked and connection.unblocked around a memory alarm; the held publish arrives';
    it(blockedTitle, timeout(lib.blockedTestTimeoutMs), async () => {
      await publishesThroughAMemoryAlarm(
        broker,
        (queue) => {
          const [command, args] = lib.blocked(broker.port, queue);
          return new LineProcess(command, args);
        },
        lib.blockedLine,
      );
    });
  });
}

/**
 * What the Bunny and php-amqplib round-trip scripts (the same steps in Ruby and PHP) printed
 * against RabbitMQ 3.10 after their confirms, for names starting with prefix.
 */
export function rubyAndPhpRoundtrip(prefix: string): Record<string, unknown> {
  return {
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
      exchange: `${prefix}.direct.SUFFIX`,
    },
    after_nack: { body: { n: 0 }, redelivered: true },
    prefetch_window: [1, 2],
    after_reject_requeue: [
      [3, true],
      [4, false],
    ],
    left_in_queue: 0,
    returned: [312, 'NO_ROUTE', 'nowhere'],
    passive_missing: [404, `NOT_FOUND - no queue '${prefix}.missing.SUFFIX' in vhost '/'`],
    consumer_cancelled: true,
    tx: { before_commit: 0, after_commit: 'committed', left: 0 },
    heartbeat_negotiated: 1,
    alive_after_idle: 'still here',
    tls: 'over tls',
  };
}
