// Browser test of chatd, run by internal/interop's TestBrowser: Debian's
// Chromium (never a downloaded browser), driven by playwright-core, opens
// two pages served by the Go test from 127.0.0.1, and each page opens a
// real browser WebSocket to chatd, logs in with a chat token, and the two
// users exchange messages.
//
//   node browser.js PAGE_URL WS_URL APP TOKEN_ALICE TOKEN_BOB
//
// It prints one JSON line (the negotiated extensions and what each side
// received) and exits 0, or prints the failure to stderr and exits 1. It
// stops by itself after 90 seconds whatever happens.
'use strict';

const fs = require('fs');
const os = require('os');
const path = require('path');
const { chromium } = require('playwright-core');

const [pageURL, wsURL, app, tokenAlice, tokenBob] = process.argv.slice(2);

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

function check(cond, what) {
  if (!cond) throw new Error(what);
}

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
  const alice = await context.newPage();
  const bob = await context.newPage();
  for (const p of [alice, bob]) {
    p.on('console', (m) => process.stderr.write('page console: ' + m.text() + '\n'));
    await p.goto(pageURL, { timeout: 15000 });
  }

  const extA = await alice.evaluate(([u, a, t]) => window.chat.open(u, a, t), [wsURL, app, tokenAlice]);
  const extB = await bob.evaluate(([u, a, t]) => window.chat.open(u, a, t), [wsURL, app, tokenBob]);

  // Alice writes Bob a long message (compressed both ways when the
  // extension is on) and a short one.
  const long = 'Hello Bob, this is a long message from a real browser. '.repeat(30);
  const r1 = await alice.evaluate((text) => window.chat.request(
    { action: 'send', to: 'bob', type: 'text', content: { text }, cid: 'browser-1' }), long);
  check(r1.ok, 'alice send: ' + JSON.stringify(r1));
  const sid = r1.data.session_id;
  const r2 = await alice.evaluate((s) => window.chat.request(
    { action: 'send', session_id: s, type: 'text', content: { text: 'short one' } }), sid);
  check(r2.ok, 'alice second send: ' + JSON.stringify(r2));
  const atBob = await bob.evaluate(() => window.chat.events('message', 2));
  check(atBob.length === 2 && atBob[0].data.content.text === long && atBob[1].data.content.text === 'short one',
    'bob received ' + JSON.stringify(atBob).slice(0, 300));

  // Bob answers.
  const reply = 'Hi Alice, got it. '.repeat(40);
  const r3 = await bob.evaluate(([s, text]) => window.chat.request(
    { action: 'send', session_id: s, type: 'text', content: { text } }), [sid, reply]);
  check(r3.ok, 'bob send: ' + JSON.stringify(r3));
  const atAlice = await alice.evaluate(() => window.chat.events('message', 1));
  check(atAlice.length === 1 && atAlice[0].data.content.text === reply && atAlice[0].data.from === 'bob',
    'alice received ' + JSON.stringify(atAlice).slice(0, 300));

  // Both close cleanly.
  const codes = [];
  for (const p of [alice, bob]) codes.push(await p.evaluate(() => window.chat.close()));
  check(codes.every((c) => c === 1000), 'close codes ' + codes);

  await context.close();
  context = null;
  cleanup();
  clearTimeout(deadline);
  process.stdout.write(JSON.stringify({
    browser: version, extensions: [extA, extB], session: sid,
    bobGot: atBob.map((m) => m.data.seq), aliceGot: atAlice.map((m) => m.data.seq), closeCodes: codes,
  }) + '\n');
  process.exit(0);
}

main().catch(fail);
