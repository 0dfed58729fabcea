// Dead-letter replay and message moves: Warren's own API paths (not in RabbitMQ, whose users
// shovel by hand). The one place that knows their shape.
import { api, seg } from './api.js';

export interface ReplayOptions {
  count?: number;
  reason?: string;
  /** Republish here instead of where each message died from ('' = the default exchange). */
  toExchange?: string;
  routingKey?: string;
}

export interface ReplayResult {
  replayed: number;
}

export async function replayDeadLetters(vhost: string, queue: string, options: ReplayOptions): Promise<ReplayResult> {
  const body: Record<string, unknown> = {};
  if (options.count !== undefined) body['count'] = options.count;
  if (options.reason !== undefined) body['reason'] = options.reason;
  if (options.toExchange !== undefined) body['to_exchange'] = options.toExchange;
  if (options.routingKey !== undefined) body['routing_key'] = options.routingKey;
  const result = await api<Partial<ReplayResult> | undefined>(`/queues/${seg(vhost)}/${seg(queue)}/replay`, { method: 'POST', body });
  return { replayed: result?.replayed ?? 0 };
}
