// The broker a management test talks to: a Warren started in-process with its HTTP API on a free
// loopback port, or — for differential runs — a RabbitMQ given by WARREN_TEST_MGMT_URL
// (http://127.0.0.1:15740) together with WARREN_TEST_AMQP_URL, so the same expectations can be
// checked against RabbitMQ first.

import { ApiClient } from './api-client.js';
import type { TestBroker } from '../support/broker.js';
import { externalAmqpUrl } from '../support/harness.js';

export interface MgmtTarget {
  readonly api: ApiClient;
  readonly amqpUrl: string;
  readonly apiUrl: string;
  /** the in-process Warren, or null when testing an external broker */
  readonly warren: TestBroker | null;
  stop(): Promise<void>;
}

export const EXTERNAL_MGMT = (process.env['WARREN_TEST_MGMT_URL'] ?? '') !== '';

export async function startMgmtTarget(options: Record<string, unknown> = {}): Promise<MgmtTarget> {
  const external = process.env['WARREN_TEST_MGMT_URL'];
  if (external !== undefined && external !== '') {
    const amqpUrl = externalAmqpUrl();
    return { api: new ApiClient(external), amqpUrl, apiUrl: external, warren: null, stop: async () => {} };
  }
  const { startTestBroker } = await import('../support/broker.js');
  const broker = await startTestBroker({ managementOnFreePort: true, ...options });
  const apiUrl = `http://127.0.0.1:${broker.management!.port}`;
  return { api: new ApiClient(apiUrl), amqpUrl: broker.url, apiUrl, warren: broker, stop: () => broker.stop() };
}
