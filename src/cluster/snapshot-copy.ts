// Child-process entry: copies a store (an LMDB environment folder) into another folder with LMDB's
// own consistent copy (one read transaction: writers carry on meanwhile). It runs in its own
// process because lmdb-js cannot copy an environment it opened with remapChunks (as the broker
// does): the copy reads a contiguous map, so this process opens the same environment read-only
// without remapping. Usage: node snapshot-copy.js <store folder> <target folder>

import { open } from 'lmdb';

const [source, target] = process.argv.slice(2);
if (source === undefined || target === undefined) {
  process.stderr.write('usage: snapshot-copy <store folder> <target folder>\n');
  process.exit(2);
}
const root = open({ path: source, readOnly: true, remapChunks: false, maxDbs: 24 });
root
  .backup(target, false)
  .then(() => root.close())
  .then(
    () => process.exit(0),
    (err: unknown) => {
      process.stderr.write(`${(err as Error).message}\n`);
      process.exit(1);
    },
  );
