// One scenario every client library's test runs: publishing under a memory alarm. The client's
// script (mode `blocked PORT QUEUE`) prints, one line each as it happens: READY (connected, queue
// declared), BLOCKED <reason> (connection.blocked arrived after its publish), UNBLOCKED, CONFIRMED
// (a publish with confirms after the alarm), then GOT <body> for each message in the queue. As on
// RabbitMQ, the publish that revealed the alarm is held, not lost: it is in the queue afterwards.

import { expect } from 'vitest';
import type { StartOptions } from '../../../src/index.js';
import type { TestBroker } from '../../support/broker.js';
import { uniqueName } from '../../support/amqp.js';
import { QUIET_MS, sleep, waitFor } from '../../support/wait.js';
import type { LineProcess } from './client-process.js';

/** A watermark no test process reaches: brokers of these tests raise the alarm only when told. */
export const NO_ALARM: NonNullable<StartOptions['vmMemoryHighWatermark']> = { fraction: 0.99 };

/**
 * blockedLine: what the client prints for connection.blocked; RabbitMQ's reason unless the client
 * library does not pass the reason on (py-amqp reports a fixed text).
 */
export async function publishesThroughAMemoryAlarm(
  broker: TestBroker,
  start: (queue: string) => LineProcess,
  blockedLine = 'BLOCKED low on memory',
): Promise<void> {
  const resources = broker.broker.resources;
  const queue = uniqueName('client-blocked');
  resources.setMemoryHighWatermark({ bytes: 1024 * 1024 });
  await waitFor(() => resources.memoryAlarm, 'the memory alarm');
  const client = start(queue);
  try {
    await client.waitForLine(blockedLine);
    await sleep(QUIET_MS);
    expect(client.lines).toEqual(['READY', blockedLine]);
  } catch (err) {
    client.kill();
    throw err;
  } finally {
    resources.setMemoryHighWatermark(NO_ALARM);
    await waitFor(() => !resources.memoryAlarm, 'the memory alarm to clear');
  }
  await client.waitForLine('GOT after');
  await waitFor(() => client.exitCode !== null, 'the client to exit', 10_000);
  expect({ code: client.exitCode, lines: client.lines }).toEqual({
    code: 0,
    lines: ['READY', blockedLine, 'UNBLOCKED', 'CONFIRMED', 'GOT held', 'GOT after'],
  });
}
