// The SSE and long-poll transports against chatd's HTTP endpoints in
// memory (fakehttp.ts), on vitest's fake clock: the same guarantees as
// over a WebSocket (resync after every reconnect, exactly once in order,
// the send queue with cids), and the fallback choice of transport: 'auto'.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ChatClient, type ClientOptions } from '../src/index';
import type { Message } from '../src/types';
import { FakeServer, socketClass } from './fake';
import { FakeHttp } from './fakehttp';

async function flush(): Promise<void> {
  for (let i = 0; i < 20; i++) await vi.advanceTimersByTimeAsync(0);
}

function client(http: FakeHttp, extra: Partial<ClientOptions> = {}) {
  const c = new ChatClient({
    url: 'ws://fake/', httpUrl: 'http://fake:22887/', app: 'app', token: 't0', fetch: http.fetch,
    WebSocket: undefined, transport: 'longpoll',
    random: () => 0.5, backoffBase: 1000, backoffMax: 8000, pingInterval: 0, requestTimeout: 5000, ...extra,
  });
  const got: Message[] = [];
  c.on('message', (m) => got.push(m));
  const errors: Error[] = [];
  c.on('error', (e) => errors.push(e));
  return { c, got, errors };
}

function seqs(got: Message[], sid: number): number[] {
  return got.filter((m) => m.session_id === sid).map((m) => m.seq);
}
function range(a: number, b: number): number[] {
  return Array.from({ length: b - a + 1 }, (_, i) => a + i);
}

// setImmediate stays real: Response bodies (undici) need it
beforeEach(() => { vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'] }); });
afterEach(() => { vi.useRealTimers(); vi.unstubAllGlobals(); });

for (const transport of ['longpoll', 'sse'] as const) {
  describe(`${transport} transport`, () => {
    it('logs in with the token, reads events from the starting cursor, and sends over POST /v1/client', async () => {
      const server = new FakeServer();
      const http = new FakeHttp(server);
      server.store1(4);
      const { c, got } = client(http, { transport });
      const me = await c.connect();
      await flush();
      expect(me).toMatchObject({ uid: 'me', nickname: 'me', expires_at: 0 });
      expect(c.transport).toBe(transport);
      expect(c.state).toBe('open');
      // the first read has no cursor: it checks the token and starts the buffer
      const first = http.requests.find((r) => r.path === '/v1/events')!;
      expect(first.query.get('cursor')).toBeNull();
      expect(first.headers).toMatchObject({ 'X-Chatd-App': 'app', Authorization: 'Bearer t0' });
      expect(server.frames.map((f) => f.action).slice(0, 3).sort()).toEqual(['ping', 'sessions', 'user']);
      // live events
      http.message(4);
      http.message(4);
      await flush();
      expect(seqs(got, 4)).toEqual([2, 3]);
      // a send: the ack and the device's own message event deliver it once
      const ack = await c.send({ session_id: 4, type: 'text', content: { text: 'over http' } });
      await flush();
      expect(ack.seq).toBe(4);
      expect(seqs(got, 4)).toEqual([2, 3, 4]);
      const post = http.requests.filter((r) => r.path === '/v1/client').map((r) => JSON.parse(r.body));
      expect(post.find((b) => b.action === 'send')).toMatchObject({ session_id: 4, type: 'text', cid: ack && expect.any(String) });
      if (transport === 'longpoll') {
        const polls = http.requests.filter((r) => r.path === '/v1/events').slice(1);
        expect(polls.length).toBeGreaterThan(1);
        expect(polls[0].query.get('timeout')).toBe('25');
        // each poll continues from the cursor of the answer before
        expect(polls.map((p) => p.query.get('cursor'))).toEqual(['aaaaaaaaaaaa.1', 'aaaaaaaaaaaa.2', 'aaaaaaaaaaaa.3', 'aaaaaaaaaaaa.4']);
      } else {
        expect(http.count('/v1/events/stream')).toBe(1);
        expect(http.requests.find((r) => r.path === '/v1/events/stream')!.query.get('cursor')).toBe('aaaaaaaaaaaa.1');
      }
      c.close();
    });

    it('goes offline, misses messages and queued sends, and gets everything exactly once in order after coming back', async () => {
      const server = new FakeServer();
      const http = new FakeHttp(server);
      server.store1(1); server.store1(2);
      const { c, got } = client(http, { transport });
      let connects = 0;
      c.on('connected', () => connects++);
      await c.connect();
      await flush();
      http.message(1);
      await flush();
      expect(seqs(got, 1)).toEqual([2]);
      // the network goes; a send is in flight: the server stores it but its answer is lost
      http.loseReplies = 1;
      const inflight = c.send({ session_id: 1, type: 'text', content: { text: 'inflight' } });
      await flush();
      http.down = true;
      http.cut();
      await flush();
      expect(c.state).toBe('waiting');
      const offline = [0, 1, 2].map((i) => c.send({ session_id: 2, type: 'text', content: { text: `offline${i}` } }));
      for (let i = 0; i < 7; i++) { server.store1(1); server.store1(2); }
      server.store1(9); // a session created while away
      expect(c.queuedSends().length).toBe(4);
      // attempts fail while down, then it comes back
      await vi.advanceTimersByTimeAsync(750);
      await flush();
      expect(c.state).toBe('waiting');
      http.down = false;
      await vi.advanceTimersByTimeAsync(1500);
      await flush();
      await flush();
      expect(c.state).toBe('open');
      expect(connects).toBe(2);
      const acks = await Promise.all([inflight, ...offline]);
      await flush();
      // each send stored once, with the seq its ack names
      expect(server.store.get(1)!.filter((m) => (m.content as any).text === 'inflight').length).toBe(1);
      for (const [i, a] of acks.slice(1).entries()) {
        expect(server.store.get(2)!.filter((m) => (m.content as any).text === `offline${i}`).map((m) => m.seq)).toEqual([a.seq]);
      }
      expect(acks[0].duplicate).toBe(true);
      expect(seqs(got, 1)).toEqual(range(2, server.store.get(1)!.length));
      expect(seqs(got, 2)).toEqual(range(2, server.store.get(2)!.length));
      expect(seqs(got, 9)).toEqual([1]);
      expect(c.queuedSends()).toEqual([]);
      // live again
      http.message(2);
      await flush();
      expect(seqs(got, 2)).toEqual(range(2, server.store.get(2)!.length));
      c.close();
    });

    it('reloads with sessions and sync when the server answers resync (its buffer lost events)', async () => {
      const server = new FakeServer();
      const http = new FakeHttp(server);
      server.store1(3);
      const { c, got } = client(http, { transport });
      await c.connect();
      await flush();
      // the buffer is dropped and messages stored meanwhile never reach it
      for (let i = 0; i < 4; i++) server.store1(3);
      http.lose();
      const syncsBefore = server.frames.filter((f) => f.action === 'sync').length;
      await vi.advanceTimersByTimeAsync(30_000);
      await flush();
      expect(server.frames.filter((f) => f.action === 'sync').length).toBeGreaterThan(syncsBefore);
      expect(seqs(got, 3)).toEqual(range(2, 5));
      expect(c.state).toBe('open'); // no reconnect: the same stream or poll loop goes on
      expect(http.requests.filter((r) => r.path === '/v1/events' && !r.query.get('cursor')).length).toBe(1);
      if (transport === 'sse') expect(http.count('/v1/events/stream')).toBe(1);
      c.close();
    });

    it('refuses to reconnect after a revoked token without getToken, and logs in with a fresh one with it', async () => {
      const server = new FakeServer();
      const http = new FakeHttp(server);
      const a = client(http, { transport });
      await a.c.connect();
      await flush();
      http.revoked.add('t0');
      http.cut();
      http.message(1); // wakes a waiting long-poll, whose next read is refused
      await vi.advanceTimersByTimeAsync(60_000);
      await flush();
      expect(a.c.state).toBe('stopped');
      let n = 0;
      const b = client(http, { transport, token: undefined, getToken: async () => `tok${++n}` });
      await b.c.connect();
      await flush();
      http.revoked.add('tok1');
      http.cut();
      http.message(1);
      await vi.advanceTimersByTimeAsync(5000);
      await flush();
      expect(b.c.state).toBe('open');
      expect(http.requests[http.requests.length - 1].headers.Authorization ?? '').not.toBe('Bearer tok1');
      expect(http.requests.some((r) => r.headers.Authorization === 'Bearer tok2')).toBe(true);
      b.c.close();
    });
  });
}

describe('HTTP transport details', () => {
  it('retries a send refused rate_limited after retry_after, and turns an HTTP refusal into the request error', async () => {
    const server = new FakeServer();
    const http = new FakeHttp(server);
    let limited = 1;
    server.hook = (s, req) => {
      if (req.action === 'send' && limited-- > 0) {
        s.push({ reply_to: req.id, ok: false, error: { code: 'rate_limited', message: 'slow down', retry_after: 700 } });
        return true;
      }
      return false;
    };
    http.hook = (r) => r.path === '/v1/client' && r.body.includes('"huge"')
      ? new Response('{"ok":false,"error":{"code":"too_large","message":"body over 64 KiB"}}', { status: 413 }) : undefined;
    const { c } = client(http);
    await c.connect();
    await flush();
    const p = c.send({ session_id: 1, type: 'text', content: { text: 'x' } });
    await flush();
    expect(server.store.get(1)).toBeUndefined();
    await vi.advanceTimersByTimeAsync(699);
    expect(server.store.get(1)).toBeUndefined();
    await vi.advanceTimersByTimeAsync(1);
    await flush();
    expect((await p).seq).toBe(1);
    await expect(c.request('user', { uid: 'huge' })).rejects.toMatchObject({ code: 'too_large', message: 'body over 64 KiB' });
    expect(c.state).toBe('open');
    c.close();
  });

  it('stops after a kicked event (no close follows over HTTP), and after a ban', async () => {
    const server = new FakeServer();
    const http = new FakeHttp(server);
    const { c } = client(http);
    const disc: boolean[] = [];
    c.on('disconnected', (e) => disc.push(e.reconnect));
    await c.connect();
    await flush();
    http.event('kicked', { reason: 'logged_in_elsewhere', platform: 'ios', policy: 'single' });
    await vi.advanceTimersByTimeAsync(60_000);
    expect(c.state).toBe('stopped');
    expect(disc).toEqual([false]);
    const b = client(http, { token: 'banned1' });
    await expect(b.c.connect()).rejects.toMatchObject({ code: 'forbidden' });
    expect(b.c.state).toBe('stopped');
  });

  it('logout over HTTP stops without a logout action (the server refuses one: the token is the login)', async () => {
    const server = new FakeServer();
    const http = new FakeHttp(server);
    const { c } = client(http, { transport: 'sse' });
    await c.connect();
    await flush();
    await c.logout();
    expect(c.state).toBe('stopped');
    expect(server.frames.some((f) => f.action === 'logout')).toBe(false);
    expect(http.streams.length).toBe(0); // the stream was closed
  });

  it('drops an SSE stream that stays silent past streamIdle, and keeps one that gets heartbeats', async () => {
    const server = new FakeServer();
    const http = new FakeHttp(server);
    const { c } = client(http, { transport: 'sse', streamIdle: 45_000 });
    await c.connect();
    await flush();
    for (let i = 0; i < 5; i++) {
      await vi.advanceTimersByTimeAsync(15_000);
      http.raw(': heartbeat\n\n');
    }
    await flush();
    expect(c.state).toBe('open');
    expect(http.count('/v1/events/stream')).toBe(1);
    await vi.advanceTimersByTimeAsync(45_000);
    await flush();
    expect(c.state).not.toBe('open');
    await vi.advanceTimersByTimeAsync(1000);
    await flush();
    expect(c.state).toBe('open');
    expect(http.count('/v1/events/stream')).toBe(2);
    c.close();
  });

  it('parses SSE split anywhere across chunks, with CRLF line ends', async () => {
    const server = new FakeServer();
    const http = new FakeHttp(server);
    const { c, got } = client(http, { transport: 'sse', cursors: { 5: 0 } });
    await c.connect();
    await flush();
    const m1 = server.store1(5), m2 = server.store1(5);
    const text = `id: aaaaaaaaaaaa.2\r\ndata: ${JSON.stringify({ event: 'message', data: m1 })}\r\n\r\n` +
      `: heartbeat\n\nid: aaaaaaaaaaaa.3\ndata: ${JSON.stringify({ event: 'message', data: m2 })}\n\n`;
    for (let i = 0; i < text.length; i += 7) { http.raw(text.slice(i, i + 7)); await flush(); }
    expect(seqs(got, 5)).toEqual([1, 2]);
    c.close();
  });

  it('uses an EventSource when given one, with the token in the query, and ends the wire on its error', async () => {
    const server = new FakeServer();
    const http = new FakeHttp(server);
    const sources: FakeES[] = [];
    class FakeES {
      onmessage: ((ev: { data: string; lastEventId?: string }) => void) | null = null;
      onerror: ((ev: any) => void) | null = null;
      listeners = new Map<string, (ev: any) => void>();
      closed = false;
      constructor(readonly url: string) { sources.push(this); }
      addEventListener(n: string, fn: (ev: any) => void) { this.listeners.set(n, fn); }
      close() { this.closed = true; }
    }
    const { c, got } = client(http, { transport: 'sse', EventSource: FakeES, cursors: { 6: 0 } });
    await c.connect();
    await flush();
    expect(sources.length).toBe(1);
    const u = new URL(sources[0].url);
    expect(u.pathname).toBe('/v1/events/stream');
    expect(Object.fromEntries([...(u.searchParams as any)])).toEqual({ app: 'app', access_token: 't0', cursor: 'aaaaaaaaaaaa.1' });
    const m = server.store1(6);
    sources[0].onmessage!({ data: JSON.stringify({ event: 'message', data: m }), lastEventId: 'aaaaaaaaaaaa.2' });
    await flush();
    expect(seqs(got, 6)).toEqual([1]);
    server.store1(6);
    sources[0].listeners.get('resync')!({ data: '{"cursor":"aaaaaaaaaaaa.9"}', lastEventId: 'aaaaaaaaaaaa.9' });
    await flush();
    expect(seqs(got, 6)).toEqual([1, 2]);
    sources[0].onerror!({});
    expect(sources[0].closed).toBe(true);
    await vi.advanceTimersByTimeAsync(1000);
    await flush();
    expect(sources.length).toBe(2);
    expect(c.state).toBe('open');
    c.close();
    expect(sources[1].closed).toBe(true);
  });
});

describe("transport: 'auto'", () => {
  it('uses the WebSocket when it connects', async () => {
    const server = new FakeServer();
    const http = new FakeHttp(server);
    const { c } = client(http, { transport: 'auto', WebSocket: socketClass(server) });
    await c.connect();
    expect(c.transport).toBe('websocket');
    expect(http.requests.length).toBe(0);
    c.close();
  });

  it('falls back to SSE at once when the WebSocket cannot connect, and stays on it', async () => {
    const server = new FakeServer();
    const http = new FakeHttp(server);
    const { c } = client(http, { transport: 'auto', WebSocket: socketClass(server, { refuse: () => true }) });
    await c.connect();
    expect(c.transport).toBe('sse');
    expect(server.sockets.length).toBe(1);
    http.cut();
    await vi.advanceTimersByTimeAsync(1000);
    await flush();
    expect(c.state).toBe('open');
    expect(c.transport).toBe('sse');
    expect(server.sockets.length).toBe(1);
    c.close();
  });

  it('falls back when the WebSocket hangs without opening, within requestTimeout', async () => {
    const server = new FakeServer();
    const http = new FakeHttp(server);
    const { c } = client(http, { transport: 'auto', WebSocket: socketClass(server, { autoOpen: false }) });
    const p = c.connect();
    await vi.advanceTimersByTimeAsync(4999);
    expect(http.requests.length).toBe(0);
    await vi.advanceTimersByTimeAsync(1);
    await p;
    expect(c.transport).toBe('sse');
    expect(server.sockets[0].closed).toBe(true);
    c.close();
  });

  it('uses long-poll where neither a WebSocket, a streaming response nor EventSource exists', async () => {
    vi.stubGlobal('ReadableStream', undefined);
    vi.stubGlobal('EventSource', undefined);
    const server = new FakeServer();
    const http = new FakeHttp(server);
    const { c } = client(http, { transport: 'auto' });
    const p = c.connect(); // the transport is chosen now
    vi.unstubAllGlobals(); // the fake's Response needs ReadableStream
    await p;
    expect(c.transport).toBe('longpoll');
    c.close();
  });

  it('without httpUrl stays on the WebSocket, and sse without httpUrl stops with an error', async () => {
    const server = new FakeServer();
    const http = new FakeHttp(server);
    const { c } = client(http, { transport: 'auto', httpUrl: undefined, WebSocket: socketClass(server, { refuse: () => true }) });
    void c.connect().catch(() => {});
    await flush();
    expect(c.state).toBe('waiting');
    expect(http.requests.length).toBe(0);
    c.close();
    const b = client(http, { transport: 'sse', httpUrl: undefined });
    await expect(b.c.connect()).rejects.toMatchObject({ code: 'bad_request' });
    expect(b.c.state).toBe('stopped');
  });
});
