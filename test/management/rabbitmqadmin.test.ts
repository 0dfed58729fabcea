// Debian's rabbitmqadmin (a Python client of RabbitMQ's HTTP API) against Warren, unchanged: it
// lists, declares, publishes, gets, exports and imports, and sees an amqplib connection with its
// client properties. Uses /usr/bin/rabbitmqadmin, or the copy .ci/run takes from the Debian package
// into .ci/tools (RABBITMQADMIN may point at another).

import { execFile } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import amqp from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../support/broker.js';
import { startMgmtTarget, type MgmtTarget } from './target.js';

const run = promisify(execFile);
const CI_COPY = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '.ci', 'tools', 'rabbitmqadmin');
const RABBITMQADMIN = process.env['RABBITMQADMIN'] ?? (existsSync('/usr/bin/rabbitmqadmin') ? '/usr/bin/rabbitmqadmin' : CI_COPY);

let target: MgmtTarget;
let port: string;
const dir = tempDir('warren-rabbitmqadmin-');

async function admin(...args: string[]): Promise<string> {
  const { stdout } = await run(RABBITMQADMIN, ['-H', '127.0.0.1', '-P', port, '-u', 'guest', '-p', 'guest', ...args], { timeout: 20_000 });
  return stdout;
}

async function json<T = any>(...args: string[]): Promise<T> {
  return JSON.parse(await admin('-f', 'raw_json', ...args)) as T;
}

beforeAll(async () => {
  if (!existsSync(RABBITMQADMIN)) throw new Error(`${RABBITMQADMIN} is missing: run .ci/run (it installs Debian's rabbitmqadmin) or set RABBITMQADMIN`);
  target = await startMgmtTarget();
  port = new URL(target.apiUrl).port;
});

afterAll(async () => {
  await target?.stop();
});

describe('rabbitmqadmin against Warren', () => {
  it('declares an exchange, a queue and a binding, publishes and gets', async () => {
    expect(await admin('declare', 'exchange', 'name=ra.x', 'type=topic')).toBe('exchange declared\n');
    expect(await admin('declare', 'queue', 'name=ra.q', 'durable=true')).toBe('queue declared\n');
    expect(await admin('declare', 'binding', 'source=ra.x', 'destination=ra.q', 'routing_key=a.*')).toBe('binding declared\n');
    expect(await admin('publish', 'exchange=ra.x', 'routing_key=a.b', 'payload=hello from rabbitmqadmin')).toBe('Message published\n');
    const got = await json('get', 'queue=ra.q', 'ackmode=ack_requeue_true');
    expect(got).toEqual([
      {
        payload_bytes: 24,
        redelivered: false,
        exchange: 'ra.x',
        routing_key: 'a.b',
        message_count: 0,
        properties: [],
        payload: 'hello from rabbitmqadmin',
        payload_encoding: 'string',
      },
    ]);
    const table = await admin('get', 'queue=ra.q', 'ackmode=ack_requeue_false');
    expect(table).toContain('| a.b         | ra.x     | 0             | hello from rabbitmqadmin |');
    expect(await json('get', 'queue=ra.q')).toEqual([]);
  });

  it('lists queues, exchanges, bindings, vhosts and shows the overview', async () => {
    const queues = await json<{ name: string; messages: number }[]>('list', 'queues', 'name', 'messages');
    expect(queues).toContainEqual({ name: 'ra.q', messages: 0 });
    expect(await admin('list', 'queues', 'name', 'durable')).toMatch(/\| ra\.q +\| True +\|/);
    const exchanges = await json<{ name: string; type: string }[]>('list', 'exchanges', 'name', 'type');
    expect(exchanges).toContainEqual({ name: 'ra.x', type: 'topic' });
    const bindings = await json<{ source: string; destination: string; routing_key: string }[]>('list', 'bindings', 'source', 'destination', 'routing_key');
    expect(bindings).toContainEqual({ source: 'ra.x', destination: 'ra.q', routing_key: 'a.*' });
    expect(await json('list', 'vhosts', 'name')).toEqual([{ name: '/' }]);
    const overview = await admin('show', 'overview');
    expect(overview).toMatch(/\| rabbitmq_version \| cluster_name +\| queue_totals\.messages \| object_totals\.queues \|/);
    expect(await admin('-f', 'tsv', '-q', 'list', 'queues', 'name')).toContain('ra.q\n');
  });

  it('sees an amqplib connection with its client properties, and closes it', async () => {
    const conn = await amqp.connect(target.amqpUrl, { clientProperties: { connection_name: 'seen-by-rabbitmqadmin' } });
    conn.on('error', () => {});
    const closed = new Promise<Error>((resolve) => conn.on('close', (err: Error) => resolve(err)));
    const listed = await json<{ name: string; user: string; client_properties: Record<string, unknown> }[]>('list', 'connections', 'name', 'user', 'client_properties');
    const mine = listed.find((c) => c.client_properties['connection_name'] === 'seen-by-rabbitmqadmin');
    expect(mine).toBeDefined();
    expect(mine!.user).toBe('guest');
    expect(mine!.client_properties['product']).toBe('amqplib');
    const table = await admin('list', 'connections', 'name', 'client_properties.product');
    expect(table).toMatch(/\| 127\.0\.0\.1:\d+ -> 127\.0\.0\.1:\d+ \| amqplib +\|/);
    expect(await admin('close', 'connection', `name=${mine!.name}`)).toBe('connection closed\n');
    expect((await closed).message).toContain('CONNECTION_FORCED - Closed via management plugin');
  });

  it('exports definitions to a file and imports them back', async () => {
    const file = join(dir, 'defs.json');
    expect(await admin('export', file)).toBe(`Exported definitions for 127.0.0.1 to "${file}"\n`);
    const defs = JSON.parse(readFileSync(file, 'utf8'));
    expect(defs.queues).toContainEqual({ name: 'ra.q', vhost: '/', durable: true, auto_delete: false, arguments: {} });
    expect(defs.users.map((u: { name: string }) => u.name)).toContain('guest');
    defs.queues.push({ name: 'ra.imported', vhost: '/', durable: true, auto_delete: false, arguments: { 'x-max-length': 3 } });
    writeFileSync(file, JSON.stringify(defs));
    expect(await admin('import', file)).toContain('Uploaded definitions from "127.0.0.1"');
    const imported = await json<{ name: string; arguments: Record<string, unknown> }[]>('list', 'queues', 'name', 'arguments');
    expect(imported).toContainEqual({ name: 'ra.imported', arguments: { 'x-max-length': 3 } });
  });

  it('declares users, permissions, policies and vhosts, purges and deletes', async () => {
    expect(await admin('declare', 'user', 'name=ra.user', 'password=secret', 'tags=management')).toBe('user declared\n');
    expect(await admin('declare', 'permission', 'vhost=/', 'user=ra.user', 'configure=.*', 'write=.*', 'read=.*')).toBe('permission declared\n');
    expect(await json('list', 'permissions', 'user', 'vhost')).toContainEqual({ user: 'ra.user', vhost: '/' });
    expect(await admin('declare', 'policy', 'name=ra.p', 'pattern=^ra\\.q$', 'definition={"max-length":5}')).toBe('policy declared\n');
    expect(await json('list', 'policies', 'name', 'definition')).toEqual([{ name: 'ra.p', definition: { 'max-length': 5 } }]);
    expect(await admin('declare', 'vhost', 'name=ra.v')).toBe('vhost declared\n');
    expect((await json<{ name: string }[]>('list', 'vhosts', 'name')).map((v) => v.name)).toEqual(['/', 'ra.v']);
    expect(await admin('purge', 'queue', 'name=ra.q')).toBe('queue purged\n');
    expect(await admin('delete', 'policy', 'name=ra.p')).toBe('policy deleted\n');
    expect(await admin('delete', 'binding', 'source=ra.x', 'destination_type=queue', 'destination=ra.q', 'properties_key=a.*')).toBe('binding deleted\n');
    expect(await admin('delete', 'queue', 'name=ra.q')).toBe('queue deleted\n');
    expect(await admin('delete', 'exchange', 'name=ra.x')).toBe('exchange deleted\n');
    expect(await admin('delete', 'vhost', 'name=ra.v')).toBe('vhost deleted\n');
    expect(await admin('delete', 'user', 'name=ra.user')).toBe('user deleted\n');
    expect((await json<{ name: string }[]>('list', 'queues', 'name')).map((q) => q.name)).toEqual(['ra.imported']);
  });

  it('reports errors the way it does for RabbitMQ', async () => {
    await expect(admin('delete', 'queue', 'name=no.such.queue')).rejects.toMatchObject({ stderr: '*** Not found: /api/queues/%2F/no.such.queue\n\n' });
    await expect(run(RABBITMQADMIN, ['-H', '127.0.0.1', '-P', port, '-u', 'guest', '-p', 'wrong', 'list', 'queues'])).rejects.toMatchObject({
      stderr: expect.stringContaining('Access refused'),
    });
  });
});
