// Helpers shared by the TLS tests: a broker whose log lines the test can read, and a raw TLS client
// that reads connection.start to see which SASL mechanisms the broker offers.

import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';
import { Writable } from 'node:stream';
import { createLogger } from '../../src/log.js';
import { FrameParser } from '../../src/protocol/frame-parser.js';
import { CONNECTION_START, decodeMethodArgs } from '../../src/protocol/generated/amqp.js';
import { PROTOCOL_HEADER } from '../support/raw-client.js';
import { startTestBroker, type TestBroker } from '../support/broker.js';
import type { StartOptions } from '../../src/index.js';

export interface LoggedBroker extends TestBroker {
  /** every log line so far, parsed */
  readonly logLines: Record<string, unknown>[];
}

/** A test broker (AMQPS on a free port) whose log lines are collected for assertions. */
export async function startLoggedBroker(options: StartOptions): Promise<LoggedBroker> {
  const logLines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n')) if (line !== '') logLines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  const broker = await startTestBroker({ tlsPort: 0, logger: createLogger('info', sink), ...options });
  return Object.assign(broker, { logLines });
}

/** The `mechanisms` field of connection.start, read over a raw TLS connection. */
export function offeredMechanisms(port: number, options: ConnectionOptions): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: '127.0.0.1', port, ...options }, () => socket.write(PROTOCOL_HEADER));
    const parser = new FrameParser(131072, (_type, _channel, buf, start, end) => {
      const method = decodeMethodArgs(buf.readUInt32BE(start), buf, start + 4, end);
      socket.destroy();
      if (method?.id === CONNECTION_START) resolve(method.mechanisms.toString());
      else reject(new Error('expected connection.start'));
    });
    socket.on('data', (chunk: Buffer) => parser.push(chunk));
    socket.on('error', reject);
    socket.setTimeout(5000, () => reject(new Error('no connection.start within 5 s')));
  });
}
