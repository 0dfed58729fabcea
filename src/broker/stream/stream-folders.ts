// Start-up housekeeping for stream folders: a stream deleted just before a crash can leave its
// folder behind (the folder goes only after the deletion is committed). Folders that belong to no
// recovered stream are removed.

import { readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from '../../log.js';
import type { Broker } from '../broker.js';

export function removeOrphanStreamFolders(broker: Broker, streamsDir: string, log: Logger): number {
  let names: string[];
  try {
    names = readdirSync(streamsDir);
  } catch {
    return 0; // no streams yet
  }
  const live = new Set<string>();
  for (const vhost of broker.vhosts.values()) {
    for (const q of vhost.queues.values()) if (q.type === 'stream' && q.storeId !== 0) live.add(String(q.storeId));
  }
  let removed = 0;
  for (const name of names) {
    if (!/^[0-9]+$/.test(name) || live.has(name)) continue;
    rmSync(join(streamsDir, name), { recursive: true, force: true });
    log.info({ folder: join(streamsDir, name) }, 'removed the folder of a deleted stream');
    removed++;
  }
  return removed;
}
