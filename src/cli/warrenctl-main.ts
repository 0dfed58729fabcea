// `warrenctl`: rabbitmqctl's verbs for Warren, as a client of the management HTTP API (the only
// management interface). Parses the command line (node:util parseArgs: no dependency needed for
// flags and positionals), runs the verb, and turns failures into rabbitmqctl's exit codes. A broker
// that does not answer is one line: "cannot reach Warren at … — is it running?" (exit 69).

import { parseArgs, type ParseArgsConfig } from 'node:util';
import { ApiError, ManagementClient, Unreachable } from './warrenctl-client.js';
import { VERBS, type Invocation } from './warrenctl-commands.js';
import { CommandError, EX_DATAERR, EX_NOPERM, EX_SOFTWARE, EX_TEMPFAIL, EX_UNAVAILABLE, EX_USAGE, UsageError } from './warrenctl-errors.js';
import { FORMATTERS, type Formatter } from './warrenctl-format.js';

export const DEFAULT_MANAGEMENT_URL = 'http://127.0.0.1:15672';

const GLOBAL_OPTIONS = {
  'management-url': { type: 'string' },
  username: { type: 'string' },
  password: { type: 'string' },
  vhost: { type: 'string', short: 'p' },
  formatter: { type: 'string' },
  'no-table-headers': { type: 'boolean' },
  quiet: { type: 'boolean', short: 'q' },
  timeout: { type: 'string', short: 't' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies NonNullable<ParseArgsConfig['options']>;

const GLOBAL_HELP = `Usage: warrenctl [--management-url <url>] [--username <user>] [--password <password>]
                 [-p <vhost>] [--formatter table|tsv|json] [--no-table-headers] [-q] [-t <seconds>]
                 <command> [<arguments>]

Manages a running Warren through its management HTTP API (the URL may also be given as
WARREN_MANAGEMENT_URL; default ${DEFAULT_MANAGEMENT_URL}; user guest/guest by default).

Commands:
`;

export interface Io {
  out(s: string): void;
  err(s: string): void;
  env: NodeJS.ProcessEnv;
}

const processIo: Io = {
  out: (s) => process.stdout.write(s),
  err: (s) => process.stderr.write(s),
  env: process.env,
};

function commandList(): string {
  return Object.entries(VERBS)
    .map(([name, v]) => `   ${name.padEnd(22)} ${v.summary ?? v.help.split('\n')[0]}`)
    .concat([`   ${'help'.padEnd(22)} Displays usage information for a command`])
    .join('\n');
}

function verbHelp(name: string): string | undefined {
  const verb = VERBS[name];
  if (verb === undefined) return undefined;
  return `Usage\n\nwarrenctl [--management-url <url>] [--username <user>] [--password <password>] ${verb.usage}\n\n${verb.help}\n`;
}

/** Runs warrenctl with the given arguments; resolves with the exit code. */
export async function main(argv: string[], io: Io = processIo): Promise<number> {
  const allOptions: Record<string, { type: 'string' | 'boolean'; short?: string }> = { ...GLOBAL_OPTIONS };
  for (const v of Object.values(VERBS)) Object.assign(allOptions, v.options ?? {});
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({ args: argv, options: allOptions, allowPositionals: true, strict: true });
  } catch (err) {
    io.err(`Error (argument validation): ${(err as Error).message}\nSee 'warrenctl help'.\n`);
    return EX_USAGE;
  }
  const values = parsed.values as Record<string, string | boolean | undefined>;
  const [verbName, ...args] = parsed.positionals;
  if (verbName === undefined || verbName === 'help' || (values['help'] === true && verbName === undefined)) {
    const topic = verbName === 'help' ? args[0] : undefined;
    if (topic !== undefined) {
      const text = verbHelp(topic);
      if (text === undefined) {
        io.err(`Command '${topic}' not found. See 'warrenctl help'.\n`);
        return EX_USAGE;
      }
      io.out(text);
      return 0;
    }
    io.out(GLOBAL_HELP + commandList() + '\n\nUse \'warrenctl help <command>\' to learn more about a command.\n');
    return verbName === undefined && values['help'] !== true ? EX_USAGE : 0;
  }
  const verb = VERBS[verbName];
  if (verb === undefined) {
    const close = Object.keys(VERBS).find((v) => v.startsWith(verbName.slice(0, 5)));
    io.err(`\nCommand '${verbName}' not found. \n${close === undefined ? '' : `Did you mean '${close}'? \n`}\n`);
    return EX_USAGE;
  }
  if (values['help'] === true) {
    io.out(verbHelp(verbName)!);
    return 0;
  }
  for (const key of Object.keys(values)) {
    if (!(key in GLOBAL_OPTIONS) && !(key in (verb.options ?? {}))) {
      io.err(`Error (argument validation): option '--${key}' does not apply to ${verbName}\n${verbHelp(verbName)}`);
      return EX_USAGE;
    }
  }
  const formatter = (values['formatter'] ?? 'table') as string;
  if (!(FORMATTERS as readonly string[]).includes(formatter)) {
    io.err(`Error (argument validation): --formatter must be one of ${FORMATTERS.join(', ')} (got '${formatter}')\n`);
    return EX_USAGE;
  }
  const timeoutRaw = values['timeout'];
  if (timeoutRaw !== undefined && (typeof timeoutRaw !== 'string' || !/^\d+(\.\d+)?$/.test(timeoutRaw))) {
    io.err(`Error (argument validation): --timeout must be a number of seconds (got '${String(timeoutRaw)}')\n`);
    return EX_USAGE;
  }
  const url = (values['management-url'] as string | undefined) ?? io.env['WARREN_MANAGEMENT_URL'] ?? DEFAULT_MANAGEMENT_URL;
  if (!/^https?:\/\/[^/]+/.test(url)) {
    io.err(`Error (argument validation): --management-url must look like http://host:port (got '${url}')\n`);
    return EX_USAGE;
  }
  const timeoutMs = timeoutRaw === undefined ? (verbName === 'await_startup' ? 300_000 : 60_000) : Number(timeoutRaw) * 1000;
  const client = new ManagementClient({
    url,
    username: (values['username'] as string | undefined) ?? 'guest',
    password: (values['password'] as string | undefined) ?? 'guest',
    timeoutMs: Math.min(timeoutMs, 60_000),
  });
  const inv: Invocation = {
    client,
    args,
    vhost: (values['vhost'] as string | undefined) ?? '/',
    options: values,
    output: { formatter: formatter as Formatter, headers: values['no-table-headers'] !== true, quiet: values['quiet'] === true },
    out: io.out,
    progress: (s) => io.err(`${s}\n`),
    timeoutMs,
  };
  try {
    if (verbName === 'await_startup') return await awaitStartup(inv, io);
    await verb.run(inv);
    return 0;
  } catch (err) {
    return report(err, inv, io, verbName);
  }
}

function report(err: unknown, inv: Invocation, io: Io, verbName: string): number {
  if (err instanceof Unreachable) {
    io.err(`${err.message}\n`);
    return EX_UNAVAILABLE;
  }
  if (err instanceof UsageError) {
    io.err(`Error (argument validation): ${err.message}\n${verbHelp(verbName) ?? ''}`);
    return EX_USAGE;
  }
  if (err instanceof CommandError) {
    io.err(err.plain ? `${err.message}\n` : `Error:\n${err.message}\n`);
    return err.exitCode;
  }
  if (err instanceof ApiError) {
    if (err.status === 401) {
      io.err(`Error:\nWarren at ${inv.client.url} refused user '${inv.client.options.username}': ${err.reason} (give --username and --password of a user tagged for management)\n`);
      return EX_NOPERM;
    }
    if (err.status === 404) {
      io.err(`Error:\nnot found: ${err.path}${err.reason !== '' && err.reason !== 'Not Found' ? ` (${err.reason})` : ''}\n`);
      return EX_DATAERR;
    }
    io.err(`Error:\n${err.reason}\n`);
    return err.status >= 500 ? EX_SOFTWARE : EX_DATAERR;
  }
  io.err(`Error:\n${(err as Error).message ?? String(err)}\n`);
  return EX_SOFTWARE;
}

/** Polls the readiness health check until Warren serves clients, or the timeout passes. */
async function awaitStartup(inv: Invocation, io: Io): Promise<number> {
  const deadline = Date.now() + inv.timeoutMs;
  let told = false;
  for (;;) {
    try {
      await inv.client.get('/api/health/checks/ready-to-serve-clients');
      return 0;
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) return report(err, inv, io, 'await_startup');
      if (!(err instanceof Unreachable) && !(err instanceof ApiError && err.status === 503)) return report(err, inv, io, 'await_startup');
      if (!told && !inv.output.quiet) {
        io.err(`Waiting for Warren at ${inv.client.url} to start (up to ${Math.round(inv.timeoutMs / 1000)} s) ...\n`);
        told = true;
      }
    }
    if (Date.now() > deadline) {
      io.err(`Error:\nWarren at ${inv.client.url} did not become ready within ${Math.round(inv.timeoutMs / 1000)} seconds\n`);
      return EX_TEMPFAIL;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}
