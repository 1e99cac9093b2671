// The JavaScript SDK's uploads (sdk/js, bundled by the Go test) against a
// real chatd, from Node (fetch: progress 0 then 100%). Alice, on
// long-poll, uploads a PNG she builds and sends it with sendFile; bob, on a
// WebSocket, receives the image message with the file's id, size and
// dimensions filled in by the server, asks for a signed URL and downloads
// the same bytes. A file upload carries its name; content that is not an
// image is refused as one; an aborted upload rejects. Prints one JSON
// line; exits 1 with the reason on failure.
//
// usage: node sdk_upload.mjs BUNDLE WS_URL HTTP_URL APP TOKEN_A TOKEN_B UID_B
import { pathToFileURL } from 'node:url';
import { deflateSync } from 'node:zlib';
import WebSocket from 'ws';
import { fail, until } from './sdk_common.mjs';

const [bundle, wsUrl, httpUrl, app, tokenA, tokenB, uidB] = process.argv.slice(2);
const { ChatClient } = await import(pathToFileURL(bundle).href);

const deadline = setTimeout(() => fail('timed out'), 40_000);

// A W×H RGB PNG (signature, IHDR, IDAT, IEND; CRC-32 per chunk).
function png(w, h) {
  const crcTable = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc = (buf) => {
    let c = 0xffffffff;
    for (const b of buf) c = crcTable[(c ^ b) & 0xff] ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const chunk = (type, data) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const td = Buffer.concat([Buffer.from(type), data]);
    const c = Buffer.alloc(4);
    c.writeUInt32BE(crc(td));
    return Buffer.concat([len, td, c]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // RGB
  const rows = [];
  for (let y = 0; y < h; y++) {
    rows.push(0); // filter: none
    for (let x = 0; x < w; x++) rows.push((x * 40) & 255, (y * 60) & 255, 128);
  }
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr), chunk('IDAT', deflateSync(Buffer.from(rows))), chunk('IEND', Buffer.alloc(0)),
  ]);
}

const opts = { url: wsUrl, httpUrl, app, backoffBase: 50, backoffMax: 400, requestTimeout: 10_000, pollTimeout: 5 };
const a = new ChatClient({ ...opts, token: tokenA, transport: 'longpoll' });
const b = new ChatClient({ ...opts, token: tokenB, WebSocket, transport: 'websocket' });
const bGot = [];
b.on('message', (m) => bGot.push(m));
await a.connect();
await b.connect();
const sid = (await a.privateSession(uidB)).session_id;

// an image, with progress
const bytes = png(4, 3);
const progress = [];
const img = await a.sendFile({
  session_id: sid, file: new Blob([bytes], { type: 'image/png' }), name: 'dot.png',
  onProgress: (p) => progress.push(p),
});
const f = img.file;
if (f.type !== 'image' || f.mime !== 'image/png' || f.size !== bytes.length || f.width !== 4 || f.height !== 3 || f.name !== 'dot.png') {
  fail('file record ' + JSON.stringify(f));
}
if (!/^[0-9a-f]{64}$/.test(f.file_id) || !f.url.startsWith('/v1/files/')) fail('file record ' + JSON.stringify(f));
if (progress.length < 2 || progress[0].loaded !== 0 || progress[progress.length - 1].loaded !== bytes.length ||
  progress.some((p) => p.total !== bytes.length)) fail('progress ' + JSON.stringify(progress));

// bob gets the message, with what the server filled in
await until('bob to receive the image', () => bGot.some((m) => m.seq === img.ack.seq));
const m = bGot.find((x) => x.seq === img.ack.seq);
if (m.type !== 'image' || m.content.file_id !== f.file_id || m.content.url !== 'chatd-file:' + f.file_id ||
  m.content.width !== 4 || m.content.height !== 3 || m.content.size !== bytes.length) fail('image message ' + JSON.stringify(m));

// and downloads the same bytes from a signed URL
const H = { 'X-Chatd-App': app, Authorization: 'Bearer ' + tokenB };
const signed = await (await fetch(`${httpUrl}/v1/files/${f.file_id}/url`, { headers: H })).json();
if (!signed.ok) fail('signed URL ' + JSON.stringify(signed));
const dl = Buffer.from(await (await fetch(httpUrl + signed.data.url)).arrayBuffer());
if (!dl.equals(bytes)) fail(`downloaded ${dl.length} bytes, not the upload`);

// a file keeps its name in the message
const doc = await a.sendFile({ session_id: sid, file: new Blob(['hello, file\n'], { type: 'text/plain' }), name: 'notes.txt' });
if (doc.file.type !== 'file') fail('a text/plain Blob uploaded as ' + doc.file.type);
await until('bob to receive the file', () => bGot.some((x) => x.seq === doc.ack.seq));
const fm = bGot.find((x) => x.seq === doc.ack.seq);
if (fm.type !== 'file' || fm.content.name !== 'notes.txt' || fm.content.file_id !== doc.file.file_id) fail('file message ' + JSON.stringify(fm));

// text is not an image: the server's error reaches the caller
let refused = '';
try {
  await a.upload(new Blob(['<html>not a picture</html>']), { type: 'image' });
} catch (e) {
  refused = `${e.code}: ${e.message}`;
}
if (!refused.startsWith('bad_request') || !refused.includes('image upload must be')) fail('a text upload as image: ' + (refused || 'accepted'));

// an aborted upload rejects `aborted`
const ac = new AbortController();
const p = a.upload(new Blob([bytes], { type: 'image/png' }), { signal: ac.signal });
ac.abort();
let aborted = '';
try { await p; } catch (e) { aborted = e.code; }
if (aborted !== 'aborted') fail('an aborted upload: ' + (aborted || 'resolved'));

clearTimeout(deadline);
a.close();
b.close();
console.log(JSON.stringify({ file_id: f.file_id, size: f.size, width: f.width, height: f.height, progress: progress.length, refused, aborted }));
process.exit(0);
