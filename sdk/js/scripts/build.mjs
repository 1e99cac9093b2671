// Builds dist/: index.js (ESM, for bundlers and Node), index.d.ts (types),
// chatd.min.js (the browser bundle: an IIFE defining the global `Chatd`,
// minified) and chatd.min.mjs (the same, minified ESM).
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';

rmSync('dist', { recursive: true, force: true });
const common = { entryPoints: ['src/index.ts'], bundle: true, target: 'es2020', logLevel: 'warning' };
await build({ ...common, format: 'esm', outfile: 'dist/index.js' });
await build({ ...common, format: 'esm', minify: true, outfile: 'dist/chatd.min.mjs' });
await build({ ...common, format: 'iife', globalName: 'Chatd', minify: true, outfile: 'dist/chatd.min.js' });
execFileSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', '.', '--emitDeclarationOnly'], { stdio: 'inherit' });
