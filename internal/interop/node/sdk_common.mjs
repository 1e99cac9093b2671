// Helpers of the SDK scripts (sdk_resync.mjs, sdk_fallback.mjs, sdk_upload.mjs, sdk_browser.mjs).

/** Prints the reason and exits 1: the Go test shows stderr. */
export function fail(why) {
  console.error('FAIL: ' + why);
  process.exit(1);
}

/** Waits until cond() holds, polling every 10 ms; fails after ms. */
export async function until(what, cond, ms = 30_000) {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) fail('waiting for ' + what);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Every message the server stored in session sid, read by client cl with
 * paged `sync` calls (500 a page) from the start. */
export async function storedAll(cl, sid) {
  const out = [];
  for (let after = 0, more = true; more;) {
    const page = await cl.sync(sid, after, 500);
    out.push(...page.messages);
    more = page.has_more;
    if (page.messages.length) after = page.messages[page.messages.length - 1].seq;
  }
  return out;
}
