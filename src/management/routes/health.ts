// Health checks (GET /api/health/checks/…) with RabbitMQ's answers: {"status":"ok"} with 200, or
// {"status":"failed","reason":…} with 503 so that load balancers and probes can use the code alone.

import type { ManagementContext } from '../context.js';
import { badRequest } from '../http-error.js';
import { Reply, type Router } from '../router.js';

function failed(body: Record<string, unknown>): Reply {
  return new Reply(503, { status: 'failed', ...body });
}

function alarms(ctx: ManagementContext): Reply | { status: 'ok' } {
  const active = ctx.broker.resources.alarms;
  if (active.size === 0) return { status: 'ok' };
  // RabbitMQ knows memory and disk alarms; a storage failure is reported as the disk's.
  const resources = [...new Set([...active].map((a) => (a === 'memory' ? 'memory' : 'disk')))];
  return failed({ reason: 'resource alarm(s) in effect in the cluster', alarms: resources.map((resource) => ({ node: ctx.nodeName, resource })) });
}

export function addHealthRoutes(router: Router, ctx: ManagementContext): void {
  router
    .get('/api/health/checks/alarms', 'management', () => alarms(ctx))
    .get('/api/health/checks/local-alarms', 'management', () => {
      const r = alarms(ctx);
      if (r instanceof Reply) return failed({ reason: 'resource alarm(s) in effect on the node', alarms: (r.body as { alarms: unknown }).alarms });
      return r;
    })
    .get('/api/health/checks/port-listener/:port', 'management', (req) => {
      const raw = req.params['port']!;
      if (!/^\d+$/.test(raw)) throw badRequest('Invalid port');
      const port = Number(raw);
      const ports = ctx.listeners().map((l) => l.port);
      if (ports.includes(port)) return { status: 'ok', port };
      return failed({ reason: 'No active listener', missing: port, ports: [...ports].sort((a, b) => a - b) });
    })
    .get('/api/health/checks/protocol-listener/:protocol', 'management', (req) => {
      const protocol = req.params['protocol']!;
      const known = ctx.listeners().map((l) => l.protocol);
      if (known.includes(protocol)) return { status: 'ok', protocol };
      return failed({ reason: 'No active listener', missing: protocol, protocols: known });
    })
    .get('/api/health/checks/virtual-hosts', 'management', () => ({ status: 'ok' }))
    .get('/api/health/checks/node-is-quorum-critical', 'management', () => ({ status: 'ok', reason: 'single node cluster' }))
    .get('/api/health/checks/node-is-mirror-sync-critical', 'management', () => ({ status: 'ok' }))
    .get('/api/health/checks/certificate-expiration/:within/:unit', 'management', () => ({ status: 'ok' }))
    .get('/api/health/checks/ready-to-serve-clients', 'management', () => {
      const resources = ctx.broker.resources;
      if (resources.alarms.size > 0) return failed({ reason: `publishers are blocked: ${resources.alarmReason()}` });
      return { status: 'ok' };
    });
}
