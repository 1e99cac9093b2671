// Uploads: POST /v1/files with the token, progress from XMLHttpRequest
// (browsers) or 0 → 100% with fetch (Node), the server's file record, and
// sendFile's message that references it.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ChatClient, type ClientOptions } from '../src/index';
import { FakeServer, socketClass } from './fake';
import { FakeHttp } from './fakehttp';

beforeEach(() => { vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] }); });
afterEach(() => { vi.useRealTimers(); });

function client(extra: Partial<ClientOptions> = {}) {
  const server = new FakeServer();
  const http = new FakeHttp(server);
  const c = new ChatClient({
    url: 'ws://fake/', httpUrl: 'http://fake:22887', app: 'app', token: 't0', WebSocket: socketClass(server),
    fetch: http.fetch, XMLHttpRequest: undefined, pingInterval: 0, ...extra,
  });
  return { server, http, c };
}

const png = new Blob([new Uint8Array([0x89, 0x50, 0x4e, 0x47, 1, 2, 3, 4, 5, 6])], { type: 'image/png' });

describe('upload with fetch (no XMLHttpRequest)', () => {
  it('posts the bytes with the token, reports 0 then 100%, and resolves with the file record', async () => {
    const { http, c } = client();
    const progress: [number, number][] = [];
    const rec = await c.upload(png, { name: 'cat 1.png', onProgress: (p) => progress.push([p.loaded, p.total]) });
    expect(rec).toMatchObject({ type: 'image', size: 10, name: 'cat 1.png', file_id: expect.stringMatching(/^[0-9a-f]{64}$/) });
    expect(progress).toEqual([[0, 10], [10, 10]]);
    const r = http.requests[0];
    expect(r.method).toBe('POST');
    expect(r.path).toBe('/v1/files');
    expect(r.query.get('type')).toBe('image');
    expect(r.query.get('name')).toBe('cat 1.png');
    expect(r.headers).toMatchObject({ 'X-Chatd-App': 'app', Authorization: 'Bearer t0' });
    expect([...http.uploads[0].bytes]).toEqual([0x89, 0x50, 0x4e, 0x47, 1, 2, 3, 4, 5, 6]);
  });

  it('takes the type from the MIME type: audio is voice, anything else file; bytes are file', async () => {
    const { http, c } = client();
    await c.upload(new Blob(['x'], { type: 'audio/ogg' }));
    await c.upload(new Blob(['x'], { type: 'video/mp4' }));
    await c.upload(new Blob(['x'], { type: 'application/pdf' }));
    await c.upload(new Uint8Array([1, 2, 3]));
    await c.upload(new Blob(['x'], { type: 'image/png' }), { type: 'file' });
    expect(http.requests.map((r) => r.query.get('type'))).toEqual(['voice', 'video', 'file', 'file', 'file']);
    expect(http.uploads[3].bytes.length).toBe(3);
  });

  it("rejects with the server's error, asks getToken again after a 401, and needs httpUrl", async () => {
    const { c } = client();
    await expect(c.upload(png, { type: 'gif' as any })).rejects.toMatchObject({
      name: 'ChatdError', code: 'bad_request', message: 'type must be image, voice, video or file',
    });
    const b = client({ token: 'old', getToken: async () => 'fresh' });
    b.http.revoked.add('old');
    expect((await b.c.upload(png)).type).toBe('image');
    expect(b.http.requests.map((r) => r.headers.Authorization)).toEqual(['Bearer old', 'Bearer fresh']);
    const d = client({ httpUrl: undefined });
    await expect(d.c.upload(png)).rejects.toMatchObject({ code: 'bad_request' });
  });

  it('rejects aborted when the signal aborts', async () => {
    const { c } = client();
    const ac = new AbortController();
    ac.abort();
    await expect(c.upload(png, { signal: ac.signal })).rejects.toMatchObject({ code: 'aborted' });
  });
});

/** The XMLHttpRequest a browser has, driven by the test. */
class FakeXHR {
  static last: FakeXHR;
  method = ''; url = ''; headers: Record<string, string> = {}; body: unknown; status = 0; responseText = '';
  upload: { onprogress: ((e: { loaded: number; total: number }) => void) | null } = { onprogress: null };
  onload: (() => void) | null = null;
  onerror: (() => void) | null = null;
  onabort: (() => void) | null = null;
  aborted = false;
  constructor() { FakeXHR.last = this; }
  open(m: string, u: string) { this.method = m; this.url = u; }
  setRequestHeader(k: string, v: string) { this.headers[k] = v; }
  send(b: unknown) { this.body = b; }
  abort() { this.aborted = true; this.onabort?.(); }
  answer(status: number, body: unknown) { this.status = status; this.responseText = JSON.stringify(body); this.onload?.(); }
}

describe('upload with XMLHttpRequest (browsers)', () => {
  it('forwards the upload progress events and resolves with the record', async () => {
    const { c } = client({ XMLHttpRequest: FakeXHR as any });
    const progress: number[] = [];
    const p = c.upload(png, { onProgress: (e) => progress.push(e.loaded) });
    const x = FakeXHR.last;
    expect(x.method).toBe('POST');
    expect(x.url).toBe('http://fake:22887/v1/files?type=image');
    expect(x.headers).toEqual({ 'X-Chatd-App': 'app', Authorization: 'Bearer t0' });
    expect(x.body).toBe(png);
    x.upload.onprogress!({ loaded: 4, total: 10 });
    x.upload.onprogress!({ loaded: 10, total: 10 });
    x.answer(200, { ok: true, data: { file_id: 'a'.repeat(64), type: 'image', size: 10 } });
    expect(await p).toMatchObject({ file_id: 'a'.repeat(64) });
    expect(progress).toEqual([0, 4, 10]);
  });

  it('maps an error answer, and aborts with the signal', async () => {
    const { c } = client({ XMLHttpRequest: FakeXHR as any });
    const p = c.upload(png);
    FakeXHR.last.answer(413, { ok: false, error: { code: 'too_large', message: 'an image may be at most 10 MiB' } });
    await expect(p).rejects.toMatchObject({ code: 'too_large', message: 'an image may be at most 10 MiB' });
    const ac = new AbortController();
    const q = c.upload(png, { signal: ac.signal });
    ac.abort();
    await expect(q).rejects.toMatchObject({ code: 'aborted' });
    expect(FakeXHR.last.aborted).toBe(true);
  });
});

describe('sendFile', () => {
  it('uploads, then sends an image by file_id and a file by file_id and name', async () => {
    const { server, c } = client();
    await c.connect();
    const img = await c.sendFile({ session_id: 3, file: png });
    expect(img.file.type).toBe('image');
    expect(img.ack.seq).toBe(1);
    const doc = await c.sendFile({ to: 'u2', session_id: 3, file: new Blob(['%PDF'], { type: 'application/pdf' }), name: 'a.pdf' });
    const voice = await c.sendFile({ session_id: 3, file: new Blob(['OggS'], { type: 'audio/ogg' }), content: { duration: 3 } });
    const sent = server.frames.filter((f) => f.action === 'send');
    expect(sent.map((f) => [f.type, f.content])).toEqual([
      ['image', { file_id: img.file.file_id }],
      ['file', { file_id: doc.file.file_id, name: 'a.pdf' }],
      ['voice', { duration: 3, file_id: voice.file.file_id }],
    ]);
    expect(server.store.get(3)!.map((m) => m.type)).toEqual(['image', 'file', 'voice']);
    c.close();
  });
});
