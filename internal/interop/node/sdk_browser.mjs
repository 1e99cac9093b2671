// The JavaScript SDK in a real browser, run by internal/interop's
// TestSDKBrowser: Debian's Chromium, driven by playwright-core, opens a
// page served by the Go test from another origin than chatd, which loads
// the SDK's browser bundle (the global Chatd) and:
//   - connects with transport 'auto' and a WebSocket URL that cannot
//     connect, so it must fall back to SSE (a streaming fetch with the
//     token in a header, CORS preflighted);
//   - uploads an image it draws with sendFile: XMLHttpRequest's progress;
//   - with persist: 'indexeddb', makes three sends while sends over POST
//     /v1/client are cut (the first reaches the server but its answer is
//     lost), so they
//     stay queued in IndexedDB; the page is left and opened again, and the
//     new page's client sends them with their cids: each stored once.
//
//   node sdk_browser.mjs PAGE_URL DEAD_WS_URL HTTP_BASE APP TOKEN PEER_UID
//
// Prints one JSON line and exits 0, or prints the failure and exits 1.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pw from 'playwright-core';
import { fail as failNow } from './sdk_common.mjs';

const [pageURL, deadWS, httpBase, app, token, peer] = process.argv.slice(2);
const cfg = { ws: deadWS, http: httpBase, app, token, peer };

let context = null;
const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'chatd-sdk-chromium-'));
async function fail(why) {
  try { if (context) await context.close(); } catch { /* already gone */ }
  fs.rmSync(userDataDir, { recursive: true, force: true });
  failNow(why && why.stack ? why.stack : String(why));
}
const deadline = setTimeout(() => fail('timed out after 90s'), 90_000);

async function main() {
  context = await pw.chromium.launchPersistentContext(userDataDir, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    timeout: 30_000,
  });
  const version = context.browser() ? context.browser().version() : '';
  const page = await context.newPage();
  page.on('console', (m) => process.stderr.write('page console: ' + m.text() + '\n'));
  await page.goto(pageURL, { timeout: 15_000 });

  const first = await page.evaluate((c) => window.start(c), cfg);
  if (first.transport !== 'sse') throw new Error(`transport ${first.transport}, want sse (the fallback)`);
  const up = await page.evaluate(() => window.upload());
  if (up.progress[0] !== 0 || up.progress[up.progress.length - 1] !== up.size) {
    throw new Error('upload progress ' + JSON.stringify(up));
  }

  // sends over POST /v1/client are cut: the first reaches the server, its answer is lost;
  // the client reconnects (other actions go through) and retries them, in vain
  let forwarded = 0;
  await page.route('**/v1/client', async (route) => {
    try {
      const body = route.request().postData() || '';
      if (!body.includes('"action":"send"')) return await route.continue(); // the login and resync go through
      if (forwarded === 0) {
        forwarded++;
        await route.fetch();
      }
      await route.abort('failed');
    } catch {
      // the page went away meanwhile (about:blank below): its requests are gone with it
    }
  });
  const queued = await page.evaluate((sid) => window.queue(sid, ['q0', 'q1', 'q2']), up.session_id);
  if (forwarded !== 1 || queued.length !== 3) throw new Error(`forwarded ${forwarded}, queued ${JSON.stringify(queued)}`);

  // the page goes away with its queue; then it is opened again
  await page.goto('about:blank');
  await page.unroute('**/v1/client');
  await page.goto(pageURL, { timeout: 15_000 });
  const second = await page.evaluate((c) => window.start(c), cfg);
  const after = await page.evaluate((sid) => window.drain(sid), up.session_id);
  if (JSON.stringify(after.restored) !== JSON.stringify(queued)) {
    throw new Error(`restored ${JSON.stringify(after.restored)}, want the queued cids ${JSON.stringify(queued)}`);
  }
  for (const t of ['q0', 'q1', 'q2']) {
    const n = after.stored.filter((m) => m.text === t);
    if (n.length !== 1) throw new Error(`${t} stored ${n.length} times`);
    if (n[0].cid !== queued[Number(t[1])]) throw new Error(`${t} stored with cid ${n[0].cid}, not its own`);
  }
  await context.close();
  context = null;
  fs.rmSync(userDataDir, { recursive: true, force: true });
  clearTimeout(deadline);
  console.log(JSON.stringify({ browser: version, transport: first.transport, transport2: second.transport, upload: up,
    queued: queued.length, restored: after.restored.length, left: after.left }));
  process.exit(0);
}

main().catch(fail);
