// The persistent send queue (the persist option): each queued send is
// written with its cid when made and deleted once acknowledged or refused,
// so that a page reloaded with sends still queued hands them to the next
// client, which sends them with the same cids and the server stores each
// once (docs/sdk.md, "Sending").
import type { SendInput } from './types.js';

export interface StoredSend {
  cid: string;
  app: string;
  /** the user it was queued for; '' when made before the client's first login */
  uid: string;
  fields: SendInput & { cid: string };
  /** ms since the epoch when it was made: restored sends go in this order */
  at: number;
}

/** Where the persist option keeps the queue: IndexedDB, or a store of your own. */
export interface SendStore {
  /** every stored send of app, oldest first */
  load(app: string): Promise<StoredSend[]>;
  put(s: StoredSend): Promise<void>;
  delete(cid: string): Promise<void>;
}

const DB = 'chatd-sdk', STORE = 'sends';

/**
 * A SendStore in IndexedDB (database `chatd-sdk`, object store `sends`
 * keyed by cid). Operations run in the order they are asked: a put and
 * the delete after it never swap.
 */
export function indexedDBStore(idb: IDBFactory | undefined): SendStore {
  let db: Promise<IDBDatabase> | null = null;
  const open = (): Promise<IDBDatabase> => db ??= new Promise((resolve, reject) => {
    if (!idb) return reject(new Error('persist: this environment has no IndexedDB'));
    const r = idb.open(DB, 1);
    r.onupgradeneeded = () => { r.result.createObjectStore(STORE, { keyPath: 'cid' }); };
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
  let chain: Promise<unknown> = Promise.resolve();
  const run = <T>(mode: IDBTransactionMode, f: (s: IDBObjectStore) => IDBRequest<T>): Promise<T> => {
    const p = chain.then(() => open()).then((d) => {
      const tx = d.transaction(STORE, mode);
      const req = f(tx.objectStore(STORE));
      // done once committed, so that an acknowledged write is on disk
      return new Promise<T>((resolve, reject) => {
        tx.oncomplete = () => resolve(req.result);
        tx.onerror = tx.onabort = () => reject(tx.error ?? req.error);
      });
    });
    chain = p.catch(() => {});
    return p;
  };
  return {
    load: (app) => run('readonly', (s) => s.getAll() as IDBRequest<StoredSend[]>).then((l) => l.filter((x) => x.app === app).sort((a, b) => a.at - b.at)),
    put: (x) => run('readwrite', (s) => s.put(x)).then(() => {}),
    delete: (cid) => run('readwrite', (s) => s.delete(cid)).then(() => {}),
  };
}
