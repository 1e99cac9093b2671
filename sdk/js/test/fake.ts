// A fake WebSocket and an in-memory chatd behind it: enough of the protocol
// (login, sessions, sync, send with cid, ping) for the client's logic to be
// exercised without a network. Replies arrive asynchronously, as on a wire.
import type { Message, SendAck } from '../src/types';

export class FakeServer {
  sockets: FakeSocket[] = [];
  store = new Map<number, Message[]>();
  cids = new Map<string, SendAck>();
  frames: any[] = []; // every request received, in order
  uid = 'me';
  tokens: string[] = [];
  /** actions whose requests get no reply (the connection "hangs" for them) */
  silent = new Set<string>();
  /** called before the default handling; return true when handled */
  hook: ((s: FakeSocket, req: any) => boolean) | null = null;
  syncLimitCap = 3; // small pages, to exercise has_more
  now = 1_000;

  get last(): FakeSocket { return this.sockets[this.sockets.length - 1]; }

  /** Stores a message from someone else and returns it (not pushed). */
  store1(sid: number, from = 'peer', text?: string): Message {
    const list = this.store.get(sid) ?? [];
    this.store.set(sid, list);
    const seq = list.length + 1;
    const m: Message = {
      session_id: sid, seq, msg_id: `${sid}-${seq}`, from, type: 'text',
      content: { text: text ?? `m${seq}` } as any, created_at: this.now++,
    };
    list.push(m);
    return m;
  }

  handle(s: FakeSocket, req: any): void {
    this.frames.push(req);
    if (this.hook && this.hook(s, req)) return;
    if (this.silent.has(req.action)) return;
    const ok = (data: unknown) => s.push({ reply_to: req.id, ok: true, data });
    switch (req.action) {
      case 'login':
        this.tokens.push(req.token);
        return ok({ uid: this.uid, nickname: this.uid, server_time: this.now, expires_at: this.now + 1e9 });
      case 'ping':
        return ok({ server_time: this.now });
      case 'user':
        return ok({ app: 'app', uid: req.uid ?? this.uid, nickname: req.uid ?? this.uid, created_at: 1, updated_at: 1 });
      case 'sessions':
        return ok({
          sessions: [...this.store.entries()].map(([sid, l]) => ({
            session_id: sid, kind: 'private', role: 'member', last_seq: l.length, read_seq: 0, unread: l.length, created_at: 1,
          })),
          unread: 0, unread_unmuted: 0,
        });
      case 'sync': {
        const l = this.store.get(req.session_id) ?? [];
        const lim = Math.min(req.limit ?? 50, this.syncLimitCap);
        const page = l.filter((m) => m.seq > req.after).slice(0, lim);
        return ok({ messages: page, has_more: l.filter((m) => m.seq > req.after).length > page.length });
      }
      case 'send': {
        const key = `${req.session_id}|${req.cid}`;
        const prev = this.cids.get(key);
        if (prev) return ok({ ...prev, duplicate: true });
        const list = this.store.get(req.session_id) ?? [];
        this.store.set(req.session_id, list);
        const seq = list.length + 1;
        const m: Message = {
          session_id: req.session_id, seq, msg_id: `${req.session_id}-${seq}`, from: this.uid,
          type: req.type, content: req.content, cid: req.cid, created_at: this.now++,
        };
        list.push(m);
        const ack = { session_id: m.session_id, seq, msg_id: m.msg_id, created_at: m.created_at };
        this.cids.set(key, ack);
        return ok(ack);
      }
      default:
        return ok(null);
    }
  }
}

export class FakeSocket {
  onopen: ((ev: any) => void) | null = null;
  onmessage: ((ev: { data: any }) => void) | null = null;
  onclose: ((ev: { code: number; reason: string }) => void) | null = null;
  onerror: ((ev: any) => void) | null = null;
  closed = false;
  sent: any[] = [];

  constructor(readonly server: FakeServer, readonly url: string, autoOpen: boolean) {
    server.sockets.push(this);
    if (autoOpen) void Promise.resolve().then(() => this.open());
  }

  open(): void { if (!this.closed) this.onopen?.({}); }

  send(data: string): void {
    if (this.closed) throw new Error('send on a closed socket');
    const req = JSON.parse(data);
    this.sent.push(req);
    void Promise.resolve().then(() => { if (!this.closed) this.server.handle(this, req); });
  }

  /** A frame from the server. */
  push(frame: unknown): void {
    void Promise.resolve().then(() => { if (!this.closed) this.onmessage?.({ data: JSON.stringify(frame) }); });
  }

  event(name: string, data: unknown): void { this.push({ event: name, data }); }

  /** The client closes. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    void Promise.resolve().then(() => this.onclose?.({ code: 1005, reason: '' }));
  }

  /** The server (or the network) closes. */
  serverClose(code: number, reason = ''): void {
    if (this.closed) return;
    this.closed = true;
    void Promise.resolve().then(() => this.onclose?.({ code, reason }));
  }
}

/** A WebSocket constructor bound to a fake server. */
export function socketClass(server: FakeServer, opts: { autoOpen?: boolean; refuse?: () => boolean } = {}) {
  return class extends FakeSocket {
    constructor(url: string) {
      super(server, url, opts.autoOpen ?? true);
      if (opts.refuse?.()) this.serverClose(1006, 'refused');
    }
  };
}
