// Builds chatd's demo pages into ../internal/demo/assets, which the Go
// package internal/demo embeds (and which is committed: `go build` needs no
// Node). Every web/src/*.ts is an entry: web/src/chat.ts becomes
// assets/chat.js, one self-contained bundle (pages import the SDK from
// its source, ../../sdk/js/src/index.ts). Modules shared by several pages
// go in a subfolder (web/src/lib/), which is not an entry. Every file of
// web/public/ (html, css, svg …) is copied as it is.
//
// The output depends only on the sources and the pinned esbuild, so CI
// rebuilds it and fails when the committed assets differ (.ci/run).
//
//   cd web && npm ci && node build.mjs     (or: go generate ./internal/demo)
import { build } from 'esbuild';
import { copyFileSync, mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, '..', 'internal', 'demo', 'assets');
const src = join(here, 'src');
const pub = join(here, 'public');

// files lists the files under dir, recursively, sorted.
function files(dir) {
  const list = [];
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) list.push(...files(p));
    else list.push(p);
  }
  return list;
}

const entries = readdirSync(src).filter((n) => n.endsWith('.ts') && !n.endsWith('.d.ts')).sort();
const copies = files(pub);
const seen = new Map();
const claim = (name, from) => {
  if (seen.has(name)) throw new Error(`assets/${name} comes from both ${seen.get(name)} and ${from}`);
  seen.set(name, from);
};
for (const e of entries) claim(e.replace(/\.ts$/, '.js'), 'src/' + e);
for (const f of copies) claim(relative(pub, f), 'public/' + relative(pub, f));

rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
for (const e of entries) {
  await build({
    entryPoints: [join(src, e)],
    outfile: join(out, e.replace(/\.ts$/, '.js')),
    bundle: true,
    format: 'iife',
    target: 'es2020',
    charset: 'utf8',
    legalComments: 'none',
    logLevel: 'warning',
  });
}
for (const f of copies) {
  const to = join(out, relative(pub, f));
  mkdirSync(dirname(to), { recursive: true });
  copyFileSync(f, to);
}
console.log(`demo assets: ${entries.length} bundles, ${copies.length} files copied into ${relative(process.cwd(), out) || '.'}`);
