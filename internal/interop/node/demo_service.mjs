// Browser test of the customer-service demo pages (web/src/widget.ts,
// web/src/console.ts), run by internal/interop's TestDemoServicePages:
// Debian's Chromium, driven by playwright-core, opens chatd's own
// /demo/console.html as the agent sam and /demo/shop.html as the customer
// carol, and drives a whole conversation through the pages' DOM:
//   - sam sets himself away in the console (kim was set offline by the Go
//     test), so nobody is available;
//   - carol opens the widget and writes: she is queued, sees position 1
//     and the shop's offline auto-reply;
//   - sam sees her in the queue and claims her; the widget names him and
//     shows his welcome auto-reply;
//   - sam answers with a canned reply picked by typing "/ref", writes a
//     private note (which the widget must never show), carol answers;
//   - sam resolves; the widget offers the rating form; carol gives 5 stars
//     with a comment; the console's activity log shows the rating;
//   - kim comes online in his console; carol writes again: her conversation
//     reopens and is routed to kim, who transfers it to sam with a note
//     (agents only); sam answers.
// A screenshot of each step goes to SHOTS_DIR.
//
//   node demo_service.mjs BASE_URL SHOTS_DIR      (BASE_URL: http://127.0.0.1:port/demo/)
//
// It prints one JSON line (what both pages showed) and exits 0, or prints
// the failure to stderr and exits 1. It stops by itself after 150 seconds.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';

const { chromium } = createRequire(import.meta.url)('playwright-core');
const [base, shots] = process.argv.slice(2);

let context = null;
let userDataDir = null;
let step = 0;
const pages = {};

async function fail(err) {
  process.stderr.write('demo_service: ' + (err && err.stack ? err.stack : err) + '\n');
  for (const [name, p] of Object.entries(pages)) {
    try { await p.screenshot({ path: path.join(shots, `service-failed-${name}.png`) }); } catch { /* gone */ }
  }
  try { if (context) await context.close(); } catch { /* already gone */ }
  if (userDataDir) fs.rmSync(userDataDir, { recursive: true, force: true });
  process.exit(1);
}

const deadline = setTimeout(() => fail(new Error('timed out after 150s')), 150000);

async function shot(page, name) {
  step++;
  await page.screenshot({ path: path.join(shots, `service-${String(step).padStart(2, '0')}-${name}.png`) });
}

const T = { timeout: 20000 };

async function main() {
  fs.mkdirSync(shots, { recursive: true });
  userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'chatd-chromium-'));
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    viewport: { width: 1200, height: 760 },
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
    timeout: 30000,
  });
  const version = context.browser() ? context.browser().version() : '';
  const agent = pages.console = await context.newPage();
  const shop = pages.shop = await context.newPage();
  for (const [name, p] of Object.entries(pages)) {
    p.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warning') process.stderr.write(`${name} console: ${m.text()}\n`); });
    p.on('pageerror', (e) => fail(new Error(`${name} page error: ${e.message}`)));
  }

  // The agent logs in and goes away: nobody is available.
  await agent.goto(base + 'console.html?agent=sam', T);
  await agent.locator('body[data-agent="sam"] #app').waitFor(T);
  await agent.locator('#agents li[data-uid="kim"] .load', { hasText: 'offline' }).waitFor(T);
  await agent.selectOption('#status', 'away');
  await agent.locator('#agents li[data-uid="sam"] .load', { hasText: 'away' }).waitFor(T);
  await agent.locator('#canned li[data-shortcut="refund"]').waitFor(T);
  await shot(agent, 'console-away');

  // The customer opens the widget and writes: queued, position 1.
  await shop.goto(base + 'shop.html?as=carol', T);
  await shop.locator('.cw-bubble').click(T);
  await shop.locator('.cw-panel').waitFor(T);
  await shot(shop, 'widget-open');
  await shop.locator('.cw-input').fill('Hello, where is my order 1234?');
  await shop.locator('.cw-input').press('Enter');
  const queued = shop.locator('.cw-status[data-status="queued"][data-position="1"]');
  await queued.waitFor(T);
  const queuedText = await queued.textContent();
  await shop.locator('.cw-msg.cw-customer', { hasText: 'where is my order 1234' }).waitFor(T);
  const offline = shop.locator('.cw-msg[data-auto="offline"]');
  await offline.waitFor(T);
  const offlineText = await offline.locator('.cw-text').textContent();
  await shot(shop, 'widget-queued');

  // The agent sees her in the queue and claims her.
  const entry = agent.locator('#queue li[data-customer="carol"]');
  await entry.waitFor(T);
  const queueText = await entry.textContent();
  await shot(agent, 'console-queue');
  await entry.locator('.claim').click(T);
  await agent.locator('#conv[data-status="open"]').waitFor(T);
  await agent.locator('#messages .msg.customer', { hasText: 'where is my order 1234' }).waitFor(T);
  await agent.locator('#mine li[data-customer="carol"]').waitFor(T);

  // The widget names the agent and shows his welcome.
  const assigned = shop.locator('.cw-status[data-status="open"][data-agent="sam"]');
  await assigned.waitFor(T);
  await shop.locator('.cw-status', { hasText: 'Sam (ACME) is helping you' }).waitFor(T);
  const assignedText = await assigned.textContent();
  const welcome = shop.locator('.cw-msg[data-auto="welcome"]');
  await welcome.waitFor(T);
  const welcomeText = await welcome.locator('.cw-text').textContent();

  // A canned reply by its shortcut, then a private note.
  await agent.locator('#input').fill('/ref');
  await agent.locator('#suggest button[data-shortcut="refund"]').click(T);
  const cannedText = await agent.locator('#input').inputValue();
  await agent.locator('#input').press('Enter');
  await agent.locator('#messages .msg.agent', { hasText: cannedText }).waitFor(T);
  await agent.locator('#note').fill('VIP customer, be nice');
  await agent.locator('#note-form button').click(T);
  await agent.locator('#messages .note', { hasText: 'VIP customer' }).waitFor(T);
  await agent.locator('#log li[data-type="note"]').waitFor(T);
  await shot(agent, 'console-chat');

  // Both ways: the customer gets the reply and answers.
  await shop.locator('.cw-msg.cw-agent', { hasText: cannedText }).waitFor(T);
  await shop.locator('.cw-input').fill('Great, thank you!');
  await shop.locator('.cw-send').click(T);
  await agent.locator('#messages .msg.customer', { hasText: 'Great, thank you!' }).waitFor(T);
  await shot(shop, 'widget-chat');

  // The agent resolves; the customer rates.
  await agent.locator('#resolve').click(T);
  await agent.locator('#conv[data-status="resolved"]').waitFor(T);
  await agent.locator('#log li[data-type="resolved"]').waitFor(T);
  await agent.locator('#mine li.empty').waitFor(T);
  await shop.locator('.cw-status[data-status="resolved"]').waitFor(T);
  await shop.locator('.cw-rate').waitFor(T);
  await shot(shop, 'widget-rate');
  await shop.locator('.cw-star[data-score="5"]').click(T);
  await shop.locator('.cw-rate-comment').fill('Quick and friendly');
  await shop.locator('.cw-rate-send').click(T);
  const rated = shop.locator('.cw-rated[data-score="5"]');
  await rated.waitFor(T);
  const ratedText = await rated.textContent();
  await shot(shop, 'widget-rated');
  const ratedLog = agent.locator('#log li[data-type="rated"]');
  await ratedLog.waitFor(T);
  const ratedLogText = await ratedLog.textContent();
  await shot(agent, 'console-rated');

  // Routing and a transfer: kim comes online in his own console; carol
  // writes again, which reopens her conversation and routes it to kim
  // (sam is away); kim hands her to sam with a note for him only.
  const kim = pages.kim = await context.newPage();
  kim.on('pageerror', (e) => fail(new Error(`kim page error: ${e.message}`)));
  await kim.goto(base + 'console.html?agent=kim', T);
  await kim.locator('body[data-agent="kim"] #app').waitFor(T);
  await kim.selectOption('#status', 'online');
  await agent.locator('#agents li[data-uid="kim"] .load', { hasText: 'online' }).waitFor(T);
  await shop.locator('.cw-input').fill('One more thing: can I change the colour?');
  await shop.locator('.cw-input').press('Enter');
  await shop.locator('.cw-status[data-status="open"][data-agent="kim"]').waitFor(T);
  const routedText = await shop.locator('.cw-status').textContent();
  await kim.locator('#mine li[data-customer="carol"]').click(T);
  await kim.locator('#messages .msg.customer', { hasText: 'change the colour' }).waitFor(T);
  await kim.selectOption('#transfer-to', 'sam');
  await kim.locator('#transfer-note').fill('wants blue, check stock');
  await kim.locator('#transfer').click(T);
  await kim.locator('#mine li.empty').waitFor(T);
  await shop.locator('.cw-status[data-status="open"][data-agent="sam"]').waitFor(T);
  await agent.locator('#mine li[data-customer="carol"]').waitFor(T);
  const transferLog = await agent.locator('#log li[data-type="transferred"]').textContent(T);
  await agent.locator('#mine li[data-customer="carol"]').click(T);
  await agent.locator('#messages .msg.customer', { hasText: 'change the colour' }).waitFor(T);
  await agent.locator('#input').fill('Blue is in stock, I will change it.');
  await agent.locator('#input').press('Enter');
  await shop.locator('.cw-msg.cw-agent', { hasText: 'Blue is in stock' }).waitFor(T);
  await shot(agent, 'console-transferred');
  await shot(shop, 'widget-transferred');

  const widgetMessages = await shop.locator('.cw-msg').evaluateAll((els) =>
    els.map((e) => ({ seq: Number(e.dataset.seq), role: e.dataset.role, auto: e.dataset.auto || '', text: e.querySelector('.cw-text').textContent })));
  const consoleItems = await agent.locator('#messages li').evaluateAll((els) =>
    els.map((e) => ({ note: e.classList.contains('note'), role: e.dataset.role || '', text: e.querySelector('.text').textContent })));
  const widgetHTML = await shop.locator('#chatd-widget').evaluate((e) => e.shadowRoot.innerHTML);

  await context.close();
  context = null;
  fs.rmSync(userDataDir, { recursive: true, force: true });
  clearTimeout(deadline);
  process.stdout.write(JSON.stringify({
    browser: version, queuedText, offlineText, queueText, assignedText, welcomeText, cannedText, ratedText, ratedLogText,
    routedText, transferLog, widgetMessages, consoleItems,
    widgetShowsNote: widgetHTML.includes('VIP customer') || widgetHTML.includes('check stock'), screenshots: step,
  }) + '\n');
  process.exit(0);
}

main().catch(fail);
