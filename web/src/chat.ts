// The chat demo (/demo/): log in as a demo user, list the sessions with
// their unread counts, read a conversation (older pages on scroll or
// button), send text and images, see read receipts and typing, recall
// your messages, and create groups. Plain DOM on the SDK's ChatClient.
import { ChatClient } from '../../sdk/js/src/index.ts';
import type { ImageContent, Message, OpContent, SessionView } from '../../sdk/js/src/index.ts';
import { $, clock, fileURL, h, setup, token, upload, type DemoSetup, type DemoToken } from './lib/demo.ts';

const PAGE = 30; // messages per history page

let demo: DemoSetup;
let tok: DemoToken;
let client: ChatClient;
const sessions = new Map<number, SessionView>();
/** The peer's read seq in private sessions, from `read` events. */
const peerRead = new Map<number, number>();

/** The open conversation. */
let conv: { sid: number; msgs: Map<number, Message>; oldest: number; more: boolean; loading: boolean } | null = null;

const nick = (uid: string) => demo.users.find((u) => u.uid === uid)?.nickname ?? uid;
const showError = (e: unknown) => { $('error').textContent = e instanceof Error ? e.message : String(e); };

// ---- login

async function start(): Promise<void> {
  const status = $('login-status');
  try {
    demo = await setup();
  } catch (e) {
    status.textContent = String((e as Error).message);
    return;
  }
  const box = $('login-users');
  box.replaceChildren(...demo.users.filter((u) => u.role === 'user').map((u) =>
    h('button', { type: 'button', 'data-uid': u.uid, onclick: () => { location.search = '?uid=' + u.uid; } }, 'Chat as ' + u.nickname)));
  status.textContent = 'The demo app is set up.';
  const uid = new URLSearchParams(location.search).get('uid');
  if (uid) await login(uid).catch(showLoginError);
}

function showLoginError(e: unknown): void {
  $('login-status').textContent = (e as Error).message;
  $('login').hidden = false;
  $('chat').hidden = true;
}

async function login(uid: string): Promise<void> {
  tok = await token(uid);
  client = new ChatClient({
    url: tok.ws_url, app: tok.app, token: tok.token,
    getToken: async () => (tok = await token(uid)).token,
  });
  client.on('state', ({ state }) => {
    const s = $('state');
    s.textContent = state;
    s.className = 'state ' + state;
  });
  client.on('message', onMessage);
  client.on('read', (r) => {
    const v = sessions.get(r.session_id);
    if (r.uid === client.uid) { // another device of mine read it
      if (v) { v.read_seq = Math.max(v.read_seq, r.read_seq); v.unread = Math.max(0, v.last_seq - v.read_seq); renderSession(v); }
      return;
    }
    peerRead.set(r.session_id, Math.max(peerRead.get(r.session_id) ?? 0, r.read_seq));
    if (conv?.sid === r.session_id) renderReceipts();
  });
  client.on('typing', (t) => { if (conv?.sid === t.session_id && t.uid !== client.uid) showTyping(t.uid); });
  client.on('group', () => { void loadSessions(); });
  client.on('synced', () => { void loadSessions(); });
  client.on('error', showError);
  await client.connect();
  $('me').textContent = nick(client.uid);
  $('login').hidden = true;
  $('chat').hidden = false;
  document.title = nick(client.uid) + ' — chatd demo';
  const others = demo.users.filter((u) => u.role === 'user' && u.uid !== client.uid);
  $('peers').replaceChildren(...others.map((u) =>
    h('button', { type: 'button', 'data-peer': u.uid, onclick: () => openPrivate(u.uid) }, u.nickname)));
  $('group-members').replaceChildren(...others.map((u) =>
    h('label', {}, h('input', { type: 'checkbox', value: u.uid, checked: true }), ' ' + u.nickname)));
}

// ---- the session list

async function loadSessions(): Promise<void> {
  const list = await client.sessionList();
  sessions.clear();
  for (const v of list) sessions.set(v.session_id, v);
  renderSessions();
}

function title(v: SessionView): string {
  if (v.kind === 'private') return (v as any).peer_nickname || nick(v.peer ?? '');
  return v.name || `${v.kind} ${v.session_id}`;
}

function renderSessions(): void {
  const ul = $('sessions');
  const list = [...sessions.values()].sort((a, b) => (b.last_at ?? b.created_at) - (a.last_at ?? a.created_at));
  ul.replaceChildren(...list.map(sessionItem));
}

function sessionItem(v: SessionView): HTMLLIElement {
  const unread = conv?.sid === v.session_id ? 0 : v.unread;
  return h('li', { 'data-sid': v.session_id, class: conv?.sid === v.session_id ? 'active' : '', onclick: () => openSession(v.session_id) },
    h('span', { class: 'name' }, title(v), v.kind === 'group' ? h('span', { class: 'tag' }, 'group') : null),
    unread > 0 ? h('span', { class: 'unread' }, String(unread)) : h('span', {}),
    h('span', { class: 'preview' }, v.last_preview ? (v.last_from ? nick(v.last_from) + ': ' : '') + v.last_preview : ''));
}

function renderSession(v: SessionView): void {
  const old = $('sessions').querySelector(`li[data-sid="${v.session_id}"]`);
  if (old) old.replaceWith(sessionItem(v)); else renderSessions();
}

async function openPrivate(uid: string): Promise<void> {
  try {
    const v = await client.privateSession(uid);
    sessions.set(v.session_id, v);
    await openSession(v.session_id);
  } catch (e) { showError(e); }
}

$('new-group').addEventListener('click', () => { $('group-form').hidden = !$('group-form').hidden; });
$('group-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const uids = [...$('group-members').querySelectorAll<HTMLInputElement>('input:checked')].map((i) => i.value);
  try {
    const v = await client.groupCreate($<HTMLInputElement>('group-name').value.trim(), uids);
    sessions.set(v.session_id, v);
    $('group-form').hidden = true;
    await openSession(v.session_id);
  } catch (err) { showError(err); }
});

// ---- the conversation

async function openSession(sid: number): Promise<void> {
  conv = { sid, msgs: new Map(), oldest: 0, more: true, loading: false };
  $('messages').replaceChildren();
  $('typing').textContent = '';
  $('composer').hidden = false;
  const v = sessions.get(sid) ?? await client.request('session', { session_id: sid });
  sessions.set(sid, v);
  $('conv-title').textContent = title(v);
  renderSessions();
  await loadOlder();
  scrollToEnd();
  markRead();
  $<HTMLInputElement>('text').focus();
}

/** Loads the page of history before the oldest message shown. */
async function loadOlder(): Promise<void> {
  const c = conv;
  if (!c || c.loading || !c.more) return;
  c.loading = true;
  const sc = $('scroller');
  const fromBottom = sc.scrollHeight - sc.scrollTop;
  try {
    const page = await client.history(c.sid, c.oldest ? { before: c.oldest, limit: PAGE } : { limit: PAGE });
    if (conv !== c) return;
    for (const m of page.messages) {
      show(m);
      if (!c.oldest || m.seq < c.oldest) c.oldest = m.seq; // op entries count too
    }
    c.more = page.has_more && page.messages.length > 0;
    sc.scrollTop = sc.scrollHeight - fromBottom; // keep what was on screen in place
  } catch (e) { showError(e); } finally { c.loading = false; }
  $('older').hidden = !c.more;
}
$('older').addEventListener('click', () => { void loadOlder(); });
$('scroller').addEventListener('scroll', () => { if ($('scroller').scrollTop < 40) void loadOlder(); });

function onMessage(m: Message): void {
  const v = sessions.get(m.session_id);
  if (!v) { void loadSessions(); } else {
    v.last_seq = Math.max(v.last_seq, m.seq);
    v.last_at = m.created_at;
    v.last_from = m.from;
    v.last_preview = preview(m);
    if (m.from !== client.uid && conv?.sid !== m.session_id) v.unread++;
    if (m.from === client.uid) v.read_seq = m.seq;
    renderSessions();
  }
  if (conv?.sid !== m.session_id) return;
  const sc = $('scroller');
  const atEnd = sc.scrollHeight - sc.scrollTop - sc.clientHeight < 80;
  show(m);
  if (m.from !== client.uid) $('typing').textContent = '';
  if (atEnd || m.from === client.uid) scrollToEnd();
  markRead();
}

function preview(m: Message): string {
  switch (m.type) {
    case 'text': return String(m.content.text);
    case 'image': return '[image]';
    case 'op': return (m.content as OpContent).op === 'recall' ? '[recalled]' : '[edited]';
    case 'recalled': return '[recalled]';
    default: return '[' + m.type + ']';
  }
}

/** Puts a message in the conversation at its seq (once: a seq shown is replaced, not repeated). */
function show(m: Message): void {
  const c = conv!;
  if (m.type === 'op') { // a recall or edit of an earlier message: change that one
    const op = m.content as OpContent;
    const t = c.msgs.get(op.seq);
    if (!t) return;
    if (op.op === 'recall') show({ ...t, type: 'recalled', content: { by: op.by, at: op.at, op_seq: m.seq } as any });
    else if (op.content) show({ ...t, content: op.content as any, edit_count: op.edit_count });
    return;
  }
  if (!c.oldest || m.seq < c.oldest) c.oldest = m.seq;
  c.msgs.set(m.seq, m);
  const ol = $('messages');
  const li = item(m);
  const same = ol.querySelector(`li[data-seq="${m.seq}"]`);
  if (same) { same.replaceWith(li); return; }
  if (m.cid) ol.querySelector(`li.pending[data-cid="${CSS.escape(m.cid)}"]`)?.remove();
  // the first shown message with a greater seq, searched from the end (live messages append)
  let after: Element | null = null;
  for (let e = ol.lastElementChild; e && Number((e as HTMLElement).dataset.seq ?? Infinity) > m.seq; e = e.previousElementSibling) after = e;
  ol.insertBefore(li, after);
}

function item(m: Message): HTMLLIElement {
  const mine = m.from === client.uid;
  const li = h('li', { 'data-seq': m.seq, class: (mine ? 'mine ' : '') + (m.type === 'recalled' ? 'recalled' : '') });
  if (m.cid) li.dataset.cid = m.cid;
  const bubble = h('div', { class: 'bubble' });
  if (m.type === 'recalled') bubble.textContent = (mine ? 'You' : nick(m.from)) + ' recalled a message';
  else if (m.type === 'text') bubble.append(h('span', { class: 'text' }, String(m.content.text)));
  else if (m.type === 'image' && (m.content as ImageContent).file_id) {
    const ic = m.content as ImageContent;
    const img = h('img', { alt: 'image', width: ic.width ?? '', height: ic.height ?? '' });
    bubble.append(img);
    fileURL(tok, ic.file_id!).then((u) => { img.src = u; }, showError);
  } else bubble.textContent = preview(m);
  const meta = h('div', { class: 'meta' }, (mine ? '' : nick(m.from) + ' · ') + clock(m.created_at),
    mine ? h('span', { class: 'receipt' }) : null,
    mine && m.type !== 'recalled' ? h('button', { type: 'button', class: 'recall', onclick: () => recall(m) }, 'Recall') : null);
  li.append(bubble, meta);
  if (mine) setReceipt(li, m.seq);
  return li;
}

function setReceipt(li: Element, seq: number): void {
  const r = li.querySelector('.receipt');
  if (!r || !conv || sessions.get(conv.sid)?.kind !== 'private') return;
  r.textContent = seq <= (peerRead.get(conv.sid) ?? 0) ? ' · Read' : ' · Sent';
}

function renderReceipts(): void {
  for (const li of $('messages').querySelectorAll('li.mine[data-seq]')) setReceipt(li, Number((li as HTMLElement).dataset.seq));
}

async function recall(m: Message): Promise<void> {
  try { await client.recall(m.session_id, m.seq); } catch (e) { showError(e); }
}

/**
 * Marks the open conversation read up to its last message: one `read`
 * for a burst of messages (a reconnect can deliver hundreds at once),
 * not one each.
 */
let readTimer: ReturnType<typeof setTimeout> | undefined;
function markRead(): void {
  if (readTimer !== undefined) return;
  readTimer = setTimeout(() => {
    readTimer = undefined;
    const c = conv;
    if (!c || document.hidden) return;
    const v = sessions.get(c.sid);
    if (!v || v.read_seq >= v.last_seq) return;
    v.read_seq = v.last_seq;
    v.unread = 0;
    client.read(c.sid, v.last_seq).catch(showError);
  }, 200);
}
document.addEventListener('visibilitychange', markRead);

function scrollToEnd(): void { const sc = $('scroller'); sc.scrollTop = sc.scrollHeight; }

let typingTimer: ReturnType<typeof setTimeout> | undefined;
function showTyping(uid: string): void {
  $('typing').textContent = nick(uid) + ' is typing…';
  clearTimeout(typingTimer);
  typingTimer = setTimeout(() => { $('typing').textContent = ''; }, 4000);
}

// ---- sending

let lastTyping = 0;
$('text').addEventListener('input', () => {
  if (!conv || Date.now() - lastTyping < 2000) return;
  lastTyping = Date.now();
  client.typing(conv.sid).catch(() => { /* typing is best effort */ });
});

$('composer').addEventListener('submit', (e) => {
  e.preventDefault();
  const input = $<HTMLInputElement>('text');
  const text = input.value.trim();
  if (!text || !conv) return;
  input.value = '';
  lastTyping = 0;
  send({ type: 'text', content: { text } }, text);
});

/**
 * The sends in flight, one after another: each waits for the one before
 * it to be acknowledged, so that messages are stored in the order they
 * were typed even when some are refused for a moment (rate_limited) and
 * retried by the SDK.
 */
let sending: Promise<unknown> = Promise.resolve();

/** Sends into the open conversation, showing it as pending until the SDK delivers it back. */
function send(msg: { type: 'text'; content: { text: string } } | { type: 'image'; content: { file_id: string; width?: number; height?: number } }, label: string): void {
  const sid = conv!.sid;
  const cid = crypto.randomUUID();
  $('messages').append(h('li', { class: 'mine pending', 'data-cid': cid }, h('div', { class: 'bubble' }, label), h('div', { class: 'meta' }, 'sending…')));
  scrollToEnd();
  sending = sending.then(() => client.send({ ...msg, session_id: sid, cid })).catch((err) => {
    $('messages').querySelector(`li.pending[data-cid="${cid}"]`)?.remove();
    showError(err);
  });
}

$('image').addEventListener('change', async () => {
  const input = $<HTMLInputElement>('image');
  const file = input.files?.[0];
  input.value = '';
  if (!file || !conv) return;
  const bar = $<HTMLProgressElement>('upload-progress');
  bar.hidden = false;
  bar.value = 0;
  try {
    const up = await upload(tok, file, 'image', file.name, (f) => { bar.value = f; });
    send({ type: 'image', content: { file_id: up.file_id, width: up.width, height: up.height } }, '[image]');
  } catch (e) { showError(e); } finally { bar.hidden = true; }
});

$('setup').addEventListener('click', () => { void start(); });
void start();
