// The agent console (console.html): a demo shop's agent logs in, sets
// their status, sees the queue and their open conversations, claims,
// answers (with canned replies), writes private notes, transfers and
// resolves. Everything is a customer-service action of the client protocol
// (docs/customer-service.md) over the SDK's one WebSocket.

import { ChatClient } from '../../sdk/js/src/index.ts';
import type { Message } from '../../sdk/js/src/index.ts';
import { h, svc, demoCall, roleOf, textOf, clock, Names } from './widget/common.ts';
import type { ConversationView, DemoSetup, DemoToken, ServiceEvent } from './widget/common.ts';

interface AgentView { uid: string; shop: string; capacity: number; status: string; effective: string; open: number; connected: boolean }
interface QueueEntry { session_id: number; customer: string; position: number; queued_at: number; waiting_ms: number; last_agent?: string }
interface Canned { canned_id: number; shortcut: string; text: string; by: string }
interface Note { session_id: number; note_id: number; agent: string; text: string; after_seq: number; created_at: number }
interface Conv { view: ConversationView; msgs: Map<number, Message>; notes: Note[]; loaded: boolean }

const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;

let chat: ChatClient;
let names: Names;
let me = '';
let shop = '';
let skew = 0; // server clock - local clock, ms
let agents: AgentView[] = [];
let queue: QueueEntry[] = [];
let canned: Canned[] = [];
const convs = new Map<number, Conv>();
let selected = 0;

function conv(v: ConversationView): Conv {
  let c = convs.get(v.session_id);
  if (!c) convs.set(v.session_id, (c = { view: v, msgs: new Map(), notes: [], loaded: false }));
  else c.view = v;
  return c;
}

function fail(e: unknown): void {
  const el = $('error');
  el.hidden = false;
  el.textContent = (e as Error).message || String(e);
}

function clearError(): void { $('error').hidden = true; }

/** Runs an action from a button: errors show in the page. */
async function act(f: () => Promise<unknown>): Promise<void> {
  clearError();
  try { await f(); } catch (e) { fail(e); }
}

// ---- login

async function main(): Promise<void> {
  let setup: DemoSetup;
  try {
    setup = await demoCall<DemoSetup>('setup');
  } catch (e) {
    fail(new Error('Could not set up the demo: ' + (e as Error).message));
    return;
  }
  const params = new URLSearchParams(location.search);
  shop = params.get('shop') || setup.shop.id;
  $('shop-name').textContent = setup.shop.name;
  const pick = $<HTMLSelectElement>('agent');
  pick.replaceChildren(...setup.users.filter((u) => u.role === 'agent').map((u) => h('option', { value: u.uid }, u.nickname)));
  const login = (uid: string) => act(async () => {
    const t = await demoCall<DemoToken>('token', { uid });
    await start(t);
    history.replaceState(null, '', '?agent=' + encodeURIComponent(uid) + (params.get('shop') ? '&shop=' + encodeURIComponent(shop) : ''));
  });
  $<HTMLFormElement>('login').onsubmit = (e) => { e.preventDefault(); void login(pick.value); };
  const a = params.get('agent');
  if (a) { pick.value = a; void login(a); }
}

async function start(t: DemoToken): Promise<void> {
  chat = new ChatClient({ url: t.ws_url, app: t.app, token: t.token, platform: 'web' });
  names = new Names(chat);
  chat.on('message', (m) => onMessage(m));
  chat.on('service', (e) => onEvent(e as unknown as ServiceEvent));
  chat.on('state', (s) => { $('conn').textContent = 'connection: ' + s.state; document.body.dataset.connection = s.state; });
  chat.on('connected', () => void refresh());
  chat.on('disconnected', (e) => { if (!e.reconnect) fail(new Error(`disconnected (${e.code} ${e.reason}): reload to log in again`)); });
  const r = await chat.connect();
  me = r.uid;
  skew = r.server_time - Date.now();
  $('login').hidden = true;
  $('me').textContent = r.nickname;
  document.body.dataset.agent = me;
  $('app').hidden = false;
  $<HTMLSelectElement>('status').onchange = (e) => void act(async () => {
    await svc(chat, 'service_status', { shop, status: (e.target as HTMLSelectElement).value });
    await refresh();
  });
  wireConversation();
  wireCanned();
  await refresh();
  await loadCanned();
  setInterval(renderQueue, 5000); // the waiting times
}

// ---- lists: queue, mine, agents

let refreshing: Promise<void> | null = null;
let again = false;

/** Reads the queue, the agent's conversations and the shop's agents again (one at a time). */
function refresh(): Promise<void> {
  if (refreshing) { again = true; return refreshing; }
  refreshing = (async () => {
    do {
      again = false;
      try {
        const [q, mine, as] = await Promise.all([
          svc<QueueEntry[]>(chat, 'service_queue', { shop }),
          svc<ConversationView[]>(chat, 'service_mine', { shop }),
          svc<AgentView[]>(chat, 'service_agents', { shop }),
        ]);
        queue = q;
        agents = as;
        for (const c of convs.values()) {
          if (c.view.status === 'open' && c.view.agent === me && !mine.some((v) => v.session_id === c.view.session_id)) {
            // no longer ours: transferred or resolved by someone else
            c.view = await svc<ConversationView>(chat, 'service_conversation', { session_id: c.view.session_id }).catch(() => c.view);
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
  })().finally(() => { refreshing = null; });
  return refreshing;
}

function waited(since: number): string {
  const s = Math.max(0, Math.round((Date.now() + skew - since) / 1000));
  return s < 60 ? `${s}s` : `${Math.floor(s / 60)}m ${s % 60}s`;
}

function renderQueue(): void {
  $('queue-count').textContent = String(queue.length);
  $('queue').replaceChildren(...queue.map((q) => {
    const who = h('span', { class: 'who' }, q.customer);
    void names.get(q.customer).then((n) => { who.textContent = n; });
    return h('li', { 'data-session': q.session_id, 'data-customer': q.customer },
      h('span', { class: 'pos' }, '#' + q.position), who, h('span', { class: 'wait' }, 'waiting ' + waited(q.queued_at)),
      q.last_agent ? h('span', { class: 'last' }, 'last: ' + q.last_agent) : null,
      h('button', { type: 'button', class: 'claim', onclick: () => act(() => claim(q.session_id)) }, 'Claim'));
  }));
  if (!queue.length) $('queue').append(h('li', { class: 'empty' }, 'Nobody is waiting.'));
}

async function claim(sid: number): Promise<void> {
  const v = await svc<ConversationView>(chat, 'service_claim', { session_id: sid });
  conv(v);
  await select(sid);
  await refresh();
}

function renderMine(): void {
  const mine = [...convs.values()].filter((c) => c.view.status === 'open' && c.view.agent === me);
  $('mine-count').textContent = String(mine.length);
  $('mine').replaceChildren(...mine.map((c) => {
    const who = h('span', { class: 'who' }, c.view.customer);
    void names.get(c.view.customer).then((n) => { who.textContent = n; });
    const last = [...c.msgs.values()].pop();
    return h('li', { 'data-session': c.view.session_id, 'data-customer': c.view.customer, class: c.view.session_id === selected ? 'sel' : '',
      onclick: () => void act(() => select(c.view.session_id)) },
    who, h('span', { class: 'preview' }, last ? textOf(last) : ''));
  }));
  if (!mine.length) $('mine').append(h('li', { class: 'empty' }, 'No open conversations.'));
}

function renderAgents(): void {
  $('agents').replaceChildren(...agents.map((a) => h('li', { 'data-uid': a.uid, 'data-effective': a.effective },
    h('span', { class: 'dot ' + (a.effective === 'online' ? (a.status === 'online' ? 'on' : 'away') : (a.status === 'away' ? 'away' : 'off')) }),
    a.uid + (a.uid === me ? ' (you)' : ''), h('span', { class: 'load' }, `${a.status} · ${a.open}/${a.capacity}`))));
  const self = agents.find((a) => a.uid === me);
  if (self) {
    $<HTMLSelectElement>('status').value = self.status;
    $('effective').textContent = self.effective === 'online' ? 'routing to you' : 'not routed';
  }
  const to = $<HTMLSelectElement>('transfer-to');
  const keep = to.value;
  to.replaceChildren(h('option', { value: '' }, 'Back to the queue'),
    ...agents.filter((a) => a.uid !== me).map((a) => h('option', { value: a.uid }, `${a.uid} (${a.status})`)));
  to.value = [...to.options].some((o) => o.value === keep) ? keep : '';
}

// ---- events

function onEvent(e: ServiceEvent): void {
  if (e.shop !== shop) return;
  const line = describe(e);
  if (line) {
    const li = h('li', { 'data-type': e.type, 'data-session': e.session_id ?? '' }, h('time', {}, clock(e.time)), ' ', line);
    $('log').prepend(li);
  }
  if (e.session_id && convs.has(e.session_id)) {
    const c = convs.get(e.session_id)!;
    if (e.type === 'resolved') c.view = { ...c.view, status: 'resolved', agent: undefined, last_agent: e.agent, resolved_at: e.time };
    if (e.type === 'note' && c.loaded) void loadNotes(c);
    if (e.type === 'rated' && e.session_id === selected) renderSelected();
    if (e.session_id === selected && e.agent === me && ['assigned', 'claimed', 'transferred'].includes(e.type)) void act(() => select(selected));
  }
  void refresh();
}

function describe(e: ServiceEvent): string {
  switch (e.type) {
    case 'queued': return `${e.customer} is waiting (position ${e.position})`;
    case 'assigned': return `${e.customer} was assigned to ${e.agent}`;
    case 'claimed': return `${e.agent} claimed ${e.customer}`;
    case 'transferred': return `${e.from} handed ${e.customer} ${e.agent ? 'to ' + e.agent : 'back to the queue'}${e.note ? ': “' + e.note + '”' : ''}`;
    case 'resolved': return `${e.by} resolved ${e.customer}'s conversation`;
    case 'reopened': return `${e.customer} wrote again: reopened`;
    case 'agent_status': return `${e.agent} set ${e.set} (${e.status === 'online' ? 'routed' : 'not routed'})`;
    case 'note': return `${e.agent} noted on ${e.customer}: “${e.note}”`;
    case 'rated': return `${e.customer} rated ${e.agent} ${e.score} of 5`;
    default: return '';
  }
}

function onMessage(m: Message): void {
  const c = convs.get(m.session_id);
  if (!c) {
    // A conversation that became ours (a transfer to us): the lists know it after the refresh.
    void refresh();
    return;
  }
  if (m.type === 'op') return;
  c.msgs.set(m.seq, m);
  if (m.session_id === selected) renderSelected();
  else renderMine();
}

// ---- the selected conversation

async function select(sid: number): Promise<void> {
  selected = sid;
  const c = convs.get(sid);
  if (c && (c.view.status === 'open' || !c.loaded)) {
    // Read every time: messages written while it was not ours (before a
    // transfer to us) never reached us live.
    const page = await chat.history(sid, { limit: 100 });
    for (const m of page.messages) if (m.type !== 'op') c.msgs.set(m.seq, m);
    await loadNotes(c);
    c.loaded = true;
  }
  renderMine();
  renderSelected();
  $<HTMLTextAreaElement>('input').focus();
}

async function loadNotes(c: Conv): Promise<void> {
  c.notes = await svc<Note[]>(chat, 'service_notes', { session_id: c.view.session_id });
  if (c.view.session_id === selected) renderSelected();
}

function renderSelected(): void {
  const c = convs.get(selected);
  const pane = $('conv');
  pane.hidden = !c;
  $('placeholder').hidden = !!c;
  if (!c) return;
  const v = c.view;
  pane.dataset.session = String(v.session_id);
  pane.dataset.status = v.status;
  const title = $('conv-title');
  title.textContent = v.customer;
  void names.get(v.customer).then((n) => { title.textContent = n; });
  $('conv-status').textContent = v.status === 'open' ? (v.agent === me ? 'open · yours' : 'open · ' + v.agent) : v.status;
  const mine = v.status === 'open' && v.agent === me;
  for (const id of ['resolve', 'transfer', 'send', 'input', 'transfer-to', 'transfer-note']) ($(id) as HTMLButtonElement).disabled = !mine;
  const items: { key: number; el: HTMLElement }[] = [];
  for (const m of c.msgs.values()) {
    const role = roleOf(m, v.customer);
    const auto = typeof (m.content as Record<string, unknown>).auto === 'string';
    items.push({ key: m.seq, el: h('li', { class: `msg ${role}${auto ? ' auto' : ''}`, 'data-seq': m.seq, 'data-role': role },
      h('div', { class: 'meta' }, (m.from || 'shop') + (auto ? ' · automatic reply' : '') + ' · ' + clock(m.created_at)),
      h('div', { class: 'text' }, textOf(m))) });
  }
  for (const n of c.notes) {
    items.push({ key: n.after_seq + 0.5, el: h('li', { class: 'note', 'data-note': n.note_id },
      h('div', { class: 'meta' }, `private note · ${n.agent} · ${clock(n.created_at)}`), h('div', { class: 'text' }, n.text)) });
  }
  items.sort((a, b) => a.key - b.key);
  const list = $('messages');
  list.replaceChildren(...items.map((i) => i.el));
  list.scrollTop = list.scrollHeight;
  const last = Math.max(0, ...c.msgs.keys());
  if (mine && last) chat.read(v.session_id, last).catch(() => { /* best effort */ });
}

function wireConversation(): void {
  const input = $<HTMLTextAreaElement>('input');
  $<HTMLFormElement>('compose').onsubmit = (e) => {
    e.preventDefault();
    const text = input.value.trim();
    if (!text || !selected) return;
    input.value = '';
    showSuggestions();
    void act(async () => {
      try { await chat.send({ session_id: selected, type: 'text', content: { text } }); } catch (err) { input.value = text; throw err; }
    });
  };
  input.onkeydown = (e) => {
    const first = $('suggest').querySelector<HTMLButtonElement>('button');
    if ((e.key === 'Tab' || e.key === 'Enter') && first && !$('suggest').hidden) { e.preventDefault(); first.click(); return; }
    if (e.key === 'Enter' && !e.shiftKey) { e.preventDefault(); $<HTMLFormElement>('compose').requestSubmit(); }
  };
  input.oninput = () => showSuggestions();
  $('resolve').onclick = () => void act(async () => {
    const v = await svc<ConversationView>(chat, 'service_resolve', { session_id: selected });
    conv(v);
    await refresh();
  });
  $('transfer').onclick = () => void act(async () => {
    const to = $<HTMLSelectElement>('transfer-to').value;
    const note = $<HTMLInputElement>('transfer-note').value.trim();
    const v = await svc<ConversationView>(chat, 'service_transfer', { session_id: selected, ...(to ? { to } : { queue: true }), ...(note ? { note } : {}) });
    $<HTMLInputElement>('transfer-note').value = '';
    conv(v);
    await refresh();
  });
  $<HTMLFormElement>('note-form').onsubmit = (e) => {
    e.preventDefault();
    const el = $<HTMLTextAreaElement>('note');
    const text = el.value.trim();
    if (!text || !selected) return;
    void act(async () => {
      await svc(chat, 'service_note', { session_id: selected, text });
      el.value = '';
      await loadNotes(convs.get(selected)!);
    });
  };
}

// ---- canned replies

/** Under the composer: the canned replies whose shortcut starts with what follows a leading "/". */
function showSuggestions(): void {
  const box = $('suggest');
  const v = $<HTMLTextAreaElement>('input').value;
  const m = /^\/(\S*)$/.exec(v);
  const hits = m ? canned.filter((c) => c.shortcut.startsWith(m[1].toLowerCase())) : [];
  box.hidden = hits.length === 0;
  box.replaceChildren(...hits.map((c) => h('button', { type: 'button', 'data-shortcut': c.shortcut, onclick: () => {
    $<HTMLTextAreaElement>('input').value = c.text;
    box.hidden = true;
    $<HTMLTextAreaElement>('input').focus();
  } }, h('b', {}, '/' + c.shortcut), ' ', c.text)));
}

async function loadCanned(): Promise<void> {
  canned = await svc<Canned[]>(chat, 'service_canned', { shop });
  $('canned').replaceChildren(...canned.map((c) => h('li', { 'data-shortcut': c.shortcut },
    h('b', {}, '/' + c.shortcut), ' ', h('span', {}, c.text),
    h('button', { type: 'button', class: 'del', title: 'Delete', onclick: () => void act(async () => {
      await svc(chat, 'service_canned_delete', { shop, canned_id: c.canned_id });
      await loadCanned();
    }) }, '×'))));
  if (!canned.length) $('canned').append(h('li', { class: 'empty' }, 'No canned replies yet.'));
}

function wireCanned(): void {
  $<HTMLFormElement>('canned-form').onsubmit = (e) => {
    e.preventDefault();
    const f = e.target as HTMLFormElement;
    const shortcut = (f.elements.namedItem('shortcut') as HTMLInputElement).value.trim();
    const text = (f.elements.namedItem('text') as HTMLInputElement).value.trim();
    if (!shortcut || !text) return;
    void act(async () => {
      const same = canned.find((c) => c.shortcut === shortcut.replace(/^\//, ''));
      await svc(chat, 'service_canned_put', { shop, shortcut, text, ...(same ? { canned_id: same.canned_id } : {}) });
      f.reset();
      await loadCanned();
    });
  };
}

void main();
