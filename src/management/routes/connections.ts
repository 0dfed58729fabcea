// Closing connections from the API: DELETE /api/connections/NAME closes it with connection.close
// 320 CONNECTION_FORCED; the X-Reason request header, when given, is the reason the client reads
// (as RabbitMQ; default "Closed via management plugin"). Administrators may close any connection,
// other users their own.

import { notFound } from '../http-error.js';
import type { ManagementContext } from '../context.js';
import { NO_CONTENT, type Router } from '../router.js';
import { connectionName } from '../views/connections.js';

export const DEFAULT_CLOSE_REASON = 'Closed via management plugin';

export function addConnectionRoutes(router: Router, ctx: ManagementContext): void {
  router.delete('/api/connections/:name', 'management', (req) => {
    const name = req.params['name']!;
    for (const c of ctx.connections()) {
      if (connectionName(c) !== name) continue;
      if (!req.caller.isAdministrator && c.userName !== req.caller.name) break;
      const header = req.raw.headers['x-reason'];
      const reason = typeof header === 'string' && header !== '' ? header : DEFAULT_CLOSE_REASON;
      c.forceClose(reason);
      return NO_CONTENT;
    }
    throw notFound();
  });
}
