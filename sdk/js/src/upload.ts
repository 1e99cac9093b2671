// Uploads: POST /v1/files?type=&name= with the user's token
// (docs/http-api.md, "Files"). The body is the file itself. XMLHttpRequest
// reports upload progress where it exists (browsers); fetch, elsewhere,
// reports 0 before and the whole size after.
import { ChatdError, envelope, netError } from './util.js';

export type UploadType = 'image' | 'voice' | 'video' | 'file';

/** The server's record of an uploaded file. */
export interface FileRecord {
  file_id: string;
  app: string;
  owner: string;
  type: UploadType;
  mime: string;
  size: number;
  width?: number;
  height?: number;
  name?: string;
  created_at: number;
  /** a signed, path-absolute URL (prefix the HTTP base), valid until expires_at */
  url: string;
  expires_at: number;
  /** the same bytes were uploaded before (the file is stored once) */
  duplicate?: boolean;
}

export interface UploadProgress { loaded: number; total: number }

export interface UploadOptions {
  /** default: from the Blob's MIME type (image/*, audio/* as voice, video/*), else file */
  type?: UploadType;
  /** kept for display and downloads; default: the File's name */
  name?: string;
  onProgress?: (p: UploadProgress) => void;
  /** aborts the upload (the promise rejects with code `aborted`) */
  signal?: AbortSignal;
}

/** Fields of sendFile: a send's target and extras, and the file. */
export type SendFileInput = {
  file: Blob | ArrayBuffer | ArrayBufferView;
  session_id?: number;
  to?: string;
  /** content fields besides the file (a voice's duration, a file's name, …) */
  content?: Record<string, unknown>;
  cid?: string;
  quote_seq?: number;
  mentions?: string[];
  mention_all?: boolean;
} & UploadOptions;

function guessType(mime: string): UploadType {
  const m = /^(image|audio|video)\//.exec(mime);
  return m ? (m[1] === 'audio' ? 'voice' : m[1] as UploadType) : 'file';
}

export function uploadFile(a: {
  base: string; app: string; token: string; file: Blob | ArrayBuffer | ArrayBufferView; opts: UploadOptions;
  fetch?: typeof fetch; XMLHttpRequest?: new () => XMLHttpRequest;
}): Promise<FileRecord> {
  const { file, opts } = a;
  const blob = file as Blob;
  const type = opts.type ?? guessType(typeof blob.type === 'string' ? blob.type : '');
  const name = opts.name ?? (file as File).name;
  const url = `${a.base}/v1/files?type=${type}${name ? '&name=' + encodeURIComponent(name) : ''}`;
  const headers: Record<string, string> = { 'X-Chatd-App': a.app, Authorization: 'Bearer ' + a.token };
  const total = typeof blob.size === 'number' ? blob.size : (file as ArrayBuffer).byteLength;
  const progress = (loaded: number) => { try { opts.onProgress?.({ loaded, total }); } catch { /* the app's */ } };
  const aborted = () => new ChatdError('aborted', 'the upload was aborted');
  if (opts.signal?.aborted) return Promise.reject(aborted());
  const X = a.XMLHttpRequest;
  if (X) {
    return new Promise((resolve, reject) => {
      const x = new X();
      x.open('POST', url);
      for (const [k, v] of Object.entries(headers)) x.setRequestHeader(k, v);
      x.upload.onprogress = (e) => progress(e.loaded);
      x.onload = () => {
        try { resolve(envelope(x.status, x.responseText)); } catch (e) { reject(e); }
      };
      x.onerror = () => reject(new ChatdError('disconnected', 'the upload failed (network)'));
      x.onabort = () => reject(aborted());
      opts.signal?.addEventListener('abort', () => x.abort());
      progress(0);
      x.send(file as XMLHttpRequestBodyInit);
    });
  }
  if (!a.fetch) return Promise.reject(new ChatdError('bad_request', 'upload needs fetch or XMLHttpRequest'));
  progress(0);
  return a.fetch(url, { method: 'POST', headers, body: file as BodyInit, signal: opts.signal }).then(
    async (res) => {
      const rec = envelope(res.status, await res.text()) as FileRecord;
      progress(total);
      return rec;
    },
    (e) => { throw opts.signal?.aborted ? aborted() : netError(e, 'upload'); });
}
