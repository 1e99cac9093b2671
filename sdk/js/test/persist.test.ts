// The persistent send queue (persist: 'indexeddb') on fake-indexeddb: a
// queued send is written with its cid and deleted once acknowledged, and a
// "reload" (a new client on the same database) sends what the old page
// left, with the same cids, so the server stores each message once.
import { IDBFactory } from 'fake-indexeddb';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ChatClient, indexedDBStore, type ClientOptions } from '../src/index';
import type { Message } from '../src/types';
import { FakeServer, FakeSocket, socketClass } from './fake';

// fake-indexeddb schedules with setImmediate, which stays real
beforeEach(() => { vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] }); });
afterEach(() => { vi.useRealTimers(); });

async function settle(): Promise<void> {
  for (let i = 0; i < 30; i++) await new Promise((r) => (globalThis as any).setImmediate(r));
}

function client(server: FakeServer, idb: IDBFactory, extra: Partial<ClientOptions> = {}, sock: { refuse?: () => boolean } = {}) {
  const c = new ChatClient({
    url: 'ws://fake/', app: 'app', token: 't0', WebSocket: socketClass(server, sock), persist: 'indexeddb', indexedDB: idb,
    random: () => 0.5, backoffBase: 1000, backoffMax: 8000, pingInterval: 0, requestTimeout: 5000, ...extra,
  });
  const got: Message[] = [];
  c.on('message', (m) => got.push(m));
  return { c, got };
}

const stored = (idb: IDBFactory) => indexedDBStore(idb).load('app');
const texts = (l: { fields: { content: unknown } }[]) => l.map((x) => (x.fields.content as any).text);

describe("persist: 'indexeddb'", () => {
  it('writes each queued send with its cid and deletes it once acknowledged', async () => {
    const server = new FakeServer();
    const idb = new IDBFactory();
    let refuse = true;
    const { c } = client(server, idb, {}, { refuse: () => refuse });
    void c.connect().catch(() => {});
    const p1 = c.send({ session_id: 1, type: 'text', content: { text: 'one' } });
    const p2 = c.send({ session_id: 1, type: 'text', content: { text: 'two' } });
    await settle();
    const recs = await stored(idb);
    expect(texts(recs)).toEqual(['one', 'two']);
    expect(recs.map((r) => r.cid)).toEqual(c.queuedSends().map((s) => s.cid));
    refuse = false;
    await vi.advanceTimersByTimeAsync(1000);
    await settle();
    await Promise.all([p1, p2]);
    await settle();
    expect(await stored(idb)).toEqual([]);
    c.close();
  });

  it('a reload sends what the old page left, with the same cids, each stored once', async () => {
    const server = new FakeServer();
    const idb = new IDBFactory();
    // page 1: the first send reaches the server but its ack is lost; the
    // next two never leave (the connection is gone)
    let refuse = false;
    let lostAcks = 1;
    server.hook = (_s, req) => {
      if (req.action !== 'send' || lostAcks-- <= 0) return false;
      server.hook = null;
      server.handle({ push: () => {} } as unknown as FakeSocket, req); // stored, the ack goes nowhere
      server.frames.pop();
      return true;
    };
    const page1 = client(server, idb, {}, { refuse: () => refuse });
    await page1.c.connect();
    await settle();
    void page1.c.send({ session_id: 5, type: 'text', content: { text: 'stored, ack lost' } });
    await settle();
    refuse = true;
    server.last.serverClose(1006);
    await settle();
    void page1.c.send({ session_id: 5, type: 'text', content: { text: 'queued 1' } });
    void page1.c.send({ session_id: 5, type: 'text', content: { text: 'queued 2' } });
    await settle();
    const left = await stored(idb);
    expect(texts(left)).toEqual(['stored, ack lost', 'queued 1', 'queued 2']);
    expect(server.store.get(5)!.length).toBe(1);
    // the page reloads: page 1 is gone (it never runs again), page 2 opens the same database
    const sockets = server.sockets.length;
    const page2 = client(server, idb, { cursors: { 5: 0 } });
    const restored: string[][] = [];
    page2.c.on('restored', (e) => restored.push(e.sends.map((s) => s.cid)));
    refuse = false;
    await page2.c.connect();
    await settle();
    await vi.advanceTimersByTimeAsync(0);
    await settle();
    expect(server.sockets.length).toBe(sockets + 1);
    expect(restored).toEqual([left.map((r) => r.cid)]);
    // sent with their original cids, in order; the first is a duplicate
    const sends = server.frames.filter((f) => f.action === 'send').slice(-3);
    expect(sends.map((f) => f.cid)).toEqual(left.map((r) => r.cid));
    const msgs = server.store.get(5)!;
    expect(msgs.map((m) => (m.content as any).text)).toEqual(['stored, ack lost', 'queued 1', 'queued 2']);
    expect(msgs.map((m) => m.cid)).toEqual(left.map((r) => r.cid));
    // the app of page 2 gets each once, in order, and the queue is empty
    expect(page2.got.map((m) => m.seq)).toEqual([1, 2, 3]);
    expect(page2.c.queuedSends()).toEqual([]);
    expect(await stored(idb)).toEqual([]);
    page2.c.close();
  });

  it("leaves another user's queued sends alone, and close() drops this client's", async () => {
    const server = new FakeServer();
    const idb = new IDBFactory();
    const store = indexedDBStore(idb);
    await store.put({ cid: 'theirs', app: 'app', uid: 'someone-else', at: 1, fields: { session_id: 1, type: 'text', content: { text: 'x' }, cid: 'theirs' } });
    await store.put({ cid: 'other-app', app: 'other', uid: '', at: 1, fields: { session_id: 1, type: 'text', content: { text: 'y' }, cid: 'other-app' } });
    const { c } = client(server, idb);
    await c.connect();
    await settle();
    expect(server.frames.filter((f) => f.action === 'send')).toEqual([]);
    expect((await stored(idb)).map((r) => r.cid)).toEqual(['theirs']);
    c.close();
    const b = client(server, idb, {}, { refuse: () => true });
    void b.c.connect().catch(() => {});
    const p = b.c.send({ session_id: 1, type: 'text', content: { text: 'dropped' } });
    await settle();
    expect((await stored(idb)).length).toBe(2);
    b.c.close();
    await expect(p).rejects.toMatchObject({ code: 'closed' });
    await settle();
    expect((await stored(idb)).map((r) => r.cid)).toEqual(['theirs']);
  });
});
