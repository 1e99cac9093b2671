// chatd's HTTP endpoints in memory, behind a fake fetch, on top of the
// FakeServer: POST /v1/client (one action, its reply), GET /v1/events
// (long-poll from a cursor, answered at once or when an event comes or the
// timeout passes), GET /v1/events/stream (Server-Sent Events as a
// streaming body) and POST /v1/files. The event buffer works as
// chat/httpdevice.go: numbered events, cursors `<epoch>.<n>`, and a resync
// answer for a cursor whose events are gone.
import type { Message } from '../src/types';
import type { FakeServer, FakeSocket } from './fake';

export interface Req { method: string; path: string; query: URLSearchParams; headers: Record<string, string>; body?: any }

interface Stream { ctl: ReadableStreamDefaultController<Uint8Array>; next: number; closed: boolean }

const enc = new TextEncoder();

function json(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } });
}
function refuse(status: number, code: string, message: string): Response {
  return json(status, { ok: false, error: { code, message } });
}
function abortError(): Error {
  const e = new Error('This operation was aborted');
  e.name = 'AbortError';
  return e;
}

export class FakeHttp {
  epoch = 'aaaaaaaaaaaa';
  ring: string[] = []; // ring[i] is event first+i
  first = 1;
  requests: Req[] = [];
  /** every fetch fails, as with the network cut */
  down = false;
  /** tokens refused 401 (revoked); a token starting "banned" is refused 403 */
  revoked = new Set<string>();
  /** answers a request before the default handling */
  hook: ((r: Req) => Response | undefined) | null = null;
  /** replies of POST /v1/client that are lost (the action runs, the answer never comes) */
  loseReplies = 0;
  streams: Stream[] = [];
  private waiters: (() => void)[] = [];
  uploads: { query: URLSearchParams; bytes: Uint8Array }[] = [];

  constructor(readonly server: FakeServer) {}

  /** An event for the user's HTTP device. */
  event(name: string, data: unknown): void {
    this.ring.push(JSON.stringify({ event: name, data }));
    for (const w of this.waiters.splice(0)) w();
    for (const s of this.streams) this.pump(s);
  }

  /** Stores a message from someone else and sends its event. */
  message(sid: number, from = 'peer'): Message {
    const m = this.server.store1(sid, from);
    this.event('message', m);
    return m;
  }

  /** Forgets every event (as after http_events_keep or a restart): old cursors get a resync. */
  lose(): void {
    this.first += this.ring.length;
    this.ring = [];
    this.epoch = 'bbbbbbbbbbbb';
    // an open stream's next read finds its cursor gone: a resync message, then on from the fresh cursor
    this.raw(`event: resync\nid: ${this.epoch}.${this.end}\ndata: {"cursor":"${this.epoch}.${this.end}"}\n\n`);
    for (const st of this.streams) st.next = this.end;
    for (const w of this.waiters.splice(0)) w(); // a waiting long-poll is answered resync
  }

  get end(): number { return this.first + this.ring.length; }

  /** Ends every open stream with a network error. */
  cut(): void {
    for (const s of this.streams.splice(0)) {
      s.closed = true;
      try { s.ctl.error(new TypeError('terminated')); } catch { /* closed */ }
    }
    for (const w of this.waiters.splice(0)) w();
  }

  count(path: string, method = 'GET'): number {
    return this.requests.filter((r) => r.path === path && r.method === method).length;
  }

  /** The events after cursor, or a resync. */
  private read(cursor: string): { events: unknown[]; cursor: string; resync: boolean } {
    if (!cursor) return { events: [], cursor: `${this.epoch}.${this.end}`, resync: false };
    const [ep, n] = cursor.split('.');
    const seq = Number(n);
    if (ep !== this.epoch || seq < this.first) return { events: [], cursor: `${this.epoch}.${this.end}`, resync: true };
    const events = this.ring.slice(seq - this.first).map((e) => JSON.parse(e));
    return { events, cursor: `${this.epoch}.${this.end}`, resync: false };
  }

  private pump(s: Stream): void {
    if (s.closed) return;
    let out = '';
    for (; s.next < this.end; s.next++) out += `id: ${this.epoch}.${s.next + 1}\ndata: ${this.ring[s.next - this.first]}\n\n`;
    if (out) s.ctl.enqueue(enc.encode(out));
  }

  /** Writes raw SSE text to every open stream. */
  raw(text: string): void {
    for (const s of this.streams) if (!s.closed) s.ctl.enqueue(enc.encode(text));
  }

  fetch = async (input: string | URL | Request, init: RequestInit = {}): Promise<Response> => {
    const u = new URL(String(input));
    const headers = { ...(init.headers as Record<string, string>) };
    let body: any = init.body;
    if (body instanceof Blob) body = new Uint8Array(await body.arrayBuffer());
    const r: Req = { method: init.method ?? 'GET', path: u.pathname, query: u.searchParams, headers, body };
    this.requests.push(r);
    await Promise.resolve();
    if (init.signal?.aborted) throw abortError();
    if (this.down) throw new TypeError('fetch failed');
    const h = this.hook?.(r);
    if (h) return h;
    const auth = headers.Authorization ?? (u.searchParams.get('access_token') ? 'Bearer ' + u.searchParams.get('access_token') : '');
    const token = auth.replace(/^Bearer /, '');
    if (!auth) return refuse(401, 'unauthorized', 'missing Authorization: Bearer <token>');
    if (this.revoked.has(token)) return refuse(401, 'unauthorized', 'invalid or revoked token');
    if (token.startsWith('banned')) return refuse(403, 'forbidden', 'user is banned');
    switch (`${r.method} ${r.path}`) {
      case 'POST /v1/client':
        return this.client(r);
      case 'GET /v1/events':
        return this.events(r, init.signal);
      case 'GET /v1/events/stream':
        return this.stream(u, headers, init.signal);
      case 'POST /v1/files':
        return this.upload(r);
    }
    return refuse(404, 'not_found', 'no such endpoint');
  };

  private client(r: Req): Promise<Response> {
    const req = JSON.parse(r.body);
    const lose = this.loseReplies > 0 && req.action === 'send';
    if (lose) this.loseReplies--;
    return new Promise((resolve, reject) => {
      const peer = {
        push: (frame: any) => {
          if (frame.ok && req.action === 'send' && !frame.data.duplicate) {
            const m = this.server.store.get(frame.data.session_id)!.find((x) => x.seq === frame.data.seq);
            this.event('message', m); // the device gets the user's own messages too
          }
          if (lose) reject(new TypeError('fetch failed'));
          else resolve(json(200, frame));
        },
        event: () => {},
      };
      this.server.handle(peer as unknown as FakeSocket, req);
    });
  }

  private events(r: Req, signal?: AbortSignal | null): Promise<Response> | Response {
    const cursor = r.query.get('cursor') ?? '';
    const timeout = Number(r.query.get('timeout') ?? 25);
    const now = this.read(cursor);
    if (!cursor || now.events.length || now.resync || timeout === 0) return json(200, { ok: true, data: now });
    return new Promise((resolve, reject) => {
      const wake = () => {
        clearTimeout(t);
        if (signal?.aborted) return;
        if (this.down) return reject(new TypeError('fetch failed'));
        resolve(json(200, { ok: true, data: this.read(cursor) }));
      };
      const t = setTimeout(() => { const i = this.waiters.indexOf(wake); if (i >= 0) this.waiters.splice(i, 1); wake(); }, timeout * 1000);
      this.waiters.push(wake);
      signal?.addEventListener('abort', () => {
        clearTimeout(t);
        const i = this.waiters.indexOf(wake);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(abortError());
      });
    });
  }

  private stream(u: URL, headers: Record<string, string>, signal?: AbortSignal | null): Response {
    const cursor = headers['Last-Event-ID'] ?? u.searchParams.get('cursor') ?? '';
    let s!: Stream;
    const body = new ReadableStream<Uint8Array>({
      start: (ctl) => {
        s = { ctl, next: this.end, closed: false };
        ctl.enqueue(enc.encode('retry: 2000\n\n'));
        if (cursor) {
          const r = this.read(cursor);
          if (r.resync) ctl.enqueue(enc.encode(`event: resync\nid: ${r.cursor}\ndata: {"cursor":"${r.cursor}"}\n\n`));
          else s.next = Number(cursor.split('.')[1]);
        }
        this.streams.push(s);
        this.pump(s);
      },
      cancel: () => { s.closed = true; this.streams = this.streams.filter((x) => x !== s); },
    });
    signal?.addEventListener('abort', () => {
      if (s.closed) return;
      s.closed = true;
      this.streams = this.streams.filter((x) => x !== s);
      try { s.ctl.error(abortError()); } catch { /* closed */ }
    });
    return new Response(body, { status: 200, headers: { 'Content-Type': 'text/event-stream' } });
  }

  private upload(r: Req): Response {
    const bytes: Uint8Array = r.body instanceof Uint8Array ? r.body : new Uint8Array(r.body);
    this.uploads.push({ query: r.query, bytes });
    const type = r.query.get('type');
    if (!type || !['image', 'voice', 'video', 'file'].includes(type)) {
      return refuse(400, 'bad_request', 'type must be image, voice, video or file');
    }
    const id = 'f'.repeat(63) + String(this.uploads.length % 10);
    const rec: Record<string, unknown> = {
      file_id: id, app: 'app', owner: this.server.uid, type, mime: type === 'image' ? 'image/png' : 'application/octet-stream',
      size: bytes.length, created_at: 1, url: `/v1/files/${id}?sig=x`, expires_at: 2,
    };
    if (r.query.get('name')) rec.name = r.query.get('name');
    return json(200, { ok: true, data: rec });
  }
}
