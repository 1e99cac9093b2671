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
    let s2 = "";
    for (let i = 0; i < 32; i++) s2 += Math.floor(Math.random() * 16).toString(16);
    return s2;
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
      load: (app) => run("readonly", (s2) => s2.getAll()).then((l) => l.filter((x) => x.app === app).sort((a, b) => a.at - b.at)),
      put: (x) => run("readwrite", (s2) => s2.put(x)).then(() => {
      }),
      delete: (cid) => run("readwrite", (s2) => s2.delete(cid)).then(() => {
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
      for (const [sid, s2] of this.sessions) out[sid] = s2.last;
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
    setState(s2) {
      if (this.st === s2) return;
      this.st = s2;
      this.emit("state", { state: s2 });
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
      for (const s2 of this.sends.splice(0)) {
        clearTimeout(s2.retry);
        this.unpersist(s2);
        s2.reject(err);
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
      if (!this.restoring) for (const s2 of this.sends) this.sendNow(s2);
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
      return this.sends.map((s2) => ({ cid: s2.cid, fields: s2.fields }));
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
      let s2 = this.sessions.get(sid);
      if (!s2) {
        s2 = { last, target: last, buf: /* @__PURE__ */ new Map(), filling: null, again: false };
        this.sessions.set(sid, s2);
      }
      return s2;
    }
    deliver(s2, m) {
      s2.last = m.seq;
      if (m.seq > s2.target) s2.target = m.seq;
      for (const k of s2.buf.keys()) if (k <= s2.last) s2.buf.delete(k);
      this.emit("message", m);
    }
    drain(s2) {
      for (let m = s2.buf.get(s2.last + 1); m; m = s2.buf.get(s2.last + 1)) this.deliver(s2, m);
    }
    /** A message that arrived live (event or own ack). */
    live(m) {
      const known = this.sessions.has(m.session_id);
      const s2 = this.session(m.session_id, m.seq - 1);
      if (!known && this.listing) s2.provisional = true;
      if (m.seq <= s2.last || s2.buf.has(m.seq)) return;
      s2.buf.set(m.seq, m);
      if (s2.provisional) return;
      this.drain(s2);
      if (s2.buf.size > 0) void this.fill(m.session_id, s2);
    }
    /**
     * Brings a session up to `target` and past every buffered message: sync
     * from the last delivered seq, page by page, delivering in order. A seq
     * that existed before the sync began and that sync does not return is
     * hidden from this user (delete for me, join history) and is skipped.
     */
    fill(sid, s2) {
      if (s2.filling) {
        s2.again = true;
        return s2.filling;
      }
      const gen = this.gen;
      s2.filling = (async () => {
        try {
          do {
            s2.again = false;
            let known = s2.target;
            for (const k of s2.buf.keys()) if (k > known) known = k;
            if (known <= s2.last) break;
            let after = s2.last, more = true;
            while (more) {
              if (gen !== this.gen || this.st !== "open") return;
              const page = await this.transmit("sync", { session_id: sid, after, limit: this.o.syncLimit });
              for (const m of page.messages) {
                if (m.seq <= s2.last) continue;
                for (const k of [...s2.buf.keys()].sort((a, b) => a - b)) {
                  if (k < m.seq) this.deliver(s2, s2.buf.get(k));
                }
                this.deliver(s2, m);
              }
              more = page.has_more && page.messages.length > 0;
              if (page.messages.length > 0) after = page.messages[page.messages.length - 1].seq;
            }
            for (const k of [...s2.buf.keys()].sort((a, b) => a - b)) if (k <= known) this.deliver(s2, s2.buf.get(k));
            if (s2.last < known) s2.last = known;
            this.drain(s2);
            if (s2.buf.size > 0) s2.again = true;
          } while (s2.again);
        } catch (e) {
          if (e.code !== "disconnected" && gen === this.gen) this.emit("error", e);
        } finally {
          s2.filling = null;
        }
      })();
      return s2.filling;
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
            const start = first ? v.last_seq : Math.min(v.read_seq, v.last_seq);
            let s2 = this.sessions.get(v.session_id);
            if (!s2) s2 = this.session(v.session_id, start);
            if (s2.provisional) {
              s2.provisional = false;
              s2.last = s2.target = start;
              for (const k of s2.buf.keys()) if (k <= start) s2.buf.delete(k);
            }
            if (v.last_seq > s2.target) s2.target = v.last_seq;
            if (s2.target > s2.last || s2.buf.size > 0) await this.fill(v.session_id, s2);
          }
          cursor = page.next_cursor;
        } while (cursor);
        this.endListing();
        for (const [sid, s2] of this.sessions) if (s2.buf.size > 0) await this.fill(sid, s2);
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
      for (const s2 of this.sessions.values()) {
        if (!s2.provisional) continue;
        s2.provisional = false;
        s2.last = s2.target = Math.min(...s2.buf.keys()) - 1;
        this.drain(s2);
      }
    }
  };

  // src/lib/demo.ts
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
  function svc(chat, action, fields) {
    return chat.request(action, fields);
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
    constructor(chat) {
      this.chat = chat;
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

  // src/widget.ts
  function ownScript() {
    const s2 = document.currentScript;
    if (s2 && s2.dataset.shop !== void 0) return s2;
    return document.querySelector('script[data-shop][src*="widget"]');
  }
  function config(s2) {
    const d = s2.dataset;
    const missing = ["app", "shop", "token", "ws"].filter((k) => !d[k]);
    if (missing.length) return "chatd widget: missing " + missing.map((k) => "data-" + k).join(", ") + " on its <script> tag (docs/demo.md)";
    return {
      app: d.app,
      shop: d.shop,
      token: d.token,
      ws: d.ws,
      title: d.title || "Customer service",
      open: d.open === "true",
      css: d.css || new URL("widget.css", s2.src || location.href).href
    };
  }
  var Widget = class {
    constructor(cfg2) {
      this.cfg = cfg2;
      this.chat = null;
      this.names = null;
      this.me = "";
      this.view = null;
      this.agentName = "";
      this.msgs = /* @__PURE__ */ new Map();
      this.unread = 0;
      this.score = 0;
      this.connecting = null;
      const host = h("div", { id: "chatd-widget" });
      const shadow = host.attachShadow({ mode: "open" });
      this.badge = h("span", { class: "cw-badge", hidden: true });
      this.bubble = h(
        "button",
        { class: "cw-bubble", type: "button", "aria-label": "Chat with " + cfg2.title, onclick: () => this.toggle() },
        h("span", { class: "cw-icon", "aria-hidden": "true" }, "💬"),
        h("span", { class: "cw-bubble-label" }, "Chat with us"),
        this.badge
      );
      this.status = h("div", { class: "cw-status", "data-status": "none", role: "status" });
      this.list = h("ol", { class: "cw-messages", "aria-live": "polite" });
      const stars = h("div", { class: "cw-stars", role: "radiogroup", "aria-label": "Your rating" });
      for (let i = 1; i <= 5; i++) {
        stars.append(h("button", {
          type: "button",
          class: "cw-star",
          "data-score": i,
          role: "radio",
          "aria-checked": "false",
          "aria-label": i + " of 5",
          onclick: () => this.pick(i)
        }, "★"));
      }
      this.rate = h(
        "form",
        { class: "cw-rate", hidden: true, onsubmit: (e) => {
          e.preventDefault();
          void this.sendRating();
        } },
        h("p", { class: "cw-rate-q" }, "How did we do?"),
        stars,
        h("textarea", { class: "cw-rate-comment", name: "comment", rows: 2, maxlength: 2e3, placeholder: "A comment (optional)" }),
        h("button", { type: "submit", class: "cw-rate-send", disabled: true }, "Send rating")
      );
      this.rated = h("div", { class: "cw-rated", hidden: true });
      this.input = h("textarea", {
        class: "cw-input",
        rows: 2,
        placeholder: "Write a message…",
        "aria-label": "Your message",
        onkeydown: (e) => {
          if (e.key === "Enter" && !e.shiftKey) {
            e.preventDefault();
            this.compose.requestSubmit();
          }
        }
      });
      this.compose = h(
        "form",
        { class: "cw-compose", onsubmit: (e) => {
          e.preventDefault();
          void this.send();
        } },
        this.input,
        h("button", { type: "submit", class: "cw-send" }, "Send")
      );
      this.error = h("div", { class: "cw-error", hidden: true, role: "alert" });
      this.panel = h(
        "section",
        { class: "cw-panel", hidden: true, role: "dialog", "aria-label": cfg2.title },
        h(
          "header",
          { class: "cw-head" },
          h("div", {}, h("div", { class: "cw-title" }, cfg2.title), this.status),
          h("button", { type: "button", class: "cw-close", "aria-label": "Close", onclick: () => this.toggle(false) }, "×")
        ),
        this.list,
        this.rate,
        this.rated,
        this.error,
        this.compose
      );
      this.root = h("div", { class: "cw", "data-state": "closed" }, this.panel, this.bubble);
      shadow.append(h("link", { rel: "stylesheet", href: cfg2.css }), this.root);
      document.body.append(host);
      this.setStatus();
      if (cfg2.open) this.toggle(true);
      else if (localStorage.getItem(this.key()) !== null) void this.connect();
    }
    /** The localStorage key of this browser's conversation with the shop. */
    key() {
      return `chatd-widget:${this.cfg.ws}:${this.cfg.app}:${this.cfg.shop}`;
    }
    toggle(open = this.panel.hidden) {
      this.panel.hidden = !open;
      this.root.dataset.state = open ? "open" : "closed";
      this.bubble.setAttribute("aria-expanded", String(open));
      if (open) {
        this.unread = 0;
        this.showBadge();
        void this.connect();
        this.input.focus();
        this.markRead();
      }
    }
    connect() {
      if (!this.connecting) {
        this.setStatus("Connecting…");
        this.connecting = this.start().catch((e) => {
          this.connecting = null;
          this.fail(e);
        });
      }
      return this.connecting;
    }
    async start() {
      const chat = new ChatClient({ url: this.cfg.ws, app: this.cfg.app, token: this.cfg.token, platform: "web" });
      this.chat = chat;
      this.names = new Names(chat);
      chat.on("message", (m) => this.message(m));
      chat.on("service", (e) => void this.event(e));
      chat.on("state", (s2) => {
        this.root.dataset.connection = s2.state;
      });
      chat.on("disconnected", (e) => {
        if (!e.reconnect) this.fail(new Error("disconnected (" + e.code + "): reload the page to come back"));
      });
      const me = await chat.connect();
      this.me = me.uid;
      const stored = Number(localStorage.getItem(this.key()) || 0);
      if (stored) {
        try {
          await this.apply(await svc(chat, "service_conversation", { session_id: stored }));
          await this.history();
        } catch {
          localStorage.removeItem(this.key());
        }
      }
      this.setStatus();
    }
    fail(e) {
      this.error.hidden = false;
      this.error.textContent = e.message || String(e);
    }
    /** The conversation's messages so far (the newest 100), merged with those that arrived live. */
    async history() {
      if (!this.view || !this.chat) return;
      const page = await this.chat.history(this.view.session_id, { limit: 100 });
      for (const m of page.messages) this.message(m);
    }
    async apply(v) {
      const first = !this.view || this.view.session_id !== v.session_id;
      this.view = v;
      localStorage.setItem(this.key(), String(v.session_id));
      const agent = v.agent || (v.status === "resolved" ? v.last_agent : "");
      this.agentName = agent && this.names ? await this.names.get(agent) : "";
      if (first) this.root.dataset.session = String(v.session_id);
      this.setStatus();
    }
    setStatus(text) {
      const v = this.view;
      const st = this.status;
      st.dataset.status = v ? v.status : "none";
      st.dataset.position = v && v.status === "queued" && v.position ? String(v.position) : "";
      st.dataset.agent = v && v.status === "open" ? v.agent || "" : "";
      if (text) st.textContent = text;
      else if (!v) st.textContent = "Ask us anything: we answer as soon as we can.";
      else if (v.status === "queued") st.textContent = v.position ? `You are number ${v.position} in the queue` : "Waiting for an agent…";
      else if (v.status === "open") st.textContent = `${this.agentName || v.agent} is helping you`;
      else st.textContent = "Resolved. Write again if you need more help.";
      const rateable = !!v && v.status === "resolved" && !!v.resolved_at && v.rated_at !== v.resolved_at;
      if (rateable && this.rate.hidden) {
        this.score = 0;
        this.pick(0);
        this.rate.elements.namedItem("comment").value = "";
      }
      this.rate.hidden = !rateable;
      if (!v || v.status !== "resolved") this.rated.hidden = true;
      this.list.scrollTop = this.list.scrollHeight;
    }
    async event(e) {
      if (e.shop !== this.cfg.shop || !this.chat) return;
      if (this.view && e.session_id && e.session_id !== this.view.session_id) return;
      const v = this.view ? { ...this.view } : {
        session_id: e.session_id,
        app: this.cfg.app,
        shop: e.shop,
        customer: this.me,
        status: "queued",
        created_at: e.time
      };
      switch (e.type) {
        case "queued":
        case "position":
          v.status = "queued";
          v.position = e.position;
          v.agent = void 0;
          break;
        case "assigned":
        case "claimed":
          v.status = "open";
          v.agent = e.agent;
          v.position = void 0;
          break;
        case "transferred":
          v.status = e.agent ? "open" : "queued";
          v.agent = e.agent || void 0;
          break;
        case "resolved":
          v.status = "resolved";
          v.last_agent = e.agent;
          v.agent = void 0;
          v.resolved_at = e.time;
          break;
        default:
          return;
      }
      await this.apply(v);
      try {
        await this.apply(await svc(this.chat, "service_conversation", { session_id: v.session_id }));
      } catch {
      }
    }
    message(m) {
      if (!this.view || m.session_id !== this.view.session_id || m.type === "op") return;
      const prev = this.msgs.get(m.seq);
      const role = roleOf(m, this.view.customer);
      const c = m.content;
      const auto = typeof c.auto === "string" ? c.auto : "";
      const who = role === "customer" ? "You" : role === "shop" ? this.cfg.title : m.from;
      const li = h(
        "li",
        { class: `cw-msg cw-${role}${auto ? " cw-auto" : ""}`, "data-seq": m.seq, "data-role": role, "data-auto": auto || void 0 },
        h("div", { class: "cw-meta" }, auto ? `${who} · automatic reply` : who, " · ", clock(m.created_at)),
        h("div", { class: "cw-text" }, textOf(m))
      );
      if (role === "agent") void this.names?.get(m.from).then((n) => {
        li.querySelector(".cw-meta").firstChild.textContent = auto ? `${n} · automatic reply` : n;
      });
      if (prev) {
        prev.replaceWith(li);
        this.msgs.set(m.seq, li);
        return;
      }
      this.msgs.set(m.seq, li);
      let after = null;
      for (const [seq, el] of this.msgs) if (seq < m.seq && (!after || seq > Number(after.dataset.seq))) after = el;
      if (after) after.after(li);
      else this.list.prepend(li);
      this.list.scrollTop = this.list.scrollHeight;
      if (role !== "customer") {
        if (this.panel.hidden) {
          this.unread++;
          this.showBadge();
        } else this.markRead();
      }
    }
    showBadge() {
      this.badge.hidden = this.unread === 0;
      this.badge.textContent = String(this.unread);
    }
    markRead() {
      if (!this.view || !this.chat || this.chat.state !== "open" || this.msgs.size === 0) return;
      const last = Math.max(...this.msgs.keys());
      this.chat.read(this.view.session_id, last).catch(() => {
      });
    }
    async send() {
      const text = this.input.value.trim();
      if (!text) return;
      this.input.value = "";
      this.error.hidden = true;
      try {
        await this.connect();
        const chat = this.chat;
        if (!this.view || this.view.status === "resolved") {
          await this.apply(await svc(chat, "service_open", { shop: this.cfg.shop }));
          await this.history();
        }
        await chat.send({ session_id: this.view.session_id, type: "text", content: { text } });
      } catch (e) {
        this.input.value = text;
        this.fail(e);
      }
    }
    pick(score) {
      this.score = score;
      this.rate.querySelectorAll(".cw-star").forEach((b) => {
        const on = Number(b.dataset.score) <= score;
        b.classList.toggle("cw-on", on);
        b.setAttribute("aria-checked", String(Number(b.dataset.score) === score));
      });
      this.rate.querySelector(".cw-rate-send").disabled = score === 0;
    }
    async sendRating() {
      if (!this.view || !this.chat || !this.score) return;
      const comment = this.rate.elements.namedItem("comment").value.trim();
      try {
        await svc(this.chat, "service_rate", { session_id: this.view.session_id, score: this.score, ...comment ? { comment } : {} });
        this.view.rated_at = this.view.resolved_at;
        this.rate.hidden = true;
        this.rated.hidden = false;
        this.rated.dataset.score = String(this.score);
        this.rated.textContent = `Thank you! You rated this conversation ${this.score} of 5.`;
      } catch (e) {
        this.fail(e);
      }
    }
  };
  var s = ownScript();
  var cfg = s ? config(s) : "chatd widget: no <script data-shop=…> tag found";
  if (typeof cfg === "string") console.error(cfg);
  else {
    const start = () => {
      window.chatdWidget = new Widget(cfg);
    };
    if (document.body) start();
    else document.addEventListener("DOMContentLoaded", start);
  }
})();
