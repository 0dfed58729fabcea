// Dead-letter inspection, replay and message moves: Warren's own API paths (RabbitMQ users
// shovel by hand). The one place that knows their shape:
//   GET  /api/queues/V/Q/dead-letters?count=N  first N messages, left in place, with x_death
//   POST /api/queues/V/Q/replay {count?, reason?, to_exchange?, routing_key?}
//        → {replayed, skipped, unroutable}
import { api, seg } from './api.js';
import type { Death } from './components/message.js';

export interface ReplayOptions {
  count?: number;
  reason?: string;
  /** Republish here instead of where each message died from ('' = the default exchange). */
  toExchange?: string;
  routingKey?: string;
}

export interface ReplayResult {
  replayed: number;
  skipped: number;
  unroutable: number;
}

export interface DeadLetter {
  payload_bytes: number;
  exchange: string;
  routing_key: string;
  x_death: Death[];
  replay_to: { exchange: string; routing_keys: string[] } | null;
}

export function inspectDeadLetters(vhost: string, queue: string, count: number): Promise<DeadLetter[]> {
  return api<DeadLetter[]>(`/queues/${seg(vhost)}/${seg(queue)}/dead-letters?count=${count}&truncate=0`);
}

export async function replayDeadLetters(vhost: string, queue: string, options: ReplayOptions): Promise<ReplayResult> {
  const body: Record<string, unknown> = {};
  if (options.count !== undefined) body['count'] = options.count;
  if (options.reason !== undefined) body['reason'] = options.reason;
  if (options.toExchange !== undefined) body['to_exchange'] = options.toExchange === '' ? 'amq.default' : options.toExchange;
  if (options.routingKey !== undefined) body['routing_key'] = options.routingKey;
  const result = await api<Partial<ReplayResult> | undefined>(`/queues/${seg(vhost)}/${seg(queue)}/replay`, { method: 'POST', body });
  return { replayed: result?.replayed ?? 0, skipped: result?.skipped ?? 0, unroutable: result?.unroutable ?? 0 };
}

/** "Replayed 3 messages." plus what stayed behind and why. */
export function describeReplay(result: ReplayResult, verb: string): string {
  const plural = (n: number): string => `${n} message${n === 1 ? '' : 's'}`;
  const parts = [`${verb} ${plural(result.replayed)}.`];
  if (result.skipped > 0) parts.push(`${plural(result.skipped)} stayed: not dead-lettered, or for another reason.`);
  if (result.unroutable > 0) parts.push(`${plural(result.unroutable)} stayed: they would reach no queue.`);
  return parts.join(' ');
}
