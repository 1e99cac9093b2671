// Browser test of the chat demo page (/demo/), run by internal/interop's
// TestDemoChatPage: Debian's Chromium, driven by playwright-core, opens the
// page chatd serves as alice, bob and carol (one browser context each) and
// uses it as a person would: private chat, unread badge, read receipt,
// typing, an image upload with its progress bar, recall, a group; then bob
// goes offline, alice sends 200 messages, bob comes back and his open
// conversation shows all 200 exactly once, in order; after a reload the
// history pages back to the first message. Screenshots go to ARTIFACTS.
//
//   node demo_chat.mjs HTTP_BASE ARTIFACTS
//
// It prints one JSON line (what it checked) and exits 0, or prints the
// failure to stderr and exits 1. It stops by itself after 240 seconds.
import fs from 'node:fs';
import path from 'node:path';
import pw from 'playwright-core';

const [base, artifacts] = process.argv.slice(2);
const N = 200;
const WAIT = 60000; // a bound on each wait, not an expectation of speed

let browser = null;
async function fail(err) {
  process.stderr.write('demo_chat: ' + (err && err.stack ? err.stack : err) + '\n');
  try { if (browser) await browser.close(); } catch { /* already gone */ }
  process.exit(1);
}
const deadline = setTimeout(() => fail(new Error('timed out after 240s')), 240000);

const checks = [];
const check = (name) => { checks.push(name); };
let shot = 0;
async function screenshot(page, name) {
  const file = path.join(artifacts, `${String(++shot).padStart(2, '0')}-${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
}

async function open(ctx, uid) {
  const page = await ctx.newPage();
  page.on('console', (m) => { if (m.type() === 'error') process.stderr.write(`${uid} console: ${m.text()}\n`); });
  page.on('pageerror', (e) => process.stderr.write(`${uid} page error: ${e}\n`));
  await page.goto(`${base}/demo/?uid=${uid}`, { timeout: WAIT });
  await page.waitForSelector('#state.open', { timeout: WAIT });
  return page;
}

/** The texts of the conversation's delivered (not pending) messages, in DOM order. */
const texts = (page) => page.$$eval('#messages li[data-seq] .text', (els) => els.map((e) => e.textContent));

async function sendText(page, text) {
  await page.fill('#text', text);
  await page.press('#text', 'Enter');
}

async function main() {
  fs.mkdirSync(artifacts, { recursive: true });
  browser = await pw.chromium.launch({
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
    timeout: 30000,
  });
  const [ca, cb, cc] = [await browser.newContext(), await browser.newContext(), await browser.newContext()];

  // The start page: setup runs by itself, one button per demo user.
  const start = await ca.newPage();
  await start.goto(`${base}/demo/`, { timeout: WAIT });
  await start.waitForSelector('#login-users button[data-uid="alice"]', { timeout: WAIT });
  await screenshot(start, 'start');
  await start.click('#login-users button[data-uid="alice"]');
  await start.waitForSelector('#state.open', { timeout: WAIT });
  const alice = start;
  check('login from the start page');
  const bob = await open(cb, 'bob');

  // alice opens a private chat with bob and writes; bob's list shows it unread.
  await alice.click('button[data-peer="bob"]');
  await alice.waitForSelector('#composer:not([hidden])');
  await sendText(alice, 'hello bob');
  await alice.waitForFunction(() => [...document.querySelectorAll('#messages li.mine[data-seq] .text')].some((e) => e.textContent === 'hello bob'), null, { timeout: WAIT });
  const sid = await alice.$eval('#sessions li.active', (e) => e.dataset.sid);
  await bob.waitForSelector(`#sessions li[data-sid="${sid}"] .unread`, { timeout: WAIT });
  const badge = await bob.$eval(`#sessions li[data-sid="${sid}"] .unread`, (e) => e.textContent);
  if (badge !== '1') throw new Error(`bob's unread badge is ${badge}, want 1`);
  await screenshot(bob, 'bob-unread');
  check('unread count in the session list');

  // bob opens it: he sees the message, alice sees it read.
  await bob.click(`#sessions li[data-sid="${sid}"]`);
  await bob.waitForFunction(() => [...document.querySelectorAll('#messages .text')].some((e) => e.textContent === 'hello bob'), null, { timeout: WAIT });
  if (await bob.$(`#sessions li[data-sid="${sid}"] .unread`)) throw new Error('the badge stayed after bob opened the chat');
  await alice.waitForFunction(() => document.querySelector('#messages li.mine[data-seq] .receipt')?.textContent.includes('Read'), null, { timeout: WAIT });
  check('read receipt');

  // bob types: alice sees it; bob answers.
  await bob.type('#text', 'hi al', { delay: 20 });
  await alice.waitForFunction(() => document.getElementById('typing').textContent.includes('Bob is typing'), null, { timeout: WAIT });
  await screenshot(alice, 'alice-sees-typing');
  check('typing indicator');
  await bob.fill('#text', 'hi alice');
  await bob.press('#text', 'Enter');
  await alice.waitForFunction(() => [...document.querySelectorAll('#messages .text')].some((e) => e.textContent === 'hi alice'), null, { timeout: WAIT });

  // alice sends an image she draws; the progress bar reaches the end; bob sees the picture.
  const png = await alice.evaluate(() => {
    const c = document.createElement('canvas');
    c.width = 64; c.height = 48;
    const g = c.getContext('2d');
    g.fillStyle = '#2f6fde'; g.fillRect(0, 0, 64, 48);
    g.fillStyle = '#fff'; g.fillRect(8, 8, 24, 24);
    return c.toDataURL('image/png').split(',')[1];
  });
  await alice.setInputFiles('#image', { name: 'square.png', mimeType: 'image/png', buffer: Buffer.from(png, 'base64') });
  await bob.waitForFunction(() => { const i = document.querySelector('#messages li[data-seq] img'); return i && i.complete && i.naturalWidth > 0; }, null, { timeout: WAIT });
  const img = await bob.$eval('#messages li[data-seq] img', (i) => ({ w: i.naturalWidth, h: i.naturalHeight }));
  if (img.w !== 64 || img.h !== 48) throw new Error(`bob's image is ${img.w}x${img.h}, want 64x48`);
  const progress = await alice.$eval('#upload-progress', (p) => p.value);
  if (progress !== 1) throw new Error(`the upload progress bar ended at ${progress}, want 1`);
  await screenshot(bob, 'bob-sees-image');
  check('image upload with progress, shown to the peer');

  // alice recalls her first message: both pages say so.
  await alice.click('#messages li.mine[data-seq]:first-child button.recall');
  for (const [p, who] of [[bob, 'Alice'], [alice, 'You']]) {
    await p.waitForFunction((w) => document.querySelector('#messages li.recalled')?.textContent.includes(w + ' recalled a message'), who, { timeout: WAIT });
  }
  if ((await texts(bob)).includes('hello bob')) throw new Error('the recalled text is still on bob\'s page');
  await screenshot(bob, 'bob-sees-recall');
  check('recall');

  // alice creates a group with bob and carol; carol sees it unread when she logs in.
  await alice.click('#new-group');
  await alice.fill('#group-name', 'Team');
  await alice.click('#group-form button[type="submit"]');
  await alice.waitForFunction(() => document.getElementById('conv-title').textContent === 'Team', null, { timeout: WAIT });
  await sendText(alice, 'hello team');
  await alice.waitForFunction(() => [...document.querySelectorAll('#messages li[data-seq] .text')].some((e) => e.textContent === 'hello team'), null, { timeout: WAIT });
  const carol = await open(cc, 'carol');
  await carol.waitForFunction(() => [...document.querySelectorAll('#sessions li')].some((li) => li.textContent.includes('Team') && li.querySelector('.unread')?.textContent === '1'), null, { timeout: WAIT });
  await carol.click('#sessions li:has-text("Team")');
  await carol.waitForFunction(() => [...document.querySelectorAll('#messages .text')].some((e) => e.textContent === 'hello team'), null, { timeout: WAIT });
  await sendText(carol, 'hi from carol');
  await alice.waitForFunction(() => [...document.querySelectorAll('#messages .text')].some((e) => e.textContent === 'hi from carol'), null, { timeout: WAIT });
  await screenshot(carol, 'carol-in-group');
  check('group created and used by its members');

  // bob goes offline; alice sends N messages in their private chat.
  await alice.click(`#sessions li[data-sid="${sid}"]`);
  await alice.waitForFunction((s) => document.querySelector('#sessions li.active')?.dataset.sid === s, sid, { timeout: WAIT });
  await cb.setOffline(true);
  await bob.waitForSelector('#state:not(.open)', { timeout: WAIT });
  await screenshot(bob, 'bob-offline');
  const want = [];
  for (let i = 1; i <= N; i++) {
    const t = 'm-' + String(i).padStart(3, '0');
    want.push(t);
    await sendText(alice, t);
  }
  await alice.waitForFunction((n) => document.querySelectorAll('#messages li.pending').length === 0 &&
    [...document.querySelectorAll('#messages li[data-seq] .text')].filter((e) => e.textContent.startsWith('m-')).length === n, N, { timeout: WAIT });
  if ((await bob.$$eval('#messages li[data-seq] .text', (els) => els.filter((e) => e.textContent.startsWith('m-')).length)) !== 0) {
    throw new Error('bob received messages while offline');
  }
  check(`alice sent ${N} while bob was offline`);

  // bob comes back: his open conversation gets all N, once each, in order.
  await cb.setOffline(false);
  await bob.waitForSelector('#state.open', { timeout: WAIT });
  await bob.waitForFunction((n) => [...document.querySelectorAll('#messages li[data-seq] .text')].filter((e) => e.textContent.startsWith('m-')).length >= n, N, { timeout: WAIT });
  // One more from alice after the burst: when it shows, everything before it has been delivered.
  await sendText(alice, 'after the burst');
  await bob.waitForFunction(() => [...document.querySelectorAll('#messages .text')].some((e) => e.textContent === 'after the burst'), null, { timeout: WAIT });
  const got = (await texts(bob)).filter((t) => t.startsWith('m-'));
  const sent = (await texts(alice)).filter((t) => t.startsWith('m-'));
  if (JSON.stringify(sent) !== JSON.stringify(want)) {
    throw new Error(`alice's page shows her ${N} messages out of the order she typed them (first diff at ${sent.findIndex((t, i) => t !== want[i])})`);
  }
  if (JSON.stringify(got) !== JSON.stringify(want)) {
    throw new Error(`bob's page after reconnecting shows ${got.length} messages (first diff at ${got.findIndex((t, i) => t !== want[i])}), want ${N} in order`);
  }
  const seqs = await bob.$$eval('#messages li[data-seq]', (els) => els.map((e) => Number(e.dataset.seq)));
  if (seqs.some((s, i) => i > 0 && s <= seqs[i - 1])) throw new Error('bob\'s messages are not in seq order: ' + seqs.join(','));
  await screenshot(bob, 'bob-back-online');
  check(`bob got all ${N} exactly once, in order`);

  // bob reloads: the last page shows, and the older ones page in back to the start.
  await bob.reload({ timeout: WAIT });
  await bob.waitForSelector('#state.open', { timeout: WAIT });
  await bob.click(`#sessions li[data-sid="${sid}"]`);
  await bob.waitForFunction(() => [...document.querySelectorAll('#messages .text')].some((e) => e.textContent === 'after the burst'), null, { timeout: WAIT });
  const firstPage = (await texts(bob)).length;
  if (firstPage >= N) throw new Error(`the first history page shows ${firstPage} messages; want one page`);
  let pages = 1;
  while (await bob.$('#older:not([hidden])')) {
    const shown = await bob.$$eval('#messages li[data-seq]', (els) => els.length);
    // Scrolling to the top also loads a page, so the button may be gone
    // by now: press it only if it is still there.
    await bob.evaluate(() => { const o = document.getElementById('older'); if (!o.hidden) o.click(); });
    pages++;
    if (pages > 50) throw new Error('history paging did not end');
    await bob.waitForFunction((n) => document.querySelectorAll('#messages li[data-seq]').length > n || document.getElementById('older').hidden, shown, { timeout: WAIT });
  }
  const all = await texts(bob);
  const ms = all.filter((t) => t.startsWith('m-'));
  if (JSON.stringify(ms) !== JSON.stringify(want) || all[0] !== 'hi alice' || all[all.length - 1] !== 'after the burst') {
    throw new Error(`history after paging: ${all.length} texts, first ${all[0]}, last ${all[all.length - 1]}`);
  }
  await screenshot(bob, 'bob-history-paged');
  check(`history paged back in ${pages} pages`);

  const version = browser.version();
  await browser.close();
  browser = null;
  clearTimeout(deadline);
  process.stdout.write(JSON.stringify({ browser: version, checks, screenshots: shot }) + '\n');
  process.exit(0);
}

main().catch(fail);
