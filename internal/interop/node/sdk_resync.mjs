// The JavaScript SDK (sdk/js, bundled by the Go test) against a real chatd,
// with Node's ws as its WebSocket. Two users share a private session; A
// loses its connection (one send is made in the same instant) and stays
// offline while it queues more sends and B sends N messages; then A comes
// back. A must receive every message of the session exactly once, in seq
// order, identical to what the server stored, and each of A's sends must be
// stored exactly once. Prints one JSON line; exits 1 with the reason on
// failure.
//
// usage: node sdk_resync.mjs BUNDLE WS_URL APP TOKEN_A TOKEN_B UID_B N
import { pathToFileURL } from 'node:url';
import WebSocket from 'ws';
import { fail, storedAll, until } from './sdk_common.mjs';

const [bundle, url, app, tokenA, tokenB, uidB, nArg] = process.argv.slice(2);
const N = Number(nArg);
const { ChatClient } = await import(pathToFileURL(bundle).href);

const deadline = setTimeout(() => fail('timed out'), 60_000);

// A's WebSocket: while `offline`, every connection attempt goes to a closed
// port and fails, as with the network cut.
let offline = false;
const aSockets = [];
class ASocket extends WebSocket {
  constructor(u) {
    super(offline ? 'ws://127.0.0.1:1/' : u);
    aSockets.push(this);
  }
}

// B's WebSocket counts the rate_limited refusals its SDK gets (and retries).
let bLimited = 0;
class BSocket extends WebSocket {
  constructor(u) {
    super(u);
    this.on('message', (d) => { if (String(d).includes('"rate_limited"')) bLimited++; });
  }
}

const opts = { url, app, platform: 'web', backoffBase: 50, backoffMax: 400, requestTimeout: 10_000 };
const a = new ChatClient({ ...opts, token: tokenA, WebSocket: ASocket });
const b = new ChatClient({ ...opts, token: tokenB, WebSocket: BSocket });
const got = [];
a.on('message', (m) => got.push(m));
const errors = [];
a.on('error', (e) => errors.push(String(e)));

await a.connect();
await b.connect();
const sid = (await a.privateSession(uidB)).session_id;

// live first: 5 from B, 1 from A
for (let i = 0; i < 5; i++) await b.send({ session_id: sid, type: 'text', content: { text: `live${i}` } });
await a.send({ session_id: sid, type: 'text', content: { text: 'a-live' } });
await until('the live messages', () => got.length === 6);

// the connection dies with a send in flight
const aSends = [a.send({ session_id: sid, type: 'text', content: { text: 'a-inflight' } })];
offline = true;
aSockets[aSockets.length - 1].terminate();
await until('A to notice', () => a.state !== 'open');
for (let i = 0; i < 3; i++) aSends.push(a.send({ session_id: sid, type: 'text', content: { text: `a-offline${i}` } }));
if (a.queuedSends().length !== 4) fail(`queued sends ${a.queuedSends().length}, want 4`);

// B sends N while A is away (in parallel: the server's rate limit refuses
// some, and B's SDK retries them after retry_after with the same cid)
const bAcks = await Promise.all(Array.from({ length: N }, (_, i) =>
  b.send({ session_id: sid, type: 'text', content: { text: `b${i}` } })));
const retried = new Set(bAcks.map((x) => x.seq)).size;
if (retried !== N) fail(`B's acks name ${retried} distinct seqs, want ${N}`);

let synced = 0;
a.on('synced', () => synced++);
offline = false;
a.reconnectNow();
const aAcks = await Promise.all(aSends);
const total = 6 + 4 + N;
await until('A to receive everything', () => got.length >= total && synced > 0);
await new Promise((r) => setTimeout(r, 300)); // anything extra would show up now

// what the server stored, read by B
const stored = await storedAll(b, sid);
const ids = (l) => l.map((m) => m.msg_id).join(',');
if (stored.length !== total) fail(`server stored ${stored.length} messages, want ${total}`);
if (got.length !== total) fail(`A received ${got.length} messages, want ${total}`);
if (ids(got) !== ids(stored)) fail('A received a different sequence from what the server stored');
for (let i = 0; i < got.length; i++) if (got[i].seq !== i + 1) fail(`message ${i} has seq ${got[i].seq}`);
for (const text of ['a-inflight', 'a-offline0', 'a-offline1', 'a-offline2']) {
  const n = stored.filter((m) => m.content.text === text).length;
  if (n !== 1) fail(`${text} stored ${n} times`);
}
const bTexts = new Set(got.filter((m) => m.from !== a.uid).map((m) => m.content.text));
if (bTexts.size !== N + 5) fail(`A received ${bTexts.size} distinct texts from B, want ${N + 5}`);
for (const [i, ack] of aAcks.entries()) {
  const m = stored.find((x) => x.seq === ack.seq);
  if (!m || m.content.text !== (i === 0 ? 'a-inflight' : `a-offline${i - 1}`)) fail(`ack ${i} names seq ${ack.seq}`);
}
clearTimeout(deadline);
a.close();
b.close();
console.log(JSON.stringify({ received: got.length, stored: stored.length, from_b: N, a_queued: 4, connections_a: aSockets.length, b_rate_limited: bLimited, errors }));
process.exit(0);
