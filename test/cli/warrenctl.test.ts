// bin/warrenctl run as users run it (a child process), against a Warren with its management API
// on a free port: rabbitmqctl's verbs, columns, banners, formatters and exit codes; a broker that
// is down; dead-letter inspection and a replay long enough to show progress.

import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import amqp from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestBroker, tempDir, type TestBroker } from '../support/broker.js';
import { freePort } from '../support/child-broker.js';
import { waitFor } from '../support/wait.js';

const WARRENCTL = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'bin', 'warrenctl');

let broker: TestBroker;
let url: string;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function ctl(args: string[], options: { url?: string; input?: string } = {}): Promise<Run> {
  return new Promise((resolve) => {
    const child = execFile(
      process.execPath,
      [WARRENCTL, ...args],
      { env: { ...process.env, WARREN_MANAGEMENT_URL: options.url ?? url }, timeout: 60_000 },
      (err, stdout, stderr) => resolve({ code: err === null ? 0 : ((err as { code?: number }).code ?? 1), stdout, stderr }),
    );
    if (options.input !== undefined) child.stdin!.end(options.input);
  });
}

async function ok(...args: string[]): Promise<string> {
  const r = await ctl(args);
  expect(r.stderr, `warrenctl ${args.join(' ')}`).toBe('');
  expect(r.code, `warrenctl ${args.join(' ')}: ${r.stderr}`).toBe(0);
  return r.stdout;
}

beforeAll(async () => {
  broker = await startTestBroker({ managementOnFreePort: true });
  url = `http://127.0.0.1:${broker.management!.port}`;
});

afterAll(async () => {
  await broker?.stop();
});

describe('list verbs', () => {
  let conn: amqp.ChannelModel;
  beforeAll(async () => {
    conn = await amqp.connect(broker.url, { clientProperties: { connection_name: 'ctl-test' } });
    const ch = await conn.createChannel();
    await ch.prefetch(5);
    await ch.assertExchange('ctl.x', 'topic', { durable: true });
    await ch.assertQueue('ctl.q1', { durable: true });
    await ch.assertQueue('ctl.q2', { durable: false });
    await ch.bindQueue('ctl.q1', 'ctl.x', 'a.#', { foo: 'bar' });
    ch.sendToQueue('ctl.q1', Buffer.from('one'));
    ch.sendToQueue('ctl.q1', Buffer.from('two'));
    await ch.consume('ctl.q2', () => {}, { consumerTag: 'ctl-consumer', arguments: { 'x-priority': 2 } });
    await waitFor(() => broker.broker.vhosts.get('/')!.queues.get('ctl.q1')!.messageCount === 2, 'two messages');
  });
  afterAll(async () => {
    await conn.close();
  });

  it('list_queues: default columns, chosen columns, quiet, no headers, json', async () => {
    expect(await ok('list_queues')).toBe('Timeout: 60.0 seconds ...\nListing queues for vhost / ...\nname\tmessages\nctl.q1\t2\nctl.q2\t0\n');
    expect(await ok('list_queues', 'name', 'durable', 'consumers', 'arguments')).toBe(
      'Timeout: 60.0 seconds ...\nListing queues for vhost / ...\nname\tdurable\tconsumers\targuments\nctl.q1\ttrue\t0\t[]\nctl.q2\tfalse\t1\t[]\n',
    );
    expect(await ok('-q', 'list_queues', 'name')).toBe('name\nctl.q1\nctl.q2\n');
    expect(await ok('list_queues', '--no-table-headers', '-q')).toBe('ctl.q1\t2\nctl.q2\t0\n');
    expect(await ok('list_queues', '--formatter', 'json', 'name', 'messages')).toBe('[\n{"name":"ctl.q1","messages":2}\n,{"name":"ctl.q2","messages":0}\n]\n');
    expect(await ok('list_queues', '--formatter', 'tsv', '-q', 'name')).toBe('name\nctl.q1\nctl.q2\n');
    const bad = await ctl(['list_queues', 'bogus']);
    expect(bad.code).toBe(64);
    expect(bad.stderr).toContain('Error (argument validation): Info key(s) bogus are not supported');
  });

  it('list_exchanges, list_bindings', async () => {
    expect(await ok('list_exchanges')).toBe(
      'Listing exchanges for vhost / ...\nname\ttype\n\tdirect\namq.direct\tdirect\namq.fanout\tfanout\namq.headers\theaders\namq.match\theaders\namq.topic\ttopic\nctl.x\ttopic\n',
    );
    expect(await ok('list_bindings')).toBe(
      'Listing bindings for vhost /...\n' +
        'source_name\tsource_kind\tdestination_name\tdestination_kind\trouting_key\targuments\n' +
        '\texchange\tctl.q1\tqueue\tctl.q1\t[]\n' +
        '\texchange\tctl.q2\tqueue\tctl.q2\t[]\n' +
        'ctl.x\texchange\tctl.q1\tqueue\ta.#\t[{"foo","bar"}]\n',
    );
  });

  it('list_connections shows the amqplib client and its properties; list_channels; list_consumers', async () => {
    const out = await ok('list_connections', 'user', 'vhost', 'state', 'client_properties');
    const lines = out.split('\n');
    expect(lines.slice(0, 2)).toEqual(['Listing connections ...', 'user\tvhost\tstate\tclient_properties']);
    expect(lines[2]).toMatch(/^guest\t\/\trunning\t\[\{"connection_name","ctl-test"\},\{"product","amqplib"\},\{"version","[^"]+"\},/);
    expect(lines[2]).toContain('{"capabilities",[{"publisher_confirms",true},');
    const channels = await ok('list_channels', 'number', 'user', 'prefetch_count', 'consumer_count', 'confirm');
    expect(channels).toBe('Listing channels ...\nnumber\tuser\tprefetch_count\tconsumer_count\tconfirm\n1\tguest\t5\t1\tfalse\n');
    const consumers = await ok('list_consumers');
    expect(consumers).toMatch(
      /^Listing consumers in vhost \/ \.\.\.\nqueue_name\tchannel_pid\tconsumer_tag\tack_required\tprefetch_count\tactive\targuments\nctl\.q2\t<127\.0\.0\.1:\d+ -> 127\.0\.0\.1:\d+ \(1\)>\tctl-consumer\ttrue\t5\ttrue\t\[\{"x-priority",2\}\]\n$/,
    );
  });

  it('list_users, list_vhosts, list_permissions, list_policies', async () => {
    expect(await ok('list_users')).toBe('Listing users ...\nuser\ttags\nguest\t[administrator]\n');
    expect(await ok('list_vhosts')).toBe('Listing vhosts ...\nname\n/\n');
    expect(await ok('list_permissions')).toBe('Listing permissions for vhost "/" ...\nuser\tconfigure\twrite\tread\nguest\t.*\t.*\t.*\n');
    expect(await ok('list_policies')).toBe('Listing policies for vhost "/" ...\n');
  });
});

describe('changing verbs', () => {
  it('users: add, change password, tags, delete — with rabbitmqctl\'s texts and codes', async () => {
    expect(await ok('add_user', 'carol', 'pw')).toBe(
      `Adding user "carol" ...\nDone. Don't forget to grant the user permissions to some virtual hosts! See 'warrenctl help set_permissions' to learn more.\n`,
    );
    const again = await ctl(['add_user', 'carol', 'pw']);
    expect([again.code, again.stdout, again.stderr]).toEqual([70, 'Adding user "carol" ...\n', 'Error:\nUser "carol" already exists\n']);
    expect(await ok('change_password', 'carol', 'pw2')).toBe('Changing password for user "carol" ...\n');
    expect(await ok('set_user_tags', 'carol', 'management', 'monitoring')).toBe('Setting tags for user "carol" to [management, monitoring] ...\n');
    expect(broker.broker.users.authenticate('carol', 'pw2')?.tags).toEqual(['management', 'monitoring']);
    const nobody = await ctl(['set_user_tags', 'nobody', 'x']);
    expect([nobody.code, nobody.stderr]).toEqual([67, 'Error:\nUser "nobody" does not exist\n']);
    expect(await ok('delete_user', 'carol')).toBe('Deleting user "carol" ...\n');
    expect((await ctl(['delete_user', 'carol'])).code).toBe(67);
  });

  it('vhosts, permissions, policies, limits', async () => {
    await ok('add_user', 'dave', 'pw');
    expect(await ok('add_vhost', 'cv')).toBe('Adding vhost "cv" ...\n');
    expect(await ok('set_permissions', '-p', 'cv', 'dave', '^d', '.*', '.*')).toBe('Setting permissions for user "dave" in vhost "cv" ...\n');
    expect(await ok('list_permissions', '-p', 'cv')).toBe('Listing permissions for vhost "cv" ...\nuser\tconfigure\twrite\tread\ndave\t^d\t.*\t.*\nguest\t.*\t.*\t.*\n');
    expect(await ok('clear_permissions', '-p', 'cv', 'dave')).toBe('Clearing permissions for user "dave" in vhost "cv" ...\n');
    expect(await ok('set_policy', '-p', 'cv', '--priority', '3', '--apply-to', 'queues', 'pol', '^a', '{"message-ttl":100}')).toBe(
      'Setting policy "pol" for pattern "^a" to "{"message-ttl":100}" with priority "3" for vhost "cv" ...\n',
    );
    expect(await ok('list_policies', '-p', 'cv')).toBe('Listing policies for vhost "cv" ...\nvhost\tname\tpattern\tapply-to\tdefinition\tpriority\ncv\tpol\t^a\tqueues\t{"message-ttl":100}\t3\n');
    expect(await ok('clear_policy', '-p', 'cv', 'pol')).toBe('Clearing policy "pol" on vhost "cv" ...\n');
    expect(await ok('set_vhost_limits', '-p', 'cv', '{"max-queues": 10}')).toBe('Setting vhost limits to "{"max-queues": 10}" for vhost "cv" ...\n');
    expect(broker.broker.vhosts.get('cv')!.limits).toEqual({ 'max-queues': 10 });
    expect(await ok('delete_vhost', 'cv')).toBe('Deleting vhost "cv" ...\n');
    const gone = await ctl(['delete_vhost', 'cv']);
    expect([gone.code, gone.stderr]).toEqual([65, "Virtual host 'cv' does not exist\n"]);
    const missing = await ctl(['list_queues', '-p', 'cv']);
    expect([missing.code, missing.stderr]).toEqual([65, "Error:\nVirtual host 'cv' does not exist\n"]);
    await ok('delete_user', 'dave');
  });

  it('purge_queue, delete_queue, close_connection', async () => {
    const conn = await amqp.connect(broker.url, { clientProperties: { connection_name: 'to-close' } });
    conn.on('error', () => {});
    const closed = new Promise<Error>((resolve) => conn.on('close', (e: Error) => resolve(e)));
    const ch = await conn.createConfirmChannel();
    await ch.assertQueue('ctl.purge', { durable: true });
    for (let i = 0; i < 4; i++) ch.sendToQueue('ctl.purge', Buffer.from('x'), { persistent: true });
    await ch.waitForConfirms();
    expect(await ok('purge_queue', 'ctl.purge')).toBe("Purging queue 'ctl.purge' in vhost '/' ...\n");
    ch.sendToQueue('ctl.purge', Buffer.from('x'));
    await ch.waitForConfirms();
    expect(await ok('delete_queue', 'ctl.purge')).toBe("Deleting queue 'ctl.purge' on vhost '/' ...\nQueue was successfully deleted with 1 ready messages\n");
    expect(await ctl(['delete_queue', 'ctl.purge'])).toMatchObject({ code: 64, stderr: 'Error:\nQueue not found\n' });
    expect(await ctl(['purge_queue', 'ctl.purge'])).toMatchObject({ code: 69, stderr: 'Error:\nnot_found\n' });
    const names = (await ok('-q', 'list_connections', '--no-table-headers', 'name', 'client_properties')).split('\n').filter((l) => l.includes('"to-close"'));
    const name = names[0]!.split('\t')[0]!;
    expect(await ok('close_connection', name, 'go away')).toBe(`Closing connection ${name}, reason: go away...\n`);
    expect((await closed).message).toContain('CONNECTION_FORCED - go away');
  });

  it('export_definitions and import_definitions', async () => {
    const file = join(tempDir('warrenctl-defs-'), 'defs.json');
    expect(await ok('export_definitions', file)).toBe(`Exporting definitions in JSON to a file at "${file}" ...\n`);
    const defs = JSON.parse(readFileSync(file, 'utf8'));
    expect(defs.exchanges).toContainEqual({ name: 'ctl.x', vhost: '/', type: 'topic', durable: true, auto_delete: false, internal: false, arguments: {} });
    const stdout = JSON.parse(await ok('export_definitions', '-'));
    expect(stdout.queues).toEqual(defs.queues);
    const doc = JSON.stringify({ queues: [{ name: 'ctl.imported', vhost: '/', durable: true, auto_delete: false, arguments: {} }] });
    const r = await ctl(['import_definitions', '-'], { input: doc });
    expect([r.code, r.stdout]).toEqual([0, 'Importing definitions in JSON from a file at "-" ...\nSuccessfully imported definitions.\n']);
    expect(broker.broker.vhosts.get('/')!.queues.has('ctl.imported')).toBe(true);
  });

  it('status and await_startup', async () => {
    const status = await ok('status');
    expect(status).toContain(`Status of node `);
    expect(status).toContain(`Interface: 127.0.0.1, port: ${broker.port}, protocol: amqp, purpose: AMQP 0-9-1`);
    expect(status).toMatch(/Alarms\n\n\(none\)/);
    expect(await ok('await_startup')).toBe('');
  });
});

describe('when Warren is down', () => {
  it('says so in one line and exits non-zero', async () => {
    const port = await freePort();
    const r = await ctl(['list_queues'], { url: `http://127.0.0.1:${port}` });
    expect(r).toEqual({ code: 69, stdout: '', stderr: `cannot reach Warren at http://127.0.0.1:${port} — is it running?\n` });
  });

  it('await_startup waits for a broker that starts later', async () => {
    const port = await freePort();
    const waiting = ctl(['await_startup', '--timeout', '30'], { url: `http://127.0.0.1:${port}` });
    const later = await startTestBroker({ managementPort: port });
    try {
      const r = await waiting;
      expect(r.code).toBe(0);
      expect(r.stdout).toBe('');
    } finally {
      await later.stop();
    }
    const timedOut = await ctl(['await_startup', '--timeout', '1'], { url: `http://127.0.0.1:${port}` });
    expect(timedOut.code).toBe(75);
  });

  it('explains refused credentials and unknown commands', async () => {
    const refused = await ctl(['list_queues', '--password', 'wrong']);
    expect(refused.code).toBe(77);
    expect(refused.stderr).toContain("refused user 'guest': Login failed");
    const unknown = await ctl(['list_bogus']);
    expect(unknown.code).toBe(64);
    expect(unknown.stderr).toContain("Command 'list_bogus' not found.");
    expect((await ctl(['help', 'set_policy'])).stdout).toContain('set_policy [-p <vhost>] [--priority <priority>] [--apply-to <apply-to>] <name> <pattern> <definition>');
  });
});

describe('dlq', () => {
  it('inspects and replays with progress', async () => {
    const conn = await amqp.connect(broker.url);
    const ch = await conn.createConfirmChannel();
    await ch.assertQueue('ctl.dlq', { durable: true });
    await ch.assertQueue('ctl.work', { durable: true, arguments: { 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': 'ctl.dlq', 'x-message-ttl': 0 } });
    for (let i = 0; i < 2500; i++) ch.sendToQueue('ctl.work', Buffer.from(`m${i}`), { persistent: true });
    await ch.waitForConfirms();
    await waitFor(() => broker.broker.vhosts.get('/')!.queues.get('ctl.dlq')!.messageCount === 2500, 'the DLQ to fill', 10_000);
    const inspected = await ok('dlq', 'inspect', 'ctl.dlq', '--count', '2');
    const lines = inspected.split('\n');
    expect(lines[0]).toBe("Listing the first 2 messages of queue 'ctl.dlq' in vhost '/' ...");
    expect(lines[1]).toBe('position\treason\tqueue\texchange\trouting_keys\tcount\ttime\treplay_to\tbytes\tbody');
    expect(lines[2]).toMatch(/^1\texpired\tctl\.work\t\tctl\.work\t1\t\d{4}-\d\d-\d\dT[\d:.]+Z\t\(default\) ctl\.work\t2\t"m0"$/);
    expect(lines[4]).toBe("Summary: 2 expired from 'ctl.work'");
    // Replayed back into ctl.work they expire again (TTL 0) into the DLQ: replay to a plain queue instead.
    await ch.assertQueue('ctl.retry', { durable: true });
    const r = await ctl(['dlq', 'replay', 'ctl.dlq', '--count', '2100', '--to-exchange', '', '--routing-key', 'ctl.retry']);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(
      "Replaying up to 2100 of the 2500 messages of queue 'ctl.dlq' in vhost '/' to exchange 'amq.default' with routing key 'ctl.retry' ...\nReplayed 2100 messages.\n",
    );
    expect(r.stderr).toBe('replayed 1000 of 2100\nreplayed 2000 of 2100\nreplayed 2100 of 2100\n');
    const q = broker.broker.vhosts.get('/')!.queues;
    expect([q.get('ctl.dlq')!.messageCount, q.get('ctl.retry')!.messageCount]).toEqual([400, 2100]);
    const rest = await ctl(['dlq', 'replay', 'ctl.dlq', '--reason', 'rejected', '--formatter', 'json']);
    expect(JSON.parse(rest.stdout)).toEqual({ replayed: 0, skipped: 400, unroutable: 0 });
    await conn.close();
  });
});
