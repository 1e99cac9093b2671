import type { ErrorCode } from './types.js';

/** An error reply from chatd, or a client-side failure (timeout, disconnected, closed). */
export class ChatdError extends Error {
  readonly code: ErrorCode;
  /** ms to wait before retrying, on rate_limited */
  readonly retryAfter?: number;
  constructor(code: ErrorCode, message: string, retryAfter?: number) {
    super(message);
    this.name = 'ChatdError';
    this.code = code;
    this.retryAfter = retryAfter;
  }
}

/**
 * The reconnect delay before attempt `attempt` (0 first): an exponential
 * `base * 2^attempt` capped at `max`, of which a random half is taken off
 * so that clients dropped together do not come back together.
 */
export function backoffDelay(attempt: number, base: number, max: number, random: () => number = Math.random): number {
  const d = Math.min(max, base * Math.pow(2, Math.min(attempt, 30)));
  return d / 2 + random() * (d / 2);
}

/** A cid: random, once per send, reused by every retry of it. */
export function newCid(): string {
  const c = (globalThis as any).crypto;
  if (c && typeof c.randomUUID === 'function') return c.randomUUID();
  let s = '';
  for (let i = 0; i < 32; i++) s += Math.floor(Math.random() * 16).toString(16);
  return s;
}

/**
 * The error of a chatd HTTP answer that is not 2xx: its envelope's
 * `{"ok":false,"error":{code,message,retry_after?}}`, or the status when
 * the body is not one (a proxy's page).
 */
export function httpError(status: number, text: string): ChatdError {
  let e: any;
  try { e = JSON.parse(text).error; } catch { /* not chatd's envelope */ }
  if (e && typeof e.code === 'string') return new ChatdError(e.code, e.message ?? e.code, e.retry_after);
  const code = status === 401 ? 'unauthorized' : status === 403 ? 'forbidden' : status === 413 ? 'too_large'
    : status === 429 ? 'rate_limited' : status >= 500 ? 'unavailable' : 'bad_request';
  return new ChatdError(code, `HTTP ${status}`);
}

/** Decodes a chatd HTTP answer: its `data` when 2xx, else throws its error. */
export function envelope(status: number, text: string): any {
  if (status < 200 || status > 299) throw httpError(status, text);
  try { return JSON.parse(text).data; } catch { throw new ChatdError('internal', 'the answer is not JSON'); }
}

/** A fetch failure (network, abort) as a ChatdError. */
export function netError(e: unknown, what: string): ChatdError {
  if (e instanceof ChatdError) return e;
  return new ChatdError('disconnected', `${what}: ${(e as Error)?.message ?? String(e)}`);
}
