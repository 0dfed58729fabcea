// Which stored records are LZ4-compressed: bodies that shrink are, bodies that do not (random,
// already compressed) are written as they are, and both come back byte for byte — through a
// restart, so from the store itself. Also the gate's own verdicts, probe by probe.

import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import amqp from 'amqplib';
import { open } from 'lmdb';
import { describe, expect, it } from 'vitest';
import { CompressionGate, FIRST_COMPRESSION_MARK } from '../../src/store/compression.js';
import { startTestBroker, tempDir } from '../support/broker.js';

/** A JSON-like body of `size` bytes: field names repeat, values vary (a typical task payload). */
function jsonBody(i: number, size: number): Buffer {
  let s = '';
  for (let n = 0; s.length < size; n++) s += `{"id":${i * 1000 + n},"task":"resize","args":["img-${n}.png",${n % 7}],"retries":${n % 3}},`;
  return Buffer.from(s.slice(0, size));
}

describe('CompressionGate', () => {
  it('random records are not worth compressing; JSON and repeated bytes are', () => {
    const gate = new CompressionGate();
    // Different slots so that each record is probed (a slot reuses its verdict for 31 more).
    expect(gate.worthCompressing(1, randomBytes(1100))).toBe(false);
    expect(gate.worthCompressing(2, jsonBody(1, 1100))).toBe(true);
    expect(gate.worthCompressing(3, Buffer.alloc(600, 7))).toBe(true);
    expect(gate.worthCompressing(4, randomBytes(64 * 1024))).toBe(false);
    // A random block repeated: each 4-byte sequence of the second half is seen before.
    const half = randomBytes(400);
    expect(gate.worthCompressing(5, Buffer.concat([half, half]))).toBe(true);
  });

  it('a probe decides for the next 31 records of its slot; other slots probe on their own', () => {
    const gate = new CompressionGate();
    expect(gate.worthCompressing(7, randomBytes(1000))).toBe(false);
    for (let i = 0; i < 31; i++) expect(gate.worthCompressing(7, jsonBody(i, 1000))).toBe(false);
    expect(gate.worthCompressing(7, jsonBody(99, 1000))).toBe(true); // probed again
    expect(gate.worthCompressing(8, randomBytes(1000))).toBe(false);
    expect(gate.worthCompressing(7, randomBytes(1000))).toBe(true); // slot 7's verdict still holds
  });

  it('old probes leave nothing behind: a random record after thousands of probes is still random', () => {
    const gate = new CompressionGate();
    const record = randomBytes(1024);
    for (let i = 0; i < 5000; i++) expect(gate.worthCompressing(i * 32, record)).toBe(false);
    expect(gate.worthCompressing(1, jsonBody(3, 1024))).toBe(true);
  });
});

describe('stored message records (bin/warren store, read back after a restart)', () => {
  it('random bodies are stored uncompressed, JSON bodies compressed, and every body comes back exactly', { timeout: 60_000 }, async () => {
    const dataDir = tempDir();
    const COUNT = 200;
    const random: Buffer[] = [];
    const json: Buffer[] = [];
    let broker = await startTestBroker({ dataDir });
    let conn = await amqp.connect(broker.url);
    const ch = await conn.createConfirmChannel();
    await ch.assertQueue('random', { durable: true });
    await ch.assertQueue('json', { durable: true });
    for (let i = 0; i < COUNT; i++) {
      random.push(randomBytes(1024));
      json.push(jsonBody(i, 1024));
      ch.sendToQueue('random', random[i]!, { persistent: true });
      ch.sendToQueue('json', json[i]!, { persistent: true });
    }
    await ch.waitForConfirms();
    await conn.close();
    await broker.stop();

    // The stored values as they are on disk (a handle without decompression).
    const env = open({ path: join(dataDir, 'lmdb') });
    const sizes: { compressed: number; raw: number; rawSmallerThanBody: number } = { compressed: 0, raw: 0, rawSmallerThanBody: 0 };
    try {
      const entries = env.openDB<Buffer, Buffer>({ name: 'queue-entries', keyEncoding: 'binary', encoding: 'binary' });
      for (const { value } of entries.getRange({})) {
        if (value[0]! >= FIRST_COMPRESSION_MARK) sizes.compressed++;
        else {
          sizes.raw++;
          if (value.length < 1024) sizes.rawSmallerThanBody++;
        }
      }
    } finally {
      await env.close();
    }
    expect(sizes).toEqual({ compressed: COUNT, raw: COUNT, rawSmallerThanBody: 0 });

    broker = await startTestBroker({ dataDir });
    try {
      conn = await amqp.connect(broker.url);
      const reader = await conn.createChannel();
      for (const [queue, bodies] of [['random', random], ['json', json]] as const) {
        for (let i = 0; i < COUNT; i++) {
          const m = await reader.get(queue, { noAck: true });
          expect(m !== false && m.content.equals(bodies[i]!), `${queue} message ${i}`).toBe(true);
        }
        expect(await reader.get(queue, { noAck: true })).toBe(false);
      }
      await conn.close();
    } finally {
      await broker.stop();
    }
  });
});
