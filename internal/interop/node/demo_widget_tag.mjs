// Opens the page docs/demo.md's walkthrough writes (a page of the reader's
// own, from a file:// URL, with the widget's script tag and a token) in
// Debian's Chromium, driven by playwright-core, for internal/interop's
// TestDemoWalkthroughWidget: the widget must draw its panel open
// (data-open), connect to chatd with the tag's token, and carry the
// customer's first message into a service conversation (queued or open).
//
//   node demo_widget_tag.mjs FILE_URL
//
// It prints one JSON line (what the widget showed) and exits 0, or prints
// the failure to stderr and exits 1. It stops by itself after 60 seconds.
import { createRequire } from 'node:module';

const { chromium } = createRequire(import.meta.url)('playwright-core');
const [page] = process.argv.slice(2);

let browser = null;
async function fail(err) {
  process.stderr.write('demo_widget_tag: ' + (err && err.stack ? err.stack : err) + '\n');
  try { if (browser) await browser.close(); } catch { /* already gone */ }
  process.exit(1);
}
const deadline = setTimeout(() => fail(new Error('timed out after 60s')), 60000);
const T = { timeout: 20000 };

async function main() {
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium', headless: true, timeout: 30000,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
  });
  const p = await browser.newPage();
  p.on('pageerror', (e) => fail(new Error(`page error: ${e.message}`)));
  p.on('console', (m) => { if (m.type() === 'error') process.stderr.write(`console: ${m.text()}\n`); });
  await p.goto(page, T);
  // the widget draws in a shadow root; playwright's CSS locators pierce it
  await p.locator('.cw[data-state="open"][data-connection="open"]').waitFor(T);
  const title = await p.locator('.cw-title').textContent();
  await p.locator('.cw-input').fill('Where is my order?');
  await p.locator('.cw-input').press('Enter');
  await p.locator('.cw-status:is([data-status="queued"], [data-status="open"])').waitFor(T);
  const status = await p.locator('.cw-status').getAttribute('data-status');
  const messages = await p.locator('.cw-messages li').allTextContents();
  clearTimeout(deadline);
  console.log(JSON.stringify({ browser: browser.version(), title, status, messages }));
  await browser.close();
}
main().catch(fail);
