// Client-side helpers the cluster tests share: publishing with confirms, consuming with acks,
// the management API and warrenctl against a node's ports.

import { execFile } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import amqp from 'amqplib';
import { waitFor } from '../../support/wait.js';
import type { WarrenNode } from './cluster.js';

const WARRENCTL = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'bin', 'warrenctl');

export function ctl(node: WarrenNode, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [WARRENCTL, ...args],
      { env: { ...process.env, WARREN_MANAGEMENT_URL: `http://${node.host}:${node.managementPort}` }, timeout: 60_000 },
      (err, stdout, stderr) => resolve({ code: err === null ? 0 : ((err as { code?: number }).code ?? 1), stdout, stderr }),
    );
  });
}

export async function api<T>(node: WarrenNode, path: string, method = 'GET'): Promise<{ status: number; body: T }> {
  const res = await fetch(`http://${node.host}:${node.managementPort}${path}`, {
    method,
    headers: { authorization: `Basic ${Buffer.from('guest:guest').toString('base64')}` },
  });
  const text = await res.text();
  return { status: res.status, body: (text === '' ? null : JSON.parse(text)) as T };
}

/** Publishes messages `from`…`from+count-1` (messageId = the number) with confirms, persistent. */
export async function publishConfirmed(url: string, queue: string, from: number, count: number, body?: Buffer): Promise<void> {
  const conn = await amqp.connect(url);
  try {
    const ch = await conn.createConfirmChannel();
    await ch.assertQueue(queue, { durable: true });
    for (let i = from; i < from + count; i++) ch.sendToQueue(queue, body ?? Buffer.from(`m-${i}`), { persistent: true, messageId: String(i) });
    await ch.waitForConfirms();
  } finally {
    await conn.close().catch(() => {});
  }
}

/** Consumes with manual acks until `expected` distinct messages arrived; returns the ids seen. */
export async function consumeAll(url: string, queue: string, expected: number, timeoutMs = 30_000): Promise<{ ids: number[]; redelivered: number }> {
  const conn = await amqp.connect(url);
  const ids: number[] = [];
  let redelivered = 0;
  try {
    const ch = await conn.createChannel();
    await ch.prefetch(200);
    await ch.consume(queue, (msg) => {
      if (msg === null) return;
      ids.push(Number(msg.properties.messageId));
      if (msg.fields.redelivered) redelivered++;
      ch.ack(msg);
    });
    await waitFor(() => new Set(ids).size >= expected, `${expected} messages from ${queue}`, timeoutMs);
    // Closing the channel first: amqplib may write a connection.close ahead of acks still queued
    // on the channel; channel.close follows them on the same channel, and waits for close-ok.
    await ch.close();
  } finally {
    await conn.close().catch(() => {});
  }
  return { ids, redelivered };
}

/** Messages ready in a queue, read through a passive declare. */
export async function queueDepth(url: string, queue: string): Promise<number | null> {
  const conn = await amqp.connect(url);
  try {
    const ch = await conn.createChannel();
    ch.on('error', () => {});
    const q = await ch.checkQueue(queue).catch(() => null);
    return q === null ? null : q.messageCount;
  } finally {
    await conn.close().catch(() => {});
  }
}
