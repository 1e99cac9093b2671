// The JavaScript SDK's HTTP transports (sdk/js, bundled by the Go test)
// against a real chatd. Three users share a group: bob on a WebSocket,
// alice on long-poll, carol on transport 'auto' whose WebSocket can never
// connect (so it falls back to SSE). Alice and carol lose the network with
// a send in flight, queue more sends while offline and miss bob's N
// messages; then they come back, and carol sends a burst past the send
// rate over POST /v1/client, so her SDK retries refused sends. Each must
// hold exactly what the server stored, each message once, in seq order,
// and each of their sends must be stored once. Prints one JSON line; exits
// 1 with the reason on failure.
//
// usage: node sdk_fallback.mjs BUNDLE WS_URL HTTP_URL APP TOKEN_A TOKEN_B TOKEN_C UID_A UID_C N
import { pathToFileURL } from 'node:url';
import WebSocket from 'ws';
import { fail, storedAll, until } from './sdk_common.mjs';

const [bundle, wsUrl, httpUrl, app, tokenA, tokenB, tokenC, uidA, uidC, nArg] = process.argv.slice(2);
const N = Number(nArg);
const BURST = 100;
const { ChatClient } = await import(pathToFileURL(bundle).href);

const deadline = setTimeout(() => fail('timed out'), 80_000);

// A fetch whose network can be cut: cut() aborts every request and stream
// in flight and fails every new one until `offline` is cleared. It counts
// the rate_limited replies of POST /v1/client.
function network() {
  const n = { offline: false, limited: 0, requests: 0, open: new Set() };
  n.fetch = async (input, init = {}) => {
    n.requests++;
    if (n.offline) throw new TypeError('fetch failed: offline');
    const ac = new AbortController();
    n.open.add(ac);
    if (init.signal) {
      if (init.signal.aborted) ac.abort();
      init.signal.addEventListener('abort', () => ac.abort());
    }
    const res = await fetch(input, { ...init, signal: ac.signal });
    if (String(input).includes('/v1/client') && (await res.clone().text()).includes('"rate_limited"')) n.limited++;
    return res;
  };
  n.cut = () => {
    n.offline = true;
    for (const ac of n.open) ac.abort();
    n.open.clear();
  };
  return n;
}

// carol's WebSocket goes to a closed port: 'auto' must fall back
class DeadSocket extends WebSocket {
  constructor() { super('ws://127.0.0.1:1/'); }
}

const opts = { url: wsUrl, httpUrl, app, backoffBase: 50, backoffMax: 400, requestTimeout: 10_000, pollTimeout: 5 };
const b = new ChatClient({ ...opts, token: tokenB, WebSocket, transport: 'websocket' });
await b.connect();
const sid = (await b.groupCreate('fallback', [uidA, uidC])).session_id;

const na = network(), nc = network();
const a = new ChatClient({ ...opts, token: tokenA, transport: 'longpoll', fetch: na.fetch, cursors: { [sid]: 0 } });
const c = new ChatClient({ ...opts, token: tokenC, transport: 'auto', WebSocket: DeadSocket, fetch: nc.fetch, cursors: { [sid]: 0 } });
const got = { a: [], c: [] };
const errors = [];
const logins = { a: 0, c: 0 };
for (const [k, cl] of [['a', a], ['c', c]]) {
  cl.on('message', (m) => { if (m.session_id === sid) got[k].push(m); });
  cl.on('error', (e) => errors.push(`${k}: ${e}`));
  cl.on('connected', () => logins[k]++);
}
await a.connect();
await c.connect();
if (a.transport !== 'longpoll') fail(`alice's transport is ${a.transport}`);
if (c.transport !== 'sse') fail(`carol's transport is ${c.transport}, want sse (the fallback)`);
if (b.transport !== 'websocket') fail(`bob's transport is ${b.transport}`);

const text = (t) => ({ session_id: sid, type: 'text', content: { text: t } });

// live: one from each, each client sees all
await b.send(text('b-live'));
await a.send(text('a-live'));
await c.send(text('c-live'));
let stored = await storedAll(b, sid);
await until('the live messages', () => got.a.length === stored.length && got.c.length === stored.length);

// the network goes, with a send in flight on each
const aSends = [a.send(text('a-inflight'))];
const cSends = [c.send(text('c-inflight'))];
na.cut();
nc.cut();
await until('alice and carol to notice', () => a.state !== 'open' && c.state !== 'open');
for (let i = 0; i < 3; i++) {
  aSends.push(a.send(text(`a-offline${i}`)));
  cSends.push(c.send(text(`c-offline${i}`)));
}
if (a.queuedSends().length !== 4 || c.queuedSends().length !== 4) fail('queued sends: want 4 each');
// bob sends N meanwhile, in parallel (his SDK retries rate_limited ones)
const bAcks = await Promise.all(Array.from({ length: N }, (_, i) => b.send(text(`b${i}`))));
if (new Set(bAcks.map((x) => x.seq)).size !== N) fail("bob's acks do not name N distinct seqs");

// back online
na.offline = false;
nc.offline = false;
a.reconnectNow();
c.reconnectNow();
const aAcks = await Promise.all(aSends);
const cAcks = await Promise.all(cSends);
// carol sends a burst over POST /v1/client, past the send rate: refused sends are retried
const burst = await Promise.all(Array.from({ length: BURST }, (_, i) => c.send(text(`c-burst${i}`))));
if (new Set(burst.map((x) => x.seq)).size !== BURST) fail("carol's burst acks do not name distinct seqs");

stored = await storedAll(b, sid);
const total = stored.length;
await until('alice and carol to receive everything', () => got.a.length >= total && got.c.length >= total);
await new Promise((r) => setTimeout(r, 500)); // anything extra would show up now

const ids = (l) => l.map((m) => m.msg_id).join(',');
for (const k of ['a', 'c']) {
  if (got[k].length !== total) fail(`${k} received ${got[k].length} messages, want ${total}`);
  if (ids(got[k]) !== ids(stored)) fail(`${k} received a different sequence from what the server stored`);
  for (let i = 0; i < total; i++) if (got[k][i].seq !== i + 1) fail(`${k}: message ${i} has seq ${got[k][i].seq}`);
}
const once = (t) => stored.filter((m) => m.content.text === t).length;
for (const p of ['a', 'c']) {
  for (const t of [`${p}-inflight`, `${p}-offline0`, `${p}-offline1`, `${p}-offline2`]) {
    if (once(t) !== 1) fail(`${t} stored ${once(t)} times`);
  }
}
for (let i = 0; i < BURST; i++) if (once(`c-burst${i}`) !== 1) fail(`c-burst${i} stored ${once(`c-burst${i}`)} times`);
for (const [p, acks] of [['a', aAcks], ['c', cAcks]]) {
  for (const [i, ack] of acks.entries()) {
    const m = stored.find((x) => x.seq === ack.seq);
    const want = i === 0 ? `${p}-inflight` : `${p}-offline${i - 1}`;
    if (!m || m.content.text !== want) fail(`${p}'s ack ${i} names seq ${ack.seq}, not ${want}`);
  }
}
if (total !== 3 + 8 + N + BURST) fail(`server stored ${total} messages, want ${3 + 8 + N + BURST}`);
clearTimeout(deadline);
const report = {
  stored: total, received_a: got.a.length, received_c: got.c.length, from_b: N,
  transport_a: a.transport, transport_c: c.transport, transport_b: b.transport,
  logins_a: logins.a, logins_c: logins.c, c_rate_limited: nc.limited, errors,
};
a.close();
b.close();
c.close();
console.log(JSON.stringify(report));
process.exit(0);
