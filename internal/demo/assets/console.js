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
      let token = this.token;
      try {
        if (this.o.getToken && (this.logins > 0 || !token)) token = await this.o.getToken();
      } catch (e) {
        if (gen === this.gen) this.drop(1006, "getToken failed: " + e.message);
        return null;
      }
      if (gen !== this.gen) return null;
      this.token = token;
      return token ?? "";
    }
    async login(gen) {
      const token = await this.loginToken(gen);
      if (token == null) return;
      let r;
      try {
        r = await this.transmit("login", { app: this.o.app, token, platform: this.o.platform ?? "web" });
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
      const token = await this.loginToken(gen);
      if (token == null) return;
      const g = globalThis;
      const wire = new HttpWire({
        base: this.o.httpUrl.replace(/\/+$/, ""),
        app: this.o.app,
        token,
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
    transmit(action, fields, timer, send, timeout = this.o.requestTimeout) {
      return new Promise((resolve, reject) => {
        clearTimeout(timer);
        const ws = this.ws;
        if (!ws) {
          reject(new ChatdError("disconnected", "not connected"));
          return;
        }
        const id = String(++this.nextId);
        const p = { resolve, reject, send };
        p.timer = setTimeout(() => {
          this.inflight.delete(id);
          reject(new ChatdError("timeout", `no reply to ${action} within ${timeout} ms`));
        }, timeout);
        this.inflight.set(id, p);
        if (send) send.id = id;
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
      let token = this.token ?? (this.o.getToken ? await this.o.getToken() : "");
      for (let fresh = false; ; fresh = true) {
        try {
          return await uploadFile({
            base: this.o.httpUrl.replace(/\/+$/, ""),
            app: this.o.app,
            token,
            file,
            opts,
            fetch: this.o.fetch ?? g.fetch,
            XMLHttpRequest: this.o.XMLHttpRequest ?? g.XMLHttpRequest
          });
        } catch (e) {
          if (e.code !== "unauthorized" || fresh || !this.o.getToken) throw e;
          token = this.token = await this.o.getToken();
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

  // src/widget/common.ts
  function svc(chat2, action, fields) {
    return chat2.request(action, fields);
  }
  function roleOf(m, customer) {
    if (m.role) return m.role;
    if (!m.from) return "shop";
    return m.from === customer ? "customer" : "agent";
  }
  function textOf(m) {
    const c = m.content;
    if (typeof c.text === "string") return c.text;
    if (m.type === "recalled") return "(recalled)";
    return `[${m.type}]`;
  }
  function clock(ms) {
    const d = new Date(ms);
    return String(d.getHours()).padStart(2, "0") + ":" + String(d.getMinutes()).padStart(2, "0");
  }
  var Names = class {
    constructor(chat2) {
      this.chat = chat2;
      this.cache = /* @__PURE__ */ new Map();
    }
    get(uid) {
      let p = this.cache.get(uid);
      if (!p) {
        p = this.chat.user(uid).then((u) => u.nickname || uid, () => uid);
        this.cache.set(uid, p);
      }
      return p;
    }
  };

  // src/console.ts
  var $ = (id) => document.getElementById(id);
  var chat;
  var names;
  var me = "";
  var shop = "";
  var skew = 0;
  var agents = [];
  var queue = [];
  var canned = [];
  var convs = /* @__PURE__ */ new Map();
  var selected = 0;
  function conv(v) {
    let c = convs.get(v.session_id);
    if (!c) convs.set(v.session_id, c = { view: v, msgs: /* @__PURE__ */ new Map(), notes: [], loaded: false });
    else c.view = v;
    return c;
  }
  function fail(e) {
    const el = $("error");
    el.hidden = false;
    el.textContent = e.message || String(e);
  }
  function clearError() {
    $("error").hidden = true;
  }
  async function act(f) {
    clearError();
    try {
      await f();
    } catch (e) {
      fail(e);
    }
  }
  async function main() {
    let setup;
    try {
      setup = await demoCall("setup");
    } catch (e) {
      fail(new Error("Could not set up the demo: " + e.message));
      return;
    }
    const params = new URLSearchParams(location.search);
    shop = params.get("shop") || setup.shop.id;
    $("shop-name").textContent = setup.shop.name;
    const pick = $("agent");
    pick.replaceChildren(...setup.users.filter((u) => u.role === "agent").map((u) => h("option", { value: u.uid }, u.nickname)));
    const login = (uid) => act(async () => {
      const t = await demoCall("token", { uid });
      await start(t);
      history.replaceState(null, "", "?agent=" + encodeURIComponent(uid) + (params.get("shop") ? "&shop=" + encodeURIComponent(shop) : ""));
    });
    $("login").onsubmit = (e) => {
      e.preventDefault();
      void login(pick.value);
    };
    const a = params.get("agent");
    if (a) {
      pick.value = a;
      void login(a);
    }
  }
  async function start(t) {
    chat = new ChatClient({ url: t.ws_url, app: t.app, token: t.token, platform: "web" });
    names = new Names(chat);
    chat.on("message", (m) => onMessage(m));
    chat.on("service", (e) => onEvent(e));
    chat.on("state", (s) => {
      $("conn").textContent = "connection: " + s.state;
      document.body.dataset.connection = s.state;
    });
    chat.on("connected", () => void refresh());
    chat.on("disconnected", (e) => {
      if (!e.reconnect) fail(new Error(`disconnected (${e.code} ${e.reason}): reload to log in again`));
    });
    const r = await chat.connect();
    me = r.uid;
    skew = r.server_time - Date.now();
    $("login").hidden = true;
    $("me").textContent = r.nickname;
    document.body.dataset.agent = me;
    $("app").hidden = false;
    $("status").onchange = (e) => void act(async () => {
      await svc(chat, "service_status", { shop, status: e.target.value });
      await refresh();
    });
    wireConversation();
    wireCanned();
    await refresh();
    await loadCanned();
    setInterval(renderQueue, 5e3);
  }
  var refreshing = null;
  var again = false;
  function refresh() {
    if (refreshing) {
      again = true;
      return refreshing;
    }
    refreshing = (async () => {
      do {
        again = false;
        try {
          const [q, mine, as] = await Promise.all([
            svc(chat, "service_queue", { shop }),
            svc(chat, "service_mine", { shop }),
            svc(chat, "service_agents", { shop })
          ]);
          queue = q;
          agents = as;
          for (const c of convs.values()) {
            if (c.view.status === "open" && c.view.agent === me && !mine.some((v) => v.session_id === c.view.session_id)) {
              c.view = await svc(chat, "service_conversation", { session_id: c.view.session_id }).catch(() => c.view);
            }
          }
          for (const v of mine) conv(v);
        } catch (e) {
          fail(e);
        }
        renderQueue();
        renderMine();
        renderAgents();
        renderSelected();
      } while (again);
    })().finally(() => {
      refreshing = null;
    });
    return refreshing;
  }
  function waited(since) {
    const s = Math.max(0, Math.round((Date.now() + skew - since) / 1e3));
    return s < 60 ? `${s}s` : `${Math.floor(s / 60)}m ${s % 60}s`;
  }
  function renderQueue() {
    $("queue-count").textContent = String(queue.length);
    $("queue").replaceChildren(...queue.map((q) => {
      const who = h("span", { class: "who" }, q.customer);
      void names.get(q.customer).then((n) => {
        who.textContent = n;
      });
      return h(
        "li",
        { "data-session": q.session_id, "data-customer": q.customer },
        h("span", { class: "pos" }, "#" + q.position),
        who,
        h("span", { class: "wait" }, "waiting " + waited(q.queued_at)),
        q.last_agent ? h("span", { class: "last" }, "last: " + q.last_agent) : null,
        h("button", { type: "button", class: "claim", onclick: () => act(() => claim(q.session_id)) }, "Claim")
      );
    }));
    if (!queue.length) $("queue").append(h("li", { class: "empty" }, "Nobody is waiting."));
  }
  async function claim(sid) {
    const v = await svc(chat, "service_claim", { session_id: sid });
    conv(v);
    await select(sid);
    await refresh();
  }
  function renderMine() {
    const mine = [...convs.values()].filter((c) => c.view.status === "open" && c.view.agent === me);
    $("mine-count").textContent = String(mine.length);
    $("mine").replaceChildren(...mine.map((c) => {
      const who = h("span", { class: "who" }, c.view.customer);
      void names.get(c.view.customer).then((n) => {
        who.textContent = n;
      });
      const last = [...c.msgs.values()].pop();
      return h(
        "li",
        {
          "data-session": c.view.session_id,
          "data-customer": c.view.customer,
          class: c.view.session_id === selected ? "sel" : "",
          onclick: () => void act(() => select(c.view.session_id))
        },
        who,
        h("span", { class: "preview" }, last ? textOf(last) : "")
      );
    }));
    if (!mine.length) $("mine").append(h("li", { class: "empty" }, "No open conversations."));
  }
  function renderAgents() {
    $("agents").replaceChildren(...agents.map((a) => h(
      "li",
      { "data-uid": a.uid, "data-effective": a.effective },
      h("span", { class: "dot " + (a.effective === "online" ? a.status === "online" ? "on" : "away" : a.status === "away" ? "away" : "off") }),
      a.uid + (a.uid === me ? " (you)" : ""),
      h("span", { class: "load" }, `${a.status} · ${a.open}/${a.capacity}`)
    )));
    const self = agents.find((a) => a.uid === me);
    if (self) {
      $("status").value = self.status;
      $("effective").textContent = self.effective === "online" ? "routing to you" : "not routed";
    }
    const to = $("transfer-to");
    const keep = to.value;
    to.replaceChildren(
      h("option", { value: "" }, "Back to the queue"),
      ...agents.filter((a) => a.uid !== me).map((a) => h("option", { value: a.uid }, `${a.uid} (${a.status})`))
    );
    to.value = [...to.options].some((o) => o.value === keep) ? keep : "";
  }
  function onEvent(e) {
    if (e.shop !== shop) return;
    const line = describe(e);
    if (line) {
      const li = h("li", { "data-type": e.type, "data-session": e.session_id ?? "" }, h("time", {}, clock(e.time)), " ", line);
      $("log").prepend(li);
    }
    if (e.session_id && convs.has(e.session_id)) {
      const c = convs.get(e.session_id);
      if (e.type === "resolved") c.view = { ...c.view, status: "resolved", agent: void 0, last_agent: e.agent, resolved_at: e.time };
      if (e.type === "note" && c.loaded) void loadNotes(c);
      if (e.type === "rated" && e.session_id === selected) renderSelected();
      if (e.session_id === selected && e.agent === me && ["assigned", "claimed", "transferred"].includes(e.type)) void act(() => select(selected));
    }
    void refresh();
  }
  function describe(e) {
    switch (e.type) {
      case "queued":
        return `${e.customer} is waiting (position ${e.position})`;
      case "assigned":
        return `${e.customer} was assigned to ${e.agent}`;
      case "claimed":
        return `${e.agent} claimed ${e.customer}`;
      case "transferred":
        return `${e.from} handed ${e.customer} ${e.agent ? "to " + e.agent : "back to the queue"}${e.note ? ": “" + e.note + "”" : ""}`;
      case "resolved":
        return `${e.by} resolved ${e.customer}'s conversation`;
      case "reopened":
        return `${e.customer} wrote again: reopened`;
      case "agent_status":
        return `${e.agent} set ${e.set} (${e.status === "online" ? "routed" : "not routed"})`;
      case "note":
        return `${e.agent} noted on ${e.customer}: “${e.note}”`;
      case "rated":
        return `${e.customer} rated ${e.agent} ${e.score} of 5`;
      default:
        return "";
    }
  }
  function onMessage(m) {
    const c = convs.get(m.session_id);
    if (!c) {
      void refresh();
      return;
    }
    if (m.type === "op") return;
    c.msgs.set(m.seq, m);
    if (m.session_id === selected) renderSelected();
    else renderMine();
  }
  async function select(sid) {
    selected = sid;
    const c = convs.get(sid);
    if (c && (c.view.status === "open" || !c.loaded)) {
      const page = await chat.history(sid, { limit: 100 });
      for (const m of page.messages) if (m.type !== "op") c.msgs.set(m.seq, m);
      await loadNotes(c);
      c.loaded = true;
    }
    renderMine();
    renderSelected();
    $("input").focus();
  }
  async function loadNotes(c) {
    c.notes = await svc(chat, "service_notes", { session_id: c.view.session_id });
    if (c.view.session_id === selected) renderSelected();
  }
  function renderSelected() {
    const c = convs.get(selected);
    const pane = $("conv");
    pane.hidden = !c;
    $("placeholder").hidden = !!c;
    if (!c) return;
    const v = c.view;
    pane.dataset.session = String(v.session_id);
    pane.dataset.status = v.status;
    const title = $("conv-title");
    title.textContent = v.customer;
    void names.get(v.customer).then((n) => {
      title.textContent = n;
    });
    $("conv-status").textContent = v.status === "open" ? v.agent === me ? "open · yours" : "open · " + v.agent : v.status;
    const mine = v.status === "open" && v.agent === me;
    for (const id of ["resolve", "transfer", "send", "input", "transfer-to", "transfer-note"]) $(id).disabled = !mine;
    const items = [];
    for (const m of c.msgs.values()) {
      const role = roleOf(m, v.customer);
      const auto = typeof m.content.auto === "string";
      items.push({ key: m.seq, el: h(
        "li",
        { class: `msg ${role}${auto ? " auto" : ""}`, "data-seq": m.seq, "data-role": role },
        h("div", { class: "meta" }, (m.from || "shop") + (auto ? " · automatic reply" : "") + " · " + clock(m.created_at)),
        h("div", { class: "text" }, textOf(m))
      ) });
    }
    for (const n of c.notes) {
      items.push({ key: n.after_seq + 0.5, el: h(
        "li",
        { class: "note", "data-note": n.note_id },
        h("div", { class: "meta" }, `private note · ${n.agent} · ${clock(n.created_at)}`),
        h("div", { class: "text" }, n.text)
      ) });
    }
    items.sort((a, b) => a.key - b.key);
    const list = $("messages");
    list.replaceChildren(...items.map((i) => i.el));
    list.scrollTop = list.scrollHeight;
    const last = Math.max(0, ...c.msgs.keys());
    if (mine && last) chat.read(v.session_id, last).catch(() => {
    });
  }
  function wireConversation() {
    const input = $("input");
    $("compose").onsubmit = (e) => {
      e.preventDefault();
      const text = input.value.trim();
      if (!text || !selected) return;
      input.value = "";
      showSuggestions();
      void act(async () => {
        try {
          await chat.send({ session_id: selected, type: "text", content: { text } });
        } catch (err) {
          input.value = text;
          throw err;
        }
      });
    };
    input.onkeydown = (e) => {
      const first = $("suggest").querySelector("button");
      if ((e.key === "Tab" || e.key === "Enter") && first && !$("suggest").hidden) {
        e.preventDefault();
        first.click();
        return;
      }
      if (e.key === "Enter" && !e.shiftKey) {
        e.preventDefault();
        $("compose").requestSubmit();
      }
    };
    input.oninput = () => showSuggestions();
    $("resolve").onclick = () => void act(async () => {
      const v = await svc(chat, "service_resolve", { session_id: selected });
      conv(v);
      await refresh();
    });
    $("transfer").onclick = () => void act(async () => {
      const to = $("transfer-to").value;
      const note = $("transfer-note").value.trim();
      const v = await svc(chat, "service_transfer", { session_id: selected, ...to ? { to } : { queue: true }, ...note ? { note } : {} });
      $("transfer-note").value = "";
      conv(v);
      await refresh();
    });
    $("note-form").onsubmit = (e) => {
      e.preventDefault();
      const el = $("note");
      const text = el.value.trim();
      if (!text || !selected) return;
      void act(async () => {
        await svc(chat, "service_note", { session_id: selected, text });
        el.value = "";
        await loadNotes(convs.get(selected));
      });
    };
  }
  function showSuggestions() {
    const box = $("suggest");
    const v = $("input").value;
    const m = /^\/(\S*)$/.exec(v);
    const hits = m ? canned.filter((c) => c.shortcut.startsWith(m[1].toLowerCase())) : [];
    box.hidden = hits.length === 0;
    box.replaceChildren(...hits.map((c) => h("button", { type: "button", "data-shortcut": c.shortcut, onclick: () => {
      $("input").value = c.text;
      box.hidden = true;
      $("input").focus();
    } }, h("b", {}, "/" + c.shortcut), " ", c.text)));
  }
  async function loadCanned() {
    canned = await svc(chat, "service_canned", { shop });
    $("canned").replaceChildren(...canned.map((c) => h(
      "li",
      { "data-shortcut": c.shortcut },
      h("b", {}, "/" + c.shortcut),
      " ",
      h("span", {}, c.text),
      h("button", { type: "button", class: "del", title: "Delete", onclick: () => void act(async () => {
        await svc(chat, "service_canned_delete", { shop, canned_id: c.canned_id });
        await loadCanned();
      }) }, "×")
    )));
    if (!canned.length) $("canned").append(h("li", { class: "empty" }, "No canned replies yet."));
  }
  function wireCanned() {
    $("canned-form").onsubmit = (e) => {
      e.preventDefault();
      const f = e.target;
      const shortcut = f.elements.namedItem("shortcut").value.trim();
      const text = f.elements.namedItem("text").value.trim();
      if (!shortcut || !text) return;
      void act(async () => {
        const same = canned.find((c) => c.shortcut === shortcut.replace(/^\//, ""));
        await svc(chat, "service_canned_put", { shop, shortcut, text, ...same ? { canned_id: same.canned_id } : {} });
        f.reset();
        await loadCanned();
      });
    };
  }
  void main();
})();
