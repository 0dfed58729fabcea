// A consistent copy of a running store, for a follower that needs a whole copy: made by a short
// child process (snapshot-copy.ts) so the broker's event loop and its open environment are not
// involved; the copy is one data.mdb file in the target folder.

import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** The compiled copier beside this file, or (running from TypeScript sources in tests) in dist/. */
function copierScript(): string {
  const here = fileURLToPath(new URL('./snapshot-copy.js', import.meta.url));
  if (existsSync(here)) return here;
  return fileURLToPath(new URL('../../dist/src/cluster/snapshot-copy.js', import.meta.url));
}

export function copyStore(storePath: string, targetDir: string): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [copierScript(), storePath, targetDir], { timeout: 10 * 60_000 }, (err, _stdout, stderr) => {
      if (err === null) resolve();
      else reject(new Error(`copying the store failed: ${stderr.trim() || err.message}`));
    });
  });
}
