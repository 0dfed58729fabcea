// Debian's python3-pika (run by /usr/bin/python3, as CI installs it) against Warren: a second
// client library catches assumptions amqplib happens to share with us.

import { execFile } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestBroker, type TestBroker } from '../support/broker.js';

const run = promisify(execFile);
const script = join(dirname(fileURLToPath(import.meta.url)), 'pika', 'roundtrip.py');
let broker: TestBroker;

beforeAll(async () => {
  broker = await startTestBroker();
});
afterAll(async () => {
  await broker.stop();
});

describe('python3-pika', () => {
  it('declares, publishes with confirms and properties, gets, nacks and sees the redelivery', async () => {
    const { stdout } = await run('/usr/bin/python3', [script, String(broker.port)], { timeout: 20_000 });
    const seen = JSON.parse(stdout.trim().split('\n').pop()!) as Record<string, unknown>;
    expect(seen).toEqual({
      server_product: 'Warren',
      body: '{"n":1}',
      routing_key: 'a.b.c',
      redelivered: false,
      headers: { s: 'str', i: 42, big: 2 ** 40, neg: -7, b: true, nested: { x: [1, 'two'] } },
      props: {
        content_type: 'application/json',
        delivery_mode: 2,
        priority: 3,
        correlation_id: 'c-1',
        message_id: 'm-1',
        app_id: 'pika-test',
      },
      redelivered_after_nack: true,
      passive_error: [404, "NOT_FOUND - no queue 'no-such-queue' in vhost '/'"],
    });
  });
});
