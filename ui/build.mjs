// Builds the management web UI (ui/src) into static assets in dist/ui, which the management HTTP
// listener serves (src/management/static.ts). Run by `npm run build` and by `npm ci` (prepare).
//
// Output: dist/ui/index.html (served with no-cache) and dist/ui/assets/<name>-<hash>.{js,css}
// (content-hashed, so they are served as immutable), each also pre-compressed as .gz so the
// server never compresses at request time. Everything the page needs is in these files: no CDN,
// no web fonts from elsewhere.
import { build } from 'esbuild';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { gzipSync } from 'node:zlib';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const uiDir = path.dirname(fileURLToPath(import.meta.url));
const outDir = path.join(uiDir, '..', 'dist', 'ui');
const assetsDir = path.join(outDir, 'assets');

await rm(outDir, { recursive: true, force: true });
await mkdir(assetsDir, { recursive: true });

const result = await build({
  entryPoints: { app: path.join(uiDir, 'src', 'main.ts') },
  bundle: true,
  minify: true,
  format: 'esm',
  target: ['chrome100', 'firefox100', 'safari15'],
  entryNames: '[name]-[hash]',
  outdir: assetsDir,
  metafile: true,
  sourcemap: false,
  legalComments: 'eof',
  logLevel: 'warning',
});

// index.html names the hashed files; it is the only file a browser must revalidate.
const outputs = Object.keys(result.metafile.outputs).map((p) => path.basename(p));
const script = outputs.find((f) => f.endsWith('.js'));
const style = outputs.find((f) => f.endsWith('.css'));
if (script === undefined || style === undefined) throw new Error(`ui build: expected a .js and a .css output, got ${outputs.join(', ')}`);
const template = await readFile(path.join(uiDir, 'index.html'), 'utf8');
const html = template.replace('%SCRIPT%', `assets/${script}`).replace('%STYLE%', `assets/${style}`);
await writeFile(path.join(outDir, 'index.html'), html);

for (const file of [path.join(outDir, 'index.html'), ...outputs.map((f) => path.join(assetsDir, f))]) {
  if (!/\.(html|js|css|txt)$/.test(file)) continue;
  await writeFile(`${file}.gz`, gzipSync(await readFile(file), { level: 9 }));
}
const sizes = await Promise.all(outputs.filter((f) => /\.(js|css)$/.test(f)).map(async (f) => `${f} ${(await readFile(path.join(assetsDir, `${f}.gz`))).length} B gzipped`));
console.log(`ui: built dist/ui (${sizes.join(', ')})`);
