import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ChatClient, ChatdError, backoffDelay } from '../src/index';
import type { Message } from '../src/types';
import { FakeServer, socketClass } from './fake';

async function flush(): Promise<void> {
  for (let i = 0; i < 200; i++) await Promise.resolve();
}

function client(server: FakeServer, extra: Partial<ConstructorParameters<typeof ChatClient>[0]> = {}, sockOpts = {}) {
  const c = new ChatClient({
    url: 'ws://fake/', app: 'app', token: 't0', WebSocket: socketClass(server, sockOpts),
    random: () => 0.5, backoffBase: 1000, backoffMax: 8000, pingInterval: 0, requestTimeout: 5000, ...extra,
  });
  const got: Message[] = [];
  c.on('message', (m) => got.push(m));
  return { c, got };
}

/** Asserts that every session's messages came exactly once, in seq order, with seqs 1..n. */
function expectExactlyOnceInOrder(got: Message[], sid: number, n: number) {
  const seqs = got.filter((m) => m.session_id === sid).map((m) => m.seq);
  expect(seqs).toEqual(Array.from({ length: n }, (_, i) => i + 1));
}

beforeEach(() => { vi.useFakeTimers(); });
afterEach(() => { vi.useRealTimers(); });

describe('backoff', () => {
  it('stays within [d/2, d] of the capped exponential and never passes the cap', () => {
    for (let attempt = 0; attempt < 40; attempt++) {
      const d = Math.min(30000, 500 * 2 ** attempt);
      for (const r of [0, 0.25, 0.5, 0.999999]) {
        const v = backoffDelay(attempt, 500, 30000, () => r);
        expect(v).toBeGreaterThanOrEqual(d / 2);
        expect(v).toBeLessThanOrEqual(d);
        expect(v).toBeLessThanOrEqual(30000);
      }
    }
    // the jitter spreads clients: distinct random draws give distinct delays
    expect(backoffDelay(3, 500, 30000, () => 0)).toBe(2000);
    expect(backoffDelay(3, 500, 30000, () => 0.999999)).toBeCloseTo(4000, 0);
  });

  it('reconnects after the jittered delay, growing per failed attempt up to the cap, and resets after a login', async () => {
    const server = new FakeServer();
    let refuse = false;
    const { c } = client(server, {}, { refuse: () => refuse });
    await c.connect();
    expect(server.sockets.length).toBe(1);
    refuse = true;
    server.last.serverClose(1006);
    await flush();
    expect(c.state).toBe('waiting');
    // random 0.5: delay = 0.75 * min(8000, 1000 * 2^n): 750, 1500, 3000, 6000, 6000
    for (const delay of [750, 1500, 3000, 6000, 6000]) {
      const before = server.sockets.length;
      await vi.advanceTimersByTimeAsync(delay - 1);
      expect(server.sockets.length).toBe(before);
      await vi.advanceTimersByTimeAsync(1);
      expect(server.sockets.length).toBe(before + 1);
      await flush();
    }
    refuse = false;
    await vi.advanceTimersByTimeAsync(6000);
    await flush();
    expect(c.state).toBe('open');
    // a successful login starts the backoff again from its base
    const before = server.sockets.length;
    server.last.serverClose(1006);
    await flush();
    await vi.advanceTimersByTimeAsync(750);
    expect(server.sockets.length).toBe(before + 1);
  });
});

describe('no automatic reconnect', () => {
  for (const [name, act] of [
    ['close 4003 (logged in elsewhere)', (s: FakeServer) => s.last.serverClose(4003, 'logged in elsewhere')],
    ['close 4004 (banned)', (s: FakeServer) => s.last.serverClose(4004, 'banned')],
    ['a kicked event, whatever the close code', (s: FakeServer) => {
      s.last.event('kicked', { reason: 'logged_in_elsewhere', platform: 'ios', policy: 'single' });
      void Promise.resolve().then(() => Promise.resolve()).then(() => s.last.serverClose(1006));
    }],
    ['close 4002 without getToken (the token is gone)', (s: FakeServer) => s.last.serverClose(4002, 'token expired')],
  ] as const) {
    it(`after ${name}`, async () => {
      const server = new FakeServer();
      const { c } = client(server);
      const states: string[] = [];
      const disc: boolean[] = [];
      c.on('state', (e) => states.push(e.state));
      c.on('disconnected', (e) => disc.push(e.reconnect));
      await c.connect();
      act(server);
      await flush();
      await vi.advanceTimersByTimeAsync(120_000);
      expect(server.sockets.length).toBe(1);
      expect(c.state).toBe('stopped');
      expect(disc).toEqual([false]);
      // the user may ask: connect() comes back
      await c.connect();
      expect(server.sockets.length).toBe(2);
      expect(c.state).toBe('open');
    });
  }

  it('reconnects after 4002 with a fresh token from getToken', async () => {
    const server = new FakeServer();
    let n = 0;
    const { c } = client(server, { token: undefined, getToken: async () => `tok${++n}` });
    await c.connect();
    server.last.serverClose(4002, 'token expired');
    await flush();
    await vi.advanceTimersByTimeAsync(750);
    await flush();
    expect(c.state).toBe('open');
    expect(server.tokens).toEqual(['tok1', 'tok2']);
  });
});

describe('exactly once, in seq order', () => {
  it('detects a gap in live events and fills it with sync', async () => {
    const server = new FakeServer();
    for (let i = 0; i < 5; i++) server.store1(7);
    const { c, got } = client(server, { cursors: { 7: 5 } });
    await c.connect();
    await flush();
    expect(got).toEqual([]);
    const m6 = server.store1(7);
    server.last.event('message', m6);
    await flush();
    expect(got.map((m) => m.seq)).toEqual([6]);
    // 7 and 8 are stored but their events are lost; 9 arrives
    server.store1(7); server.store1(7);
    const m9 = server.store1(7);
    const syncsBefore = server.frames.filter((f) => f.action === 'sync').length;
    server.last.event('message', m9);
    await flush();
    const syncs = server.frames.filter((f) => f.action === 'sync').slice(syncsBefore);
    expect(syncs[0]).toMatchObject({ session_id: 7, after: 6 });
    server.last.event('message', m9); // a duplicate
    const m10 = server.store1(7);
    server.last.event('message', m10);
    await flush();
    expect(got.map((m) => m.seq)).toEqual([6, 7, 8, 9, 10]);
    expect(c.cursors()[7]).toBe(10);
  });

  it('delivers shuffled and duplicated live events once each, in order', async () => {
    const server = new FakeServer();
    const { c, got } = client(server, { cursors: { 3: 0 } });
    await c.connect();
    await flush();
    const all: Message[] = [];
    for (let i = 0; i < 60; i++) all.push(server.store1(3));
    // a seeded shuffle, with every third message sent twice and every
    // seventh not at all (lost)
    let seed = 42;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const events: Message[] = [];
    all.forEach((m, i) => { if (i % 7 !== 6) events.push(m); if (i % 3 === 0) events.push(m); });
    for (let i = events.length - 1; i > 0; i--) {
      const j = Math.floor(rnd() * (i + 1));
      [events[i], events[j]] = [events[j], events[i]];
    }
    for (const m of events) {
      server.last.event('message', m);
      if (rnd() < 0.3) await flush();
    }
    await flush();
    await flush();
    expectExactlyOnceInOrder(got, 3, 60);
  });

  it('brings every session up to date after a reconnect, paging sync, with no duplicates', async () => {
    const server = new FakeServer();
    server.store1(1); server.store1(2);
    const { c, got } = client(server);
    await c.connect();
    await flush();
    // first login: known sessions start at their end
    expect(got).toEqual([]);
    const live = server.store1(1);
    server.last.event('message', live);
    await flush();
    server.last.serverClose(1006);
    await flush();
    for (let i = 0; i < 10; i++) { server.store1(1); server.store1(2); }
    server.store1(9); // a session created while offline
    await vi.advanceTimersByTimeAsync(750);
    await flush();
    await flush();
    expectExactlyOnceInOrder(got.filter((m) => m.seq > 1 || m.session_id === 9), 9, 1);
    expect(got.filter((m) => m.session_id === 1).map((m) => m.seq)).toEqual([2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    expect(got.filter((m) => m.session_id === 2).map((m) => m.seq)).toEqual([2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    // paging: pages of 3
    expect(server.frames.filter((f) => f.action === 'sync' && f.session_id === 1).length).toBeGreaterThanOrEqual(4);
  });

  it('holds a live message of an unknown session until the session list says where it starts', async () => {
    const server = new FakeServer();
    const { c, got } = client(server, { cursors: { 1: 0 } });
    await c.connect();
    await flush();
    server.last.serverClose(1006);
    await flush();
    // while offline: a new session 9 with three messages
    for (let i = 0; i < 3; i++) server.store1(9);
    // after the next login, its fourth message arrives live before the
    // reply to `sessions`
    server.hook = (s, req) => {
      if (req.action !== 'sessions') return false;
      server.hook = null;
      s.event('message', server.store1(9));
      void Promise.resolve().then(() => Promise.resolve()).then(() => server.handle(s, req));
      return true;
    };
    await vi.advanceTimersByTimeAsync(750);
    await flush();
    await flush();
    expectExactlyOnceInOrder(got, 9, 4);
    // a session first heard of live, outside a resync, starts at that message
    const m = { ...server.store1(11), seq: 5, msg_id: '11-5' };
    server.last.event('message', m);
    await flush();
    expect(got.filter((x) => x.session_id === 11).map((x) => x.seq)).toEqual([5]);
  });

  it('puts recall and edit op entries in the same order as messages', async () => {
    const server = new FakeServer();
    const { c, got } = client(server, { cursors: { 4: 0 } });
    const recalls: unknown[] = [];
    c.on('recall', (e) => recalls.push(e));
    await c.connect();
    await flush();
    server.last.event('message', server.store1(4));
    server.store1(4); // the op entry's seq (2)
    server.last.event('recall', { session_id: 4, op_seq: 2, op: 'recall', seq: 1, by: 'peer', at: 5 });
    server.last.event('message', server.store1(4));
    await flush();
    expect(got.map((m) => [m.seq, m.type])).toEqual([[1, 'text'], [2, 'op'], [3, 'text']]);
    expect(recalls.length).toBe(1);
    expect(server.frames.filter((f) => f.action === 'sync').length).toBe(0);
  });
});

describe('send queue', () => {
  it('keeps sends made offline and sends them on login, each once, with its cid', async () => {
    const server = new FakeServer();
    const { c, got } = client(server, { cursors: { 5: 0 } });
    await c.connect();
    server.last.serverClose(1006);
    await flush();
    const p1 = c.send({ session_id: 5, type: 'text', content: { text: 'a' } });
    const p2 = c.send({ session_id: 5, type: 'text', content: { text: 'b' }, cid: 'mine' });
    expect(c.queuedSends().map((s) => s.cid)[1]).toBe('mine');
    await vi.advanceTimersByTimeAsync(750);
    await flush();
    const [a1, a2] = await Promise.all([p1, p2]);
    expect([a1.seq, a2.seq]).toEqual([1, 2]);
    expect(server.store.get(5)!.map((m) => m.content.text)).toEqual(['a', 'b']);
    expect(got.map((m) => [m.seq, m.from, (m.content as any).text])).toEqual([[1, 'me', 'a'], [2, 'me', 'b']]);
    expect(c.queuedSends()).toEqual([]);
  });

  it('retries with the same cid when the connection drops before the ack, and the server stores it once', async () => {
    const server = new FakeServer();
    const { c, got } = client(server, { cursors: { 5: 0 } });
    await c.connect();
    await flush();
    // the first attempt is stored, then the connection dies before the ack
    server.hook = (s, req) => {
      if (req.action !== 'send') return false;
      server.hook = null;
      server.handle(s, req); // stored, ack pushed...
      s.serverClose(1006); // ...but the socket is gone first
      return true;
    };
    let resolved = false;
    const p = c.send({ session_id: 5, type: 'text', content: { text: 'once' } });
    void p.then(() => { resolved = true; });
    await flush();
    expect(resolved).toBe(false);
    expect(c.state).toBe('waiting');
    await vi.advanceTimersByTimeAsync(750);
    await flush();
    const ack = await p;
    const sends = server.sockets.flatMap((k) => k.sent).filter((f) => f.action === 'send');
    expect(sends.length).toBe(2);
    expect(sends[0].cid).toBe(sends[1].cid);
    expect(server.store.get(5)!.length).toBe(1);
    expect(ack.seq).toBe(1);
    expect(got.map((m) => m.seq)).toEqual([1]); // from resync or the ack, once
  });

  it('retries a send refused rate_limited after retry_after, and rejects one refused forbidden', async () => {
    const server = new FakeServer();
    const { c } = client(server, { cursors: { 5: 0 } });
    await c.connect();
    let first = true;
    server.hook = (s, req) => {
      if (req.action !== 'send') return false;
      if (req.content.text === 'no') { s.push({ reply_to: req.id, ok: false, error: { code: 'forbidden', message: 'not a member' } }); return true; }
      if (!first) return false;
      first = false;
      s.push({ reply_to: req.id, ok: false, error: { code: 'rate_limited', message: 'slow down', retry_after: 300 } });
      return true;
    };
    const p = c.send({ session_id: 5, type: 'text', content: { text: 'x' } });
    const q = c.send({ session_id: 5, type: 'text', content: { text: 'no' } });
    const qErr = q.catch((e) => e);
    await flush();
    // q waits behind p, its conversation's older send.
    expect(server.frames.filter((f) => f.action === 'send').map((f) => f.content.text)).toEqual(['x']);
    await vi.advanceTimersByTimeAsync(300);
    await flush();
    await expect(p).resolves.toMatchObject({ seq: 1 });
    expect(await qErr).toMatchObject({ code: 'forbidden' });
  });

  it('keeps a conversation in the order it was typed when a send is refused rate_limited', async () => {
    const server = new FakeServer();
    const { c } = client(server, { cursors: { 5: 0, 6: 0 } });
    await c.connect();
    let refused = 0;
    server.hook = (s, req) => {
      if (req.action !== 'send' || req.content.text !== 'a1' || refused++ > 0) return false;
      s.push({ reply_to: req.id, ok: false, error: { code: 'rate_limited', message: 'slow down', retry_after: 200 } });
      return true;
    };
    const sent = ['a1', 'a2', 'a3'].map((text) => c.send({ session_id: 5, type: 'text', content: { text } }));
    const other = c.send({ session_id: 6, type: 'text', content: { text: 'b1' } }); // another conversation: not held back
    await flush();
    await expect(other).resolves.toMatchObject({ seq: 1 });
    await vi.advanceTimersByTimeAsync(200);
    await flush();
    await Promise.all(sent);
    expect(server.store.get(5)!.map((m: any) => m.content.text)).toEqual(['a1', 'a2', 'a3']);
  });
});

describe('requests', () => {
  it('rejects with timeout when no reply comes in time', async () => {
    const server = new FakeServer();
    const { c } = client(server);
    await c.connect();
    server.silent.add('history');
    const p = c.history(1);
    const err = p.catch((e) => e);
    await vi.advanceTimersByTimeAsync(4999);
    await flush();
    let settled = false;
    void p.catch(() => { settled = true; });
    await flush();
    expect(settled).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    const e = await err;
    expect(e).toBeInstanceOf(ChatdError);
    expect(e.code).toBe('timeout');
  });

  it('waits for the login when made offline, within its timeout, and maps error replies', async () => {
    const server = new FakeServer();
    const { c } = client(server);
    await c.connect();
    server.last.serverClose(1006);
    await flush();
    const late = c.request('user', {}, { timeout: 100 }).catch((e) => e);
    const ok = c.request('ping', {});
    await vi.advanceTimersByTimeAsync(100);
    expect((await late).code).toBe('timeout');
    await vi.advanceTimersByTimeAsync(650);
    await flush();
    await expect(ok).resolves.toMatchObject({ server_time: expect.any(Number) });
    server.hook = (s, req) => {
      if (req.action !== 'read') return false;
      s.push({ reply_to: req.id, ok: false, error: { code: 'not_found', message: 'unknown session 9' } });
      return true;
    };
    await expect(c.read(9, 1)).rejects.toMatchObject({ code: 'not_found', message: 'unknown session 9' });
  });

  it('rejects a request in flight when the connection drops (it may not be safe to repeat)', async () => {
    const server = new FakeServer();
    const { c } = client(server);
    await c.connect();
    server.silent.add('group_create');
    const p = c.groupCreate('g', ['u2']).catch((e) => e);
    await flush();
    server.last.serverClose(1006);
    expect((await p).code).toBe('disconnected');
  });
});

describe('liveness and the network', () => {
  it('drops a connection whose ping goes unanswered and reconnects', async () => {
    const server = new FakeServer();
    const { c } = client(server, { pingInterval: 1000, requestTimeout: 500 });
    await c.connect();
    await vi.advanceTimersByTimeAsync(1000);
    await flush();
    expect(server.frames.filter((f) => f.action === 'ping').length).toBe(1);
    expect(c.state).toBe('open'); // answered
    server.silent.add('ping');
    await vi.advanceTimersByTimeAsync(1000 + 499);
    await flush();
    expect(c.state).toBe('open');
    await vi.advanceTimersByTimeAsync(1);
    await flush();
    expect(c.state).toBe('waiting');
    expect(server.sockets[0].closed).toBe(true);
    server.silent.delete('ping');
    await vi.advanceTimersByTimeAsync(750);
    await flush();
    expect(c.state).toBe('open');
    expect(server.sockets.length).toBe(2);
  });

  it("follows the browser's offline and online events", async () => {
    const w = new EventTarget();
    (globalThis as any).window = w;
    try {
      const server = new FakeServer();
      let refuse = false;
      const { c } = client(server, { backoffBase: 10_000, backoffMax: 60_000 }, { refuse: () => refuse });
      await c.connect();
      refuse = true;
      w.dispatchEvent(new Event('offline'));
      await flush();
      expect(c.state).toBe('waiting');
      expect(server.sockets[0].closed).toBe(true);
      await vi.advanceTimersByTimeAsync(7500); // the first retry fails: still offline
      await flush();
      expect(server.sockets.length).toBe(2);
      refuse = false;
      w.dispatchEvent(new Event('online')); // at once, not after the next delay
      await flush();
      expect(server.sockets.length).toBe(3);
      expect(c.state).toBe('open');
      c.close();
      w.dispatchEvent(new Event('online'));
      await flush();
      expect(server.sockets.length).toBe(3); // close() removed the listeners
    } finally {
      delete (globalThis as any).window;
    }
  });
});
