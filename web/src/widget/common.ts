// Shared by the customer-service pages (widget.ts, widget-shop.ts,
// console.ts): a DOM helper, the demo backend's calls, the service actions
// the SDK does not type, and message rendering helpers.

import type { ChatClient, Message } from '../../../sdk/js/src/index.ts';

// The DOM helper and the demo backend's calls are the chat page's (lib/demo.ts).
export { h, demoCall } from '../lib/demo.ts';
export type { DemoUser, DemoSetup, DemoToken } from '../lib/demo.ts';

/** A conversation view (docs/customer-service.md). */
export interface ConversationView {
  session_id: number; app: string; shop: string; customer: string;
  status: 'queued' | 'open' | 'resolved';
  agent?: string; last_agent?: string; queued_at?: number; assigned_at?: number;
  resolved_at?: number; rated_at?: number; created_at: number; position?: number;
}

/** A service event's data (docs/customer-service.md, "Events"). */
export interface ServiceEvent {
  type: string; shop: string; session_id?: number; customer?: string; agent?: string; from?: string;
  position?: number; status?: string; set?: string; note?: string; by?: string; time: number;
  waiting_ms?: number; score?: number;
}

/**
 * svc runs a customer-service action. The SDK types only some of them
 * (its Action union lacks service_canned*, service_note(s) and
 * service_rate), so this goes through the untyped path.
 */
export function svc<T = any>(chat: ChatClient, action: string, fields: Record<string, unknown>): Promise<T> {
  return (chat.request as (a: string, f: Record<string, unknown>) => Promise<T>)(action, fields);
}

/** Who wrote a message of a service conversation: its role, from the event or from the customer. */
export function roleOf(m: Message, customer: string): 'customer' | 'agent' | 'shop' {
  if (m.role) return m.role;
  if (!m.from) return 'shop';
  return m.from === customer ? 'customer' : 'agent';
}

/** The text a message shows. */
export function textOf(m: Message): string {
  const c = m.content as Record<string, unknown>;
  if (typeof c.text === 'string') return c.text;
  if (m.type === 'recalled') return '(recalled)';
  return `[${m.type}]`;
}

/** clock formats a unix ms time as HH:MM. */
export function clock(ms: number): string {
  const d = new Date(ms);
  return String(d.getHours()).padStart(2, '0') + ':' + String(d.getMinutes()).padStart(2, '0');
}

/** Nicknames of users, asked once each. */
export class Names {
  private readonly cache = new Map<string, Promise<string>>();
  constructor(private readonly chat: ChatClient) {}
  get(uid: string): Promise<string> {
    let p = this.cache.get(uid);
    if (!p) {
      p = this.chat.user(uid).then((u) => u.nickname || uid, () => uid);
      this.cache.set(uid, p);
    }
    return p;
  }
}
