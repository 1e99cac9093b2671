"use strict";
(() => {
  // ../sdk/js/src/client.ts
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
  var LOGGED_IN_ELSEWHERE = 4003;
  var BANNED = 4004;
  var TOKEN_GONE = 4002;
  var ChatClient = class {
    constructor(opts) {
      this.ws = null;
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
        ...opts
      };
      this.token = opts.token;
      for (const [sid, seq] of Object.entries(opts.cursors ?? {})) this.session(Number(sid), seq);
    }
    /** The connection state. */
    get state() {
      return this.st;
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
        s.reject(err);
      }
      for (const c of this.connectWaiters.splice(0)) c.reject(err);
      this.unlistenNetwork();
    }
    /** Logs out (the server closes with 1000) and stops. */
    async logout() {
      try {
        await this.request("logout", {});
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
      let ws;
      try {
        ws = new this.o.WebSocket(this.o.url);
      } catch (e) {
        this.closed(gen, 1006, String(e));
        return;
      }
      this.ws = ws;
      ws.onopen = () => {
        if (gen === this.gen) void this.login(gen);
      };
      ws.onmessage = (ev) => {
        if (gen === this.gen) this.frame(String(ev.data));
      };
      ws.onclose = (ev) => this.closed(gen, ev.code, ev.reason);
      ws.onerror = () => {
      };
    }
    async login(gen) {
      let token = this.token;
      try {
        if (this.o.getToken && (this.logins > 0 || !token)) token = await this.o.getToken();
      } catch (e) {
        if (gen === this.gen) this.drop(1006, "getToken failed: " + e.message);
        return;
      }
      if (gen !== this.gen) return;
      this.token = token;
      let r;
      try {
        r = await this.transmit("login", { app: this.o.app, token: token ?? "", platform: this.o.platform ?? "web" });
      } catch (e) {
        if (gen !== this.gen) return;
        const err = e;
        if (err.code === "forbidden" || err.code === "unauthorized" && !this.o.getToken) {
          for (const c of this.connectWaiters.splice(0)) c.reject(err);
          this.emit("error", err);
          this.stop(1e3, "login refused");
          return;
        }
        this.drop(1006, "login failed: " + err.message);
        return;
      }
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
      this.schedulePing(gen);
      void this.resync(gen);
      for (const s of this.sends) this.sendNow(s);
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
          ws.send(JSON.stringify({ ...fields, id, action }));
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
        const e = { cid, fields: { ...input, cid }, resolve, reject };
        this.sends.push(e);
        if (this.st === "open") this.sendNow(e);
      });
    }
    /** The sends not yet acknowledged, with their cids, oldest first. */
    queuedSends() {
      return this.sends.map((s) => ({ cid: s.cid, fields: s.fields }));
    }
    sendNow(e) {
      if (e.id !== void 0 || this.st !== "open") return;
      clearTimeout(e.retry);
      e.retry = void 0;
      const gen = this.gen;
      this.transmit("send", e.fields, void 0, e).then((ack) => {
        const i = this.sends.indexOf(e);
        if (i < 0) return;
        this.sends.splice(i, 1);
        e.resolve(ack);
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
        e.reject(err);
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
    /** After a login: list every session and sync each one that moved. */
    async resync(gen) {
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
