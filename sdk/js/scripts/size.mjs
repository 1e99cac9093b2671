// The size budget: the minified browser bundle, gzipped, must stay within
// 25 KB (it holds the whole core: connection, login, reconnect, resync,
// the send queue and the request API; the types weigh nothing).
import { readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';

const LIMIT = 25 * 1024;
let failed = false;
for (const f of ['dist/chatd.min.js', 'dist/chatd.min.mjs']) {
  const raw = readFileSync(f);
  const gz = gzipSync(raw, { level: 9 }).length;
  console.log(`${f}: ${raw.length} bytes minified, ${gz} bytes gzipped (budget ${LIMIT})`);
  if (gz > LIMIT) failed = true;
}
if (failed) {
  console.error('over the size budget');
  process.exit(1);
}
