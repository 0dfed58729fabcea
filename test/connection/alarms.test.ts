// Resource alarms as RabbitMQ 3.x raises them (behaviour checked against RabbitMQ 3.10 with
// rabbitmqctl set_vm_memory_high_watermark): while the memory alarm (a tiny watermark) or the disk
// alarm (a free-space limit above the free space) is set, a connection that publishes gets
// connection.blocked and is no longer read; consumers and gets on other connections go on; when the
// alarm clears, connection.unblocked arrives, reading resumes and every held publish is confirmed.
// Clients: amqplib and Debian's python3-pika.

import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import * as M from '../../src/protocol/generated/amqp.js';
import { QUIET_MS, sleep, uniqueName, waitFor, type RecordedConnection } from '../support/harness.js';
import { RawClient } from '../support/raw-client.js';
import { useTestBroker } from '../support/test-broker.js';

const NO_ALARM = { fraction: 0.99 } as const;
const broker = useTestBroker({ vmMemoryHighWatermark: NO_ALARM });
const clients = broker.clients;

const resources = () => broker.broker.resources;

function blockedEvents(conn: RecordedConnection): string[] {
  const events: string[] = [];
  conn.on('blocked', (reason: string) => events.push(`blocked: ${reason}`));
  conn.on('unblocked', () => events.push('unblocked'));
  return events;
}

type Alarm = { name: string; raise(): Promise<void>; clear(): Promise<void>; reason: string };

const ALARMS: Alarm[] = [
  {
    name: 'memory alarm (tiny watermark)',
    reason: 'low on memory',
    async raise() {
      resources().setMemoryHighWatermark({ bytes: 1024 * 1024 });
      await waitFor(() => resources().memoryAlarm, 'the memory alarm');
    },
    async clear() {
      resources().setMemoryHighWatermark(NO_ALARM);
      await waitFor(() => !resources().memoryAlarm, 'the memory alarm to clear');
    },
  },
  {
    name: 'disk alarm (limit above the free space)',
    reason: 'low on disk',
    async raise() {
      resources().setDiskFreeLimit(Number.MAX_SAFE_INTEGER);
      await waitFor(() => resources().diskAlarm, 'the disk alarm');
    },
    async clear() {
      resources().setDiskFreeLimit(1);
      await waitFor(() => !resources().diskAlarm, 'the disk alarm to clear');
    },
  },
];

describe.each(ALARMS)('$name', (alarm) => {
  it('blocks publishers (connection.blocked, not read), consumers drain, then unblocks; nothing confirmed is lost', async () => {
    const q = uniqueName('alarm');
    const pubConn = await clients.connect();
    const events = blockedEvents(pubConn);
    const pub = await clients.confirmChannel(pubConn);
    await pub.assertQueue(q, { durable: true });
    for (let i = 0; i < 50; i++) pub.sendToQueue(q, Buffer.from(`before-${i}`), { persistent: true });
    await pub.waitForConfirms();
    const consConn = await clients.connect();
    const consEvents = blockedEvents(consConn);
    const cons = await clients.channel(consConn);
    await cons.prefetch(10);

    await alarm.raise();
    expect(broker.serverSide(pubConn).managementState).toBe('blocking');
    expect(broker.serverSide(consConn).managementState).toBe('blocking');
    expect(events).toEqual([]); // as RabbitMQ: nothing is said until the connection publishes

    // Publishing now: the client is told, and what it sends is not read (so not confirmed).
    const confirmedDuring: number[] = [];
    for (let i = 0; i < 20; i++) {
      pub.sendToQueue(q, Buffer.from(`during-${i}`), { persistent: true }, (err) => {
        if (err === null || err === undefined) confirmedDuring.push(i);
      });
    }
    await waitFor(() => events.length > 0, 'connection.blocked');
    expect(events).toEqual([`blocked: ${alarm.reason}`]);
    expect(broker.serverSide(pubConn).managementState).toBe('blocked');
    expect(broker.serverSide(pubConn).gate.reading).toBe(false);

    // Consumers keep draining while publishers are held.
    const got: string[] = [];
    await cons.consume(q, (m) => {
      if (m === null) return;
      got.push(m.content.toString());
      cons.ack(m);
    });
    await waitFor(() => got.length >= 50, `the 50 earlier messages (have ${got.length})`);
    await sleep(QUIET_MS);
    // As RabbitMQ: nothing published during the alarm is taken in, not even the publish that
    // revealed the connection as a publisher.
    expect(got.filter((b) => b.startsWith('during-'))).toEqual([]);
    expect(confirmedDuring).toEqual([]);
    expect(consEvents).toEqual([]); // the consumer never published: never blocked
    expect(broker.serverSide(consConn).gate.reading).toBe(true);

    await alarm.clear();
    await waitFor(() => events.length === 2, 'connection.unblocked');
    expect(events).toEqual([`blocked: ${alarm.reason}`, 'unblocked']);
    await pub.waitForConfirms();
    await waitFor(() => got.length === 70, `all 70 messages (have ${got.length})`);
    expect(got).toEqual([...Array.from({ length: 50 }, (_, i) => `before-${i}`), ...Array.from({ length: 20 }, (_, i) => `during-${i}`)]);
    expect(confirmedDuring).toHaveLength(20);
    expect(broker.serverSide(pubConn).managementState).toBe('running');
    await pub.deleteQueue(q);
  });
});

describe('alarm details', () => {
  it('a client without the connection.blocked capability is held without being told', async () => {
    const raw = await RawClient.handshake(broker.port);
    await raw.openChannel(1);
    await ALARMS[0]!.raise();
    try {
      raw.publish(1, '', 'nowhere', Buffer.from('x'));
      await waitFor(() => [...broker.server.connections].some((c) => c.managementState === 'blocked'), 'the raw client to be blocked');
      await sleep(QUIET_MS);
      expect(raw.frames.filter((f) => f.channel === 0)).toEqual([]);
    } finally {
      await ALARMS[0]!.clear();
    }
    raw.send(1, { id: M.BASIC_QOS, prefetchSize: 0, prefetchCount: 1, global: false });
    await raw.waitForMethod(M.BASIC_QOS_OK, 1); // read again
    expect(raw.frames.filter((f) => f.channel === 0)).toEqual([]);
    raw.destroy();
  });

  it('a connection opened during an alarm is blocking, and blocked once it publishes', async () => {
    await ALARMS[1]!.raise();
    try {
      const conn = await clients.connect();
      const events = blockedEvents(conn);
      const ch = await clients.channel(conn);
      expect(broker.serverSide(conn).managementState).toBe('blocking');
      ch.sendToQueue('nowhere', Buffer.from('x'));
      await waitFor(() => events.length === 1, 'connection.blocked');
      expect(events).toEqual(['blocked: low on disk']);
    } finally {
      await ALARMS[1]!.clear();
    }
  });

  it('the read API: memory used and limit, disk free and limit, active alarms', async () => {
    const r = resources();
    expect(r.memoryUsedBytes).toBeGreaterThan(10 * 1024 * 1024);
    expect(r.memoryLimitBytes).toBeGreaterThan(r.memoryUsedBytes);
    expect(r.diskFreeBytes).toBeGreaterThan(0);
    expect(r.diskFreeLimitBytes).toBe(1);
    expect([...r.alarms]).toEqual([]);
    await ALARMS[0]!.raise();
    expect([...r.alarms]).toEqual(['memory']);
    expect(r.memoryLimitBytes).toBe(1024 * 1024);
    await ALARMS[0]!.clear();
  });
});

describe('python3-pika', () => {
  it('sees connection.blocked and connection.unblocked; its held publish is confirmed afterwards', async () => {
    const script = join(dirname(fileURLToPath(import.meta.url)), 'pika-blocked.py');
    const q = uniqueName('pika-alarm');
    await ALARMS[0]!.raise();
    const child = spawn('/usr/bin/python3', [script, String(broker.port), q], { stdio: ['ignore', 'pipe', 'pipe'] });
    const lines: string[] = [];
    let stderr = '';
    let partial = '';
    child.stdout.on('data', (c: Buffer) => {
      const parts = (partial + c.toString()).split('\n');
      partial = parts.pop()!;
      lines.push(...parts);
    });
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    try {
      await waitFor(() => lines.includes('BLOCKED low on memory') || child.exitCode !== null, 'pika to be blocked', 10_000);
      expect(stderr).toBe('');
      await sleep(QUIET_MS);
      expect(lines).toEqual(['READY', 'BLOCKED low on memory']);
    } finally {
      await ALARMS[0]!.clear();
    }
    expect(await exited).toBe(0);
    expect(lines).toEqual(['READY', 'BLOCKED low on memory', 'UNBLOCKED', 'CONFIRMED', 'GOT held', 'GOT after']);
    const ch = await clients.channel();
    await ch.deleteQueue(q);
  });
});
