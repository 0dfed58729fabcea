// Message endpoints: publish to an exchange, get messages from a queue (four ack modes), and
// Warren's dead-letter inspection and replay (not in RabbitMQ, whose users shovel by hand):
//   GET  /api/queues/V/Q/dead-letters?count=N   first N messages with their x-death summary
//   POST /api/queues/V/Q/replay                 {count?, reason?, to_exchange?, routing_key?}
//                                               → {replayed, skipped, unroutable}

import { ACK_MODES, firstDeath, type AckMode, type ReplayOptions } from '../../broker/admin-messages.js';
import { AmqpException, NotFound } from '../../protocol/errors.js';
import { vhostFor } from '../access.js';
import { intField, requireKeys, stringField, type Body } from '../body.js';
import type { ManagementContext } from '../context.js';
import { HttpError, badRequest } from '../http-error.js';
import type { ApiRequest, Router } from '../router.js';
import { exchangeNameFromPath } from '../views/exchanges.js';
import { gotMessageRow, payloadJson, propertiesFromJson, propertiesToJson } from '../views/messages.js';

/** Publish answers AMQP refusals as 400 with "CODE TEXT", as RabbitMQ's API does. */
async function asPublishError<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    if (err instanceof AmqpException) throw badRequest(`${err.replyCode} ${err.replyText}`);
    throw err;
  }
}

function decodePayload(body: Body): Buffer {
  const payload = stringField(body, 'payload');
  const encoding = stringField(body, 'payload_encoding');
  if (encoding === 'string') return Buffer.from(payload, 'utf8');
  if (encoding === 'base64') {
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(payload) || payload.length % 4 !== 0) throw badRequest(['not_base64', payload]);
    return Buffer.from(payload, 'base64');
  }
  throw badRequest(['unsupported_encoding', encoding]);
}

function queueNotFound(vhost: string, name: string): HttpError {
  return new HttpError(404, 'not_found', `NOT_FOUND - no queue '${name}' in vhost '${vhost}'`);
}

export function addMessageRoutes(router: Router, ctx: ManagementContext): void {
  router
    .post('/api/exchanges/:vhost/:name/publish', 'management', async (req) => {
      const vhost = vhostFor(ctx, req.caller, req.params['vhost']!);
      const exchange = exchangeNameFromPath(req.params['name']!);
      const body = await req.body();
      requireKeys(body, ['routing_key', 'payload', 'payload_encoding', 'properties']);
      const routingKey = stringField(body, 'routing_key');
      const payload = decodePayload(body);
      const properties = propertiesFromJson(body['properties']);
      return asPublishError(async () => {
        ctx.checkPermission(req.caller.name, vhost.name, 'write', 'exchange', exchange);
        return ctx.messages.publish(vhost.name, exchange, routingKey, properties, payload, req.caller.user);
      });
    })
    .post('/api/queues/:vhost/:name/get', 'management', async (req) => {
      const vhost = vhostFor(ctx, req.caller, req.params['vhost']!);
      const name = req.params['name']!;
      const body = await req.body();
      requireKeys(body, ['count', 'ackmode', 'encoding']);
      const count = intField(body, 'count');
      const ackMode = stringField(body, 'ackmode');
      if (!(ACK_MODES as readonly string[]).includes(ackMode)) {
        throw badRequest(`Unsupported ackmode '${ackMode}'. Please use one of ${ACK_MODES.join(', ')}.`);
      }
      const encoding = stringField(body, 'encoding');
      if (encoding !== 'auto' && encoding !== 'base64') throw badRequest('Unsupported encoding. Please use auto or base64.');
      const truncate = body['truncate'] === undefined || body['truncate'] === null ? undefined : intField(body, 'truncate');
      if (!vhost.queues.has(name)) throw queueNotFound(vhost.name, name);
      ctx.checkPermission(req.caller.name, vhost.name, 'read', 'queue', name);
      const got = await ctx.messages.get(vhost.name, name, Math.max(0, count), ackMode as AckMode);
      return got.map((g) => gotMessageRow(g.message, g.redelivered, g.messageCount, encoding, truncate));
    })
    .get('/api/queues/:vhost/:name/dead-letters', 'management', (req) => {
      const vhost = vhostFor(ctx, req.caller, req.params['vhost']!);
      const name = req.params['name']!;
      if (!vhost.queues.has(name)) throw queueNotFound(vhost.name, name);
      ctx.checkPermission(req.caller.name, vhost.name, 'read', 'queue', name);
      const countRaw = req.query.get('count');
      const count = countRaw === null ? 10 : intField({ count: countRaw }, 'count');
      const truncate = req.query.get('truncate');
      return ctx.messages.inspect(vhost.name, name, Math.max(0, count)).map((m) => {
        const first = firstDeath(m.message, m.deaths);
        return {
          payload_bytes: m.message.bodySize,
          redelivered: m.redelivered,
          exchange: m.message.exchange,
          routing_key: m.message.routingKey,
          properties: propertiesToJson(m.message),
          ...payloadJson(m.message.body, 'auto', truncate === null ? 200 : Number(truncate)),
          x_death: m.deaths.map((d) => ({
            queue: d.queue,
            reason: d.reason,
            exchange: d.exchange,
            'routing-keys': d.routingKeys,
            count: d.count,
            time: d.time,
          })),
          replay_to: first === undefined ? null : { exchange: first.exchange, routing_keys: first.routingKeys },
        };
      });
    })
    .post('/api/queues/:vhost/:name/replay', 'management', async (req) => {
      const vhost = vhostFor(ctx, req.caller, req.params['vhost']!);
      const name = req.params['name']!;
      const body = await req.body();
      if (!vhost.queues.has(name)) throw queueNotFound(vhost.name, name);
      ctx.checkPermission(req.caller.name, vhost.name, 'read', 'queue', name);
      const options: ReplayOptions = {
        mayWrite: (exchange) => ctx.checkPermission(req.caller.name, vhost.name, 'write', 'exchange', exchange),
      };
      if (body['count'] !== undefined && body['count'] !== null) {
        const count = intField(body, 'count');
        if (count < 1) throw badRequest('count must be a positive integer');
        options.count = count;
      }
      if (body['reason'] !== undefined && body['reason'] !== null && body['reason'] !== '') options.reason = stringField(body, 'reason');
      if (body['to_exchange'] !== undefined && body['to_exchange'] !== null) options.toExchange = exchangeNameFromPath(stringField(body, 'to_exchange'));
      if (body['routing_key'] !== undefined && body['routing_key'] !== null) {
        if (options.toExchange === undefined) throw badRequest('routing_key needs to_exchange');
        options.routingKey = stringField(body, 'routing_key');
      }
      try {
        return await ctx.messages.replay(vhost.name, name, options);
      } catch (err) {
        if (err instanceof NotFound) throw badRequest(err.detail);
        throw err;
      }
    })
    .get('/api/aliveness-test/:vhost', 'management', async (req: ApiRequest) => {
      const vhost = vhostFor(ctx, req.caller, req.params['vhost']!);
      // As RabbitMQ: a queue named aliveness-test, a message through it and back.
      await ctx.broker.admin.declareQueue(vhost.name, { name: 'aliveness-test', durable: false });
      await ctx.messages.publish(vhost.name, '', 'aliveness-test', {}, Buffer.from('test_message'), req.caller.user);
      const got = await ctx.messages.get(vhost.name, 'aliveness-test', 1, 'ack_requeue_false');
      if (got.length === 1 && got[0]!.message.body.toString() === 'test_message') return { status: 'ok' };
      return { status: 'failed', reason: 'the test message did not come back' };
    });
}
