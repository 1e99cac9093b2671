// Interop test of chatd's WebSocket server with Node's ws package, run by
// internal/interop's TestNodeWS against an echo server:
//
//   node ws_interop.js URL COMPRESS LIMIT IDLE_MS
//
// COMPRESS is 1 to offer permessage-deflate (the server has it on) or 0.
// It echoes messages from 0 bytes to LIMIT, fragmented messages, pings in
// both directions, a message over LIMIT (closed with 1009), a limited
// server window, and a clean close. It prints one JSON line with what it
// checked and exits 0, or prints the failure to stderr and exits 1. It
// stops by itself after 60 seconds whatever happens.
'use strict';

const WebSocket = require('ws');

const [url, compressArg, limitArg, idleArg] = process.argv.slice(2);
const compress = compressArg === '1';
const limit = Number(limitArg);
const idleMs = Number(idleArg);

const deadline = setTimeout(() => fail(new Error('timed out after 60s')), 60000);

function fail(err) {
  process.stderr.write('ws interop: ' + (err && err.stack ? err.stack : err) + '\n');
  process.exit(1);
}

function check(cond, what) {
  if (!cond) throw new Error(what);
}

function payload(n) {
  const unit = 'interop chatd 0123456789 ';
  return unit.repeat(Math.ceil(n / unit.length) + 1).slice(0, n);
}

// open connects and collects messages, pings and the close in queues.
function open(deflate) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate: deflate, maxPayload: 4 * limit });
    const c = { ws, msgs: [], waiters: [], pings: 0, pongs: [], closed: null, closeWaiters: [] };
    ws.on('message', (data, isBinary) => {
      check(!isBinary, 'server sent a binary message');
      const s = data.toString('utf8');
      const w = c.waiters.shift();
      if (w) w.resolve(s); else c.msgs.push(s);
    });
    ws.on('ping', () => { c.pings++; }); // ws answers with a pong itself
    ws.on('pong', (data) => c.pongs.push(data.toString('utf8')));
    ws.on('close', (code, reason) => {
      c.closed = { code, reason: reason.toString('utf8') };
      for (const w of c.waiters.splice(0)) w.reject(new Error('closed ' + code + ' waiting for a message'));
      for (const w of c.closeWaiters.splice(0)) w(c.closed);
    });
    ws.on('error', (err) => { if (ws.readyState === WebSocket.CONNECTING) reject(err); });
    ws.on('open', () => resolve(c));
  });
}

function next(c, ms = 10000) {
  if (c.msgs.length) return Promise.resolve(c.msgs.shift());
  if (c.closed) return Promise.reject(new Error('connection closed ' + c.closed.code));
  return new Promise((resolve, reject) => {
    const w = { resolve, reject };
    c.waiters.push(w);
    setTimeout(() => { const i = c.waiters.indexOf(w); if (i >= 0) { c.waiters.splice(i, 1); reject(new Error('no message in ' + ms + 'ms')); } }, ms);
  });
}

function closed(c, ms = 10000) {
  if (c.closed) return Promise.resolve(c.closed);
  return new Promise((resolve, reject) => {
    c.closeWaiters.push(resolve);
    setTimeout(() => reject(new Error('not closed in ' + ms + 'ms')), ms);
  });
}

function send(c, data, opts) {
  return new Promise((resolve, reject) => c.ws.send(data, opts || {}, (err) => (err ? reject(err) : resolve())));
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function main() {
  const deflate = compress ? { threshold: 64 } : false;
  const report = { library: 'ws ' + require('ws/package.json').version, compress, checks: [] };

  // Echo, 0 bytes to the limit.
  let c = await open(deflate);
  const negotiated = c.ws.extensions.includes('permessage-deflate');
  check(negotiated === compress, 'permessage-deflate negotiated=' + negotiated + ' (extensions "' + c.ws.extensions + '")');
  report.extensions = c.ws.extensions;
  for (const n of [0, 1, 125, 126, 127, 1000, 4096, 65535, limit]) {
    const p = payload(n);
    await send(c, p);
    const got = await next(c);
    check(got === p, 'echo of ' + n + ' bytes came back as ' + got.length + ' bytes');
  }
  report.checks.push('echo 0..' + limit + ' bytes');

  // Fragmented messages: 512-byte frames, the last one final.
  for (const n of [1000, 20000, limit]) {
    const p = payload(n);
    for (let i = 0; i < n; i += 512) {
      await send(c, p.slice(i, Math.min(n, i + 512)), { fin: i + 512 >= n });
    }
    const got = await next(c);
    check(got === p, 'fragmented echo of ' + n + ' bytes came back as ' + got.length + ' bytes');
  }
  report.checks.push('fragmented messages');

  // Client pings get pongs with the same payload.
  for (let i = 0; i < 3; i++) {
    c.ws.ping('p' + i);
  }
  for (let t = 0; c.pongs.length < 3 && t < 100; t++) await sleep(50);
  check(c.pongs.join(',') === 'p0,p1,p2', 'pongs ' + JSON.stringify(c.pongs));
  // Idle for three idle timeouts: the server pings and ws answers.
  await sleep(3 * idleMs);
  check(c.pings >= 2, 'server sent ' + c.pings + ' pings while the client idled');
  check(!c.closed, 'closed while idle although ws answered pings: ' + JSON.stringify(c.closed));
  await send(c, 'still here');
  check((await next(c)) === 'still here', 'echo after idling');
  report.checks.push('ping/pong both ways (' + c.pings + ' server pings)');

  // Clean close.
  c.ws.close(1000, 'bye');
  let cl = await closed(c);
  check(cl.code === 1000, 'close answered with ' + cl.code);
  report.checks.push('clean close 1000');

  // Over the limit: 1009.
  c = await open(deflate);
  await send(c, payload(limit + 1));
  cl = await closed(c);
  check(cl.code === 1009, 'message over the limit closed with ' + cl.code + ', want 1009');
  report.checks.push('over the limit: 1009');

  if (compress) {
    // A client that limits the server's window to 2^10 bytes: the server
    // confirms it, compresses only messages that fit the window and sends
    // longer ones plain, and ws reads both kinds.
    c = await open({ threshold: 64, serverMaxWindowBits: 10 });
    // ws.extensions names the extension only; ws itself refuses a
    // response that does not confirm the window it asked for.
    check(c.ws.extensions.includes('permessage-deflate'), 'window 10: not negotiated: ' + c.ws.extensions);
    // Text that repeats 1,500 bytes back (it would need a 2 KiB window).
    let noise = '';
    for (let i = 0; i < 1500; i++) noise += String.fromCharCode(33 + ((i * 7919) % 89));
    for (const p of [payload(300), payload(1024), payload(1025), payload(5000), payload(limit), noise + noise]) {
      await send(c, p);
      check((await next(c)) === p, 'window 10: echo of ' + p.length + ' bytes');
    }
    c.ws.close(1000);
    await closed(c);
    report.checks.push('server_max_window_bits=10');
  }

  clearTimeout(deadline);
  process.stdout.write(JSON.stringify(report) + '\n');
  process.exit(0);
}

main().catch(fail);
