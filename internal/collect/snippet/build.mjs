// Minifies hearth.js into hearth.min.js, which internal/collect embeds and serves at /hearth.js, and records
// the hash of the build's inputs in .source-hash. internal/collect's tests recompute that hash and fail when
// an input changed without a rebuild. Run through scripts/build-snippet.
//
// The hash: for each input, sorted by name, name + "\0" + hex(sha256(bytes)) + "\n"; the hex sha256 of the
// whole (the same scheme as the console's web/console/scripts/source-hash.mjs).
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { transform } from 'esbuild';

const dir = dirname(fileURLToPath(import.meta.url));
const inputs = ['build.mjs', 'hearth.js', 'package-lock.json', 'package.json'];

const source = readFileSync(join(dir, 'hearth.js'), 'utf8');
const version = /const VERSION = '([^']+)'/.exec(source)?.[1];
if (!version) throw new Error('hearth.js: no VERSION constant');

const out = await transform(source, {
  loader: 'js',
  minify: true,
  target: 'es2017', // what the source is written in: esbuild must not need to lower anything
  legalComments: 'none',
  banner: `/*! hearth.js ${version} | Apache-2.0 */`,
});
// esbuild adds helper functions in front when it lowers syntax newer than the target: the source must be
// ES2017 as written, so that what was reviewed is what runs.
if (!out.code.startsWith(`/*! hearth.js ${version} | Apache-2.0 */\n(()=>{`)) {
  throw new Error('hearth.min.js does not start with the IIFE: does hearth.js use syntax newer than ES2017?\n' + out.code.slice(0, 300));
}
for (const w of out.warnings) console.warn(w.text);
writeFileSync(join(dir, 'hearth.min.js'), out.code);

const list = inputs
  .map((name) => name + '\0' + createHash('sha256').update(readFileSync(join(dir, name))).digest('hex') + '\n')
  .join('');
writeFileSync(join(dir, '.source-hash'), createHash('sha256').update(list).digest('hex') + '\n');
