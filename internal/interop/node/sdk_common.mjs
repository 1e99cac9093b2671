// Helpers of the SDK scripts (sdk_fallback.mjs, sdk_upload.mjs).

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
