// warrenctl dlq inspect|replay: Warren's dead-letter tools, over the management API's own paths
// (GET /api/queues/V/Q/dead-letters, POST /api/queues/V/Q/replay). A replay runs in chunks so a
// long one shows progress; each chunk's messages leave the queue in the same commit that stores
// them where they go.

import { seg } from './warrenctl-client.js';
import { banner, printRows } from './warrenctl-format.js';
import type { Invocation } from './warrenctl-commands.js';
import { UsageError } from './warrenctl-errors.js';

export const DLQ_HELP = [
  'Dead-letter queues.',
  '  dlq inspect [-p <vhost>] <queue> [--count N]',
  '      Shows the first N messages (default 10) without removing them: their most recent death',
  '      (reason, queue, exchange, routing keys, count, time), where a replay sends them, and the',
  '      start of the body.',
  '  dlq replay [-p <vhost>] <queue> [--count N] [--reason R] [--to-exchange X [--routing-key K]]',
  '      Republishes messages to where they first died from (x-death), or to exchange X (with',
  '      routing key K, default the message\'s own); --reason: only messages whose most recent',
  '      death had this reason (rejected, expired, maxlen, delivery_limit). Messages that cannot',
  '      go anywhere stay. Nothing is lost or duplicated if Warren stops in the middle.',
].join('\n');

/** Messages replayed per API call (a progress line after each). */
export const REPLAY_CHUNK = 1000;

interface Death {
  queue: string;
  reason: string;
  exchange: string;
  'routing-keys': string[];
  count: number;
  time: number | null;
}

interface Inspected {
  payload: string;
  payload_encoding: string;
  payload_bytes: number;
  routing_key: string;
  x_death: Death[];
  replay_to: { exchange: string; routing_keys: string[] } | null;
}

interface ReplayAnswer {
  replayed: number;
  skipped: number;
  unroutable: number;
}

class DlqUsage extends Error {}

function positiveInt(v: unknown, name: string): number | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || !/^\d+$/.test(v) || Number(v) < 1) throw new DlqUsage(`--${name} must be a positive whole number`);
  return Number(v);
}

export async function runDlq(inv: Invocation): Promise<void> {
  const [sub, queue, ...extra] = inv.args;
  try {
    if ((sub !== 'inspect' && sub !== 'replay') || queue === undefined || extra.length > 0) {
      throw new DlqUsage('usage: warrenctl dlq inspect|replay <queue> [options] (see warrenctl help dlq)');
    }
    if (sub === 'inspect') await inspect(inv, queue);
    else await replay(inv, queue);
  } catch (err) {
    if (err instanceof DlqUsage) throw new UsageError(err.message);
    throw err;
  }
}

async function inspect(inv: Invocation, queue: string): Promise<void> {
  const count = positiveInt(inv.options['count'], 'count') ?? 10;
  const messages = await inv.client.get<Inspected[]>(`/api/queues/${seg(inv.vhost)}/${seg(queue)}/dead-letters?count=${count}&truncate=60`);
  if (inv.output.formatter === 'json') {
    inv.out(JSON.stringify(messages, null, 2) + '\n');
    return;
  }
  banner(inv.out, `Listing the first ${count} messages of queue '${queue}' in vhost '${inv.vhost}' ...`, inv.output);
  const rows = messages.map((m, i) => {
    const last = m.x_death[0];
    return {
      position: i + 1,
      reason: last?.reason ?? '',
      queue: last?.queue ?? '',
      exchange: last?.exchange ?? '',
      routing_keys: last === undefined ? '' : last['routing-keys'].join(','),
      count: last?.count ?? '',
      time: last?.time === null || last?.time === undefined ? '' : new Date(last.time * 1000).toISOString(),
      replay_to: m.replay_to === null ? '(not dead-lettered)' : `${m.replay_to.exchange === '' ? '(default)' : m.replay_to.exchange} ${m.replay_to.routing_keys.join(',')}`,
      bytes: m.payload_bytes,
      body: m.payload_encoding === 'string' ? JSON.stringify(m.payload) : `base64:${m.payload}`,
    };
  });
  printRows(inv.out, rows, ['position', 'reason', 'queue', 'exchange', 'routing_keys', 'count', 'time', 'replay_to', 'bytes', 'body'], inv.output);
  if (!inv.output.quiet && messages.length > 0) {
    const byReason = new Map<string, number>();
    for (const m of messages) {
      const key = m.x_death[0] === undefined ? '(none)' : `${m.x_death[0].reason} from '${m.x_death[0].queue}'`;
      byReason.set(key, (byReason.get(key) ?? 0) + 1);
    }
    inv.out(`Summary: ${[...byReason].map(([k, n]) => `${n} ${k}`).join('; ')}\n`);
  }
}

async function replay(inv: Invocation, queue: string): Promise<void> {
  const limit = positiveInt(inv.options['count'], 'count');
  const reason = inv.options['reason'];
  const toExchange = inv.options['to-exchange'];
  const routingKey = inv.options['routing-key'];
  if (routingKey !== undefined && toExchange === undefined) throw new DlqUsage('--routing-key needs --to-exchange');
  const path = `/api/queues/${seg(inv.vhost)}/${seg(queue)}`;
  const depth = (await inv.client.get<{ messages_ready: number }>(`${path}?columns=messages_ready`)).messages_ready;
  const target = toExchange === undefined ? 'where they died from' : `exchange '${toExchange === '' ? 'amq.default' : toExchange}'${routingKey === undefined ? '' : ` with routing key '${routingKey}'`}`;
  if (!inv.output.quiet && inv.output.formatter !== 'json') inv.out(`Replaying ${limit === undefined ? 'the' : `up to ${limit} of the`} ${depth} messages of queue '${queue}' in vhost '${inv.vhost}' to ${target} ...\n`);
  const total = limit === undefined ? depth : Math.min(limit, depth);
  let replayed = 0;
  let last: ReplayAnswer = { replayed: 0, skipped: 0, unroutable: 0 };
  while (replayed < total) {
    const chunk = Math.min(REPLAY_CHUNK, total - replayed);
    const body: Record<string, unknown> = { count: chunk };
    if (typeof reason === 'string') body['reason'] = reason;
    if (typeof toExchange === 'string') body['to_exchange'] = toExchange === '' ? 'amq.default' : toExchange;
    if (typeof routingKey === 'string') body['routing_key'] = routingKey;
    last = await inv.client.post<ReplayAnswer>(`${path}/replay`, body);
    replayed += last.replayed;
    if (total > REPLAY_CHUNK) inv.progress(`replayed ${replayed} of ${total}`);
    if (last.replayed < chunk) break;
  }
  if (inv.output.formatter === 'json') {
    inv.out(JSON.stringify({ replayed, skipped: last.skipped, unroutable: last.unroutable }) + '\n');
    return;
  }
  const left = [last.skipped > 0 ? `${last.skipped} left in place (not dead-lettered or another reason)` : '', last.unroutable > 0 ? `${last.unroutable} left in place (nowhere to go)` : '']
    .filter((s) => s !== '')
    .join(', ');
  inv.out(`Replayed ${replayed} message${replayed === 1 ? '' : 's'}${left === '' ? '' : `; ${left}`}.\n`);
}
