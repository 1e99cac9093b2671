"use strict";
(() => {
  // ../sdk/js/src/util.ts
  var ChatdError = class extends Error {
    constructor(code, message, retryAfter) {
      super(message);
      this.name = "ChatdError";
      this.code = code;
      this.retryAfter = retryAfter;
    }
  };
  function backoffDelay(attempt, base, max, random = Math.random) {
    const d = Math.min(max, base * Math.pow(2, Math.min(attempt, 30)));
    return d / 2 + random() * (d / 2);
  }
  function newCid() {
    const c = globalThis.crypto;
    if (c && typeof c.randomUUID === "function") return c.randomUUID();
    let s = "";
    for (let i = 0; i < 32; i++) s += Math.floor(Math.random() * 16).toString(16);
    return s;
  }
  function httpError(status, text) {
    let e;
    try {
      e = JSON.parse(text).error;
    } catch {
    }
    if (e && typeof e.code === "string") return new ChatdError(e.code, e.message ?? e.code, e.retry_after);
    const code = status === 401 ? "unauthorized" : status === 403 ? "forbidden" : status === 413 ? "too_large" : status === 429 ? "rate_limited" : status >= 500 ? "unavailable" : "bad_request";
    return new ChatdError(code, `HTTP ${status}`);
  }
  function envelope(status, text) {
    if (status < 200 || status > 299) throw httpError(status, text);
    try {
      return JSON.parse(text).data;
    } catch {
      throw new ChatdError("internal", "the answer is not JSON");
    }
  }
  function netError(e, what) {
    if (e instanceof ChatdError) return e;
    return new ChatdError("disconnected", `${what}: ${e?.message ?? String(e)}`);
  }

  // ../sdk/js/src/http.ts
  function closeCode(e) {
    return e.code === "unauthorized" ? 4002 : e.code === "forbidden" ? 4004 : 1006;
  }
  var HttpWire = class {
    constructor(h2) {
      this.h = h2;
      /** where the next read of events starts */
      this.cursor = "";
      this.done = false;
      this.aborts = /* @__PURE__ */ new Set();
      this.es = null;
    }
    headers(extra) {
      return { "X-Chatd-App": this.h.app, Authorization: "Bearer " + this.h.token, ...extra };
    }
    /** fetch with an abort at close() and, when timeout > 0, after timeout ms (until the answer's headers). */
    async call(path, init, timeout) {
      const ac = new AbortController();
      this.aborts.add(ac);
      const t = timeout > 0 ? setTimeout(() => ac.abort(), timeout) : void 0;
      try {
        return await this.h.fetch(this.h.base + path, { ...init, signal: ac.signal });
      } catch (e) {
        if (ac.signal.aborted && !this.done) throw new ChatdError("timeout", `no answer to ${path} within ${timeout} ms`);
        throw netError(e, path);
      } finally {
        clearTimeout(t);
        this.aborts.delete(ac);
      }
    }
    async get(path, timeout) {
      const res = await this.call(path, { headers: this.headers() }, timeout);
      return envelope(res.status, await res.text());
    }
    /**
     * Reads the starting cursor. This checks the token (a refusal throws
     * `unauthorized` or `forbidden`, as a WebSocket login would) and creates
     * the user's event buffer, which keeps every event after the cursor.
     */
    async start() {
      const r = await this.get("/v1/events", this.h.requestTimeout);
      this.cursor = r.cursor;
    }
    /** Starts reading events from the cursor, until close() or a failure. */
    run() {
      if (this.done) return;
      if (this.h.kind === "longpoll") void this.poll();
      else if (this.h.preferEventSource && this.h.EventSource) this.eventSource();
      else void this.stream();
    }
    /**
     * Sends one client action with POST /v1/client. Its reply comes back
     * through frame(). An HTTP refusal other than the token's is made the
     * request's error reply; a token refusal or a network failure ends the
     * wire (the client reconnects, and a send in flight is retried with its cid).
     */
    send(text, id) {
      this.call(
        "/v1/client",
        { method: "POST", headers: this.headers({ "Content-Type": "application/json" }), body: text },
        this.h.requestTimeout + 1e3
      ).then(async (res) => {
        const body = await res.text();
        if (this.done) return;
        if (res.status === 200) return this.h.frame(body);
        const e = httpError(res.status, body);
        if (closeCode(e) !== 1006) return this.fail(e);
        this.h.frame(JSON.stringify({ reply_to: id, ok: false, error: { code: e.code, message: e.message, retry_after: e.retryAfter } }));
      }).catch((e) => {
        if (e.code !== "timeout") this.fail(e);
      });
    }
    close() {
      if (this.done) return;
      this.done = true;
      clearTimeout(this.idleTimer);
      for (const ac of this.aborts) ac.abort();
      this.aborts.clear();
      this.es?.close();
    }
    fail(e) {
      if (this.done) return;
      const err = netError(e, "events");
      this.close();
      this.h.lost(closeCode(err), err.message);
    }
    async poll() {
      const wait = this.h.pollTimeout;
      while (!this.done) {
        let r;
        try {
          r = await this.get(`/v1/events?cursor=${encodeURIComponent(this.cursor)}&timeout=${wait}`, wait * 1e3 + this.h.requestTimeout);
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
    idle() {
      clearTimeout(this.idleTimer);
      this.idleTimer = setTimeout(
        () => this.fail(new ChatdError("timeout", `the event stream was silent for ${this.h.streamIdle} ms`)),
        this.h.streamIdle
      );
    }
    /** SSE read with fetch, so the token goes in a header rather than the URL. */
    async stream() {
      let res;
      try {
        res = await this.call(
          `/v1/events/stream?cursor=${encodeURIComponent(this.cursor)}`,
          { headers: this.headers({ Accept: "text/event-stream" }) },
          this.h.requestTimeout
        );
        if (res.status !== 200) throw httpError(res.status, await res.text());
      } catch (e) {
        return this.fail(e);
      }
      const reader = res.body?.getReader?.();
      if (!reader) {
        if (this.h.EventSource) return this.eventSource();
        this.h.kind = "longpoll";
        return this.run();
      }
      const ac = new AbortController();
      this.aborts.add(ac);
      ac.signal.addEventListener("abort", () => {
        reader.cancel().catch(() => {
        });
      });
      const dec = new TextDecoder();
      let buf = "";
      this.idle();
      for (; ; ) {
        let r;
        try {
          r = await reader.read();
        } catch (e) {
          return this.fail(e);
        }
        if (this.done) return;
        if (r.done) return this.fail(new ChatdError("disconnected", "the event stream ended"));
        this.idle();
        buf += dec.decode(r.value, { stream: true });
        buf = this.parse(buf);
      }
    }
    /** Handles the complete SSE messages at the start of buf; returns the rest. */
    parse(buf) {
      buf = buf.replace(/\r\n?/g, "\n");
      for (let i = buf.indexOf("\n\n"); i >= 0 && !this.done; i = buf.indexOf("\n\n")) {
        const block = buf.slice(0, i);
        buf = buf.slice(i + 2);
        let name = "message";
        const data = [];
        for (const line of block.split("\n")) {
          if (!line || line[0] === ":") continue;
          const c = line.indexOf(":");
          const field = c < 0 ? line : line.slice(0, c);
          let v = c < 0 ? "" : line.slice(c + 1);
          if (v[0] === " ") v = v.slice(1);
          if (field === "event") name = v;
          else if (field === "data") data.push(v);
          else if (field === "id") this.cursor = v;
        }
        if (name === "resync") this.h.resync();
        else if (data.length) this.h.frame(data.join("\n"));
      }
      return buf;
    }
    /**
     * SSE read with the browser's EventSource, which cannot send headers: the
     * token goes in the query (docs/http-api.md). Its own reconnect is not
     * used: an error ends the wire, and the client reconnects and resyncs.
     */
    eventSource() {
      const q = `app=${encodeURIComponent(this.h.app)}&access_token=${encodeURIComponent(this.h.token)}&cursor=${encodeURIComponent(this.cursor)}`;
      let es;
      try {
        es = this.es = new this.h.EventSource(`${this.h.base}/v1/events/stream?${q}`);
      } catch (e) {
        return this.fail(e);
      }
      const id = (ev) => {
        if (ev.lastEventId) this.cursor = ev.lastEventId;
      };
      es.onmessage = (ev) => {
        if (this.done) return;
        id(ev);
        this.h.frame(ev.data);
      };
      es.addEventListener("resync", (ev) => {
        if (this.done) return;
        id(ev);
        this.h.resync();
      });
      es.onerror = () => this.fail(new ChatdError("disconnected", "the event stream failed"));
    }
  };

  // ../sdk/js/src/upload.ts
  function guessType(mime) {
    const m = /^(image|audio|video)\//.exec(mime);
    return m ? m[1] === "audio" ? "voice" : m[1] : "file";
  }
  function uploadFile(a) {
    const { file, opts } = a;
    const blob = file;
    const type = opts.type ?? guessType(typeof blob.type === "string" ? blob.type : "");
    const name = opts.name ?? file.name;
    const url = `${a.base}/v1/files?type=${type}${name ? "&name=" + encodeURIComponent(name) : ""}`;
    const headers = { "X-Chatd-App": a.app, Authorization: "Bearer " + a.token };
    const total = typeof blob.size === "number" ? blob.size : file.byteLength;
    const progress = (loaded) => {
      try {
        opts.onProgress?.({ loaded, total });
      } catch {
      }
    };
    const aborted = () => new ChatdError("aborted", "the upload was aborted");
    if (opts.signal?.aborted) return Promise.reject(aborted());
    const X = a.XMLHttpRequest;
    if (X) {
      return new Promise((resolve, reject) => {
        const x = new X();
        x.open("POST", url);
        for (const [k, v] of Object.entries(headers)) x.setRequestHeader(k, v);
        x.upload.onprogress = (e) => progress(e.loaded);
        x.onload = () => {
          try {
            resolve(envelope(x.status, x.responseText));
          } catch (e) {
            reject(e);
          }
        };
        x.onerror = () => reject(new ChatdError("disconnected", "the upload failed (network)"));
        x.onabort = () => reject(aborted());
        opts.signal?.addEventListener("abort", () => x.abort());
        progress(0);
        x.send(file);
      });
    }
    if (!a.fetch) return Promise.reject(new ChatdError("bad_request", "upload needs fetch or XMLHttpRequest"));
    progress(0);
    return a.fetch(url, { method: "POST", headers, body: file, signal: opts.signal }).then(
      async (res) => {
        const rec = envelope(res.status, await res.text());
        progress(total);
        return rec;
      },
      (e) => {
        throw opts.signal?.aborted ? aborted() : netError(e, "upload");
      }
    );
  }

  // ../sdk/js/src/persist.ts
  var DB = "chatd-sdk";
  var STORE = "sends";
  function indexedDBStore(idb) {
    let db = null;
    const open = () => db ?? (db = new Promise((resolve, reject) => {
      if (!idb) return reject(new Error("persist: this environment has no IndexedDB"));
      const r = idb.open(DB, 1);
      r.onupgradeneeded = () => {
        r.result.createObjectStore(STORE, { keyPath: "cid" });
      };
      r.onsuccess = () => resolve(r.result);
      r.onerror = () => reject(r.error);
    }));
    let chain = Promise.resolve();
    const run = (mode, f) => {
      const p = chain.then(() => open()).then((d) => {
        const tx = d.transaction(STORE, mode);
        const req = f(tx.objectStore(STORE));
        return new Promise((resolve, reject) => {
          tx.oncomplete = () => resolve(req.result);
          tx.onerror = tx.onabort = () => reject(tx.error ?? req.error);
        });
      });
      chain = p.catch(() => {
      });
      return p;
    };
    return {
      load: (app) => run("readonly", (s) => s.getAll()).then((l) => l.filter((x) => x.app === app).sort((a, b) => a.at - b.at)),
      put: (x) => run("readwrite", (s) => s.put(x)).then(() => {
      }),
      delete: (cid) => run("readwrite", (s) => s.delete(cid)).then(() => {
      })
    };
  }

  // ../sdk/js/src/client.ts
  var lastAt = 0;
  var LOGGED_IN_ELSEWHERE = 4003;
  var BANNED = 4004;
  var TOKEN_GONE = 4002;
  var ChatClient = class {
    constructor(opts) {
      this.ws = null;
      this.via = null;
      /** auto: the WebSocket failed where HTTP then worked; reconnects go over HTTP */
      this.viaHttp = false;
      this.resyncing = -1;
      // the gen whose resync runs
      this.resyncAgain = false;
      this.store = null;
      this.restoring = null;
      this.adopting = false;
      this.gen = 0;
      this.nextId = 0;
      this.st = "idle";
      this.attempt = 0;
      this.logins = 0;
      this.everSynced = false;
      this.listing = false;
      this.me = null;
      this.inflight = /* @__PURE__ */ new Map();
      this.waiting = [];
      this.sends = [];
      this.sessions = /* @__PURE__ */ new Map();
      this.listeners = /* @__PURE__ */ new Map();
      this.connectWaiters = [];
      this.netListeners = null;
      /** the logged-in user's uid, once logged in */
      this.uid = "";
      this.kicked = false;
      this.o = {
        WebSocket: globalThis.WebSocket,
        requestTimeout: 1e4,
        backoffBase: 500,
        backoffMax: 3e4,
        pingInterval: 25e3,
        syncLimit: 200,
        random: Math.random,
        transport: "auto",
        pollTimeout: 25,
        streamIdle: 45e3,
        ...opts
      };
      this.token = opts.token;
      const p = opts.persist;
      if (p) {
        this.store = p === "indexeddb" ? indexedDBStore(opts.indexedDB ?? globalThis.indexedDB) : p;
        this.restoring = this.store.load(opts.app).catch((e) => {
          this.emit("error", e);
          return [];
        });
      }
      for (const [sid, seq] of Object.entries(opts.cursors ?? {})) this.session(Number(sid), seq);
    }
    /** The connection state. */
    get state() {
      return this.st;
    }
    /** The transport of the current (or last) connection: `websocket`, `sse` or `longpoll`; null before the first. */
    get transport() {
      return this.via;
    }
    /** The highest seq delivered to the app in each session. */
    cursors() {
      const out = {};
      for (const [sid, s] of this.sessions) out[sid] = s.last;
      return out;
    }
    /** Subscribes to an event; returns the function that unsubscribes. */
    on(name, fn) {
      let set = this.listeners.get(name);
      if (!set) this.listeners.set(name, set = /* @__PURE__ */ new Set());
      set.add(fn);
      return () => {
        set.delete(fn);
      };
    }
    emit(name, data) {
      for (const fn of this.listeners.get(name) ?? []) {
        try {
          fn(data);
        } catch (e) {
          if (name !== "error") this.emit("error", e);
        }
      }
    }
    setState(s) {
      if (this.st === s) return;
      this.st = s;
      this.emit("state", { state: s });
    }
    /**
     * Connects and logs in; resolves with the login reply. Also the way to
     * come back after a stop (kicked, banned, close()): the user asked.
     */
    connect() {
      if (this.st === "open" && this.me) return Promise.resolve(this.me);
      const p = new Promise((resolve, reject) => this.connectWaiters.push({ resolve, reject }));
      if (this.st === "idle" || this.st === "stopped" || this.st === "waiting") {
        this.listenNetwork();
        this.open();
      }
      return p;
    }
    /** Reconnects at once when waiting for a backoff delay (the browser's `online` event does this). */
    reconnectNow() {
      if (this.st !== "waiting") return;
      this.attempt = 0;
      this.open();
    }
    /** Closes the connection and stops: pending requests and queued sends are rejected with `closed`. */
    close() {
      this.stop(1e3, "closed by the client");
      const err = new ChatdError("closed", "the client was closed");
      for (const w of this.waiting.splice(0)) {
        clearTimeout(w.timer);
        w.reject(err);
      }
      for (const s of this.sends.splice(0)) {
        clearTimeout(s.retry);
        this.unpersist(s);
        s.reject(err);
      }
      for (const c of this.connectWaiters.splice(0)) c.reject(err);
      this.unlistenNetwork();
    }
    /**
     * Logs out (the server closes with 1000) and stops. Over SSE and
     * long-poll there is no login to end: it stops (revoke the token on the
     * server to end it).
     */
    async logout() {
      try {
        if (this.via === "websocket") await this.request("logout", {});
      } finally {
        this.close();
      }
    }
    listenNetwork() {
      const w = globalThis.window;
      if (this.netListeners || !w || typeof w.addEventListener !== "function") return;
      const online = () => this.reconnectNow();
      const offline = () => {
        if (this.ws) this.drop(1006, "the browser went offline");
      };
      w.addEventListener("online", online);
      w.addEventListener("offline", offline);
      this.netListeners = () => {
        w.removeEventListener("online", online);
        w.removeEventListener("offline", offline);
      };
    }
    unlistenNetwork() {
      if (this.netListeners) this.netListeners();
      this.netListeners = null;
    }
    open() {
      clearTimeout(this.reconnectTimer);
      this.setState("connecting");
      const gen = ++this.gen;
      const t = this.o.transport;
      const http = this.httpKind();
      if (t === "sse" || t === "longpoll") void this.openHttp(gen, t);
      else if (t === "websocket" || !http || this.o.WebSocket && !this.viaHttp) this.openWs(gen, t === "auto" ? http : null);
      else void this.openHttp(gen, http);
    }
    /** The HTTP transport auto falls back to: SSE where a response can stream (or EventSource exists), else long-poll. */
    httpKind() {
      const g = globalThis;
      if (!this.o.httpUrl || !(this.o.fetch ?? g.fetch)) return null;
      return this.o.EventSource || g.EventSource || g.ReadableStream ? "sse" : "longpoll";
    }
    /**
     * A WebSocket connection. With `fallback` (auto), a socket that closes
     * or does not open within requestTimeout hands over to that HTTP
     * transport at once, in the same attempt.
     */
    openWs(gen, fallback) {
      this.via = "websocket";
      let ws;
      try {
        ws = new this.o.WebSocket(this.o.url);
      } catch (e) {
        if (fallback) void this.openHttp(gen, fallback);
        else this.closed(gen, 1006, String(e));
        return;
      }
      this.ws = ws;
      let opened = false;
      const failed = (code, reason) => {
        if (gen !== this.gen || this.ws !== ws) return;
        clearTimeout(timer);
        if (opened || !fallback) return this.closed(gen, code, reason);
        this.ws = null;
        try {
          ws.close();
        } catch {
        }
        void this.openHttp(gen, fallback);
      };
      const timer = setTimeout(() => failed(1006, `no connection within ${this.o.requestTimeout} ms`), this.o.requestTimeout);
      ws.onopen = () => {
        if (gen !== this.gen || this.ws !== ws) return;
        opened = true;
        clearTimeout(timer);
        void this.login(gen);
      };
      ws.onmessage = (ev) => {
        if (gen === this.gen && this.ws === ws) this.frame(String(ev.data));
      };
      ws.onclose = (ev) => failed(ev.code, ev.reason);
      ws.onerror = () => {
      };
    }
    /** The token for the next login: a fresh one from getToken after the first; undefined when gen has passed. */
    async loginToken(gen) {
      let token2 = this.token;
      try {
        if (this.o.getToken && (this.logins > 0 || !token2)) token2 = await this.o.getToken();
      } catch (e) {
        if (gen === this.gen) this.drop(1006, "getToken failed: " + e.message);
        return null;
      }
      if (gen !== this.gen) return null;
      this.token = token2;
      return token2 ?? "";
    }
    async login(gen) {
      const token2 = await this.loginToken(gen);
      if (token2 == null) return;
      let r;
      try {
        r = await this.transmit("login", { app: this.o.app, token: token2, platform: this.o.platform ?? "web" });
      } catch (e) {
        return this.loginFailed(gen, e);
      }
      this.loggedIn(gen, r);
    }
    /**
     * An HTTP connection: the starting cursor (which checks the token), the
     * user's profile and the server time in place of a login reply, then the
     * same resync and send queue as over a WebSocket; events are read from
     * the cursor by long-poll or SSE.
     */
    async openHttp(gen, kind) {
      this.via = kind;
      const f = this.o.fetch ?? globalThis.fetch;
      if (!this.o.httpUrl || !f) {
        const err = new ChatdError("bad_request", `the ${kind} transport needs the httpUrl option and fetch`);
        for (const c of this.connectWaiters.splice(0)) c.reject(err);
        this.emit("error", err);
        this.stop(1e3, err.message);
        return;
      }
      const token2 = await this.loginToken(gen);
      if (token2 == null) return;
      const g = globalThis;
      const wire = new HttpWire({
        base: this.o.httpUrl.replace(/\/+$/, ""),
        app: this.o.app,
        token: token2,
        fetch: (...a) => f(...a),
        EventSource: this.o.EventSource ?? g.EventSource,
        preferEventSource: !!this.o.EventSource || !g.ReadableStream,
        kind,
        pollTimeout: this.o.pollTimeout,
        requestTimeout: this.o.requestTimeout,
        streamIdle: this.o.streamIdle,
        frame: (text) => {
          if (gen === this.gen && this.ws === wire) this.frame(text);
        },
        resync: () => {
          if (gen === this.gen && this.ws === wire) void this.resync(gen);
        },
        lost: (code, reason) => {
          if (this.ws === wire) this.closed(gen, code, reason);
        }
      });
      this.ws = wire;
      let r;
      try {
        await wire.start();
        const [u, p] = await Promise.all([this.transmit("user", {}), this.transmit("ping", {})]);
        r = { uid: u.uid, nickname: u.nickname, server_time: p.server_time, expires_at: 0 };
        if (u.avatar) r.avatar = u.avatar;
      } catch (e) {
        return this.loginFailed(gen, e);
      }
      if (gen !== this.gen) return;
      if (this.o.transport === "auto" && this.o.WebSocket) this.viaHttp = true;
      this.loggedIn(gen, r);
      wire.run();
    }
    loginFailed(gen, err) {
      if (gen !== this.gen) return;
      if (err.code === "forbidden" || err.code === "unauthorized" && !this.o.getToken) {
        for (const c of this.connectWaiters.splice(0)) c.reject(err);
        this.emit("error", err);
        this.stop(1e3, "login refused");
        return;
      }
      this.drop(1006, "login failed: " + err.message);
    }
    loggedIn(gen, r) {
      if (gen !== this.gen) return;
      this.logins++;
      this.attempt = 0;
      this.uid = r.uid;
      this.me = r;
      this.setState("open");
      for (const c of this.connectWaiters.splice(0)) c.resolve(r);
      this.emit("connected", r);
      for (const w of this.waiting.splice(0)) {
        this.transmit(w.action, w.fields, w.timer, void 0, w.timeout).then(w.resolve, w.reject);
      }
      if (this.via === "websocket") this.schedulePing(gen);
      void this.resync(gen);
      if (!this.restoring) for (const s of this.sends) this.sendNow(s);
      else if (!this.adopting) {
        this.adopting = true;
        void this.restore();
      }
    }
    schedulePing(gen) {
      clearTimeout(this.pingTimer);
      if (!this.o.pingInterval) return;
      this.pingTimer = setTimeout(() => {
        if (gen !== this.gen || this.st !== "open") return;
        this.transmit("ping", {}).then(() => this.schedulePing(gen), () => {
          if (gen === this.gen) this.drop(1006, "no reply to ping");
        });
      }, this.o.pingInterval);
    }
    /** Treats the current socket as gone now, without waiting for its close event. */
    drop(code, reason) {
      const ws = this.ws;
      this.closed(this.gen, code, reason);
      try {
        ws?.close();
      } catch {
      }
    }
    stop(code, reason) {
      const ws = this.ws;
      this.closed(this.gen, code, reason, true);
      try {
        ws?.close(1e3);
      } catch {
      }
    }
    closed(gen, code, reason, stopped = false) {
      if (gen !== this.gen) return;
      this.gen++;
      this.ws = null;
      clearTimeout(this.pingTimer);
      clearTimeout(this.reconnectTimer);
      const lost = new ChatdError("disconnected", `connection closed (${code}${reason ? " " + reason : ""}) before the reply`);
      for (const [id, p] of this.inflight) {
        clearTimeout(p.timer);
        this.inflight.delete(id);
        if (p.send) p.send.id = void 0;
        else p.reject(lost);
      }
      const reconnect = !stopped && !this.kicked && code !== LOGGED_IN_ELSEWHERE && code !== BANNED && (code !== TOKEN_GONE || !!this.o.getToken) && this.st !== "stopped";
      this.kicked = false;
      this.emit("disconnected", { code, reason, reconnect });
      if (!reconnect) {
        this.setState("stopped");
        const err = new ChatdError("disconnected", `stopped after close ${code}${reason ? " " + reason : ""}`);
        for (const c of this.connectWaiters.splice(0)) c.reject(err);
        return;
      }
      this.setState("waiting");
      const delay = backoffDelay(this.attempt++, this.o.backoffBase, this.o.backoffMax, this.o.random);
      this.reconnectTimer = setTimeout(() => {
        if (this.st === "waiting") this.open();
      }, delay);
    }
    frame(text) {
      let f;
      try {
        f = JSON.parse(text);
      } catch {
        return;
      }
      if (f && "reply_to" in f) {
        const p = this.inflight.get(String(f.reply_to));
        if (!p) return;
        this.inflight.delete(String(f.reply_to));
        clearTimeout(p.timer);
        if (f.ok) p.resolve(f.data ?? null);
        else p.reject(new ChatdError(f.error?.code ?? "internal", f.error?.message ?? "request failed", f.error?.retry_after));
        return;
      }
      if (f && typeof f.event === "string") this.event(f.event, f.data);
    }
    event(name, data) {
      switch (name) {
        case "message":
          this.live(data);
          return;
        case "recall":
        case "edit": {
          const e = data;
          this.emit(name, e);
          const content = { op: e.op, seq: e.seq, by: e.by, at: e.at };
          if (e.type !== void 0) content.type = e.type;
          if (e.content !== void 0) content.content = e.content;
          if (e.edit_count !== void 0) content.edit_count = e.edit_count;
          this.live({
            session_id: e.session_id,
            seq: e.op_seq,
            msg_id: `${e.session_id}-${e.op_seq}`,
            from: e.by,
            type: "op",
            content,
            created_at: e.at
          });
          return;
        }
        case "kicked":
          this.kicked = true;
          this.emit("kicked", data);
          if (this.via !== "websocket") this.drop(LOGGED_IN_ELSEWHERE, "kicked");
          return;
        default:
          this.emit(name, data);
      }
    }
    // ---- requests
    transmit(action, fields, timer, send2, timeout = this.o.requestTimeout) {
      return new Promise((resolve, reject) => {
        clearTimeout(timer);
        const ws = this.ws;
        if (!ws) {
          reject(new ChatdError("disconnected", "not connected"));
          return;
        }
        const id = String(++this.nextId);
        const p = { resolve, reject, send: send2 };
        p.timer = setTimeout(() => {
          this.inflight.delete(id);
          reject(new ChatdError("timeout", `no reply to ${action} within ${timeout} ms`));
        }, timeout);
        this.inflight.set(id, p);
        if (send2) send2.id = id;
        try {
          ws.send(JSON.stringify({ ...fields, id, action }), id);
        } catch {
        }
      });
    }
    /**
     * Sends any action and resolves with its reply's `data`. Made while
     * disconnected, it waits for the next login, within the same timeout.
     */
    request(action, fields, opts = {}) {
      if (action === "send") return this.send(fields);
      const f = fields;
      if (this.st === "open") return this.transmit(action, f, void 0, void 0, opts.timeout);
      if (this.st === "stopped" || this.st === "idle") {
        return Promise.reject(new ChatdError("disconnected", "not connected: call connect()"));
      }
      return new Promise((resolve, reject) => {
        const w = {
          action,
          fields: f,
          resolve,
          reject,
          timeout: opts.timeout,
          timer: setTimeout(() => {
            const i = this.waiting.indexOf(w);
            if (i >= 0) this.waiting.splice(i, 1);
            reject(new ChatdError("timeout", `not connected within ${opts.timeout ?? this.o.requestTimeout} ms for ${action}`));
          }, opts.timeout ?? this.o.requestTimeout)
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
    send(input) {
      const cid = input.cid ?? newCid();
      return new Promise((resolve, reject) => {
        const e = { cid, fields: { ...input, cid }, at: lastAt = Math.max(Date.now(), lastAt + 1), resolve, reject };
        this.sends.push(e);
        this.persist(e);
        if (this.st === "open" && !this.restoring) this.sendNow(e);
      });
    }
    /** Writes a queued send to the persistent store (persist option). */
    persist(e) {
      this.store?.put({ cid: e.cid, app: this.o.app, uid: this.uid, fields: e.fields, at: e.at }).catch((err) => this.emit("error", err));
    }
    unpersist(e) {
      this.store?.delete(e.cid).catch((err) => this.emit("error", err));
    }
    /**
     * At the first login with persist: the sends a previous page (or client)
     * left in the store for this user, or before it knew its user, go first,
     * with their cids, then the queue of this client.
     */
    async restore() {
      const recs = await this.restoring;
      this.restoring = null;
      const mine = new Set(this.sends.map((x) => x.cid));
      const old = [];
      for (const r of recs.sort((a, b) => a.at - b.at)) {
        if (r.uid && r.uid !== this.uid || mine.has(r.cid)) continue;
        const e = {
          cid: r.cid,
          fields: r.fields,
          at: r.at,
          resolve: () => {
          },
          reject: (err) => this.emit("error", err)
        };
        old.push(e);
        if (!r.uid) this.persist(e);
      }
      this.sends.unshift(...old);
      if (old.length) this.emit("restored", { sends: old.map((x) => ({ cid: x.cid, fields: x.fields })) });
      if (this.st === "open") for (const x of this.sends) this.sendNow(x);
    }
    /** The sends not yet acknowledged, with their cids, oldest first. */
    queuedSends() {
      return this.sends.map((s) => ({ cid: s.cid, fields: s.fields }));
    }
    /** The sends into one conversation go one at a time (sendKey). */
    sendKey(e) {
      const f = e.fields;
      return f.session_id !== void 0 ? "s" + f.session_id : "u" + (f.to ?? "");
    }
    /** The next send waiting behind e in its conversation, if any. */
    sendNext(e) {
      const k = this.sendKey(e);
      const next = this.sends.find((x) => x !== e && this.sendKey(x) === k);
      if (next && this.st === "open" && !this.restoring) this.sendNow(next);
    }
    sendNow(e) {
      if (e.id !== void 0 || this.st !== "open") return;
      const k = this.sendKey(e);
      if (this.sends.find((x) => this.sendKey(x) === k) !== e) return;
      clearTimeout(e.retry);
      e.retry = void 0;
      const gen = this.gen;
      this.transmit("send", e.fields, void 0, e).then((ack) => {
        const i = this.sends.indexOf(e);
        if (i < 0) return;
        this.sends.splice(i, 1);
        this.unpersist(e);
        e.resolve(ack);
        this.sendNext(e);
        const f = e.fields;
        const m = {
          session_id: ack.session_id,
          seq: ack.seq,
          msg_id: ack.msg_id,
          from: this.uid,
          type: f.type,
          content: f.content,
          cid: e.cid,
          created_at: ack.created_at
        };
        if (f.mentions) m.mentions = f.mentions;
        if (f.mention_all) m.mention_all = true;
        this.live(m);
      }, (err) => {
        e.id = void 0;
        if (!this.sends.includes(e)) return;
        if (err.code === "disconnected") return;
        if (err.code === "timeout" || err.code === "rate_limited" || err.code === "unavailable") {
          const waiting = this.sends.filter((x) => x.retry !== void 0).length;
          const wait = (err.retryAfter ?? backoffDelay(0, this.o.backoffBase, this.o.backoffMax, this.o.random)) * (1 + waiting);
          e.retry = setTimeout(() => {
            e.retry = void 0;
            if (gen === this.gen) this.sendNow(e);
          }, wait);
          return;
        }
        this.sends.splice(this.sends.indexOf(e), 1);
        this.unpersist(e);
        e.reject(err);
        this.sendNext(e);
      });
    }
    // ---- typed helpers
    history(session_id, opts = {}) {
      return this.request("history", { session_id, ...opts });
    }
    sync(session_id, after, limit) {
      return this.request("sync", limit ? { session_id, after, limit } : { session_id, after });
    }
    /** One page of the session list. */
    sessionsPage(opts = {}) {
      return this.request("sessions", opts);
    }
    /** The whole session list, every page. */
    async sessionList() {
      const out = [];
      let cursor;
      do {
        const r = await this.sessionsPage(cursor ? { cursor } : {});
        out.push(...r.sessions);
        cursor = r.next_cursor;
      } while (cursor);
      return out;
    }
    read(session_id, seq) {
      return this.request("read", { session_id, seq });
    }
    privateSession(uid) {
      return this.request("private", { uid });
    }
    groupCreate(name, uids, avatar) {
      return this.request("group_create", avatar ? { name, uids, avatar } : { name, uids });
    }
    user(uid) {
      return this.request("user", uid ? { uid } : {});
    }
    presence(uids) {
      return this.request("presence", { uids }).then((r) => r.presence);
    }
    typing(session_id) {
      return this.request("typing", { session_id });
    }
    recall(session_id, seq) {
      return this.request("recall", { session_id, seq, cid: newCid() });
    }
    edit(session_id, seq, content) {
      return this.request("edit", { session_id, seq, content, cid: newCid() });
    }
    ping() {
      return this.request("ping", {});
    }
    // ---- uploads
    /**
     * Uploads a file (POST /v1/files on httpUrl) and resolves with the
     * server's file record. Progress comes from XMLHttpRequest where there
     * is one (browsers); elsewhere fetch reports 0 and then 100%. `type`
     * defaults from the Blob's MIME type (image/*, audio/* as voice, video/*,
     * else file).
     */
    async upload(file, opts = {}) {
      if (!this.o.httpUrl) throw new ChatdError("bad_request", "upload needs the httpUrl option (chatd's HTTP port)");
      const g = globalThis;
      let token2 = this.token ?? (this.o.getToken ? await this.o.getToken() : "");
      for (let fresh = false; ; fresh = true) {
        try {
          return await uploadFile({
            base: this.o.httpUrl.replace(/\/+$/, ""),
            app: this.o.app,
            token: token2,
            file,
            opts,
            fetch: this.o.fetch ?? g.fetch,
            XMLHttpRequest: this.o.XMLHttpRequest ?? g.XMLHttpRequest
          });
        } catch (e) {
          if (e.code !== "unauthorized" || fresh || !this.o.getToken) throw e;
          token2 = this.token = await this.o.getToken();
        }
      }
    }
    /**
     * Uploads a file and sends it as a message ({file_id}, plus `name` for a
     * file): the upload, then a queued send like any other. Resolves with
     * the file record and the send's ack.
     */
    async sendFile(input) {
      const { file, type, name, onProgress, signal, content, ...rest } = input;
      const rec = await this.upload(file, { type, name, onProgress, signal });
      const c = { ...content, file_id: rec.file_id };
      if (rec.type === "file" && !c.name) c.name = rec.name || "file";
      const ack = await this.send({ ...rest, type: rec.type, content: c });
      return { file: rec, ack };
    }
    // ---- exactly-once, in-order delivery
    session(sid, last) {
      let s = this.sessions.get(sid);
      if (!s) {
        s = { last, target: last, buf: /* @__PURE__ */ new Map(), filling: null, again: false };
        this.sessions.set(sid, s);
      }
      return s;
    }
    deliver(s, m) {
      s.last = m.seq;
      if (m.seq > s.target) s.target = m.seq;
      for (const k of s.buf.keys()) if (k <= s.last) s.buf.delete(k);
      this.emit("message", m);
    }
    drain(s) {
      for (let m = s.buf.get(s.last + 1); m; m = s.buf.get(s.last + 1)) this.deliver(s, m);
    }
    /** A message that arrived live (event or own ack). */
    live(m) {
      const known = this.sessions.has(m.session_id);
      const s = this.session(m.session_id, m.seq - 1);
      if (!known && this.listing) s.provisional = true;
      if (m.seq <= s.last || s.buf.has(m.seq)) return;
      s.buf.set(m.seq, m);
      if (s.provisional) return;
      this.drain(s);
      if (s.buf.size > 0) void this.fill(m.session_id, s);
    }
    /**
     * Brings a session up to `target` and past every buffered message: sync
     * from the last delivered seq, page by page, delivering in order. A seq
     * that existed before the sync began and that sync does not return is
     * hidden from this user (delete for me, join history) and is skipped.
     */
    fill(sid, s) {
      if (s.filling) {
        s.again = true;
        return s.filling;
      }
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
              if (gen !== this.gen || this.st !== "open") return;
              const page = await this.transmit("sync", { session_id: sid, after, limit: this.o.syncLimit });
              for (const m of page.messages) {
                if (m.seq <= s.last) continue;
                for (const k of [...s.buf.keys()].sort((a, b) => a - b)) {
                  if (k < m.seq) this.deliver(s, s.buf.get(k));
                }
                this.deliver(s, m);
              }
              more = page.has_more && page.messages.length > 0;
              if (page.messages.length > 0) after = page.messages[page.messages.length - 1].seq;
            }
            for (const k of [...s.buf.keys()].sort((a, b) => a - b)) if (k <= known) this.deliver(s, s.buf.get(k));
            if (s.last < known) s.last = known;
            this.drain(s);
            if (s.buf.size > 0) s.again = true;
          } while (s.again);
        } catch (e) {
          if (e.code !== "disconnected" && gen === this.gen) this.emit("error", e);
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
    async resync(gen) {
      if (this.resyncing === gen) {
        this.resyncAgain = true;
        return;
      }
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
    async resyncOnce(gen) {
      const first = !this.everSynced;
      let cursor;
      let n = 0;
      this.listing = true;
      try {
        do {
          const page = await this.transmit("sessions", cursor ? { cursor } : {});
          if (gen !== this.gen) return;
          for (const v of page.sessions) {
            n++;
            const start2 = first ? v.last_seq : Math.min(v.read_seq, v.last_seq);
            let s = this.sessions.get(v.session_id);
            if (!s) s = this.session(v.session_id, start2);
            if (s.provisional) {
              s.provisional = false;
              s.last = s.target = start2;
              for (const k of s.buf.keys()) if (k <= start2) s.buf.delete(k);
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
        this.emit("synced", { sessions: n });
      } catch (e) {
        if (gen === this.gen && e.code !== "disconnected") {
          this.emit("error", e);
          this.drop(1006, "resync failed: " + e.message);
        }
      } finally {
        this.endListing();
      }
    }
    /** Sessions heard of live but absent from the list start at their first live message. */
    endListing() {
      if (!this.listing) return;
      this.listing = false;
      for (const s of this.sessions.values()) {
        if (!s.provisional) continue;
        s.provisional = false;
        s.last = s.target = Math.min(...s.buf.keys()) - 1;
        this.drain(s);
      }
    }
  };

  // src/lib/demo.ts
  async function demoCall(name, body) {
    const r = await fetch("/demo/api/" + name, { method: "POST", body: body === void 0 ? "" : JSON.stringify(body) });
    const j = await r.json().catch(() => ({ ok: false, error: { code: "internal", message: `HTTP ${r.status}` } }));
    if (!j.ok) throw new Error(`${j.error.code}: ${j.error.message}`);
    return j.data;
  }
  var setup = () => demoCall("setup");
  var token = (uid) => demoCall("token", { uid });
  function authHeaders(t) {
    return { "X-Chatd-App": t.app, Authorization: "Bearer " + t.token };
  }
  function upload(t, file, type, name, progress) {
    return new Promise((resolve, reject) => {
      const x = new XMLHttpRequest();
      x.open("POST", `/v1/files?type=${type}&name=${encodeURIComponent(name)}`);
      for (const [k, v] of Object.entries(authHeaders(t))) x.setRequestHeader(k, v);
      x.upload.onprogress = (e) => {
        if (e.lengthComputable) progress(e.loaded / e.total);
      };
      x.onload = () => {
        let j;
        try {
          j = JSON.parse(x.responseText);
        } catch {
          reject(new Error(`upload: HTTP ${x.status}`));
          return;
        }
        if (j.ok) {
          progress(1);
          resolve(j.data);
        } else reject(new Error(`upload: ${j.error.code}: ${j.error.message}`));
      };
      x.onerror = () => reject(new Error("upload: network error"));
      x.send(file);
    });
  }
  var urls = /* @__PURE__ */ new Map();
  async function fileURL(t, fileID) {
    const c = urls.get(fileID);
    if (c && c.expires_at > Date.now() + 6e4) return c.url;
    const r = await fetch(`/v1/files/${fileID}/url`, { headers: authHeaders(t) });
    const j = await r.json();
    if (!j.ok) throw new Error(`file url: ${j.error.code}: ${j.error.message}`);
    urls.set(fileID, j.data);
    return j.data.url;
  }
  function h(tag, attrs = {}, ...kids) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (typeof v === "function") el.addEventListener(k.replace(/^on/, ""), v);
      else if (v === true) el.setAttribute(k, "");
      else if (v !== false && v !== void 0) el.setAttribute(k, String(v));
    }
    for (const c of kids) if (c !== null && c !== void 0 && c !== false) el.append(c);
    return el;
  }
  function $(id) {
    const el = document.getElementById(id);
    if (!el) throw new Error("no #" + id);
    return el;
  }
  function clock(ms) {
    const d = new Date(ms);
    return d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  }

  // src/chat.ts
  var PAGE = 30;
  var demo;
  var tok;
  var client;
  var sessions = /* @__PURE__ */ new Map();
  var peerRead = /* @__PURE__ */ new Map();
  var conv = null;
  var nick = (uid) => demo.users.find((u) => u.uid === uid)?.nickname ?? uid;
  var showError = (e) => {
    $("error").textContent = e instanceof Error ? e.message : String(e);
  };
  async function start() {
    const status = $("login-status");
    try {
      demo = await setup();
    } catch (e) {
      status.textContent = String(e.message);
      return;
    }
    const box = $("login-users");
    box.replaceChildren(...demo.users.filter((u) => u.role === "user").map((u) => h("button", { type: "button", "data-uid": u.uid, onclick: () => {
      location.search = "?uid=" + u.uid;
    } }, "Chat as " + u.nickname)));
    status.textContent = "The demo app is set up.";
    const uid = new URLSearchParams(location.search).get("uid");
    if (uid) await login(uid).catch(showLoginError);
  }
  function showLoginError(e) {
    $("login-status").textContent = e.message;
    $("login").hidden = false;
    $("chat").hidden = true;
  }
  async function login(uid) {
    tok = await token(uid);
    client = new ChatClient({
      url: tok.ws_url,
      app: tok.app,
      token: tok.token,
      getToken: async () => (tok = await token(uid)).token
    });
    client.on("state", ({ state }) => {
      const s = $("state");
      s.textContent = state;
      s.className = "state " + state;
    });
    client.on("message", onMessage);
    client.on("read", (r) => {
      const v = sessions.get(r.session_id);
      if (r.uid === client.uid) {
        if (v) {
          v.read_seq = Math.max(v.read_seq, r.read_seq);
          v.unread = Math.max(0, v.last_seq - v.read_seq);
          renderSession(v);
        }
        return;
      }
      peerRead.set(r.session_id, Math.max(peerRead.get(r.session_id) ?? 0, r.read_seq));
      if (conv?.sid === r.session_id) renderReceipts();
    });
    client.on("typing", (t) => {
      if (conv?.sid === t.session_id && t.uid !== client.uid) showTyping(t.uid);
    });
    client.on("group", () => {
      void loadSessions();
    });
    client.on("synced", () => {
      void loadSessions();
    });
    client.on("error", showError);
    await client.connect();
    $("me").textContent = nick(client.uid);
    $("login").hidden = true;
    $("chat").hidden = false;
    document.title = nick(client.uid) + " — chatd demo";
    const others = demo.users.filter((u) => u.role === "user" && u.uid !== client.uid);
    $("peers").replaceChildren(...others.map((u) => h("button", { type: "button", "data-peer": u.uid, onclick: () => openPrivate(u.uid) }, u.nickname)));
    $("group-members").replaceChildren(...others.map((u) => h("label", {}, h("input", { type: "checkbox", value: u.uid, checked: true }), " " + u.nickname)));
  }
  async function loadSessions() {
    const list = await client.sessionList();
    sessions.clear();
    for (const v of list) sessions.set(v.session_id, v);
    renderSessions();
  }
  function title(v) {
    if (v.kind === "private") return v.peer_nickname || nick(v.peer ?? "");
    return v.name || `${v.kind} ${v.session_id}`;
  }
  function renderSessions() {
    const ul = $("sessions");
    const list = [...sessions.values()].sort((a, b) => (b.last_at ?? b.created_at) - (a.last_at ?? a.created_at));
    ul.replaceChildren(...list.map(sessionItem));
  }
  function sessionItem(v) {
    const unread = conv?.sid === v.session_id ? 0 : v.unread;
    return h(
      "li",
      { "data-sid": v.session_id, class: conv?.sid === v.session_id ? "active" : "", onclick: () => openSession(v.session_id) },
      h("span", { class: "name" }, title(v), v.kind === "group" ? h("span", { class: "tag" }, "group") : null),
      unread > 0 ? h("span", { class: "unread" }, String(unread)) : h("span", {}),
      h("span", { class: "preview" }, v.last_preview ? (v.last_from ? nick(v.last_from) + ": " : "") + v.last_preview : "")
    );
  }
  function renderSession(v) {
    const old = $("sessions").querySelector(`li[data-sid="${v.session_id}"]`);
    if (old) old.replaceWith(sessionItem(v));
    else renderSessions();
  }
  async function openPrivate(uid) {
    try {
      const v = await client.privateSession(uid);
      sessions.set(v.session_id, v);
      await openSession(v.session_id);
    } catch (e) {
      showError(e);
    }
  }
  $("new-group").addEventListener("click", () => {
    $("group-form").hidden = !$("group-form").hidden;
  });
  $("group-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const uids = [...$("group-members").querySelectorAll("input:checked")].map((i) => i.value);
    try {
      const v = await client.groupCreate($("group-name").value.trim(), uids);
      sessions.set(v.session_id, v);
      $("group-form").hidden = true;
      await openSession(v.session_id);
    } catch (err) {
      showError(err);
    }
  });
  async function openSession(sid) {
    conv = { sid, msgs: /* @__PURE__ */ new Map(), oldest: 0, more: true, loading: false };
    $("messages").replaceChildren();
    $("typing").textContent = "";
    $("composer").hidden = false;
    const v = sessions.get(sid) ?? await client.request("session", { session_id: sid });
    sessions.set(sid, v);
    $("conv-title").textContent = title(v);
    renderSessions();
    await loadOlder();
    scrollToEnd();
    markRead();
    $("text").focus();
  }
  async function loadOlder() {
    const c = conv;
    if (!c || c.loading || !c.more) return;
    c.loading = true;
    const sc = $("scroller");
    const fromBottom = sc.scrollHeight - sc.scrollTop;
    try {
      const page = await client.history(c.sid, c.oldest ? { before: c.oldest, limit: PAGE } : { limit: PAGE });
      if (conv !== c) return;
      for (const m of page.messages) {
        show(m);
        if (!c.oldest || m.seq < c.oldest) c.oldest = m.seq;
      }
      c.more = page.has_more && page.messages.length > 0;
      sc.scrollTop = sc.scrollHeight - fromBottom;
    } catch (e) {
      showError(e);
    } finally {
      c.loading = false;
    }
    $("older").hidden = !c.more;
  }
  $("older").addEventListener("click", () => {
    void loadOlder();
  });
  $("scroller").addEventListener("scroll", () => {
    if ($("scroller").scrollTop < 40) void loadOlder();
  });
  function onMessage(m) {
    const v = sessions.get(m.session_id);
    if (!v) {
      void loadSessions();
    } else {
      v.last_seq = Math.max(v.last_seq, m.seq);
      v.last_at = m.created_at;
      v.last_from = m.from;
      v.last_preview = preview(m);
      if (m.from !== client.uid && conv?.sid !== m.session_id) v.unread++;
      if (m.from === client.uid) v.read_seq = m.seq;
      renderSessions();
    }
    if (conv?.sid !== m.session_id) return;
    const sc = $("scroller");
    const atEnd = sc.scrollHeight - sc.scrollTop - sc.clientHeight < 80;
    show(m);
    if (m.from !== client.uid) $("typing").textContent = "";
    if (atEnd || m.from === client.uid) scrollToEnd();
    markRead();
  }
  function preview(m) {
    switch (m.type) {
      case "text":
        return String(m.content.text);
      case "image":
        return "[image]";
      case "op":
        return m.content.op === "recall" ? "[recalled]" : "[edited]";
      case "recalled":
        return "[recalled]";
      default:
        return "[" + m.type + "]";
    }
  }
  function show(m) {
    const c = conv;
    if (m.type === "op") {
      const op = m.content;
      const t = c.msgs.get(op.seq);
      if (!t) return;
      if (op.op === "recall") show({ ...t, type: "recalled", content: { by: op.by, at: op.at, op_seq: m.seq } });
      else if (op.content) show({ ...t, content: op.content, edit_count: op.edit_count });
      return;
    }
    if (!c.oldest || m.seq < c.oldest) c.oldest = m.seq;
    c.msgs.set(m.seq, m);
    const ol = $("messages");
    const li = item(m);
    const same = ol.querySelector(`li[data-seq="${m.seq}"]`);
    if (same) {
      same.replaceWith(li);
      return;
    }
    if (m.cid) ol.querySelector(`li.pending[data-cid="${CSS.escape(m.cid)}"]`)?.remove();
    let after = null;
    for (let e = ol.lastElementChild; e && Number(e.dataset.seq ?? Infinity) > m.seq; e = e.previousElementSibling) after = e;
    ol.insertBefore(li, after);
  }
  function item(m) {
    const mine = m.from === client.uid;
    const li = h("li", { "data-seq": m.seq, class: (mine ? "mine " : "") + (m.type === "recalled" ? "recalled" : "") });
    if (m.cid) li.dataset.cid = m.cid;
    const bubble = h("div", { class: "bubble" });
    if (m.type === "recalled") bubble.textContent = (mine ? "You" : nick(m.from)) + " recalled a message";
    else if (m.type === "text") bubble.append(h("span", { class: "text" }, String(m.content.text)));
    else if (m.type === "image" && m.content.file_id) {
      const ic = m.content;
      const img = h("img", { alt: "image", width: ic.width ?? "", height: ic.height ?? "" });
      bubble.append(img);
      fileURL(tok, ic.file_id).then((u) => {
        img.src = u;
      }, showError);
    } else bubble.textContent = preview(m);
    const meta = h(
      "div",
      { class: "meta" },
      (mine ? "" : nick(m.from) + " · ") + clock(m.created_at),
      mine ? h("span", { class: "receipt" }) : null,
      mine && m.type !== "recalled" ? h("button", { type: "button", class: "recall", onclick: () => recall(m) }, "Recall") : null
    );
    li.append(bubble, meta);
    if (mine) setReceipt(li, m.seq);
    return li;
  }
  function setReceipt(li, seq) {
    const r = li.querySelector(".receipt");
    if (!r || !conv || sessions.get(conv.sid)?.kind !== "private") return;
    r.textContent = seq <= (peerRead.get(conv.sid) ?? 0) ? " · Read" : " · Sent";
  }
  function renderReceipts() {
    for (const li of $("messages").querySelectorAll("li.mine[data-seq]")) setReceipt(li, Number(li.dataset.seq));
  }
  async function recall(m) {
    try {
      await client.recall(m.session_id, m.seq);
    } catch (e) {
      showError(e);
    }
  }
  var readTimer;
  function markRead() {
    if (readTimer !== void 0) return;
    readTimer = setTimeout(() => {
      readTimer = void 0;
      const c = conv;
      if (!c || document.hidden) return;
      const v = sessions.get(c.sid);
      if (!v || v.read_seq >= v.last_seq) return;
      v.read_seq = v.last_seq;
      v.unread = 0;
      client.read(c.sid, v.last_seq).catch(showError);
    }, 200);
  }
  document.addEventListener("visibilitychange", markRead);
  function scrollToEnd() {
    const sc = $("scroller");
    sc.scrollTop = sc.scrollHeight;
  }
  var typingTimer;
  function showTyping(uid) {
    $("typing").textContent = nick(uid) + " is typing…";
    clearTimeout(typingTimer);
    typingTimer = setTimeout(() => {
      $("typing").textContent = "";
    }, 4e3);
  }
  var lastTyping = 0;
  $("text").addEventListener("input", () => {
    if (!conv || Date.now() - lastTyping < 2e3) return;
    lastTyping = Date.now();
    client.typing(conv.sid).catch(() => {
    });
  });
  $("composer").addEventListener("submit", (e) => {
    e.preventDefault();
    const input = $("text");
    const text = input.value.trim();
    if (!text || !conv) return;
    input.value = "";
    lastTyping = 0;
    send({ type: "text", content: { text } }, text);
  });
  var sending = Promise.resolve();
  function send(msg, label) {
    const sid = conv.sid;
    const cid = crypto.randomUUID();
    $("messages").append(h("li", { class: "mine pending", "data-cid": cid }, h("div", { class: "bubble" }, label), h("div", { class: "meta" }, "sending…")));
    scrollToEnd();
    sending = sending.then(() => client.send({ ...msg, session_id: sid, cid })).catch((err) => {
      $("messages").querySelector(`li.pending[data-cid="${cid}"]`)?.remove();
      showError(err);
    });
  }
  $("image").addEventListener("change", async () => {
    const input = $("image");
    const file = input.files?.[0];
    input.value = "";
    if (!file || !conv) return;
    const bar = $("upload-progress");
    bar.hidden = false;
    bar.value = 0;
    try {
      const up = await upload(tok, file, "image", file.name, (f) => {
        bar.value = f;
      });
      send({ type: "image", content: { file_id: up.file_id, width: up.width, height: up.height } }, "[image]");
    } catch (e) {
      showError(e);
    } finally {
      bar.hidden = true;
    }
  });
  $("setup").addEventListener("click", () => {
    void start();
  });
  void start();
})();
