// Write endpoints and the model's read endpoints, all through the broker's admin façade: users,
// vhosts, permissions, topic permissions, policies, operator policies, runtime and global
// parameters, vhost limits, declaring and deleting queues, exchanges and bindings, purging, and
// definitions export/import. Handlers parse and authorise, call the façade (which validates,
// persists, applies, and resolves after the commit), and answer as RabbitMQ's API does:
// 201 when something was created, 204 otherwise, 404 for what is not there.

import type { Admin, PolicyView } from '../../broker/admin.js';
import type { PolicyInput } from '../../broker/policies.js';
import { isKnownExchangeType } from '../../broker/exchange/types.js';
import { loginVhosts, vhostFor } from '../access.js';
import { OBJECT_REFUSED } from '../auth.js';
import { boolField, stringField, type Body } from '../body.js';
import type { ManagementContext } from '../context.js';
import { HttpError, badRequest, notFound } from '../http-error.js';
import { jsonToTable, tableToJson } from '../json.js';
import { list, single, type Listed, type Row } from '../listing.js';
import { CREATED, NO_CONTENT, Reply, type ApiRequest, type Router } from '../router.js';
import { exchangeNameFromPath, matchesPropertiesKey, propertiesKey, bindingsOf } from '../views/exchanges.js';

const rows = <T extends object>(key: (t: T) => string[]): Listed<T> => ({
  name: (t) => key(t)[key(t).length - 1] ?? '',
  sortKeys: key,
  row: (t) => ({ ...t }) as Row,
});

const permissionListing = rows<{ user: string; vhost: string }>((p) => [p.vhost, p.user]);
const policyListing = rows<PolicyView>((p) => [p.vhost, p.name]);
const parameterListing = rows<{ vhost: string; component: string; name: string }>((p) => [p.vhost, p.component, p.name]);

/** Tags as RabbitMQ's API takes them: a comma-separated string or a list. */
function tagsOf(body: Body): string | string[] {
  const tags = body['tags'];
  if (Array.isArray(tags)) return tags.map(String);
  if (typeof tags === 'string') return tags;
  throw badRequest('tags_not_present');
}

function createdOr(created: boolean): Reply {
  return created ? CREATED : NO_CONTENT;
}

export function addModelRoutes(router: Router, ctx: ManagementContext): void {
  const admin: Admin = ctx.broker.admin;

  // ---- Users ----------------------------------------------------------------------------------
  router
    .get('/api/users/without-permissions', 'administrator', (req) => {
      const withPermissions = new Set(admin.listPermissions().map((p) => p.user));
      return list(admin.listUsers().filter((u) => !withPermissions.has(u.name)), rows((u) => [u.name]), req.query);
    })
    .put('/api/users/:user', 'administrator', async (req) => {
      const body = await req.body();
      if (!('tags' in body)) throw badRequest('tags_not_present');
      const input: Parameters<Admin['putUser']>[1] = { tags: tagsOf(body) };
      if (typeof body['password'] === 'string') input.password = body['password'];
      else if (typeof body['password_hash'] === 'string') {
        input.passwordHash = body['password_hash'];
        if (typeof body['hashing_algorithm'] === 'string') input.hashingAlgorithm = body['hashing_algorithm'];
      }
      const { created } = await admin.putUser(req.params['user']!, input);
      return createdOr(created);
    })
    .delete('/api/users/:user', 'administrator', async (req) => {
      if (!(await admin.deleteUser(req.params['user']!))) throw notFound();
      return NO_CONTENT;
    })
    .post('/api/users/bulk-delete', 'administrator', async (req) => {
      const body = await req.body();
      const users = body['users'];
      if (!Array.isArray(users)) throw badRequest('[{key_missing,users}]');
      for (const u of users) await admin.deleteUser(String(u));
      return NO_CONTENT;
    })
    .get('/api/users/:user/permissions', 'administrator', (req) => {
      if (admin.getUser(req.params['user']!) === undefined) throw notFound();
      return list(admin.listPermissions({ user: req.params['user']! }), permissionListing, req.query);
    })
    .get('/api/users/:user/topic-permissions', 'administrator', (req) => {
      if (admin.getUser(req.params['user']!) === undefined) throw notFound();
      return list(admin.listTopicPermissions({ user: req.params['user']! }), permissionListing, req.query);
    });

  // ---- Vhosts ---------------------------------------------------------------------------------
  router
    .put('/api/vhosts/:vhost', 'administrator', async (req) => {
      const body = await req.body();
      // A PUT replaces description and tags, as RabbitMQ's does (absent = empty).
      const input: Parameters<Admin['putVhost']>[1] = {
        description: typeof body['description'] === 'string' ? body['description'] : '',
        tags: body['tags'] === undefined || body['tags'] === null ? [] : tagsOf(body),
      };
      if (typeof body['default_queue_type'] === 'string') input.defaultQueueType = body['default_queue_type'];
      // As RabbitMQ's API: the user who creates a vhost gets full permissions in it.
      const { created } = await admin.putVhost(req.params['vhost']!, input, req.caller.name);
      return createdOr(created);
    })
    .delete('/api/vhosts/:vhost', 'administrator', async (req) => {
      if (!(await admin.deleteVhost(req.params['vhost']!))) throw notFound();
      return NO_CONTENT;
    })
    .get('/api/vhosts/:vhost/permissions', 'administrator', (req) => {
      if (admin.getVhost(req.params['vhost']!) === undefined) throw notFound();
      return list(admin.listPermissions({ vhost: req.params['vhost']! }), permissionListing, req.query);
    })
    .get('/api/vhosts/:vhost/topic-permissions', 'administrator', (req) => {
      if (admin.getVhost(req.params['vhost']!) === undefined) throw notFound();
      return list(admin.listTopicPermissions({ vhost: req.params['vhost']! }), permissionListing, req.query);
    });

  // ---- Permissions ----------------------------------------------------------------------------
  router
    .get('/api/permissions', 'administrator', (req) => list(admin.listPermissions(), permissionListing, req.query))
    .get('/api/permissions/:vhost/:user', 'administrator', (req) => {
      const p = admin.getPermission(req.params['user']!, req.params['vhost']!);
      if (p === undefined) throw notFound();
      return single({ ...p }, req.query);
    })
    .put('/api/permissions/:vhost/:user', 'administrator', async (req) => {
      const body = await req.body();
      const user = req.params['user']!;
      const vhost = req.params['vhost']!;
      const created = admin.getPermission(user, vhost) === undefined;
      await admin.setPermission(user, vhost, {
        configure: body['configure'] as string,
        write: body['write'] as string,
        read: body['read'] as string,
      });
      return createdOr(created);
    })
    .delete('/api/permissions/:vhost/:user', 'administrator', async (req) => {
      if (!(await admin.clearPermission(req.params['user']!, req.params['vhost']!))) throw notFound();
      return NO_CONTENT;
    })
    .get('/api/topic-permissions', 'administrator', (req) => list(admin.listTopicPermissions(), permissionListing, req.query))
    .get('/api/topic-permissions/:vhost/:user', 'administrator', (req) => {
      const found = admin.listTopicPermissions({ user: req.params['user']!, vhost: req.params['vhost']! });
      if (found.length === 0) throw notFound();
      return list(found, permissionListing, req.query);
    })
    .put('/api/topic-permissions/:vhost/:user', 'administrator', async (req) => {
      const body = await req.body();
      const user = req.params['user']!;
      const vhost = req.params['vhost']!;
      const exchange = typeof body['exchange'] === 'string' ? body['exchange'] : undefined;
      const created = !admin.listTopicPermissions({ user, vhost }).some((t) => t.exchange === exchange);
      await admin.setTopicPermission(user, vhost, { exchange: exchange as string, write: body['write'] as string, read: body['read'] as string });
      return createdOr(created);
    })
    .delete('/api/topic-permissions/:vhost/:user', 'administrator', async (req) => {
      if (!(await admin.clearTopicPermissions(req.params['user']!, req.params['vhost']!))) throw notFound();
      return NO_CONTENT;
    })
    .delete('/api/topic-permissions/:vhost/:user/:exchange', 'administrator', async (req) => {
      if (!(await admin.clearTopicPermissions(req.params['user']!, req.params['vhost']!, req.params['exchange']!))) throw notFound();
      return NO_CONTENT;
    });

  // ---- Policies and operator policies ---------------------------------------------------------
  const policyRoutes = (base: string, operator: boolean): void => {
    const listOf = (vhost?: string): PolicyView[] => (operator ? admin.listOperatorPolicies(vhost) : admin.listPolicies(vhost));
    const getOf = (vhost: string, name: string): PolicyView | undefined =>
      operator ? admin.getOperatorPolicy(vhost, name) : admin.getPolicy(vhost, name);
    const readTag = 'management';
    const writeTag = operator ? 'administrator' : 'policymaker';
    router
      .get(`/api/${base}`, readTag, (req) => {
        const visible = new Set(loginVhosts(ctx, req.caller).map((v) => v.name));
        return list(listOf().filter((p) => visible.has(p.vhost)), policyListing, req.query);
      })
      .get(`/api/${base}/:vhost`, readTag, (req) => {
        const vhost = vhostFor(ctx, req.caller, req.params['vhost']!, OBJECT_REFUSED);
        return list(listOf(vhost.name), policyListing, req.query);
      })
      .get(`/api/${base}/:vhost/:name`, readTag, (req) => {
        const vhost = vhostFor(ctx, req.caller, req.params['vhost']!, OBJECT_REFUSED);
        const p = getOf(vhost.name, req.params['name']!);
        if (p === undefined) throw notFound();
        return single({ ...p }, req.query);
      })
      .put(`/api/${base}/:vhost/:name`, writeTag, async (req) => {
        const vhost = vhostFor(ctx, req.caller, req.params['vhost']!, OBJECT_REFUSED);
        const name = req.params['name']!;
        const body = await req.body();
        const created = getOf(vhost.name, name) === undefined;
        const input = body as PolicyInput;
        if (operator) await admin.putOperatorPolicy(vhost.name, name, input);
        else await admin.putPolicy(vhost.name, name, input);
        return createdOr(created);
      })
      .delete(`/api/${base}/:vhost/:name`, writeTag, async (req) => {
        const vhost = vhostFor(ctx, req.caller, req.params['vhost']!, OBJECT_REFUSED);
        const name = req.params['name']!;
        const deleted = operator ? await admin.deleteOperatorPolicy(vhost.name, name) : await admin.deletePolicy(vhost.name, name);
        if (!deleted) throw notFound();
        return NO_CONTENT;
      });
  };
  policyRoutes('policies', false);
  policyRoutes('operator-policies', true);

  // ---- Runtime parameters, global parameters, vhost limits ------------------------------------
  router
    .get('/api/parameters', 'policymaker', (req) => {
      const visible = new Set(loginVhosts(ctx, req.caller).map((v) => v.name));
      return list(admin.listParameters().filter((p) => visible.has(p.vhost)), parameterListing, req.query);
    })
    .get('/api/parameters/:component', 'policymaker', (req) => {
      const visible = new Set(loginVhosts(ctx, req.caller).map((v) => v.name));
      return list(admin.listParameters({ component: req.params['component']! }).filter((p) => visible.has(p.vhost)), parameterListing, req.query);
    })
    .get('/api/parameters/:component/:vhost', 'policymaker', (req) => {
      const vhost = vhostFor(ctx, req.caller, req.params['vhost']!, OBJECT_REFUSED);
      return list(admin.listParameters({ component: req.params['component']!, vhost: vhost.name }), parameterListing, req.query);
    })
    .get('/api/parameters/:component/:vhost/:name', 'policymaker', (req) => {
      const vhost = vhostFor(ctx, req.caller, req.params['vhost']!, OBJECT_REFUSED);
      const p = admin.getParameter(req.params['component']!, vhost.name, req.params['name']!);
      if (p === undefined) throw notFound();
      return single({ ...p }, req.query);
    })
    .put('/api/parameters/:component/:vhost/:name', 'policymaker', async (req) => {
      const vhost = vhostFor(ctx, req.caller, req.params['vhost']!, OBJECT_REFUSED);
      const body = await req.body();
      const component = req.params['component']!;
      const name = req.params['name']!;
      const created = admin.getParameter(component, vhost.name, name) === undefined;
      await admin.putParameter(component, vhost.name, name, body['value']);
      return createdOr(created);
    })
    .delete('/api/parameters/:component/:vhost/:name', 'policymaker', async (req) => {
      const vhost = vhostFor(ctx, req.caller, req.params['vhost']!, OBJECT_REFUSED);
      if (!(await admin.deleteParameter(req.params['component']!, vhost.name, req.params['name']!))) throw notFound();
      return NO_CONTENT;
    })
    .get('/api/global-parameters', 'administrator', (req) => list(admin.listGlobalParameters(), rows((p) => [p.name]), req.query))
    .get('/api/global-parameters/:name', 'administrator', (req) => {
      const p = admin.getGlobalParameter(req.params['name']!);
      if (p === undefined) throw notFound();
      return single({ ...p }, req.query);
    })
    .put('/api/global-parameters/:name', 'administrator', async (req) => {
      const body = await req.body();
      const created = admin.getGlobalParameter(req.params['name']!) === undefined;
      await admin.putGlobalParameter(req.params['name']!, body['value']);
      return createdOr(created);
    })
    .delete('/api/global-parameters/:name', 'administrator', async (req) => {
      if (!(await admin.deleteGlobalParameter(req.params['name']!))) throw notFound();
      return NO_CONTENT;
    })
    .get('/api/vhost-limits', 'administrator', (req) => {
      const out = admin
        .listVhosts()
        .filter((v) => Object.keys(v.limits).length > 0)
        .map((v) => ({ vhost: v.name, value: { ...v.limits } }));
      return list(out, rows((l) => [l.vhost]), req.query);
    })
    .get('/api/vhost-limits/:vhost', 'management', (req) => {
      const vhost = vhostFor(ctx, req.caller, req.params['vhost']!, OBJECT_REFUSED);
      const limits = admin.getVhostLimits(vhost.name);
      return Object.keys(limits).length === 0 ? [] : [{ vhost: vhost.name, value: limits }];
    })
    .put('/api/vhost-limits/:vhost/:name', 'administrator', async (req) => {
      const vhost = vhostFor(ctx, req.caller, req.params['vhost']!, OBJECT_REFUSED);
      const body = await req.body();
      if (!('value' in body)) throw badRequest('[{key_missing,value}]');
      await admin.setVhostLimits(vhost.name, { [req.params['name']!]: body['value'] });
      return NO_CONTENT;
    })
    .delete('/api/vhost-limits/:vhost/:name', 'administrator', async (req) => {
      const vhost = vhostFor(ctx, req.caller, req.params['vhost']!, OBJECT_REFUSED);
      const name = req.params['name']!;
      if (!(name in admin.getVhostLimits(vhost.name))) throw notFound();
      await admin.clearVhostLimit(vhost.name, name);
      return NO_CONTENT;
    });

  // ---- Queues, exchanges, bindings ------------------------------------------------------------
  const configure = (req: ApiRequest, vhost: string, kind: 'queue' | 'exchange', name: string): void =>
    ctx.checkPermission(req.caller.name, vhost, 'configure', kind, name);

  router
    .put('/api/queues/:vhost/:name', 'management', async (req) => {
      const vhost = vhostFor(ctx, req.caller, req.params['vhost']!);
      const name = req.params['name']!;
      const body = await req.body();
      configure(req, vhost.name, 'queue', name);
      const created = !vhost.queues.has(name);
      const input: Parameters<Admin['declareQueue']>[1] = {
        name,
        durable: boolField(body, 'durable', false),
        autoDelete: boolField(body, 'auto_delete', false),
      };
      const args = argumentsOf(body);
      if (args !== undefined) input.arguments = args;
      await admin.declareQueue(vhost.name, input);
      return createdOr(created);
    })
    .delete('/api/queues/:vhost/:name', 'management', async (req) => {
      const vhost = vhostFor(ctx, req.caller, req.params['vhost']!);
      const name = req.params['name']!;
      if (!vhost.queues.has(name)) throw notFound();
      configure(req, vhost.name, 'queue', name);
      await admin.deleteQueue(vhost.name, name, {
        ifUnused: req.query.get('if-unused') === 'true',
        ifEmpty: req.query.get('if-empty') === 'true',
      });
      return NO_CONTENT;
    })
    .delete('/api/queues/:vhost/:name/contents', 'management', async (req) => {
      const vhost = vhostFor(ctx, req.caller, req.params['vhost']!);
      const name = req.params['name']!;
      if (!vhost.queues.has(name)) throw notFound();
      ctx.checkPermission(req.caller.name, vhost.name, 'read', 'queue', name);
      await admin.purgeQueue(vhost.name, name);
      return NO_CONTENT;
    })
    .put('/api/exchanges/:vhost/:name', 'management', async (req) => {
      const vhost = vhostFor(ctx, req.caller, req.params['vhost']!);
      const name = exchangeNameFromPath(req.params['name']!);
      const body = await req.body();
      configure(req, vhost.name, 'exchange', name);
      const created = !vhost.exchanges.has(name);
      const type = body['type'] === undefined ? 'direct' : stringField(body, 'type');
      if (created && !isKnownExchangeType(type) && !name.startsWith('amq.')) throw badRequest(`invalid exchange type '${type}'`);
      const input: Parameters<Admin['declareExchange']>[1] = {
        name,
        type,
        durable: boolField(body, 'durable', false),
        autoDelete: boolField(body, 'auto_delete', false),
        internal: boolField(body, 'internal', false),
      };
      const args = argumentsOf(body);
      if (args !== undefined) input.arguments = args;
      await admin.declareExchange(vhost.name, input);
      return createdOr(created);
    })
    .delete('/api/exchanges/:vhost/:name', 'management', async (req) => {
      const vhost = vhostFor(ctx, req.caller, req.params['vhost']!);
      const name = exchangeNameFromPath(req.params['name']!);
      if (!vhost.exchanges.has(name)) throw notFound();
      configure(req, vhost.name, 'exchange', name);
      await admin.deleteExchange(vhost.name, name, { ifUnused: req.query.get('if-unused') === 'true' });
      return NO_CONTENT;
    });

  const bindingRoutes = (kind: 'queue' | 'exchange', letter: 'q' | 'e'): void => {
    const ends = (req: ApiRequest): { vhost: string; source: string; destination: string } => {
      const vhost = vhostFor(ctx, req.caller, req.params['vhost']!).name;
      const source = exchangeNameFromPath(req.params['source']!);
      const destination = kind === 'exchange' ? exchangeNameFromPath(req.params['destination']!) : req.params['destination']!;
      return { vhost, source, destination };
    };
    router
      .post(`/api/bindings/:vhost/e/:source/${letter}/:destination`, 'management', async (req) => {
        const { vhost, source, destination } = ends(req);
        const body = await req.body();
        const routingKey = body['routing_key'] === undefined ? '' : stringField(body, 'routing_key');
        const args = argumentsOf(body) ?? {};
        ctx.checkPermission(req.caller.name, vhost, 'write', kind, destination);
        ctx.checkPermission(req.caller.name, vhost, 'read', 'exchange', source);
        await admin.bind(vhost, { source, destination, destinationType: kind, routingKey, arguments: args });
        const props = propertiesKey(routingKey, jsonToTable(args));
        // RabbitMQ quotes the properties key once more in the Location header.
        return new Reply(201, undefined, { location: `${encodeURIComponent(destination)}/${encodeURIComponent(props)}` });
      })
      .delete(`/api/bindings/:vhost/e/:source/${letter}/:destination/:props`, 'management', async (req) => {
        const { vhost, source, destination } = ends(req);
        const props = req.params['props']!;
        const v = ctx.broker.vhosts.get(vhost)!;
        const found = bindingsOf(v).find(
          (b) => b.source === source && b.destinationType === kind && b.destination === destination && matchesPropertiesKey(props, b),
        );
        if (found === undefined || source === '') throw notFound();
        ctx.checkPermission(req.caller.name, vhost, 'write', kind, destination);
        ctx.checkPermission(req.caller.name, vhost, 'read', 'exchange', source);
        await admin.unbind(vhost, {
          source,
          destination,
          destinationType: kind,
          routingKey: found.routingKey,
          arguments: tableToJson(found.args),
        });
        return NO_CONTENT;
      });
  };
  bindingRoutes('queue', 'q');
  bindingRoutes('exchange', 'e');

  // ---- Definitions ----------------------------------------------------------------------------
  const download = (req: ApiRequest, body: unknown): unknown => {
    const name = req.query.get('download');
    if (name === null || name === '') return body;
    return new Reply(200, body, { 'content-disposition': `attachment; filename=${name}` });
  };
  router
    .get('/api/definitions', 'administrator', (req) => download(req, admin.exportDefinitions()))
    .get('/api/definitions/:vhost', 'administrator', (req) => {
      const vhost = vhostFor(ctx, req.caller, req.params['vhost']!);
      return download(req, admin.exportDefinitions(vhost.name));
    })
    .post('/api/definitions', 'administrator', async (req) => {
      await admin.importDefinitions(await definitionsBody(req));
      return NO_CONTENT;
    })
    .post('/api/definitions/:vhost', 'administrator', async (req) => {
      const vhost = vhostFor(ctx, req.caller, req.params['vhost']!);
      await admin.importDefinitions(await definitionsBody(req), vhost.name);
      return NO_CONTENT;
    });
}

/** The arguments object of a declare body ('' and absent mean none, as rabbitmqadmin sends). */
function argumentsOf(body: Body): Record<string, unknown> | undefined {
  const args = body['arguments'];
  if (args === undefined || args === null || args === '') return undefined;
  if (typeof args !== 'object' || Array.isArray(args)) throw badRequest('arguments must be a JSON object');
  return args as Record<string, unknown>;
}


/** A definitions upload: a JSON body; RabbitMQ's parse failure is "failed_to_parse_json". */
async function definitionsBody(req: ApiRequest): Promise<Record<string, unknown>> {
  try {
    return await req.body();
  } catch (err) {
    if (err instanceof HttpError && err.reason === 'not_json') throw badRequest('failed_to_parse_json');
    throw err;
  }
}
