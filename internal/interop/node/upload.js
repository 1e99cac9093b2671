// Browser test of chatd's uploads, events over HTTP and file serving, run
// by internal/interop's TestBrowserUpload: Debian's Chromium, driven by
// playwright-core, opens a page served by the Go test from 127.0.0.1
// (another origin than chatd's HTTP port), and the page, with fetch and
// EventSource only (no WebSocket):
//   - opens the user's Server-Sent Events stream,
//   - draws an image on a canvas and uploads it (a CORS preflighted POST),
//   - sends it in an image message by file id over POST /v1/client,
//   - receives that message on the event stream,
//   - asks for a signed URL and shows the file in an <img>.
//
//   node upload.js PAGE_URL HTTP_BASE APP TOKEN
//
// It prints one JSON line (what the page saw) and exits 0, or prints the
// failure to stderr and exits 1. It stops by itself after 90 seconds.
'use strict';

const fs = require('fs');
const os = require('os');
const path = require('path');
const { chromium } = require('playwright-core');

const [pageURL, httpBase, app, token] = process.argv.slice(2);

let context = null;
let userDataDir = null;

function cleanup() {
  if (userDataDir) fs.rmSync(userDataDir, { recursive: true, force: true });
}

async function fail(err) {
  process.stderr.write('browser: ' + (err && err.stack ? err.stack : err) + '\n');
  try { if (context) await context.close(); } catch (e) { /* already gone */ }
  cleanup();
  process.exit(1);
}

const deadline = setTimeout(() => fail(new Error('timed out after 90s')), 90000);

async function main() {
  userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'chatd-chromium-'));
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
    timeout: 30000,
  });
  const version = context.browser() ? context.browser().version() : '';
  const page = await context.newPage();
  page.on('console', (m) => process.stderr.write('page console: ' + m.text() + '\n'));
  await page.goto(pageURL, { timeout: 15000 });
  const r = await page.evaluate(([b, a, t]) => window.run(b, a, t), [httpBase, app, token]);
  await context.close();
  context = null;
  cleanup();
  clearTimeout(deadline);
  process.stdout.write(JSON.stringify(Object.assign({ browser: version }, r)) + '\n');
  process.exit(0);
}

main().catch(fail);
