// The customer-service widget: the "contact us" bubble a shop puts on its
// pages with one script tag (docs/demo.md, "The customer-service widget"):
//
//   <script src="https://chat.example.com/demo/widget.js" data-app="shop"
//     data-shop="acme" data-token="…" data-ws="wss://chat.example.com/"></script>
//
// The host's backend issues the token for its logged-in customer (the
// server API, docs/http-api.md). The widget draws itself in a shadow root
// (so the page's CSS and its own do not mix), with widget.css from next
// to widget.js. It connects on the first opening, or at once when this
// browser already has a conversation with the shop, and opens the
// conversation (service_open) with the customer's first message, so that
// a click on the bubble alone queues nobody.

import { ChatClient } from '../../sdk/js/src/index.ts';
import type { Message } from '../../sdk/js/src/index.ts';
import { h, svc, roleOf, textOf, clock, Names } from './widget/common.ts';
import type { ConversationView, ServiceEvent } from './widget/common.ts';

interface Config {
  app: string; shop: string; token: string; ws: string;
  title: string; open: boolean; css: string;
}

/** The script element that loaded the widget: its data-* attributes are the configuration. */
function ownScript(): HTMLScriptElement | null {
  const s = document.currentScript as HTMLScriptElement | null;
  if (s && s.dataset.shop !== undefined) return s;
  return document.querySelector<HTMLScriptElement>('script[data-shop][src*="widget"]');
}

function config(s: HTMLScriptElement): Config | string {
  const d = s.dataset;
  const missing = ['app', 'shop', 'token', 'ws'].filter((k) => !d[k]);
  if (missing.length) return 'chatd widget: missing ' + missing.map((k) => 'data-' + k).join(', ') + ' on its <script> tag (docs/demo.md)';
  return {
    app: d.app!, shop: d.shop!, token: d.token!, ws: d.ws!,
    title: d.title || 'Customer service',
    open: d.open === 'true',
    css: d.css || new URL('widget.css', s.src || location.href).href,
  };
}

class Widget {
  private chat: ChatClient | null = null;
  private names: Names | null = null;
  private me = '';
  private view: ConversationView | null = null;
  private agentName = '';
  private readonly msgs = new Map<number, HTMLLIElement>();
  private unread = 0;
  private score = 0;
  private connecting: Promise<void> | null = null;

  private readonly root: HTMLDivElement;
  private readonly bubble: HTMLButtonElement;
  private readonly badge: HTMLSpanElement;
  private readonly panel: HTMLElement;
  private readonly status: HTMLDivElement;
  private readonly list: HTMLOListElement;
  private readonly rate: HTMLFormElement;
  private readonly rated: HTMLDivElement;
  private readonly compose: HTMLFormElement;
  private readonly input: HTMLTextAreaElement;
  private readonly error: HTMLDivElement;

  constructor(private readonly cfg: Config) {
    const host = h('div', { id: 'chatd-widget' });
    const shadow = host.attachShadow({ mode: 'open' });
    this.badge = h('span', { class: 'cw-badge', hidden: true });
    this.bubble = h('button', { class: 'cw-bubble', type: 'button', 'aria-label': 'Chat with ' + cfg.title, onclick: () => this.toggle() },
      h('span', { class: 'cw-icon', 'aria-hidden': 'true' }, '💬'), h('span', { class: 'cw-bubble-label' }, 'Chat with us'), this.badge);
    this.status = h('div', { class: 'cw-status', 'data-status': 'none', role: 'status' });
    this.list = h('ol', { class: 'cw-messages', 'aria-live': 'polite' });
    const stars = h('div', { class: 'cw-stars', role: 'radiogroup', 'aria-label': 'Your rating' });
    for (let i = 1; i <= 5; i++) {
      stars.append(h('button', { type: 'button', class: 'cw-star', 'data-score': i, role: 'radio', 'aria-checked': 'false',
        'aria-label': i + ' of 5', onclick: () => this.pick(i) }, '★'));
    }
    this.rate = h('form', { class: 'cw-rate', hidden: true, onsubmit: (e: Event) => { e.preventDefault(); void this.sendRating(); } },
      h('p', { class: 'cw-rate-q' }, 'How did we do?'), stars,
      h('textarea', { class: 'cw-rate-comment', name: 'comment', rows: 2, maxlength: 2000, placeholder: 'A comment (optional)' }),
      h('button', { type: 'submit', class: 'cw-rate-send', disabled: true }, 'Send rating'));
    this.rated = h('div', { class: 'cw-rated', hidden: true });
    this.input = h('textarea', { class: 'cw-input', rows: 2, placeholder: 'Write a message…', 'aria-label': 'Your message',
      onkeydown: (e: KeyboardEvent) => { if (e.key === 'Enter' && !e.shiftKey) { e.preventDefault(); this.compose.requestSubmit(); } } });
    this.compose = h('form', { class: 'cw-compose', onsubmit: (e: Event) => { e.preventDefault(); void this.send(); } },
      this.input, h('button', { type: 'submit', class: 'cw-send' }, 'Send'));
    this.error = h('div', { class: 'cw-error', hidden: true, role: 'alert' });
    this.panel = h('section', { class: 'cw-panel', hidden: true, role: 'dialog', 'aria-label': cfg.title },
      h('header', { class: 'cw-head' },
        h('div', {}, h('div', { class: 'cw-title' }, cfg.title), this.status),
        h('button', { type: 'button', class: 'cw-close', 'aria-label': 'Close', onclick: () => this.toggle(false) }, '×')),
      this.list, this.rate, this.rated, this.error, this.compose);
    this.root = h('div', { class: 'cw', 'data-state': 'closed' }, this.panel, this.bubble);
    shadow.append(h('link', { rel: 'stylesheet', href: cfg.css }), this.root);
    document.body.append(host);
    this.setStatus();
    if (cfg.open) this.toggle(true);
    else if (localStorage.getItem(this.key()) !== null) void this.connect(); // replies while closed show on the badge
  }

  /** The localStorage key of this browser's conversation with the shop. */
  private key(): string { return `chatd-widget:${this.cfg.ws}:${this.cfg.app}:${this.cfg.shop}`; }

  toggle(open = this.panel.hidden): void {
    this.panel.hidden = !open;
    this.root.dataset.state = open ? 'open' : 'closed';
    this.bubble.setAttribute('aria-expanded', String(open));
    if (open) {
      this.unread = 0;
      this.showBadge();
      void this.connect();
      this.input.focus();
      this.markRead();
    }
  }

  private connect(): Promise<void> {
    if (!this.connecting) {
      this.setStatus('Connecting…');
      this.connecting = this.start().catch((e) => {
        this.connecting = null;
        this.fail(e);
      });
    }
    return this.connecting;
  }

  private async start(): Promise<void> {
    const chat = new ChatClient({ url: this.cfg.ws, app: this.cfg.app, token: this.cfg.token, platform: 'web' });
    this.chat = chat;
    this.names = new Names(chat);
    chat.on('message', (m) => this.message(m));
    chat.on('service', (e) => void this.event(e as unknown as ServiceEvent));
    chat.on('state', (s) => { this.root.dataset.connection = s.state; });
    chat.on('disconnected', (e) => { if (!e.reconnect) this.fail(new Error('disconnected (' + e.code + '): reload the page to come back')); });
    const me = await chat.connect();
    this.me = me.uid;
    const stored = Number(localStorage.getItem(this.key()) || 0);
    if (stored) {
      try {
        await this.apply(await svc<ConversationView>(chat, 'service_conversation', { session_id: stored }));
        await this.history();
      } catch {
        localStorage.removeItem(this.key()); // another user's, or gone: start over
      }
    }
    this.setStatus();
  }

  private fail(e: unknown): void {
    this.error.hidden = false;
    this.error.textContent = (e as Error).message || String(e);
  }

  /** The conversation's messages so far (the newest 100), merged with those that arrived live. */
  private async history(): Promise<void> {
    if (!this.view || !this.chat) return;
    const page = await this.chat.history(this.view.session_id, { limit: 100 });
    for (const m of page.messages) this.message(m);
  }

  private async apply(v: ConversationView): Promise<void> {
    const first = !this.view || this.view.session_id !== v.session_id;
    this.view = v;
    localStorage.setItem(this.key(), String(v.session_id));
    const agent = v.agent || (v.status === 'resolved' ? v.last_agent : '');
    this.agentName = agent && this.names ? await this.names.get(agent) : '';
    if (first) this.root.dataset.session = String(v.session_id);
    this.setStatus();
  }

  private setStatus(text?: string): void {
    const v = this.view;
    const st = this.status;
    st.dataset.status = v ? v.status : 'none';
    st.dataset.position = v && v.status === 'queued' && v.position ? String(v.position) : '';
    st.dataset.agent = v && v.status === 'open' ? v.agent || '' : '';
    if (text) st.textContent = text;
    else if (!v) st.textContent = 'Ask us anything: we answer as soon as we can.';
    else if (v.status === 'queued') st.textContent = v.position ? `You are number ${v.position} in the queue` : 'Waiting for an agent…';
    else if (v.status === 'open') st.textContent = `${this.agentName || v.agent} is helping you`;
    else st.textContent = 'Resolved. Write again if you need more help.';
    const rateable = !!v && v.status === 'resolved' && !!v.resolved_at && v.rated_at !== v.resolved_at;
    if (rateable && this.rate.hidden) {
      this.score = 0;
      this.pick(0);
      (this.rate.elements.namedItem('comment') as HTMLTextAreaElement).value = '';
    }
    this.rate.hidden = !rateable;
    if (!v || v.status !== 'resolved') this.rated.hidden = true;
    this.list.scrollTop = this.list.scrollHeight; // the form may have taken room
  }

  private async event(e: ServiceEvent): Promise<void> {
    if (e.shop !== this.cfg.shop || !this.chat) return;
    if (this.view && e.session_id && e.session_id !== this.view.session_id) return;
    const v: ConversationView = this.view ? { ...this.view } : {
      session_id: e.session_id!, app: this.cfg.app, shop: e.shop, customer: this.me, status: 'queued', created_at: e.time,
    };
    switch (e.type) {
      case 'queued': case 'position':
        v.status = 'queued'; v.position = e.position; v.agent = undefined;
        break;
      case 'assigned': case 'claimed':
        v.status = 'open'; v.agent = e.agent; v.position = undefined;
        break;
      case 'transferred':
        v.status = e.agent ? 'open' : 'queued'; v.agent = e.agent || undefined;
        break;
      case 'resolved':
        v.status = 'resolved'; v.last_agent = e.agent; v.agent = undefined; v.resolved_at = e.time;
        break;
      default:
        return;
    }
    await this.apply(v);
    // The event says what changed; the view says all of it (the position
    // after a transfer back to the queue, resolved_at, rated_at).
    try { await this.apply(await svc<ConversationView>(this.chat, 'service_conversation', { session_id: v.session_id })); } catch { /* keep the event's */ }
  }

  private message(m: Message): void {
    if (!this.view || m.session_id !== this.view.session_id || m.type === 'op') return;
    const prev = this.msgs.get(m.seq);
    const role = roleOf(m, this.view.customer);
    const c = m.content as Record<string, unknown>;
    const auto = typeof c.auto === 'string' ? c.auto : '';
    const who = role === 'customer' ? 'You' : role === 'shop' ? this.cfg.title : m.from;
    const li = h('li', { class: `cw-msg cw-${role}${auto ? ' cw-auto' : ''}`, 'data-seq': m.seq, 'data-role': role, 'data-auto': auto || undefined },
      h('div', { class: 'cw-meta' }, auto ? `${who} · automatic reply` : who, ' · ', clock(m.created_at)),
      h('div', { class: 'cw-text' }, textOf(m)));
    if (role === 'agent') void this.names?.get(m.from).then((n) => { li.querySelector('.cw-meta')!.firstChild!.textContent = auto ? `${n} · automatic reply` : n; });
    if (prev) { prev.replaceWith(li); this.msgs.set(m.seq, li); return; }
    this.msgs.set(m.seq, li);
    let after: HTMLLIElement | null = null;
    for (const [seq, el] of this.msgs) if (seq < m.seq && (!after || seq > Number(after.dataset.seq))) after = el;
    if (after) after.after(li); else this.list.prepend(li);
    this.list.scrollTop = this.list.scrollHeight;
    if (role !== 'customer') {
      if (this.panel.hidden) { this.unread++; this.showBadge(); } else this.markRead();
    }
  }

  private showBadge(): void {
    this.badge.hidden = this.unread === 0;
    this.badge.textContent = String(this.unread);
  }

  private markRead(): void {
    if (!this.view || !this.chat || this.chat.state !== 'open' || this.msgs.size === 0) return;
    const last = Math.max(...this.msgs.keys());
    this.chat.read(this.view.session_id, last).catch(() => { /* best effort */ });
  }

  private async send(): Promise<void> {
    const text = this.input.value.trim();
    if (!text) return;
    this.input.value = '';
    this.error.hidden = true;
    try {
      await this.connect();
      const chat = this.chat!;
      // The first message opens the conversation; a message after a
      // resolution reopens it (routed again).
      if (!this.view || this.view.status === 'resolved') {
        await this.apply(await svc<ConversationView>(chat, 'service_open', { shop: this.cfg.shop }));
        await this.history();
      }
      await chat.send({ session_id: this.view!.session_id, type: 'text', content: { text } });
    } catch (e) {
      this.input.value = text;
      this.fail(e);
    }
  }

  private pick(score: number): void {
    this.score = score;
    this.rate.querySelectorAll<HTMLButtonElement>('.cw-star').forEach((b) => {
      const on = Number(b.dataset.score) <= score;
      b.classList.toggle('cw-on', on);
      b.setAttribute('aria-checked', String(Number(b.dataset.score) === score));
    });
    (this.rate.querySelector('.cw-rate-send') as HTMLButtonElement).disabled = score === 0;
  }

  private async sendRating(): Promise<void> {
    if (!this.view || !this.chat || !this.score) return;
    const comment = (this.rate.elements.namedItem('comment') as HTMLTextAreaElement).value.trim();
    try {
      await svc(this.chat, 'service_rate', { session_id: this.view.session_id, score: this.score, ...(comment ? { comment } : {}) });
      this.view.rated_at = this.view.resolved_at;
      this.rate.hidden = true;
      this.rated.hidden = false;
      this.rated.dataset.score = String(this.score);
      this.rated.textContent = `Thank you! You rated this conversation ${this.score} of 5.`;
    } catch (e) {
      this.fail(e);
    }
  }
}

const s = ownScript();
const cfg = s ? config(s) : 'chatd widget: no <script data-shop=…> tag found';
if (typeof cfg === 'string') console.error(cfg);
else {
  const start = () => { (window as any).chatdWidget = new Widget(cfg); };
  if (document.body) start(); else document.addEventListener('DOMContentLoaded', start);
}
