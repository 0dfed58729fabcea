// Builds Warren's one optional native piece, native/malloc-trim.c, into dist/native/ (run by
// `npm run build` and `npm ci`). It needs a C compiler and Node's headers (node-api); where either
// is missing, or off Linux, it prints one line and Warren runs without it (freed memory is then
// given back to the system only as far as the C allocator does it by itself).

import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const source = join(root, 'native', 'malloc-trim.c');
const target = join(root, 'dist', 'native', 'malloc-trim.node');

function skip(reason) {
  console.log(`warren: optional malloc-trim addon not built (${reason}); Warren runs without it`);
  process.exit(0);
}

if (process.platform !== 'linux') skip('not Linux');
const includeDirs = [process.env.npm_config_nodedir, dirname(dirname(process.execPath))]
  .filter((d) => d !== undefined && d !== '')
  .map((d) => join(d, 'include', 'node'));
const include = includeDirs.find((d) => existsSync(join(d, 'node_api.h')));
if (include === undefined) skip(`no node_api.h in ${includeDirs.join(', ')}`);
const cc = process.env.CC || 'cc';
mkdirSync(dirname(target), { recursive: true });
try {
  execFileSync(cc, ['-O2', '-shared', '-fPIC', '-DNODE_GYP_MODULE_NAME=malloc_trim', `-I${include}`, '-o', target, source], { stdio: ['ignore', 'ignore', 'pipe'] });
} catch (err) {
  skip(`${cc} failed: ${String(err.stderr ?? err.message).trim().split('\n')[0]}`);
}
