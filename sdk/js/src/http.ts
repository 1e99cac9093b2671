// The HTTP transports: events by long-poll (GET /v1/events) or Server-Sent
// Events (GET /v1/events/stream), actions by POST /v1/client
// (docs/http-api.md, "Events over HTTP"). An HttpWire stands where the
// WebSocket stands in the client: send() carries a request frame, and
// replies and events come back as the same JSON frames a WebSocket
// receives, so the client's logic (resync, exactly-once delivery, the send
// queue) is the same on every transport.
import { ChatdError, envelope, httpError, netError } from './util.js';

export type HttpKind = 'sse' | 'longpoll';

/** The part of the EventSource API the SDK uses. */
export interface EventSourceLike {
  onmessage: ((ev: { data: string; lastEventId?: string }) => void) | null;
  onerror: ((ev: any) => void) | null;
  addEventListener(name: string, fn: (ev: { data: string; lastEventId?: string }) => void): void;
  close(): void;
}
export type EventSourceCtor = new (url: string) => EventSourceLike;

/** What an HttpWire needs from its client. */
export interface HttpHost {
  base: string;
  app: string;
  token: string;
  fetch: typeof fetch;
  EventSource?: EventSourceCtor;
  /** use EventSource even when fetch can stream */
  preferEventSource?: boolean;
  kind: HttpKind;
  /** s a long-poll may wait */
  pollTimeout: number;
  /** ms for a POST, and for a stream's headers */
  requestTimeout: number;
  /** ms without a byte (the server's heartbeat comes every 15 s) after which a stream is dropped */
  streamIdle: number;
  /** a reply or an event, as a WebSocket frame's text */
  frame(text: string): void;
  /** the server no longer holds every event after the cursor: reload with sessions + sync */
  resync(): void;
  /** the wire is gone (not called after close()) */
  lost(code: number, reason: string): void;
}

/** Close codes the WebSocket would have given for an HTTP refusal. */
function closeCode(e: ChatdError): number {
  return e.code === 'unauthorized' ? 4002 : e.code === 'forbidden' ? 4004 : 1006;
}

export class HttpWire {
  /** where the next read of events starts */
  cursor = '';
  private done = false;
  private readonly aborts = new Set<AbortController>();
  private es: EventSourceLike | null = null;
  private idleTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(private readonly h: HttpHost) {}

  private headers(extra?: Record<string, string>): Record<string, string> {
    return { 'X-Chatd-App': this.h.app, Authorization: 'Bearer ' + this.h.token, ...extra };
  }

  /** fetch with an abort at close() and, when timeout > 0, after timeout ms (until the answer's headers). */
  private async call(path: string, init: RequestInit, timeout: number): Promise<Response> {
    const ac = new AbortController();
    this.aborts.add(ac);
    const t = timeout > 0 ? setTimeout(() => ac.abort(), timeout) : undefined;
    try {
      return await this.h.fetch(this.h.base + path, { ...init, signal: ac.signal });
    } catch (e) {
      if (ac.signal.aborted && !this.done) throw new ChatdError('timeout', `no answer to ${path} within ${timeout} ms`);
      throw netError(e, path);
    } finally {
      clearTimeout(t);
      this.aborts.delete(ac);
    }
  }

  private async get(path: string, timeout: number): Promise<any> {
    const res = await this.call(path, { headers: this.headers() }, timeout);
    return envelope(res.status, await res.text());
  }

  /**
   * Reads the starting cursor. This checks the token (a refusal throws
   * `unauthorized` or `forbidden`, as a WebSocket login would) and creates
   * the user's event buffer, which keeps every event after the cursor.
   */
  async start(): Promise<void> {
    const r = await this.get('/v1/events', this.h.requestTimeout);
    this.cursor = r.cursor;
  }

  /** Starts reading events from the cursor, until close() or a failure. */
  run(): void {
    if (this.done) return;
    if (this.h.kind === 'longpoll') void this.poll();
    else if (this.h.preferEventSource && this.h.EventSource) this.eventSource();
    else void this.stream();
  }

  /**
   * Sends one client action with POST /v1/client. Its reply comes back
   * through frame(). An HTTP refusal other than the token's is made the
   * request's error reply; a token refusal or a network failure ends the
   * wire (the client reconnects, and a send in flight is retried with its cid).
   */
  send(text: string, id: string): void {
    this.call('/v1/client', { method: 'POST', headers: this.headers({ 'Content-Type': 'application/json' }), body: text },
      this.h.requestTimeout + 1000).then(async (res) => {
      const body = await res.text();
      if (this.done) return;
      if (res.status === 200) return this.h.frame(body);
      const e = httpError(res.status, body);
      if (closeCode(e) !== 1006) return this.fail(e);
      this.h.frame(JSON.stringify({ reply_to: id, ok: false, error: { code: e.code, message: e.message, retry_after: e.retryAfter } }));
    }).catch((e) => {
      // a timeout is the request's own (the client rejects it); anything else is the network
      if ((e as ChatdError).code !== 'timeout') this.fail(e);
    });
  }

  close(): void {
    if (this.done) return;
    this.done = true;
    clearTimeout(this.idleTimer);
    for (const ac of this.aborts) ac.abort();
    this.aborts.clear();
    this.es?.close();
  }

  private fail(e: unknown): void {
    if (this.done) return;
    const err = netError(e, 'events');
    this.close();
    this.h.lost(closeCode(err), err.message);
  }

  private async poll(): Promise<void> {
    const wait = this.h.pollTimeout;
    while (!this.done) {
      let r: { events: unknown[]; cursor: string; resync: boolean };
      try {
        r = await this.get(`/v1/events?cursor=${encodeURIComponent(this.cursor)}&timeout=${wait}`, wait * 1000 + this.h.requestTimeout);
      } catch (e) {
        return this.fail(e);
      }
      if (this.done) return;
      this.cursor = r.cursor;
      for (const ev of r.events) this.h.frame(JSON.stringify(ev));
      if (r.resync) this.h.resync();
    }
  }

  /** Drops a stream that has been silent for streamIdle ms (the server writes a heartbeat every 15 s). */
  private idle(): void {
    clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => this.fail(new ChatdError('timeout', `the event stream was silent for ${this.h.streamIdle} ms`)),
      this.h.streamIdle);
  }

  /** SSE read with fetch, so the token goes in a header rather than the URL. */
  private async stream(): Promise<void> {
    let res: Response;
    try {
      res = await this.call(`/v1/events/stream?cursor=${encodeURIComponent(this.cursor)}`,
        { headers: this.headers({ Accept: 'text/event-stream' }) }, this.h.requestTimeout);
      if (res.status !== 200) throw httpError(res.status, await res.text());
    } catch (e) {
      return this.fail(e);
    }
    const reader = (res.body as any)?.getReader?.();
    if (!reader) { // a fetch that cannot stream
      if (this.h.EventSource) return this.eventSource();
      this.h.kind = 'longpoll';
      return this.run();
    }
    const ac = new AbortController(); // close() cancels the read
    this.aborts.add(ac);
    ac.signal.addEventListener('abort', () => { reader.cancel().catch(() => {}); });
    const dec = new TextDecoder();
    let buf = '';
    this.idle();
    for (;;) {
      let r: { done: boolean; value?: Uint8Array };
      try {
        r = await reader.read();
      } catch (e) {
        return this.fail(e);
      }
      if (this.done) return;
      if (r.done) return this.fail(new ChatdError('disconnected', 'the event stream ended'));
      this.idle();
      buf += dec.decode(r.value, { stream: true });
      buf = this.parse(buf);
    }
  }

  /** Handles the complete SSE messages at the start of buf; returns the rest. */
  private parse(buf: string): string {
    buf = buf.replace(/\r\n?/g, '\n');
    for (let i = buf.indexOf('\n\n'); i >= 0 && !this.done; i = buf.indexOf('\n\n')) {
      const block = buf.slice(0, i);
      buf = buf.slice(i + 2);
      let name = 'message';
      const data: string[] = [];
      for (const line of block.split('\n')) {
        if (!line || line[0] === ':') continue; // a heartbeat comment
        const c = line.indexOf(':');
        const field = c < 0 ? line : line.slice(0, c);
        let v = c < 0 ? '' : line.slice(c + 1);
        if (v[0] === ' ') v = v.slice(1);
        if (field === 'event') name = v;
        else if (field === 'data') data.push(v);
        else if (field === 'id') this.cursor = v;
      }
      if (name === 'resync') this.h.resync();
      else if (data.length) this.h.frame(data.join('\n'));
    }
    return buf;
  }

  /**
   * SSE read with the browser's EventSource, which cannot send headers: the
   * token goes in the query (docs/http-api.md). Its own reconnect is not
   * used: an error ends the wire, and the client reconnects and resyncs.
   */
  private eventSource(): void {
    const q = `app=${encodeURIComponent(this.h.app)}&access_token=${encodeURIComponent(this.h.token)}&cursor=${encodeURIComponent(this.cursor)}`;
    let es: EventSourceLike;
    try {
      es = this.es = new this.h.EventSource!(`${this.h.base}/v1/events/stream?${q}`);
    } catch (e) {
      return this.fail(e);
    }
    const id = (ev: { lastEventId?: string }) => { if (ev.lastEventId) this.cursor = ev.lastEventId; };
    es.onmessage = (ev) => { if (this.done) return; id(ev); this.h.frame(ev.data); };
    es.addEventListener('resync', (ev) => { if (this.done) return; id(ev); this.h.resync(); });
    es.onerror = () => this.fail(new ChatdError('disconnected', 'the event stream failed'));
  }
}
