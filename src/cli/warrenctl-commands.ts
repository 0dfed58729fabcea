// warrenctl's verbs: rabbitmqctl's names, arguments, messages and exit codes, each one a few calls
// to the management HTTP API. A verb gets the parsed command line and an output; it throws
// UsageError for bad arguments and CommandError for refusals (the main turns them into exit codes).

import { readFileSync, writeFileSync } from 'node:fs';
import { ApiError, seg, type ManagementClient } from './warrenctl-client.js';
import { banner, printRows, type OutputOptions } from './warrenctl-format.js';
import { LIST_VERBS } from './warrenctl-lists.js';
import { DLQ_HELP, runDlq } from './warrenctl-dlq.js';
import { CLUSTER_VERBS } from './warrenctl-cluster.js';

export { CommandError, UsageError, EX_DATAERR, EX_NOUSER, EX_NOPERM, EX_SOFTWARE, EX_TEMPFAIL, EX_UNAVAILABLE, EX_USAGE } from './warrenctl-errors.js';
import { CommandError, UsageError, EX_DATAERR, EX_NOUSER, EX_SOFTWARE, EX_UNAVAILABLE, EX_USAGE } from './warrenctl-errors.js';

export interface Invocation {
  client: ManagementClient;
  args: string[];
  vhost: string;
  options: Record<string, string | boolean | undefined>;
  output: OutputOptions;
  out: (s: string) => void;
  /** progress lines for long operations (stderr) */
  progress: (s: string) => void;
  timeoutMs: number;
}

export interface Verb {
  usage: string;
  /** one line for `warrenctl help` */
  summary?: string;
  help: string;
  /** verb-specific options (beyond the global ones) */
  options?: Record<string, { type: 'string' | 'boolean'; short?: string }>;
  run(inv: Invocation): Promise<void>;
}

function need(inv: Invocation, count: number, usage: string): string[] {
  if (inv.args.length < count) throw new UsageError(`not enough arguments.\nUsage: warrenctl ${usage}`);
  if (inv.args.length > count) throw new UsageError(`too many arguments.\nUsage: warrenctl ${usage}`);
  return inv.args;
}

function say(inv: Invocation, line: string): void {
  if (!inv.output.quiet) inv.out(`${line}\n`);
}

/** GET that answers undefined on 404 instead of throwing. */
async function find<T>(client: ManagementClient, path: string): Promise<T | undefined> {
  try {
    return await client.get<T>(path);
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) return undefined;
    throw err;
  }
}

async function requireVhost(inv: Invocation): Promise<void> {
  if ((await find(inv.client, `/api/vhosts/${seg(inv.vhost)}`)) === undefined) {
    throw new CommandError(`Virtual host '${inv.vhost}' does not exist`, EX_DATAERR);
  }
}

function listVerb(name: string): Verb {
  const spec = LIST_VERBS[name]!;
  return {
    usage: `${name}${spec.vhostScoped ? ' [-p <vhost>]' : ''} [--no-table-headers] [<column> ...]`,
    summary: `Lists ${name.slice(5)} and their properties`,
    help: `Lists ${name.slice(5)} and their properties.\n\n<column> must be one of ${spec.columns.join(', ')}\n(default: ${spec.defaults.join(' ')}).`,
    async run(inv) {
      const columns = inv.args.length > 0 ? inv.args.flatMap((a) => a.split(',')).filter((c) => c !== '') : [...spec.defaults];
      const unknown = columns.filter((c) => !spec.columns.includes(c));
      if (unknown.length > 0) throw new UsageError(`Info key(s) ${unknown.join(',')} are not supported`);
      if (spec.vhostScoped) await requireVhost(inv);
      banner(inv.out, spec.banner(inv.vhost), inv.output);
      const rows = await spec.fetch(inv.client, inv.vhost);
      printRows(inv.out, rows, columns, inv.output, spec.render);
    },
  };
}

function tagsOf(args: string[]): string[] {
  return args.flatMap((a) => a.split(',')).map((t) => t.trim()).filter((t) => t !== '');
}

export const VERBS: Record<string, Verb> = {
  ...Object.fromEntries(Object.keys(LIST_VERBS).map((n) => [n, listVerb(n)])),

  add_user: {
    usage: 'add_user <username> <password>',
    help: 'Creates a new user. It has no permissions for any virtual host until granted (set_permissions).',
    async run(inv) {
      const [user, password] = need(inv, 2, this.usage);
      say(inv, `Adding user "${user}" ...`);
      if ((await find(inv.client, `/api/users/${seg(user!)}`)) !== undefined) throw new CommandError(`User "${user}" already exists`, EX_SOFTWARE);
      await inv.client.put(`/api/users/${seg(user!)}`, { password, tags: '' });
      say(inv, `Done. Don't forget to grant the user permissions to some virtual hosts! See 'warrenctl help set_permissions' to learn more.`);
    },
  },
  delete_user: {
    usage: 'delete_user <username>',
    help: "Removes a user; the user's open connections are closed.",
    async run(inv) {
      const [user] = need(inv, 1, this.usage);
      say(inv, `Deleting user "${user}" ...`);
      try {
        await inv.client.delete(`/api/users/${seg(user!)}`);
      } catch (err) {
        if (err instanceof ApiError && err.status === 404) throw new CommandError(`User "${user}" does not exist`, EX_NOUSER);
        throw err;
      }
    },
  },
  change_password: {
    usage: 'change_password <username> <new_password>',
    help: "Changes a user's password (its tags stay).",
    async run(inv) {
      const [user, password] = need(inv, 2, this.usage);
      say(inv, `Changing password for user "${user}" ...`);
      const existing = await find<{ tags: string[] }>(inv.client, `/api/users/${seg(user!)}`);
      if (existing === undefined) throw new CommandError(`User "${user}" does not exist`, EX_NOUSER);
      await inv.client.put(`/api/users/${seg(user!)}`, { password, tags: existing.tags });
    },
  },
  set_user_tags: {
    usage: 'set_user_tags <username> <tag> [...]',
    help: "Sets a user's tags (administrator, monitoring, policymaker, management, impersonator, or your own); none clears them.",
    async run(inv) {
      if (inv.args.length < 1) throw new UsageError(`not enough arguments.\nUsage: warrenctl ${this.usage}`);
      const [user, ...rest] = inv.args;
      const tags = tagsOf(rest);
      say(inv, `Setting tags for user "${user}" to [${tags.join(', ')}] ...`);
      const existing = await find<{ password_hash: string; hashing_algorithm: string }>(inv.client, `/api/users/${seg(user!)}`);
      if (existing === undefined) throw new CommandError(`User "${user}" does not exist`, EX_NOUSER);
      await inv.client.put(`/api/users/${seg(user!)}`, {
        password_hash: existing.password_hash,
        hashing_algorithm: existing.hashing_algorithm,
        tags,
      });
    },
  },
  add_vhost: {
    usage: 'add_vhost <vhost> [--description <text>] [--tags <tag,...>]',
    help: 'Creates a virtual host.',
    options: { description: { type: 'string' }, tags: { type: 'string' } },
    async run(inv) {
      const [vhost] = need(inv, 1, this.usage);
      say(inv, `Adding vhost "${vhost}" ...`);
      const body: Record<string, unknown> = {};
      if (typeof inv.options['description'] === 'string') body['description'] = inv.options['description'];
      if (typeof inv.options['tags'] === 'string') body['tags'] = inv.options['tags'];
      await inv.client.put(`/api/vhosts/${seg(vhost!)}`, body);
    },
  },
  delete_vhost: {
    usage: 'delete_vhost <vhost>',
    help: 'Deletes a virtual host with everything in it: its connections are closed, its queues and their messages removed.',
    async run(inv) {
      const [vhost] = need(inv, 1, this.usage);
      say(inv, `Deleting vhost "${vhost}" ...`);
      try {
        await inv.client.delete(`/api/vhosts/${seg(vhost!)}`);
      } catch (err) {
        if (err instanceof ApiError && err.status === 404) throw new CommandError(`Virtual host '${vhost}' does not exist`, EX_DATAERR, true);
        throw err;
      }
    },
  },
  set_permissions: {
    usage: 'set_permissions [-p <vhost>] <username> <conf> <write> <read>',
    help: "Sets a user's configure, write and read permissions (regular expressions) in a virtual host.",
    async run(inv) {
      const [user, configure, write, read] = need(inv, 4, this.usage);
      say(inv, `Setting permissions for user "${user}" in vhost "${inv.vhost}" ...`);
      await inv.client.put(`/api/permissions/${seg(inv.vhost)}/${seg(user!)}`, { configure, write, read });
    },
  },
  clear_permissions: {
    usage: 'clear_permissions [-p <vhost>] <username>',
    help: "Revokes a user's permissions in a virtual host.",
    async run(inv) {
      const [user] = need(inv, 1, this.usage);
      say(inv, `Clearing permissions for user "${user}" in vhost "${inv.vhost}" ...`);
      try {
        await inv.client.delete(`/api/permissions/${seg(inv.vhost)}/${seg(user!)}`);
      } catch (err) {
        if (!(err instanceof ApiError && err.status === 404)) throw err;
      }
    },
  },
  set_policy: {
    usage: 'set_policy [-p <vhost>] [--priority <priority>] [--apply-to <apply-to>] <name> <pattern> <definition>',
    help: 'Sets a policy: queues/exchanges whose names match the pattern get the definition (JSON), e.g. {"message-ttl":60000}.',
    options: { priority: { type: 'string' }, 'apply-to': { type: 'string' } },
    async run(inv) {
      const [name, pattern, definition] = need(inv, 3, this.usage);
      const priority = typeof inv.options['priority'] === 'string' ? inv.options['priority'] : '0';
      const applyTo = typeof inv.options['apply-to'] === 'string' ? inv.options['apply-to'] : 'all';
      say(inv, `Setting policy "${name}" for pattern "${pattern}" to "${definition}" with priority "${priority}" for vhost "${inv.vhost}" ...`);
      let parsed: unknown;
      try {
        parsed = JSON.parse(definition!);
      } catch {
        throw new CommandError(`could not parse JSON document: ${definition}`, EX_DATAERR);
      }
      if (!/^-?\d+$/.test(priority)) throw new CommandError(`priority must be an integer (got '${priority}')`, EX_DATAERR);
      await inv.client.put(`/api/policies/${seg(inv.vhost)}/${seg(name!)}`, { pattern, definition: parsed, priority: Number(priority), 'apply-to': applyTo });
    },
  },
  clear_policy: {
    usage: 'clear_policy [-p <vhost>] <name>',
    help: 'Clears a policy.',
    async run(inv) {
      const [name] = need(inv, 1, this.usage);
      say(inv, `Clearing policy "${name}" on vhost "${inv.vhost}" ...`);
      try {
        await inv.client.delete(`/api/policies/${seg(inv.vhost)}/${seg(name!)}`);
      } catch (err) {
        if (err instanceof ApiError && err.status === 404) throw new CommandError(`Parameter does not exist`, EX_DATAERR);
        throw err;
      }
    },
  },
  set_vhost_limits: {
    usage: 'set_vhost_limits [-p <vhost>] <definition>',
    help: 'Sets virtual host limits, e.g. {"max-connections": 100, "max-queues": 500} (negative = no limit).',
    async run(inv) {
      const [definition] = need(inv, 1, this.usage);
      say(inv, `Setting vhost limits to "${definition}" for vhost "${inv.vhost}" ...`);
      let parsed: unknown;
      try {
        parsed = JSON.parse(definition!);
      } catch {
        throw new CommandError(`could not parse JSON document: ${definition}`, EX_DATAERR);
      }
      if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new CommandError('limits must be a JSON object', EX_DATAERR);
      const current = await inv.client.get<{ value: Record<string, unknown> }[]>(`/api/vhost-limits/${seg(inv.vhost)}`);
      for (const name of Object.keys(current[0]?.value ?? {})) {
        if (!(name in (parsed as object))) await inv.client.delete(`/api/vhost-limits/${seg(inv.vhost)}/${seg(name)}`);
      }
      for (const [name, value] of Object.entries(parsed as Record<string, unknown>)) {
        await inv.client.put(`/api/vhost-limits/${seg(inv.vhost)}/${seg(name)}`, { value });
      }
    },
  },
  purge_queue: {
    usage: 'purge_queue [-p <vhost>] <queue>',
    help: "Removes a queue's ready messages (those delivered and not yet acknowledged stay).",
    async run(inv) {
      const [queue] = need(inv, 1, this.usage);
      say(inv, `Purging queue '${queue}' in vhost '${inv.vhost}' ...`);
      try {
        await inv.client.delete(`/api/queues/${seg(inv.vhost)}/${seg(queue!)}/contents`);
      } catch (err) {
        if (err instanceof ApiError && err.status === 404) throw new CommandError('not_found', EX_UNAVAILABLE);
        throw err;
      }
    },
  },
  delete_queue: {
    usage: 'delete_queue [-p <vhost>] <queue> [--if-empty|-e] [--if-unused|-u]',
    help: 'Deletes a queue and its messages (only if empty or unused, when asked).',
    options: { 'if-empty': { type: 'boolean', short: 'e' }, 'if-unused': { type: 'boolean', short: 'u' } },
    async run(inv) {
      const [queue] = need(inv, 1, this.usage);
      say(inv, `Deleting queue '${queue}' on vhost '${inv.vhost}' ...`);
      const path = `/api/queues/${seg(inv.vhost)}/${seg(queue!)}`;
      const found = await find<{ messages_ready: number }>(inv.client, `${path}?columns=messages_ready`);
      if (found === undefined) throw new CommandError('Queue not found', EX_USAGE);
      const query = [inv.options['if-empty'] === true ? 'if-empty=true' : '', inv.options['if-unused'] === true ? 'if-unused=true' : '']
        .filter((q) => q !== '')
        .join('&');
      await inv.client.delete(query === '' ? path : `${path}?${query}`);
      say(inv, `Queue was successfully deleted with ${found.messages_ready} ready messages`);
    },
  },
  close_connection: {
    usage: 'close_connection <connection name> <explanation>',
    help: 'Closes a connection (320 CONNECTION_FORCED with the explanation). Names are as list_connections name shows them.',
    async run(inv) {
      const [name, reason] = need(inv, 2, this.usage);
      say(inv, `Closing connection ${name}, reason: ${reason}...`);
      try {
        await inv.client.delete(`/api/connections/${seg(name!)}`, { 'X-Reason': reason! });
      } catch (err) {
        if (err instanceof ApiError && err.status === 404) throw new CommandError(`no connection named '${name}' (see warrenctl list_connections name)`, EX_DATAERR);
        throw err;
      }
    },
  },
  export_definitions: {
    usage: 'export_definitions <file_path | "-">',
    help: 'Exports users, vhosts, permissions, policies, queues, exchanges and bindings as RabbitMQ definitions JSON ("-" = stdout).',
    async run(inv) {
      const [path] = need(inv, 1, this.usage);
      const defs = await inv.client.get('/api/definitions');
      if (path === '-') {
        inv.out(JSON.stringify(defs) + '\n');
        return;
      }
      say(inv, `Exporting definitions in JSON to a file at "${path}" ...`);
      writeFileSync(path!, JSON.stringify(defs));
    },
  },
  import_definitions: {
    usage: 'import_definitions <file_path | "-">',
    help: 'Imports RabbitMQ definitions JSON (from RabbitMQ or Warren; "-" = stdin).',
    async run(inv) {
      const [path] = need(inv, 1, this.usage);
      let text: string;
      try {
        text = readFileSync(path === '-' ? 0 : path!, 'utf8');
      } catch (err) {
        throw new CommandError(`cannot read ${path}: ${(err as Error).message}`, EX_DATAERR);
      }
      let doc: unknown;
      try {
        doc = JSON.parse(text);
      } catch {
        throw new CommandError(`${path} is not JSON`, EX_DATAERR);
      }
      say(inv, `Importing definitions in JSON from a file at "${path}" ...`);
      await inv.client.post('/api/definitions', doc);
      say(inv, 'Successfully imported definitions.');
    },
  },
  status: {
    usage: 'status',
    help: 'Displays the node status: versions, uptime, alarms, memory, listeners and object counts.',
    async run(inv) {
      const [overview, nodes] = await Promise.all([
        inv.client.get<Record<string, any>>('/api/overview'),
        inv.client.get<Record<string, any>[]>('/api/nodes').catch(() => [] as Record<string, any>[]),
      ]);
      const node = nodes[0] ?? {};
      if (inv.output.formatter === 'json') {
        inv.out(JSON.stringify({ overview, node }) + '\n');
        return;
      }
      const mb = (b: unknown): string => (typeof b === 'number' ? `${(b / 1024 / 1024).toFixed(1)} MiB` : '?');
      const alarms = [node['mem_alarm'] === true ? 'memory' : '', node['disk_free_alarm'] === true ? 'disk' : ''].filter((a) => a !== '');
      const lines = [
        `Status of node ${overview['node']} ...`,
        'Runtime',
        '',
        `OS PID: ${node['os_pid'] ?? '?'}`,
        `Uptime (seconds): ${typeof node['uptime'] === 'number' ? Math.floor(node['uptime'] / 1000) : '?'}`,
        `Warren version: ${overview['product_version']}`,
        `RabbitMQ API version: ${overview['rabbitmq_version']}`,
        `Node name: ${overview['node']}`,
        `Cluster name: ${overview['cluster_name']}`,
        `Runtime: ${overview['erlang_version']}`,
        '',
        'Data directory',
        '',
        `Node data directory: ${node['db_dir'] ?? '?'}`,
        '',
        'Alarms',
        '',
        alarms.length === 0 ? '(none)' : alarms.map((a) => `${a} alarm in effect`).join('\n'),
        '',
        'Memory',
        '',
        `Total memory used: ${mb(node['mem_used'])}`,
        `Free disk space: ${mb(node['disk_free'])}`,
        '',
        'Listeners',
        '',
        ...((overview['listeners'] ?? []) as Record<string, unknown>[]).map(
          (l) => `Interface: ${l['ip_address']}, port: ${l['port']}, protocol: ${l['protocol']}, purpose: ${l['protocol'] === 'amqp' ? 'AMQP 0-9-1' : 'HTTP API'}`,
        ),
        '',
        'Totals',
        '',
        `Connection count: ${overview['object_totals']?.['connections'] ?? 0}`,
        `Queue count: ${overview['object_totals']?.['queues'] ?? 0}`,
        `Virtual host count: ${(await inv.client.get<unknown[]>('/api/vhosts')).length}`,
        `Messages: ${overview['queue_totals']?.['messages'] ?? 0}`,
      ];
      inv.out(lines.join('\n') + '\n');
    },
  },
  await_startup: {
    usage: 'await_startup [--timeout <seconds>]',
    help: 'Waits until Warren answers and is ready to serve clients (default: up to 300 seconds).',
    async run() {
      // Handled by the main (it must retry while Warren is unreachable).
    },
  },
  dlq: {
    usage: 'dlq inspect|replay [-p <vhost>] <queue> [options]',
    summary: 'Inspects a dead-letter queue, or replays its messages to where they died from',
    help: DLQ_HELP,
    options: { count: { type: 'string' }, reason: { type: 'string' }, 'to-exchange': { type: 'string' }, 'routing-key': { type: 'string' } },
    run: runDlq,
  },
  ...CLUSTER_VERBS,
};
