import type {
  Action, ConnectionState, EventMap, LoginReply, Message, MessagePage, OpEvent,
  OpReply, Platform, ReadReply, ReplyData, RequestFields, SendAck, SendInput, SessionsPage,
  SessionView, PresenceEntry,
} from './types.js';
import { ChatdError, backoffDelay, newCid } from './util.js';
import { HttpWire, type EventSourceCtor, type HttpKind } from './http.js';
import { uploadFile, type FileRecord, type UploadOptions, type SendFileInput } from './upload.js';
import { indexedDBStore, type SendStore, type StoredSend } from './persist.js';

export { ChatdError, backoffDelay, newCid };

/** The part of the WebSocket API the SDK uses (browsers' and Node's `ws`). */
export interface SocketLike {
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((ev: any) => void) | null;
  onmessage: ((ev: { data: any }) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onerror: ((ev: any) => void) | null;
}
export type SocketCtor = new (url: string) => SocketLike;

/** How the client reaches chatd (docs/sdk.md, "Transports"). */
export type Transport = 'auto' | 'websocket' | 'sse' | 'longpoll';

/** What carries requests: a WebSocket, or the HTTP transports' wire. */
interface Wire {
  send(text: string, id: string): void;
  close(code?: number): void;
}

export interface ClientOptions {
  /** ws:// or wss:// URL of chatd's WebSocket port */
  url: string;
  app: string;
  /** the token for the first login; without it getToken is asked */
  token?: string;
  /** asked for a fresh token before every login after the first, and after close 4002 */
  getToken?: () => string | Promise<string>;
  platform?: Platform;
  /** the WebSocket implementation; default globalThis.WebSocket */
  WebSocket?: SocketCtor;
  /** ms to wait for a reply (and for a connection, for requests made offline); default 10000 */
  requestTimeout?: number;
  /** first reconnect delay in ms; default 500 */
  backoffBase?: number;
  /** cap of the reconnect delay in ms; default 30000 */
  backoffMax?: number;
  /** ms between pings while idle; 0 turns them off; default 25000 */
  pingInterval?: number;
  /** messages per sync page; default 200 */
  syncLimit?: number;
  /** the last seq the app already holds, per session id: delivery continues after it */
  cursors?: Record<number, number>;
  /** random number source in [0, 1), for the backoff jitter */
  random?: () => number;
  /**
   * `auto` (default): a WebSocket when the environment has one and it
   * connects, else SSE, else long-poll (the last two need `httpUrl`).
   * `websocket`, `sse`, `longpoll`: only that one.
   */
  transport?: Transport;
  /** http:// or https:// base URL of chatd's HTTP port: the SSE and long-poll transports and uploads use it */
  httpUrl?: string;
  /** the fetch implementation; default globalThis.fetch */
  fetch?: typeof fetch;
  /** an EventSource implementation; given, SSE uses it instead of a streaming fetch (the token then goes in the URL) */
  EventSource?: EventSourceCtor;
  /** the XMLHttpRequest implementation uploads use for progress; default globalThis.XMLHttpRequest, else fetch */
  XMLHttpRequest?: new () => XMLHttpRequest;
  /** seconds a long-poll waits for an event; default 25 */
  pollTimeout?: number;
  /** ms an SSE stream may stay silent (the server's heartbeat comes every 15 s); default 45000 */
  streamIdle?: number;
  /** keep the send queue in IndexedDB (or a store of your own) so that it survives a reload; off by default */
  persist?: 'indexeddb' | SendStore;
  /** the IndexedDB factory for persist: 'indexeddb'; default globalThis.indexedDB */
  indexedDB?: IDBFactory;
}

interface Pending {
  resolve(v: any): void;
  reject(e: Error): void;
  timer?: ReturnType<typeof setTimeout>;
  send?: SendEntry;
}
interface Waiting { action: string; fields: Record<string, unknown>; timeout?: number; resolve(v: any): void; reject(e: Error): void; timer: ReturnType<typeof setTimeout> }
interface SendEntry {
  cid: string;
  fields: SendInput & { cid: string };
  at: number;
  resolve(a: SendAck): void;
  reject(e: Error): void;
  id?: string; // the request id while one is on the wire
  retry?: ReturnType<typeof setTimeout>;
}
interface SessionState {
  last: number; // the highest seq delivered to the app
  target: number; // a seq known to exist (from sessions or live events)
  buf: Map<number, Message>; // live messages waiting for a gap before them
  filling: Promise<void> | null;
  again: boolean;
  /** first heard of live while the session list was being read: its start waits for the list */
  provisional?: boolean;
}

let lastAt = 0;

type Listener<K extends keyof EventMap> = (data: EventMap[K]) => void;

/** STOP_CODES: after these the client does not reconnect by itself (see docs/sdk.md). */
const LOGGED_IN_ELSEWHERE = 4003, BANNED = 4004, TOKEN_GONE = 4002;

export class ChatClient {
  private readonly o: Required<Pick<ClientOptions, 'requestTimeout' | 'backoffBase' | 'backoffMax' | 'pingInterval' |
    'syncLimit' | 'random' | 'transport' | 'pollTimeout' | 'streamIdle'>> & ClientOptions;
  private ws: Wire | null = null;
  private via: Transport | null = null;
  /** auto: the WebSocket failed where HTTP then worked; reconnects go over HTTP */
  private viaHttp = false;
  private resyncing = -1; // the gen whose resync runs
  private resyncAgain = false;
  private readonly store: SendStore | null = null;
  private restoring: Promise<StoredSend[]> | null = null;
  private adopting = false;
  private gen = 0;
  private nextId = 0;
  private st: ConnectionState = 'idle';
  private attempt = 0;
  private token: string | undefined;
  private logins = 0;
  private everSynced = false;
  private listing = false;
  private me: LoginReply | null = null;
  private reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  private pingTimer: ReturnType<typeof setTimeout> | undefined;
  private readonly inflight = new Map<string, Pending>();
  private readonly waiting: Waiting[] = [];
  private readonly sends: SendEntry[] = [];
  private readonly sessions = new Map<number, SessionState>();
  private readonly listeners = new Map<string, Set<(d: any) => void>>();
  private connectWaiters: { resolve(l: LoginReply): void; reject(e: Error): void }[] = [];
  private netListeners: (() => void) | null = null;
  /** the logged-in user's uid, once logged in */
  uid = '';

  constructor(opts: ClientOptions) {
    this.o = {
      WebSocket: (globalThis as any).WebSocket, requestTimeout: 10000, backoffBase: 500, backoffMax: 30000,
      pingInterval: 25000, syncLimit: 200, random: Math.random, transport: 'auto', pollTimeout: 25, streamIdle: 45000, ...opts,
    };
    this.token = opts.token;
    const p = opts.persist;
    if (p) {
      this.store = p === 'indexeddb' ? indexedDBStore(opts.indexedDB ?? (globalThis as any).indexedDB) : p;
      this.restoring = this.store.load(opts.app).catch((e) => { this.emit('error', e as Error); return []; });
    }
    for (const [sid, seq] of Object.entries(opts.cursors ?? {})) this.session(Number(sid), seq);
  }

  /** The connection state. */
  get state(): ConnectionState { return this.st; }

  /** The transport of the current (or last) connection: `websocket`, `sse` or `longpoll`; null before the first. */
  get transport(): Exclude<Transport, 'auto'> | null { return this.via as Exclude<Transport, 'auto'> | null; }

  /** The highest seq delivered to the app in each session. */
  cursors(): Record<number, number> {
    const out: Record<number, number> = {};
    for (const [sid, s] of this.sessions) out[sid] = s.last;
    return out;
  }

  /** Subscribes to an event; returns the function that unsubscribes. */
  on<K extends keyof EventMap>(name: K, fn: Listener<K>): () => void {
    let set = this.listeners.get(name);
    if (!set) this.listeners.set(name, (set = new Set()));
    set.add(fn);
    return () => { set!.delete(fn); };
  }

  private emit<K extends keyof EventMap>(name: K, data: EventMap[K]): void {
    for (const fn of this.listeners.get(name) ?? []) {
      try { fn(data); } catch (e) { if (name !== 'error') this.emit('error', e as Error); }
    }
  }

  private setState(s: ConnectionState): void {
    if (this.st === s) return;
    this.st = s;
    this.emit('state', { state: s });
  }

  /**
   * Connects and logs in; resolves with the login reply. Also the way to
   * come back after a stop (kicked, banned, close()): the user asked.
   */
  connect(): Promise<LoginReply> {
    if (this.st === 'open' && this.me) return Promise.resolve(this.me);
    const p = new Promise<LoginReply>((resolve, reject) => this.connectWaiters.push({ resolve, reject }));
    if (this.st === 'idle' || this.st === 'stopped' || this.st === 'waiting') {
      this.listenNetwork();
      this.open();
    }
    return p;
  }

  /** Reconnects at once when waiting for a backoff delay (the browser's `online` event does this). */
  reconnectNow(): void {
    if (this.st !== 'waiting') return;
    this.attempt = 0;
    this.open();
  }

  /** Closes the connection and stops: pending requests and queued sends are rejected with `closed`. */
  close(): void {
    this.stop(1000, 'closed by the client');
    const err = new ChatdError('closed', 'the client was closed');
    for (const w of this.waiting.splice(0)) { clearTimeout(w.timer); w.reject(err); }
    for (const s of this.sends.splice(0)) { clearTimeout(s.retry); this.unpersist(s); s.reject(err); }
    for (const c of this.connectWaiters.splice(0)) c.reject(err);
    this.unlistenNetwork();
  }

  /**
   * Logs out (the server closes with 1000) and stops. Over SSE and
   * long-poll there is no login to end: it stops (revoke the token on the
   * server to end it).
   */
  async logout(): Promise<void> {
    try {
      if (this.via === 'websocket') await this.request('logout', {});
    } finally {
      this.close();
    }
  }

  private listenNetwork(): void {
    const w = (globalThis as any).window;
    if (this.netListeners || !w || typeof w.addEventListener !== 'function') return;
    const online = () => this.reconnectNow();
    const offline = () => { if (this.ws) this.drop(1006, 'the browser went offline'); };
    w.addEventListener('online', online);
    w.addEventListener('offline', offline);
    this.netListeners = () => { w.removeEventListener('online', online); w.removeEventListener('offline', offline); };
  }

  private unlistenNetwork(): void {
    if (this.netListeners) this.netListeners();
    this.netListeners = null;
  }

  private open(): void {
    clearTimeout(this.reconnectTimer);
    this.setState('connecting');
    const gen = ++this.gen;
    const t = this.o.transport;
    const http = this.httpKind();
    if (t === 'sse' || t === 'longpoll') void this.openHttp(gen, t);
    else if (t === 'websocket' || !http || (this.o.WebSocket && !this.viaHttp)) this.openWs(gen, t === 'auto' ? http : null);
    else void this.openHttp(gen, http);
  }

  /** The HTTP transport auto falls back to: SSE where a response can stream (or EventSource exists), else long-poll. */
  private httpKind(): HttpKind | null {
    const g = globalThis as any;
    if (!this.o.httpUrl || !(this.o.fetch ?? g.fetch)) return null;
    return this.o.EventSource || g.EventSource || g.ReadableStream ? 'sse' : 'longpoll';
  }

  /**
   * A WebSocket connection. With `fallback` (auto), a socket that closes
   * or does not open within requestTimeout hands over to that HTTP
   * transport at once, in the same attempt.
   */
  private openWs(gen: number, fallback: HttpKind | null): void {
    this.via = 'websocket';
    let ws: SocketLike;
    try {
      ws = new this.o.WebSocket!(this.o.url);
    } catch (e) {
      if (fallback) void this.openHttp(gen, fallback);
      else this.closed(gen, 1006, String(e));
      return;
    }
    this.ws = ws;
    let opened = false;
    const failed = (code: number, reason: string) => {
      if (gen !== this.gen || this.ws !== ws) return;
      clearTimeout(timer);
      if (opened || !fallback) return this.closed(gen, code, reason);
      this.ws = null;
      try { ws.close(); } catch { /* already closed */ }
      void this.openHttp(gen, fallback);
    };
    const timer = setTimeout(() => failed(1006, `no connection within ${this.o.requestTimeout} ms`), this.o.requestTimeout);
    ws.onopen = () => {
      if (gen !== this.gen || this.ws !== ws) return;
      opened = true;
      clearTimeout(timer);
      void this.login(gen);
    };
    ws.onmessage = (ev) => { if (gen === this.gen && this.ws === ws) this.frame(String(ev.data)); };
    ws.onclose = (ev) => failed(ev.code, ev.reason);
    ws.onerror = () => { /* a close event follows */ };
  }

  /** The token for the next login: a fresh one from getToken after the first; undefined when gen has passed. */
  private async loginToken(gen: number): Promise<string | undefined | null> {
    let token = this.token;
    try {
      if (this.o.getToken && (this.logins > 0 || !token)) token = await this.o.getToken();
    } catch (e) {
      if (gen === this.gen) this.drop(1006, 'getToken failed: ' + (e as Error).message);
      return null;
    }
    if (gen !== this.gen) return null;
    this.token = token;
    return token ?? '';
  }

  private async login(gen: number): Promise<void> {
    const token = await this.loginToken(gen);
    if (token == null) return;
    let r: LoginReply;
    try {
      r = await this.transmit('login', { app: this.o.app, token, platform: this.o.platform ?? 'web' });
    } catch (e) {
      return this.loginFailed(gen, e as ChatdError);
    }
    this.loggedIn(gen, r);
  }

  /**
   * An HTTP connection: the starting cursor (which checks the token), the
   * user's profile and the server time in place of a login reply, then the
   * same resync and send queue as over a WebSocket; events are read from
   * the cursor by long-poll or SSE.
   */
  private async openHttp(gen: number, kind: HttpKind): Promise<void> {
    this.via = kind;
    const f = this.o.fetch ?? (globalThis as any).fetch;
    if (!this.o.httpUrl || !f) {
      const err = new ChatdError('bad_request', `the ${kind} transport needs the httpUrl option and fetch`);
      for (const c of this.connectWaiters.splice(0)) c.reject(err);
      this.emit('error', err);
      this.stop(1000, err.message);
      return;
    }
    const token = await this.loginToken(gen);
    if (token == null) return;
    const g = globalThis as any;
    const wire = new HttpWire({
      base: this.o.httpUrl.replace(/\/+$/, ''), app: this.o.app, token, fetch: (...a) => f(...a),
      EventSource: this.o.EventSource ?? g.EventSource, preferEventSource: !!this.o.EventSource || !g.ReadableStream,
      kind, pollTimeout: this.o.pollTimeout, requestTimeout: this.o.requestTimeout, streamIdle: this.o.streamIdle,
      frame: (text) => { if (gen === this.gen && this.ws === wire) this.frame(text); },
      resync: () => { if (gen === this.gen && this.ws === wire) void this.resync(gen); },
      lost: (code, reason) => { if (this.ws === wire) this.closed(gen, code, reason); },
    });
    this.ws = wire;
    let r: LoginReply;
    try {
      await wire.start();
      const [u, p] = await Promise.all([this.transmit('user', {}), this.transmit('ping', {})]);
      r = { uid: u.uid, nickname: u.nickname, server_time: p.server_time, expires_at: 0 };
      if (u.avatar) r.avatar = u.avatar;
    } catch (e) {
      return this.loginFailed(gen, e as ChatdError);
    }
    if (gen !== this.gen) return;
    if (this.o.transport === 'auto' && this.o.WebSocket) this.viaHttp = true;
    this.loggedIn(gen, r);
    wire.run();
  }

  private loginFailed(gen: number, err: ChatdError): void {
    if (gen !== this.gen) return;
    if (err.code === 'forbidden' || (err.code === 'unauthorized' && !this.o.getToken)) {
      // banned, over the connection cap, or a bad token with no way to get another
      for (const c of this.connectWaiters.splice(0)) c.reject(err);
      this.emit('error', err);
      this.stop(1000, 'login refused');
      return;
    }
    this.drop(1006, 'login failed: ' + err.message);
  }

  private loggedIn(gen: number, r: LoginReply): void {
    if (gen !== this.gen) return;
    this.logins++;
    this.attempt = 0;
    this.uid = r.uid;
    this.me = r;
    this.setState('open');
    for (const c of this.connectWaiters.splice(0)) c.resolve(r);
    this.emit('connected', r);
    for (const w of this.waiting.splice(0)) {
      this.transmit(w.action, w.fields, w.timer, undefined, w.timeout).then(w.resolve, w.reject);
    }
    if (this.via === 'websocket') this.schedulePing(gen);
    void this.resync(gen);
    if (!this.restoring) for (const s of this.sends) this.sendNow(s);
    else if (!this.adopting) { this.adopting = true; void this.restore(); }
  }

  private schedulePing(gen: number): void {
    clearTimeout(this.pingTimer);
    if (!this.o.pingInterval) return;
    this.pingTimer = setTimeout(() => {
      if (gen !== this.gen || this.st !== 'open') return;
      this.transmit('ping', {}).then(() => this.schedulePing(gen), () => {
        if (gen === this.gen) this.drop(1006, 'no reply to ping');
      });
    }, this.o.pingInterval);
  }

  /** Treats the current socket as gone now, without waiting for its close event. */
  private drop(code: number, reason: string): void {
    const ws = this.ws;
    this.closed(this.gen, code, reason);
    try { ws?.close(); } catch { /* already closed */ }
  }

  private stop(code: number, reason: string): void {
    const ws = this.ws;
    this.closed(this.gen, code, reason, true);
    try { ws?.close(1000); } catch { /* already closed */ }
  }

  private kicked = false;

  private closed(gen: number, code: number, reason: string, stopped = false): void {
    if (gen !== this.gen) return;
    this.gen++;
    this.ws = null;
    clearTimeout(this.pingTimer);
    clearTimeout(this.reconnectTimer);
    const lost = new ChatdError('disconnected', `connection closed (${code}${reason ? ' ' + reason : ''}) before the reply`);
    for (const [id, p] of this.inflight) {
      clearTimeout(p.timer);
      this.inflight.delete(id);
      if (p.send) p.send.id = undefined; // stays queued: resent with its cid
      else p.reject(lost);
    }
    // 4003 and `kicked`: a newer login replaced this one; reconnecting would
    // replace it in turn, and the two devices would close each other forever.
    // 4004: banned; every login is refused until the ban ends.
    // 4002: the token was revoked or expired (or the host kicked the user):
    // only a fresh token from getToken can log in again.
    const reconnect = !stopped && !this.kicked && code !== LOGGED_IN_ELSEWHERE && code !== BANNED &&
      (code !== TOKEN_GONE || !!this.o.getToken) && this.st !== 'stopped';
    this.kicked = false;
    this.emit('disconnected', { code, reason, reconnect });
    if (!reconnect) {
      this.setState('stopped');
      const err = new ChatdError('disconnected', `stopped after close ${code}${reason ? ' ' + reason : ''}`);
      for (const c of this.connectWaiters.splice(0)) c.reject(err);
      return;
    }
    this.setState('waiting');
    const delay = backoffDelay(this.attempt++, this.o.backoffBase, this.o.backoffMax, this.o.random);
    this.reconnectTimer = setTimeout(() => { if (this.st === 'waiting') this.open(); }, delay);
  }

  private frame(text: string): void {
    let f: any;
    try { f = JSON.parse(text); } catch { return; }
    if (f && 'reply_to' in f) {
      const p = this.inflight.get(String(f.reply_to));
      if (!p) return;
      this.inflight.delete(String(f.reply_to));
      clearTimeout(p.timer);
      if (f.ok) p.resolve(f.data ?? null);
      else p.reject(new ChatdError(f.error?.code ?? 'internal', f.error?.message ?? 'request failed', f.error?.retry_after));
      return;
    }
    if (f && typeof f.event === 'string') this.event(f.event, f.data);
  }

  private event(name: string, data: any): void {
    switch (name) {
      case 'message':
        this.live(data as Message);
        return;
      case 'recall':
      case 'edit': {
        // The op entry holds a seq of its own; sync returns it as a message of type `op`.
        const e = data as OpEvent;
        this.emit(name, e);
        const content: Record<string, unknown> = { op: e.op, seq: e.seq, by: e.by, at: e.at };
        if (e.type !== undefined) content.type = e.type;
        if (e.content !== undefined) content.content = e.content;
        if (e.edit_count !== undefined) content.edit_count = e.edit_count;
        this.live({
          session_id: e.session_id, seq: e.op_seq, msg_id: `${e.session_id}-${e.op_seq}`, from: e.by,
          type: 'op', content: content as any, created_at: e.at,
        });
        return;
      }
      case 'kicked':
        this.kicked = true;
        this.emit('kicked', data);
        // over HTTP no close follows: stop here, as after close 4003
        if (this.via !== 'websocket') this.drop(LOGGED_IN_ELSEWHERE, 'kicked');
        return;
      default:
        this.emit(name as keyof EventMap, data);
    }
  }

  // ---- requests

  private transmit(action: string, fields: Record<string, unknown>, timer?: ReturnType<typeof setTimeout>, send?: SendEntry,
    timeout = this.o.requestTimeout): Promise<any> {
    return new Promise((resolve, reject) => {
      clearTimeout(timer);
      const ws = this.ws;
      if (!ws) { reject(new ChatdError('disconnected', 'not connected')); return; }
      const id = String(++this.nextId);
      const p: Pending = { resolve, reject, send };
      p.timer = setTimeout(() => {
        this.inflight.delete(id);
        reject(new ChatdError('timeout', `no reply to ${action} within ${timeout} ms`));
      }, timeout);
      this.inflight.set(id, p);
      if (send) send.id = id;
      try { ws.send(JSON.stringify({ ...fields, id, action }), id); } catch { /* the close event follows */ }
    });
  }

  /**
   * Sends any action and resolves with its reply's `data`. Made while
   * disconnected, it waits for the next login, within the same timeout.
   */
  request<A extends Action>(action: A, fields: RequestFields<A>, opts: { timeout?: number } = {}): Promise<ReplyData<A>> {
    if (action === 'send') return this.send(fields as SendInput) as Promise<ReplyData<A>>;
    const f = fields as Record<string, unknown>;
    if (this.st === 'open') return this.transmit(action, f, undefined, undefined, opts.timeout);
    if (this.st === 'stopped' || this.st === 'idle') {
      return Promise.reject(new ChatdError('disconnected', 'not connected: call connect()'));
    }
    return new Promise((resolve, reject) => {
      const w: Waiting = {
        action, fields: f, resolve, reject, timeout: opts.timeout,
        timer: setTimeout(() => {
          const i = this.waiting.indexOf(w);
          if (i >= 0) this.waiting.splice(i, 1);
          reject(new ChatdError('timeout', `not connected within ${opts.timeout ?? this.o.requestTimeout} ms for ${action}`));
        }, opts.timeout ?? this.o.requestTimeout),
      };
      this.waiting.push(w);
    });
  }

  /**
   * Sends a message. The send is queued until it is acknowledged: across
   * disconnects it is sent again on every login, always with the same cid,
   * so the server stores it once. Resolves with the ack; rejects only when
   * the server refuses it (e.g. forbidden) or on close().
   */
  send(input: SendInput): Promise<SendAck> {
    const cid = input.cid ?? newCid();
    return new Promise((resolve, reject) => {
      // at: strictly increasing, so that restored sends keep their order
      const e: SendEntry = { cid, fields: { ...input, cid }, at: (lastAt = Math.max(Date.now(), lastAt + 1)), resolve, reject };
      this.sends.push(e);
      this.persist(e);
      if (this.st === 'open' && !this.restoring) this.sendNow(e);
    });
  }

  /** Writes a queued send to the persistent store (persist option). */
  private persist(e: SendEntry): void {
    this.store?.put({ cid: e.cid, app: this.o.app, uid: this.uid, fields: e.fields, at: e.at })
      .catch((err) => this.emit('error', err as Error));
  }

  private unpersist(e: SendEntry): void {
    this.store?.delete(e.cid).catch((err) => this.emit('error', err as Error));
  }

  /**
   * At the first login with persist: the sends a previous page (or client)
   * left in the store for this user, or before it knew its user, go first,
   * with their cids, then the queue of this client.
   */
  private async restore(): Promise<void> {
    const recs = await this.restoring!;
    this.restoring = null;
    const mine = new Set(this.sends.map((x) => x.cid));
    const old: SendEntry[] = [];
    for (const r of recs.sort((a, b) => a.at - b.at)) {
      if ((r.uid && r.uid !== this.uid) || mine.has(r.cid)) continue;
      const e: SendEntry = {
        cid: r.cid, fields: r.fields, at: r.at, resolve: () => {},
        reject: (err) => this.emit('error', err),
      };
      old.push(e);
      if (!r.uid) this.persist(e); // now known to be this user's
    }
    this.sends.unshift(...old);
    if (old.length) this.emit('restored', { sends: old.map((x) => ({ cid: x.cid, fields: x.fields })) });
    if (this.st === 'open') for (const x of this.sends) this.sendNow(x);
  }

  /** The sends not yet acknowledged, with their cids, oldest first. */
  queuedSends(): { cid: string; fields: SendInput }[] {
    return this.sends.map((s) => ({ cid: s.cid, fields: s.fields }));
  }

  /** The sends into one conversation go one at a time (sendKey). */
  private sendKey(e: SendEntry): string {
    const f = e.fields;
    return f.session_id !== undefined ? 's' + f.session_id : 'u' + (f.to ?? '');
  }

  /** The next send waiting behind e in its conversation, if any. */
  private sendNext(e: SendEntry): void {
    const k = this.sendKey(e);
    const next = this.sends.find((x) => x !== e && this.sendKey(x) === k);
    if (next && this.st === 'open' && !this.restoring) this.sendNow(next);
  }

  private sendNow(e: SendEntry): void {
    if (e.id !== undefined || this.st !== 'open') return;
    // One send in flight per conversation, oldest first: pipelined sends
    // overtook one refused rate_limited (the bucket refills while it
    // waits), and the conversation no longer read as typed.
    const k = this.sendKey(e);
    if (this.sends.find((x) => this.sendKey(x) === k) !== e) return;
    clearTimeout(e.retry);
    e.retry = undefined;
    const gen = this.gen;
    this.transmit('send', e.fields as unknown as Record<string, unknown>, undefined, e).then((ack: SendAck) => {
      const i = this.sends.indexOf(e);
      if (i < 0) return;
      this.sends.splice(i, 1);
      this.unpersist(e);
      e.resolve(ack);
      this.sendNext(e);
      // This device gets the ack instead of a `message` event: the app
      // gets its own message in the session's order all the same.
      const f = e.fields;
      const m: Message = {
        session_id: ack.session_id, seq: ack.seq, msg_id: ack.msg_id, from: this.uid, type: f.type,
        content: f.content as any, cid: e.cid, created_at: ack.created_at,
      };
      if (f.mentions) m.mentions = f.mentions;
      if (f.mention_all) m.mention_all = true;
      this.live(m);
    }, (err: ChatdError) => {
      e.id = undefined;
      if (!this.sends.includes(e)) return;
      if (err.code === 'disconnected') return; // resent after the next login
      if (err.code === 'timeout' || err.code === 'rate_limited' || err.code === 'unavailable') {
        // Refused sends retry one after another, retry_after apart, rather
        // than all at once into the same empty bucket.
        const waiting = this.sends.filter((x) => x.retry !== undefined).length;
        const wait = (err.retryAfter ?? backoffDelay(0, this.o.backoffBase, this.o.backoffMax, this.o.random)) * (1 + waiting);
        e.retry = setTimeout(() => { e.retry = undefined; if (gen === this.gen) this.sendNow(e); }, wait);
        return;
      }
      this.sends.splice(this.sends.indexOf(e), 1);
      this.unpersist(e);
      e.reject(err);
      this.sendNext(e);
    });
  }

  // ---- typed helpers

  history(session_id: number, opts: { before?: number; limit?: number } = {}): Promise<MessagePage> {
    return this.request('history', { session_id, ...opts });
  }
  sync(session_id: number, after: number, limit?: number): Promise<MessagePage> {
    return this.request('sync', limit ? { session_id, after, limit } : { session_id, after });
  }
  /** One page of the session list. */
  sessionsPage(opts: { limit?: number; cursor?: string; keyword?: string } = {}): Promise<SessionsPage> {
    return this.request('sessions', opts);
  }
  /** The whole session list, every page. */
  async sessionList(): Promise<SessionView[]> {
    const out: SessionView[] = [];
    let cursor: string | undefined;
    do {
      const r = await this.sessionsPage(cursor ? { cursor } : {});
      out.push(...r.sessions);
      cursor = r.next_cursor;
    } while (cursor);
    return out;
  }
  read(session_id: number, seq: number): Promise<ReadReply> { return this.request('read', { session_id, seq }); }
  privateSession(uid: string): Promise<SessionView> { return this.request('private', { uid }); }
  groupCreate(name: string, uids: string[], avatar?: string): Promise<SessionView> {
    return this.request('group_create', avatar ? { name, uids, avatar } : { name, uids });
  }
  user(uid?: string): Promise<ReplyData<'user'>> { return this.request('user', uid ? { uid } : {}); }
  presence(uids: string[]): Promise<PresenceEntry[]> { return this.request('presence', { uids }).then((r) => r.presence); }
  typing(session_id: number): Promise<{ forwarded: boolean }> { return this.request('typing', { session_id }); }
  recall(session_id: number, seq: number): Promise<OpReply> { return this.request('recall', { session_id, seq, cid: newCid() }); }
  edit(session_id: number, seq: number, content: Record<string, unknown>): Promise<OpReply> {
    return this.request('edit', { session_id, seq, content, cid: newCid() });
  }
  ping(): Promise<{ server_time: number }> { return this.request('ping', {}); }

  // ---- uploads

  /**
   * Uploads a file (POST /v1/files on httpUrl) and resolves with the
   * server's file record. Progress comes from XMLHttpRequest where there
   * is one (browsers); elsewhere fetch reports 0 and then 100%. `type`
   * defaults from the Blob's MIME type (image/*, audio/* as voice, video/*,
   * else file).
   */
  async upload(file: Blob | ArrayBuffer | ArrayBufferView, opts: UploadOptions = {}): Promise<FileRecord> {
    if (!this.o.httpUrl) throw new ChatdError('bad_request', 'upload needs the httpUrl option (chatd\'s HTTP port)');
    const g = globalThis as any;
    let token = this.token ?? (this.o.getToken ? await this.o.getToken() : '');
    for (let fresh = false; ; fresh = true) {
      try {
        return await uploadFile({
          base: this.o.httpUrl.replace(/\/+$/, ''), app: this.o.app, token, file, opts,
          fetch: this.o.fetch ?? g.fetch, XMLHttpRequest: this.o.XMLHttpRequest ?? g.XMLHttpRequest,
        });
      } catch (e) {
        // a token that expired since the login: once more with a fresh one
        if ((e as ChatdError).code !== 'unauthorized' || fresh || !this.o.getToken) throw e;
        token = this.token = await this.o.getToken();
      }
    }
  }

  /**
   * Uploads a file and sends it as a message ({file_id}, plus `name` for a
   * file): the upload, then a queued send like any other. Resolves with
   * the file record and the send's ack.
   */
  async sendFile(input: SendFileInput): Promise<{ file: FileRecord; ack: SendAck }> {
    const { file, type, name, onProgress, signal, content, ...rest } = input;
    const rec = await this.upload(file, { type, name, onProgress, signal });
    const c: Record<string, unknown> = { ...content, file_id: rec.file_id };
    if (rec.type === 'file' && !c.name) c.name = rec.name || 'file';
    const ack = await this.send({ ...rest, type: rec.type, content: c } as SendInput);
    return { file: rec, ack };
  }

  // ---- exactly-once, in-order delivery

  private session(sid: number, last: number): SessionState {
    let s = this.sessions.get(sid);
    if (!s) {
      s = { last, target: last, buf: new Map(), filling: null, again: false };
      this.sessions.set(sid, s);
    }
    return s;
  }

  private deliver(s: SessionState, m: Message): void {
    s.last = m.seq;
    if (m.seq > s.target) s.target = m.seq;
    for (const k of s.buf.keys()) if (k <= s.last) s.buf.delete(k);
    this.emit('message', m);
  }

  private drain(s: SessionState): void {
    for (let m = s.buf.get(s.last + 1); m; m = s.buf.get(s.last + 1)) this.deliver(s, m);
  }

  /** A message that arrived live (event or own ack). */
  private live(m: Message): void {
    // A session first heard of live starts at this message, unless the
    // session list being read after a login says where it starts.
    const known = this.sessions.has(m.session_id);
    const s = this.session(m.session_id, m.seq - 1);
    if (!known && this.listing) s.provisional = true;
    if (m.seq <= s.last || s.buf.has(m.seq)) return; // already delivered or waiting
    s.buf.set(m.seq, m);
    if (s.provisional) return;
    this.drain(s);
    if (s.buf.size > 0) void this.fill(m.session_id, s); // a gap before it
  }

  /**
   * Brings a session up to `target` and past every buffered message: sync
   * from the last delivered seq, page by page, delivering in order. A seq
   * that existed before the sync began and that sync does not return is
   * hidden from this user (delete for me, join history) and is skipped.
   */
  private fill(sid: number, s: SessionState): Promise<void> {
    if (s.filling) { s.again = true; return s.filling; }
    const gen = this.gen;
    s.filling = (async () => {
      try {
        do {
          s.again = false;
          let known = s.target;
          for (const k of s.buf.keys()) if (k > known) known = k;
          if (known <= s.last) break;
          let after = s.last, more = true;
          while (more) {
            if (gen !== this.gen || this.st !== 'open') return; // the next login resyncs
            const page = await this.transmit('sync', { session_id: sid, after, limit: this.o.syncLimit });
            for (const m of page.messages as Message[]) {
              if (m.seq <= s.last) continue;
              for (const k of [...s.buf.keys()].sort((a, b) => a - b)) {
                if (k < m.seq) this.deliver(s, s.buf.get(k)!);
              }
              this.deliver(s, m);
            }
            more = page.has_more && page.messages.length > 0;
            if (page.messages.length > 0) after = page.messages[page.messages.length - 1].seq;
          }
          for (const k of [...s.buf.keys()].sort((a, b) => a - b)) if (k <= known) this.deliver(s, s.buf.get(k)!);
          if (s.last < known) s.last = known;
          this.drain(s);
          if (s.buf.size > 0) s.again = true;
        } while (s.again);
      } catch (e) {
        if ((e as ChatdError).code !== 'disconnected' && gen === this.gen) this.emit('error', e as Error);
      } finally {
        s.filling = null;
      }
    })();
    return s.filling;
  }

  /**
   * After a login, and when the HTTP transports' event buffer lost events:
   * list every session and sync each one that moved. Asked again while it
   * runs, it runs once more after.
   */
  private async resync(gen: number): Promise<void> {
    if (this.resyncing === gen) { this.resyncAgain = true; return; }
    this.resyncing = gen;
    try {
      do {
        this.resyncAgain = false;
        await this.resyncOnce(gen);
      } while (this.resyncAgain && gen === this.gen);
    } finally {
      if (this.resyncing === gen) this.resyncing = -1;
    }
  }

  private async resyncOnce(gen: number): Promise<void> {
    const first = !this.everSynced;
    let cursor: string | undefined;
    let n = 0;
    this.listing = true;
    try {
      do {
        const page: SessionsPage = await this.transmit('sessions', cursor ? { cursor } : {});
        if (gen !== this.gen) return;
        for (const v of page.sessions) {
          n++;
          // Unknown at the first login: start at the end (the app reads
          // back with history). Unknown later: it appeared or came back
          // while offline, so deliver what the user has not read.
          const start = first ? v.last_seq : Math.min(v.read_seq, v.last_seq);
          let s = this.sessions.get(v.session_id);
          if (!s) s = this.session(v.session_id, start);
          if (s.provisional) {
            s.provisional = false;
            s.last = s.target = start;
            for (const k of s.buf.keys()) if (k <= start) s.buf.delete(k);
          }
          if (v.last_seq > s.target) s.target = v.last_seq;
          if (s.target > s.last || s.buf.size > 0) await this.fill(v.session_id, s);
        }
        cursor = page.next_cursor;
      } while (cursor);
      this.endListing();
      for (const [sid, s] of this.sessions) if (s.buf.size > 0) await this.fill(sid, s);
      if (gen !== this.gen) return;
      this.everSynced = true;
      this.emit('synced', { sessions: n });
    } catch (e) {
      if (gen === this.gen && (e as ChatdError).code !== 'disconnected') {
        this.emit('error', e as Error);
        this.drop(1006, 'resync failed: ' + (e as Error).message);
      }
    } finally {
      this.endListing();
    }
  }

  /** Sessions heard of live but absent from the list start at their first live message. */
  private endListing(): void {
    if (!this.listing) return;
    this.listing = false;
    for (const s of this.sessions.values()) {
      if (!s.provisional) continue;
      s.provisional = false;
      s.last = s.target = Math.min(...s.buf.keys()) - 1;
      this.drain(s);
    }
  }
}
