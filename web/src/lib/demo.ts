// Shared by the demo pages: the demo backend's calls, the user API over
// HTTP (uploads, file URLs) and a tiny DOM helper.

export interface DemoUser { uid: string; nickname: string; role: 'user' | 'agent' }
export interface DemoSetup { app: string; ws_url: string; users: DemoUser[]; shop: { id: string; name: string; agents: string[] } }
export interface DemoToken { app: string; uid: string; token: string; expires_at: number; ws_url: string }

/** POSTs a call of the demo backend (loopback only, docs/demo.md) and returns its data. */
export async function demoCall<T>(name: string, body?: unknown): Promise<T> {
  const r = await fetch('/demo/api/' + name, { method: 'POST', body: body === undefined ? '' : JSON.stringify(body) });
  const j = await r.json().catch(() => ({ ok: false, error: { code: 'internal', message: `HTTP ${r.status}` } }));
  if (!j.ok) throw new Error(`${j.error.code}: ${j.error.message}`);
  return j.data as T;
}

export const setup = () => demoCall<DemoSetup>('setup');
export const token = (uid: string) => demoCall<DemoToken>('token', { uid });

/** The user API's auth headers. */
export function authHeaders(t: DemoToken): Record<string, string> {
  return { 'X-Chatd-App': t.app, Authorization: 'Bearer ' + t.token };
}

export interface Upload { file_id: string; mime: string; size: number; width?: number; height?: number; name?: string }

/**
 * Uploads a file with POST /v1/files, reporting progress (0..1). XHR
 * rather than fetch: fetch cannot report upload progress.
 */
export function upload(t: DemoToken, file: Blob, type: 'image' | 'file', name: string, progress: (f: number) => void): Promise<Upload> {
  return new Promise((resolve, reject) => {
    const x = new XMLHttpRequest();
    x.open('POST', `/v1/files?type=${type}&name=${encodeURIComponent(name)}`);
    for (const [k, v] of Object.entries(authHeaders(t))) x.setRequestHeader(k, v);
    x.upload.onprogress = (e) => { if (e.lengthComputable) progress(e.loaded / e.total); };
    x.onload = () => {
      let j: any;
      try { j = JSON.parse(x.responseText); } catch { reject(new Error(`upload: HTTP ${x.status}`)); return; }
      if (j.ok) { progress(1); resolve(j.data); } else reject(new Error(`upload: ${j.error.code}: ${j.error.message}`));
    };
    x.onerror = () => reject(new Error('upload: network error'));
    x.send(file);
  });
}

/** A signed URL for an uploaded file (GET /v1/files/{id}/url), cached while it is valid. */
const urls = new Map<string, { url: string; expires_at: number }>();
export async function fileURL(t: DemoToken, fileID: string): Promise<string> {
  const c = urls.get(fileID);
  if (c && c.expires_at > Date.now() + 60_000) return c.url;
  const r = await fetch(`/v1/files/${fileID}/url`, { headers: authHeaders(t) });
  const j = await r.json();
  if (!j.ok) throw new Error(`file url: ${j.error.code}: ${j.error.message}`);
  urls.set(fileID, j.data);
  return j.data.url;
}

type Child = Node | string | null | undefined | false;

/** h builds an element: h('li', {class: 'x', 'data-seq': 3}, 'text', child). */
export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, string | number | boolean | ((e: any) => void) | undefined> = {}, ...kids: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (typeof v === 'function') el.addEventListener(k.replace(/^on/, ''), v);
    else if (v === true) el.setAttribute(k, '');
    else if (v !== false && v !== undefined) el.setAttribute(k, String(v));
  }
  for (const c of kids) if (c !== null && c !== undefined && c !== false) el.append(c);
  return el;
}

/** $ returns the element with id, which the page must have. */
export function $<T extends HTMLElement = HTMLElement>(id: string): T {
  const el = document.getElementById(id);
  if (!el) throw new Error('no #' + id);
  return el as T;
}

export function clock(ms: number): string {
  const d = new Date(ms);
  return d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
}
