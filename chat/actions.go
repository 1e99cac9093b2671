package chat

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Actions lists every client action, for docs and the unknown-action error.
var Actions = []string{"login", "logout", "ping", "send", "history", "sync", "sessions", "read",
	"private", "session", "group_create", "group_add", "group_remove", "group_leave", "user",
	"consult_get", "consult_accept", "consult_decline", "consult_pause", "consult_resume", "consult_end",
	"recall", "edit", "delete", "clear", "hidden", "forward",
	"group_role", "group_transfer", "group_mute", "group_mute_all", "group_announce", "group_policy", "group_dismiss",
	"broadcasts", "broadcast_read"}

// handle runs one request of cl. Called on cl's drain goroutine (or the HTTP
// caller's goroutine for Do); b is the client's own copy.
func (c *Core) handle(ctx context.Context, cl *Client, b []byte) {
	var r request
	if e := decodeRequest(b, &r); e != nil {
		c.countError(e.Code)
		cl.reply(appendError(nil, r.ID, e.Code, e.Message))
		return
	}
	if r.Action == "login" {
		c.login(ctx, cl, &r)
		return
	}
	if !cl.loggedIn.Load() {
		c.countError(CodeUnauthorized)
		cl.reply(appendError(nil, r.ID, CodeUnauthorized, "log in first: the first action on a connection must be login"))
		return
	}
	if c.owner != nil && !c.owner.serving.Load() && c.owner.forward(ctx, cl, &r, b) {
		return // run by the domains' owner (owner.go)
	}
	if r.Action == "send" {
		// Replied to after the commit, by the deliverer.
		if err := c.sendFrom(ctx, cl, &r); err != nil {
			cl.replyErr(r.ID, "send", err)
		}
		return
	}
	if isServiceAction(r.Action) {
		data, err := c.serviceAction(ctx, cl, r.Action, b)
		if err != nil {
			cl.replyErr(r.ID, r.Action, err)
			return
		}
		cl.reply(appendOK(nil, r.ID, data))
		return
	}
	data, err := c.dispatch(ctx, cl, &r)
	if err != nil {
		cl.replyErr(r.ID, r.Action, err)
		return
	}
	cl.reply(appendOK(nil, r.ID, data))
}

func (c *Core) dispatch(ctx context.Context, cl *Client, r *request) (any, error) {
	id := cl.id
	if strings.HasPrefix(r.Action, "consult_") {
		return c.consultAction(ctx, id, r) // consult_service.go
	}
	switch r.Action {
	case "ping":
		return map[string]int64{"server_time": c.nowMS()}, nil
	case "logout":
		c.logout(cl, "logout")
		cl.peer.Close(CloseNormal, "logged out")
		return nil, nil
	case "history":
		return c.history(ctx, id, r.SessionID, r.Before, r.Limit)
	case "sync":
		return c.sync(ctx, id, r.SessionID, r.After, r.Limit)
	case "sessions":
		return c.sessionList(ctx, id, SessionListInput{Cursor: r.Cursor, Limit: r.Limit, Keyword: r.Keyword}) // sessionlist.go
	case "session":
		return c.sessionInfo(ctx, id, r.SessionID)
	case "read":
		return c.markRead(ctx, cl, r.SessionID, r.Seq)
	case "private":
		if r.UID == "" {
			return nil, Errf(CodeBadRequest, "missing uid: whom to open a private session with")
		}
		if err := c.clientPrivateCheck(ctx, id.App, id.UID, r.UID); err != nil { // contacts.go
			return nil, err
		}
		s, err := c.openPrivate(ctx, id.App, id.UID, r.UID)
		if err != nil {
			return nil, err
		}
		return c.sessionView(ctx, id, s.id)
	case "group_create":
		if err := c.groupAllowed(ctx, id.App); err != nil { // contacts.go
			return nil, err
		}
		if err := c.invitesAllowed(ctx, id.App, id.UID, r.UIDs); err != nil { // contacts.go
			return nil, err
		}
		s, err := c.createGroup(ctx, id.App, GroupInput{Owner: id.UID, Name: r.Name, Avatar: r.Avatar, Members: r.UIDs}, true)
		if err != nil {
			return nil, err
		}
		return c.sessionView(ctx, id, s.ID)
	case "group_add":
		if err := c.invitesAllowed(ctx, id.App, id.UID, r.UIDs); err != nil { // contacts.go
			return nil, err
		}
		return nil, c.groupAdd(ctx, id, r.SessionID, r.UIDs)
	case "group_remove":
		return nil, c.groupRemove(ctx, id, r.SessionID, r.UIDs)
	case "group_leave":
		return nil, c.groupRemove(ctx, id, r.SessionID, []string{id.UID})
	case "recall": // msgops.go
		return c.recallAction(ctx, id, r)
	case "edit":
		return c.editAction(ctx, id, r)
	case "delete": // hide.go
		return c.deleteForMe(ctx, cl, r)
	case "clear":
		return c.clearHistory(ctx, cl, r.SessionID, r.Seq)
	case "hidden":
		return c.hiddenAction(ctx, id, r.SessionID)
	case "forward": // quote.go
		return c.forward(ctx, id, r)
	case "broadcasts": // broadcast.go
		return c.broadcastsAction(ctx, id, r)
	case "broadcast_read":
		return c.broadcastReadAction(ctx, id, r.Seq)
	case "group_role", "group_transfer", "group_mute", "group_mute_all", "group_announce", "group_policy", "group_dismiss":
		return c.groupAction(ctx, id, r) // groups_admin.go
	case "user":
		uid := r.UID
		if uid == "" {
			uid = id.UID
		}
		return c.User(ctx, id.App, uid)
	}
	if data, err, ok := c.contactAction(ctx, cl, r); ok { // contacts.go
		return data, err
	}
	if data, err, ok := c.presenceAction(ctx, cl, r); ok { // presence.go
		return data, err
	}
	if data, err, ok := c.sessionListAction(ctx, cl, r); ok { // sessionlist.go
		return data, err
	}
	return nil, Errf(CodeBadRequest, "unknown action \""+clip(r.Action, 40)+"\"; actions are "+strings.Join(Actions, ", "))
}

// clientError turns any error into what a client may see. An error that
// is neither a client error nor ErrNotFound is an internal one: it is
// logged (Config.LogError) with what failed, and the client is told what
// failed in general terms.
func (c *Core) clientError(what string, err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	if errors.Is(err, ErrNotFound) {
		return Errf(CodeNotFound, "not found")
	}
	c.cfg.LogError(what, err)
	return Errf(CodeInternal, "internal error: "+what+" failed; the server log has details")
}

// ---- login

type loginData struct {
	UID        string `json:"uid"`
	Nickname   string `json:"nickname"`
	Avatar     string `json:"avatar,omitempty"`
	ServerTime int64  `json:"server_time"`
	ExpiresAt  int64  `json:"expires_at"`
}

func (c *Core) login(ctx context.Context, cl *Client, r *request) {
	if cl.loggedIn.Load() {
		cl.replyErr(r.ID, "login", Errf(CodeConflict, "already logged in on this connection"))
		return
	}
	platform, pe := parsePlatform(r.Platform) // devices.go
	if pe != nil {
		c.stats.loginFails.Add(1)
		cl.replyErr(r.ID, "login", pe)
		return
	}
	id, tok, err := c.authenticate(ctx, r.App, r.Token)
	if err != nil {
		c.stats.loginFails.Add(1)
		e := c.clientError("login", err) // once: logged here if internal
		if c.bus.active() {              // RemoteAddr formats a string: only for a subscriber
			c.publish(Event{Topic: TopicError, App: r.App, Error: e, Detail: "login from " + cl.peer.RemoteAddr()})
		}
		cl.replyErr(r.ID, "login", e)
		return
	}
	u, err := c.User(ctx, id.App, id.UID)
	if err != nil {
		cl.replyErr(r.ID, "login", err)
		return
	}
	if c.overConns(c.userRef(id.App, id.UID), 1) {
		c.stats.loginFails.Add(1)
		cl.refuse(r.ID, c.connsRefusal(id.UID))
		return
	}
	c.unauthMu.Lock()
	delete(c.unauth, cl)
	c.unauthMu.Unlock()
	// The registry's copies of app and uid: the token's strings, decoded
	// for this login, become garbage instead of staying live per client.
	cl.u, cl.id = c.userEntry(id.App, id.UID)
	id = cl.id
	cl.token = tokenTag(&tok.Hash)
	cl.platform = platform
	c.expiry.add(cl, tok.ExpiresAt)
	cl.mu.Lock()
	closed := cl.closed
	if !closed {
		cl.loggedIn.Store(true)
	}
	cl.mu.Unlock()
	if closed {
		c.expiry.remove(cl)
		return
	}
	c.stats.logins.Add(1)
	c.stats.online.Add(1)
	var first bool
	if c.cluster == nil {
		first = cl.u.add(cl)
	} else {
		first = c.cluster.addLocal(cl) // broker.go: mirrors count
	}
	if first {
		c.stats.usersOnline.Add(1)
		c.presenceChanged(id.App, cl.u, true) // presence.go
	}
	if c.loginRaced(cl) {
		return
	}
	// The app's device policy may close the user's other connections.
	c.enforceDevices(ctx, cl)
	if c.bus.active() { // RemoteAddr formats a string: only for a subscriber
		c.publish(Event{Topic: TopicLogin, App: id.App, UID: id.UID, Detail: cl.peer.RemoteAddr()})
		if first {
			c.publish(Event{Topic: TopicOnline, App: id.App, UID: id.UID})
		}
	}
	if first {
		c.presenceHook(id.App, id.UID, true) // webhook_presence.go
		c.svcAgentHook(id.App, id.UID)
	}
	d := loginData{UID: u.UID, Nickname: u.Nickname, Avatar: u.Avatar, ServerTime: c.nowMS(), ExpiresAt: tok.ExpiresAt}
	cl.reply(appendLoginOK(make([]byte, 0, 128+len(r.ID)+len(d.UID)+len(d.Nickname)+len(d.Avatar)), r.ID, &d))
}

// authenticate checks a chat token.
func (c *Core) authenticate(ctx context.Context, app, token string) (Identity, Token, error) {
	if app == "" || token == "" {
		return Identity{}, Token{}, Errf(CodeBadRequest, "login needs app and token")
	}
	tok, err := c.store.Token(ctx, HashToken(token))
	if errors.Is(err, ErrNotFound) {
		return Identity{}, Token{}, Errf(CodeUnauthorized, "invalid or revoked token")
	}
	if err != nil {
		return Identity{}, Token{}, err
	}
	if tok.App != app {
		return Identity{}, Token{}, Errf(CodeUnauthorized, "invalid or revoked token")
	}
	if tok.ExpiresAt <= c.nowMS() {
		return Identity{}, Token{}, Errf(CodeUnauthorized, "token expired")
	}
	if e := c.bannedErr(tok.App, tok.UID); e != nil {
		return Identity{}, Token{}, e
	}
	return Identity{App: tok.App, UID: tok.UID}, tok, nil
}

// logout unregisters a logged-in client. Idempotent.
func (c *Core) logout(cl *Client, why string) {
	if !cl.loggedIn.CompareAndSwap(true, false) {
		return
	}
	var last bool
	if c.cluster == nil {
		last = cl.u.remove(cl)
	} else if isMirror(cl) {
		c.cluster.dropMirror(cl) // a device on another node: its own node announces (broker.go)
		return
	} else {
		last = c.cluster.removeLocal(cl)
	}
	c.expiry.remove(cl)
	c.stats.online.Add(-1)
	c.publish(Event{Topic: TopicLogout, App: cl.id.App, UID: cl.id.UID, Detail: why})
	if last {
		c.stats.usersOnline.Add(-1)
		c.wentOffline(cl.id.App, cl.u) // broker.go
	}
}

// ---- send

func (c *Core) sendFrom(ctx context.Context, cl *Client, r *request) error {
	if e := clientSendCheck(r.Type); e != nil {
		return e
	}
	// Before prepareSend, which may create a private session: a muted or
	// limited user creates nothing.
	var now int64
	if e := c.allowUserSend(cl, &now); e != nil {
		return e
	}
	if r.QuoteSeq != 0 || len(r.Mentions) > 0 || r.MentionAll {
		return c.sendReply(ctx, cl, r) // a reply, mentions (quote.go, mentions.go)
	}
	in := SendInput{From: cl.id.UID, To: r.To, Session: r.SessionID, Type: r.Type, Content: r.Content, CID: r.CID, client: true}
	o, err := c.prepareSend(ctx, cl.id.App, &in)
	if err != nil {
		return err
	}
	o.origin = cl
	o.reqID = r.ID
	return c.submit(ctx, o)
}

// errCacheMiss: the fast path needs the store; take the queued path.
var errCacheMiss = errors.New("chat: not cached")

// sendFast runs a send on the calling event loop when it needs no disk: the
// client is logged in and idle, the session is cached and the journal has
// room. It reports false, having done nothing, when the request must take the
// queued path (another action, a cache miss, a full journal). payload is
// borrowed; the op keeps copies. now is the caller's lazy clock reading
// (limits.go: clock).
func (c *Core) sendFast(cl *Client, payload []byte, now *int64) bool {
	var r request
	if fe, ok := decodeFast(payload, &r); !ok || fe != nil || r.Action != "send" || (len(r.ID) > 0 && !validID(r.ID)) {
		return false
	}
	if clientSendCheck(r.Type) != nil {
		return false // the queued path answers
	}
	in := SendInput{From: cl.id.UID, To: r.To, Session: r.SessionID, Type: r.Type, Content: r.Content, CID: r.CID, client: true}
	o, err := c.buildSend(context.Background(), cl.id.App, &in, true)
	if err == errCacheMiss {
		return false
	}
	id := append([]byte(nil), r.ID...)
	if err == nil {
		if e := c.allowUserSend(cl, now); e != nil {
			putOp(o)
			err = e
		}
	}
	if err != nil {
		cl.replyErr(id, "send", err)
		return true
	}
	o.origin, o.reqID = cl, id
	c.submitMu.RLock()
	defer c.submitMu.RUnlock()
	if c.closing.Load() {
		c.lim.send.refund(&cl.u.sendTAT) // the queued path takes it again
		return false                     // the queued path answers unavailable
	}
	select {
	case c.journal <- o:
		return true
	default:
		putOp(o)
		c.lim.send.refund(&cl.u.sendTAT)
		return false // full: the queued path waits for room
	}
}

// cached returns a cached session of app without touching the store.
func (c *Core) cached(app string, id SessionID) *sess {
	c.mu.Lock()
	s := c.sessions[id]
	c.mu.Unlock()
	if s == nil || s.app != app {
		return nil
	}
	return s
}

// cachedPrivate returns the cached private session of a pair.
func (c *Core) cachedPrivate(app, a, b string) *sess {
	key := pairKey(app, a, b)
	c.mu.Lock()
	id, ok := c.pairs[key]
	var s *sess
	if ok {
		s = c.sessions[id]
	}
	c.mu.Unlock()
	return s
}

// prepareSend validates a send and builds its journal op.
func (c *Core) prepareSend(ctx context.Context, app string, in *SendInput) (*op, error) {
	return c.buildSend(ctx, app, in, false)
}

// buildSend validates a send and builds its op. With cacheOnly it never
// touches the store and returns errCacheMiss when it would have to.
func (c *Core) buildSend(ctx context.Context, app string, in *SendInput, cacheOnly bool) (*op, error) {
	if in.Type == "" {
		return nil, Errf(CodeBadRequest, "missing type")
	}
	var attach func(*Message, *Batch)
	if isMedia(in.Type) && len(in.Content) <= c.cfg.MaxContent && mentionsFile(in.Content) {
		if cacheOnly {
			return nil, errCacheMiss // the store has the upload's records
		}
		var err error
		if attach, err = c.resolveFile(ctx, app, in); err != nil {
			return nil, err
		}
	}
	preview, e := validateContent(in.Type, in.Content, c.cfg.MaxContent)
	if e != nil {
		return nil, e
	}
	if len(c.cfg.MediaHosts) > 0 && isMedia(in.Type) {
		if e := c.checkMediaContent(in.Content); e != nil {
			return nil, e
		}
	}
	if len(in.CID) > 64 {
		return nil, Errf(CodeBadRequest, "cid longer than 64 bytes")
	}
	if in.CreatedAt != 0 {
		switch now := c.nowMS(); {
		case in.client:
			return nil, Errf(CodeBadRequest, "created_at is set by the server; only the host's server API may give one")
		case in.CreatedAt < 0:
			return nil, Errf(CodeBadRequest, "created_at must be unix milliseconds after 1970")
		case in.CreatedAt > now:
			return nil, Errf(CodeBadRequest, "created_at "+strconv.FormatInt(in.CreatedAt, 10)+" is in the future (server time "+strconv.FormatInt(now, 10)+")")
		}
	}
	var s *sess
	var err error
	switch {
	case in.Session != 0 && in.To != "":
		return nil, Errf(CodeBadRequest, "give session_id or to, not both")
	case in.Session != 0:
		if cacheOnly {
			if s = c.cached(app, in.Session); s == nil {
				return nil, errCacheMiss
			}
		} else if s, err = c.session(ctx, app, in.Session); err != nil {
			return nil, err
		}
		if in.From != "" && !s.members().has(in.From) {
			return nil, Errf(CodeForbidden, "not a member of session "+itoa(uint64(in.Session)))
		}
		if in.client && s.kind == KindPrivate { // blocks and the messaging policy: contacts.go
			if err := c.privateAllowed(ctx, app, in.From, privatePeer(s, in.From), true, cacheOnly); err != nil {
				return nil, err
			}
		}
		if s.kind == KindGroup {
			if e := c.speakCheck(s, s.members(), in.From); e != nil { // groups_admin.go
				return nil, e
			}
		}
	case cacheOnly && in.To != "" && in.From != "" && in.From != in.To:
		if s = c.cachedPrivate(app, in.From, in.To); s == nil {
			return nil, errCacheMiss
		}
		if in.client {
			if err := c.privateAllowed(ctx, app, in.From, in.To, true, true); err != nil {
				return nil, err
			}
		}
	case cacheOnly:
		return nil, errCacheMiss
	case in.To != "" && in.From == "":
		s, err = c.openSystem(ctx, app, in.To)
	case in.To != "":
		if in.client && in.From != in.To {
			if err := c.clientPrivateCheck(ctx, app, in.From, in.To); err != nil {
				return nil, err
			}
		}
		s, err = c.openPrivate(ctx, app, in.From, in.To)
	default:
		return nil, Errf(CodeBadRequest, "missing session_id or to: where to send")
	}
	if err != nil {
		return nil, err
	}
	if c.owner != nil && (s.kind == KindService || s.kind == KindConsult) && !c.owner.serving.Load() {
		if cacheOnly {
			return nil, errCacheMiss // handle forwards it to the domains' owner (owner.go)
		}
		// Not forwarded: no owner is known, or this node holds the lease
		// and is still loading, or lost it (the host API forwards to a
		// known owner: httpapi/forward.go). Committed here, the send would
		// miss the owner's state (a reopening, a consultation's clock).
		return nil, errOwnerChanging
	}
	if h := c.wh.activeHook(app); h != nil {
		// A synchronous call to the app's server: never on an event loop.
		if cacheOnly {
			return nil, errCacheMiss
		}
		if err := c.beforeSend(ctx, h, app, in, s.id); err != nil {
			return nil, err
		}
		preview, _ = validateContent(in.Type, in.Content, c.cfg.MaxContent) // it may have rewritten it
	}
	o := newOp()
	if s.kind == KindConsult && in.From != "" {
		if err := c.consultOnSend(ctx, app, s, in.From, o, cacheOnly); err != nil {
			putOp(o)
			return nil, err
		}
	}
	o.sess, o.preview, o.start = s, preview, time.Now().UnixNano()
	if prev := o.attach; prev != nil && attach != nil { // a consultation's first reply set one
		o.attach = func(m *Message, b *Batch) { prev(m, b); attach(m, b) }
	} else if attach != nil {
		o.attach = attach
	}
	o.msg = Message{Session: s.id, App: app, From: in.From, Type: in.Type,
		Content: append([]byte(nil), in.Content...), CID: in.CID, CreatedAt: c.nowMS()}
	if in.CreatedAt != 0 {
		o.msg.CreatedAt, o.backdated = in.CreatedAt, true
	}
	return o, nil
}

// fanout delivers a committed message to every online device of every member
// except the connection that sent it. The event is encoded once and shared.
// It reports whether it handed o's message to the event bus, whose
// subscribers read it later (so o must not be recycled).
func (c *Core) fanout(o *op, now bool) (shared bool) {
	m := &o.msg
	if m.Type == TypeOp {
		return c.fanoutOp(o, now) // a recall or an edit (msgops.go)
	}
	if o.sess.kind == KindBroadcast {
		return c.fanoutBroadcast(o, now) // broadcast.go
	}
	// Sized for the whole event (fixed text ~215 bytes), so that it is
	// one allocation, shared by every recipient.
	var ev []byte
	if o.sess.kind == KindService {
		ev = c.svcMessageEvent(m) // with the shop and the sender's role
	} else {
		ev = appendMessageEvent(make([]byte, 0, 224+len(m.From)+len(m.Type)+len(m.CID)+len(m.Content)), m)
	}
	r := o.sess.members()
	var n uint64
	for _, u := range r.users {
		for _, cl := range u.online() {
			if cl == o.origin {
				continue
			}
			n++
			if !sendTo(cl.peer, ev, now) {
				c.stats.dropped.Add(1)
			}
		}
	}
	c.stats.deliveries.Add(n)
	if c.bus.active() {
		c.publish(Event{Topic: TopicMessage, App: o.msg.App, UID: o.msg.From, Session: o.msg.Session,
			Type: o.msg.Type, Message: &o.msg, Members: r.uids()})
		return true
	}
	return false
}

// ---- reading

type messagesPage struct {
	Messages []Message `json:"messages"`
	HasMore  bool      `json:"has_more"`
}

func (c *Core) pageLimit(limit int) int {
	if limit <= 0 {
		return c.cfg.HistoryLimit
	}
	return min(limit, MaxPage)
}

func (c *Core) memberSession(ctx context.Context, id Identity, sid SessionID) (*sess, error) {
	if sid == 0 {
		return nil, Errf(CodeBadRequest, "missing session_id")
	}
	s, err := c.session(ctx, id.App, sid)
	if err != nil {
		return nil, err
	}
	if !s.members().has(id.UID) {
		return nil, Errf(CodeForbidden, "not a member of session "+itoa(uint64(sid)))
	}
	return s, nil
}

// history returns up to limit messages before seq `before` (0: the newest).
func (c *Core) history(ctx context.Context, id Identity, sid SessionID, before uint64, limit int) (*messagesPage, error) {
	if s, err := c.memberSession(ctx, id, sid); err != nil {
		return nil, err
	} else if e := c.dismissedHistory(s); e != nil {
		return nil, e
	}
	if h, err := c.hidden(ctx, sid, id.UID); err != nil || len(h) > 0 { // hide.go
		if err != nil {
			return nil, err
		}
		return c.hiddenPage(ctx, sid, h, before, 0, false, limit)
	}
	return c.historyPage(ctx, sid, before, limit)
}

func (c *Core) historyPage(ctx context.Context, sid SessionID, before uint64, limit int) (*messagesPage, error) {
	limit = c.pageLimit(limit)
	hi := ^uint64(0)
	if before > 0 {
		if before == 1 {
			return &messagesPage{Messages: []Message{}}, nil
		}
		hi = before - 1
	}
	ms, err := c.store.Messages(ctx, sid, 1, hi, limit+1, true)
	if err != nil {
		return nil, err
	}
	cleanMessages(ms)
	if err := c.fillQuotes(ctx, sid, ms); err != nil { // quote.go
		return nil, err
	}
	p := &messagesPage{Messages: ms}
	if len(ms) > limit {
		p.Messages = ms[1:]
		p.HasMore = true
	}
	if fit, cut := c.fitPage(p.Messages, true); cut {
		p.Messages, p.HasMore = fit, true
	}
	if p.Messages == nil {
		p.Messages = []Message{}
	}
	return p, nil
}

// sync returns up to limit messages after seq `after`, oldest first: what a
// reconnecting client calls per session.
func (c *Core) sync(ctx context.Context, id Identity, sid SessionID, after uint64, limit int) (*messagesPage, error) {
	if s, err := c.memberSession(ctx, id, sid); err != nil {
		return nil, err
	} else if e := c.dismissedHistory(s); e != nil {
		return nil, e
	}
	if h, err := c.hidden(ctx, sid, id.UID); err != nil || len(h) > 0 { // hide.go
		if err != nil {
			return nil, err
		}
		return c.hiddenPage(ctx, sid, h, 0, after, true, limit)
	}
	limit = c.pageLimit(limit)
	ms, err := c.store.Messages(ctx, sid, after+1, ^uint64(0), limit+1, false)
	if err != nil {
		return nil, err
	}
	cleanMessages(ms)
	if err := c.fillQuotes(ctx, sid, ms); err != nil { // quote.go
		return nil, err
	}
	p := &messagesPage{Messages: ms}
	if len(ms) > limit {
		p.Messages = ms[:limit]
		p.HasMore = true
	}
	if fit, cut := c.fitPage(p.Messages, false); cut {
		p.Messages, p.HasMore = fit, true
	}
	if p.Messages == nil {
		p.Messages = []Message{}
	}
	return p, nil
}

// SessionView is a session as one member sees it.
type SessionView struct {
	ID          SessionID `json:"session_id"`
	Kind        string    `json:"kind"`
	Name        string    `json:"name,omitempty"`
	Avatar      string    `json:"avatar,omitempty"`
	Owner       string    `json:"owner,omitempty"`
	Peer        string    `json:"peer,omitempty"` // private: the other uid
	Members     []string  `json:"members,omitempty"`
	Role        string    `json:"role"`
	LastSeq     uint64    `json:"last_seq"`
	ReadSeq     uint64    `json:"read_seq"`
	Unread      uint64    `json:"unread"`
	LastAt      int64     `json:"last_at,omitempty"`
	LastFrom    string    `json:"last_from,omitempty"`
	LastType    string    `json:"last_type,omitempty"`
	LastPreview string    `json:"last_preview,omitempty"`
	CreatedAt   int64     `json:"created_at"`
	// UnreadMentions counts the unread messages mentioning the viewer
	// (groups; among the newest 500 unread: mentions.go).
	UnreadMentions uint64 `json:"unread_mentions,omitempty"`
	// MembersTruncated: Members lists only as many uids as fit one reply.
	MembersTruncated bool `json:"members_truncated,omitempty"`
	// Group: a group's announcement and settings (groups_admin.go).
	Group *groupInfo `json:"group,omitempty"`
	// Consult: a consult session's state and remaining time.
	Consult *ConsultSummary `json:"consult,omitempty"`

	listFields // the peer's name, member count, your flags (sessionlist.go)
}

func (c *Core) sessionView(ctx context.Context, id Identity, sid SessionID) (*SessionView, error) {
	v, err := c.sessionViewBase(ctx, id, sid)
	if err != nil {
		return nil, err
	}
	return v, c.fillMentions(ctx, id, v)
}

// fillMentions counts a group view's unread mentions: a read of up to
// mentionScan of its unread messages (mentions.go), so the session list
// does it only for the sessions of the page it returns.
func (c *Core) fillMentions(ctx context.Context, id Identity, v *SessionView) (err error) {
	if v.Kind == KindGroup.String() && v.Unread > 0 {
		v.UnreadMentions, err = c.unreadMentions(ctx, v.ID, id.UID, v.ReadSeq, v.LastSeq)
	}
	return err
}

// sessionViewBase is sessionView without the unread mentions.
func (c *Core) sessionViewBase(ctx context.Context, id Identity, sid SessionID) (*SessionView, error) {
	rec, err := c.store.Session(ctx, sid)
	if errors.Is(err, ErrNotFound) || (err == nil && rec.App != id.App) {
		return nil, errNoSession(sid)
	}
	if err != nil {
		return nil, err
	}
	m, err := c.store.Member(ctx, sid, id.UID)
	if errors.Is(err, ErrNotFound) {
		return nil, Errf(CodeForbidden, "not a member of session "+itoa(uint64(sid)))
	}
	if err != nil {
		return nil, err
	}
	v := &SessionView{ID: rec.ID, Kind: rec.Kind.String(), Name: rec.Name, Avatar: rec.Avatar, Owner: rec.Owner,
		Role: m.Role.String(), LastSeq: rec.LastSeq, ReadSeq: m.ReadSeq, LastAt: rec.LastAt, LastFrom: rec.LastFrom,
		LastType: rec.LastType, LastPreview: rec.LastPreview, CreatedAt: rec.CreatedAt}
	if rec.LastSeq > m.ReadSeq {
		v.Unread = rec.LastSeq - m.ReadSeq
	}
	if rec.Kind == KindGroup {
		if v.Group, err = c.groupView(ctx, id.App, sid, id.UID); err != nil { // groups_admin.go
			return nil, err
		}
	}
	if rec.Kind == KindConsult {
		v.Consult = c.consultSummary(ctx, id.App, sid)
	}
	if rec.Kind == KindPrivate {
		v.Peer = rec.Pair[0]
		if v.Peer == id.UID {
			v.Peer = rec.Pair[1]
		}
	}
	return v, nil
}

func (c *Core) sessionInfo(ctx context.Context, id Identity, sid SessionID) (*SessionView, error) {
	s, err := c.memberSession(ctx, id, sid)
	if err != nil {
		return nil, err
	}
	v, err := c.sessionView(ctx, id, sid)
	if err != nil {
		return nil, err
	}
	v.Members = s.members().uids()
	c.fillListFields(ctx, id, v, c.flagsOf(ctx, id, sid)) // sessionlist.go
	return c.capMembers(v)
}

type readData struct {
	SessionID SessionID `json:"session_id"`
	ReadSeq   uint64    `json:"read_seq"`
}

// markRead raises the caller's read seq and tells the user's other devices
// (and, in a private session, the peer) with a `read` event.
func (c *Core) markRead(ctx context.Context, cl *Client, sid SessionID, seq uint64) (any, error) {
	id := cl.id
	s, err := c.memberSession(ctx, id, sid)
	if err != nil {
		return nil, err
	}
	if seq == 0 {
		return nil, Errf(CodeBadRequest, "missing seq: read up to which message")
	}
	rec, err := c.store.Session(ctx, sid)
	if err != nil {
		return nil, err
	}
	seq = min(seq, rec.LastSeq)
	if err := c.write(ctx, &Batch{Reads: []ReadMark{{Session: sid, UID: id.UID, Seq: seq}}}); err != nil {
		return nil, err
	}
	m, err := c.store.Member(ctx, sid, id.UID)
	if err != nil {
		return nil, err
	}
	ev := appendEvent(nil, "read", struct {
		SessionID SessionID `json:"session_id"`
		UID       string    `json:"uid"`
		ReadSeq   uint64    `json:"read_seq"`
	}{sid, id.UID, m.ReadSeq})
	for _, u := range s.members().users {
		if u != cl.u && s.kind != KindPrivate {
			continue
		}
		for _, o := range u.online() {
			if o != cl {
				o.reply(ev)
			}
		}
	}
	return readData{SessionID: sid, ReadSeq: m.ReadSeq}, nil
}

// ---- private and system sessions

func (c *Core) lockFor(key string) *sync.Mutex {
	h := uint32(2166136261)
	for i := 0; i < len(key); i++ {
		h = (h ^ uint32(key[i])) * 16777619
	}
	return &c.createLocks[h%uint32(len(c.createLocks))]
}

// openPrivate finds or creates the private session of a and b.
func (c *Core) openPrivate(ctx context.Context, app, a, b string) (*sess, error) {
	if a == b {
		return nil, Errf(CodeBadRequest, "cannot open a private session with yourself")
	}
	key := pairKey(app, a, b)
	c.mu.Lock()
	sid, ok := c.pairs[key]
	c.mu.Unlock()
	if ok {
		return c.privateFound(ctx, app, sid, a, b) // hostapi.go
	}
	l := c.lockFor(key)
	l.Lock()
	defer l.Unlock()
	sid, err := c.store.PrivateSession(ctx, app, a, b)
	if err == nil {
		c.mu.Lock()
		c.pairs[key] = sid
		c.mu.Unlock()
		return c.privateFound(ctx, app, sid, a, b) // hostapi.go
	}
	if !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	for _, uid := range []string{a, b} {
		if _, err := c.User(ctx, app, uid); err != nil {
			return nil, err
		}
	}
	now := c.nowMS()
	p := [2]string{a, b}
	if p[1] < p[0] {
		p[0], p[1] = p[1], p[0]
	}
	sid, err = c.newSessionID(ctx)
	if err != nil {
		return nil, err
	}
	rec := Session{ID: sid, App: app, Kind: KindPrivate, Pair: p, CreatedAt: now}
	ms := []Member{
		{Session: rec.ID, UID: p[0], Role: RoleMember, JoinedAt: now},
		{Session: rec.ID, UID: p[1], Role: RoleMember, JoinedAt: now},
	}
	wb := &Batch{Sessions: []Session{rec}, Members: ms}
	c.emitWebhook(wb, app, WebhookEvent{Type: WebhookSessionCreated, Data: sessionCreatedData{SessionID: rec.ID, Kind: rec.Kind.String(), By: a, Members: p[:]}})
	if err := c.write(ctx, wb); err != nil {
		// Another node may have created the pair's session at the same
		// time, and the store refused this one (one per pair): take it.
		if c.shared != nil {
			if sid, e := c.store.PrivateSession(ctx, app, a, b); e == nil {
				c.mu.Lock()
				c.pairs[key] = sid
				c.mu.Unlock()
				return c.privateFound(ctx, app, sid, a, b) // hostapi.go
			}
		}
		return nil, err
	}
	s := c.cacheSession(&rec, ms)
	c.mu.Lock()
	c.pairs[key] = rec.ID
	c.mu.Unlock()
	c.publish(Event{Topic: TopicSession, App: app, UID: a, Session: rec.ID, Type: "private", Members: []string{p[0], p[1]}})
	return s, nil
}

// openSystem finds or creates uid's system-notice session.
func (c *Core) openSystem(ctx context.Context, app, uid string) (*sess, error) {
	key := userKey(app, uid)
	c.mu.Lock()
	sid, ok := c.system[key]
	c.mu.Unlock()
	if ok {
		return c.session(ctx, app, sid)
	}
	l := c.lockFor("\x01" + key)
	l.Lock()
	defer l.Unlock()
	if _, err := c.User(ctx, app, uid); err != nil {
		return nil, err
	}
	ids, err := c.store.UserSessions(ctx, app, uid)
	if err != nil {
		return nil, err
	}
	for _, id := range ids {
		rec, err := c.store.Session(ctx, id)
		if err == nil && rec.Kind == KindSystem {
			c.mu.Lock()
			c.system[key] = id
			c.mu.Unlock()
			return c.session(ctx, app, id)
		}
	}
	now := c.nowMS()
	sid, err = c.newSessionID(ctx)
	if err != nil {
		return nil, err
	}
	rec := Session{ID: sid, App: app, Kind: KindSystem, Name: "system", CreatedAt: now}
	ms := []Member{{Session: rec.ID, UID: uid, Role: RoleMember, JoinedAt: now}}
	b := &Batch{Sessions: []Session{rec}, Members: ms}
	c.emitWebhook(b, app, WebhookEvent{Type: WebhookSessionCreated, Data: sessionCreatedData{SessionID: rec.ID, Kind: rec.Kind.String(), Members: []string{uid}}})
	if err := c.write(ctx, b); err != nil {
		return nil, err
	}
	s := c.cacheSession(&rec, ms)
	c.mu.Lock()
	c.system[key] = rec.ID
	c.mu.Unlock()
	return s, nil
}

// ---- groups

// groupFor checks a membership change: the caller is a member, the session
// is a group, and uids names someone to `verb`.
func (c *Core) groupFor(ctx context.Context, id Identity, sid SessionID, uids []string, verb string) (*sess, error) {
	s, err := c.memberSession(ctx, id, sid)
	if err != nil {
		return nil, err
	}
	if s.kind != KindGroup {
		return nil, Errf(CodeBadRequest, "session "+itoa(uint64(sid))+" is not a group")
	}
	if len(uids) == 0 {
		return nil, Errf(CodeBadRequest, "missing uids: whom to "+verb)
	}
	return s, nil
}

// groupAdd adds members; owners and admins only.
func (c *Core) groupAdd(ctx context.Context, id Identity, sid SessionID, uids []string) error {
	s, err := c.groupFor(ctx, id, sid, uids, "add")
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.members()
	if e := c.mayInvite(s, r, id.UID); e != nil { // join policy (groups_admin.go)
		return e
	}
	now := c.nowMS()
	var ms []Member
	seen := map[string]bool{}
	for _, uid := range uids {
		if r.has(uid) || seen[uid] {
			continue
		}
		seen[uid] = true
		if _, err := c.User(ctx, id.App, uid); err != nil {
			return err
		}
		ms = append(ms, Member{Session: sid, UID: uid, Role: RoleMember, JoinedAt: now})
	}
	if len(ms) == 0 {
		return nil
	}
	if e := c.checkGroupSize(len(r.users), len(ms)); e != nil {
		return e
	}
	if e := c.takeGroupBudget(id.App, id.UID, 0, len(ms)); e != nil {
		return e
	}
	added := make([]string, len(ms))
	for i, m := range ms {
		added[i] = m.UID
	}
	b := &Batch{Members: ms}
	if err := c.joinHidden(ctx, s, ms, b); err != nil { // groups_admin.go
		return err
	}
	c.emitWebhook(b, id.App, WebhookEvent{Type: WebhookGroupChanged, Data: groupEventData{SessionID: sid, Op: "add", By: id.UID, UIDs: added}})
	if err := c.write(ctx, b); err != nil {
		return err
	}
	next := c.extendRoster(id.App, r, ms)
	s.roster.Store(next)
	c.groupEvent(s, next, "add", id.UID, added)
	return nil
}

func (c *Core) extendRoster(app string, r *roster, ms []Member) *roster {
	all := make([]Member, 0, len(r.users)+len(ms))
	for _, u := range r.users {
		all = append(all, Member{UID: u.uid, Role: r.roles[u.uid]})
	}
	all = append(all, ms...)
	return c.newRoster(app, all)
}

// groupRemove removes members (owner/admin), or the caller itself (leave).
func (c *Core) groupRemove(ctx context.Context, id Identity, sid SessionID, uids []string) error {
	s, err := c.groupFor(ctx, id, sid, uids, "remove")
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := writableGroup(s); e != nil {
		return e
	}
	r := s.members()
	leaving := len(uids) == 1 && uids[0] == id.UID
	var del []MemberKey
	gone := map[string]bool{}
	for _, uid := range uids {
		role, ok := r.roles[uid]
		if !ok || gone[uid] {
			continue
		}
		if !leaving {
			if r.roles[id.UID] < RoleAdmin || role >= r.roles[id.UID] {
				return Errf(CodeForbidden, "only the owner can remove admins, and owners or admins members")
			}
		}
		gone[uid] = true
		del = append(del, MemberKey{Session: sid, UID: uid})
	}
	if len(del) == 0 {
		return nil
	}
	b := &Batch{DelMembers: del}
	// An owner who leaves hands the group to the longest-standing admin, or
	// else member.
	var rest []Member
	for _, u := range r.users {
		if !gone[u.uid] {
			rest = append(rest, Member{UID: u.uid, Role: r.roles[u.uid]})
		}
	}
	if leaving && r.roles[id.UID] == RoleOwner && len(rest) > 0 {
		heir := 0
		for i, m := range rest {
			if m.Role == RoleAdmin {
				heir = i
				break
			}
		}
		full, err := c.store.Member(ctx, sid, rest[heir].UID)
		if err != nil {
			return err
		}
		full.Role = RoleOwner
		rest[heir].Role = RoleOwner
		b.Members = append(b.Members, full)
		rec, err := c.store.Session(ctx, sid)
		if err != nil {
			return err
		}
		rec.Owner = full.UID
		b.Sessions = append(b.Sessions, rec)
	}
	removed := make([]string, 0, len(del))
	for _, d := range del {
		removed = append(removed, d.UID)
	}
	op := "remove"
	if leaving {
		op = "leave"
	}
	c.emitWebhook(b, id.App, WebhookEvent{Type: WebhookGroupChanged, Data: groupEventData{SessionID: sid, Op: op, By: id.UID, UIDs: removed}})
	if err := c.write(ctx, b); err != nil {
		return err
	}
	next := c.newRoster(id.App, rest)
	s.roster.Store(next)
	c.groupEvent(s, next, op, id.UID, removed)
	// Removed users hear about it too.
	ev := appendEvent(nil, "group", groupEventData{SessionID: s.id, Op: op, By: id.UID, UIDs: removed})
	for _, uid := range removed {
		for _, cl := range c.userRef(id.App, uid).online() {
			cl.reply(ev)
		}
	}
	return nil
}

type groupEventData struct {
	SessionID SessionID `json:"session_id"`
	Op        string    `json:"op"`
	By        string    `json:"by"`
	UIDs      []string  `json:"uids"`
}

func (c *Core) groupEvent(s *sess, r *roster, op, by string, uids []string) {
	ev := appendEvent(nil, "group", groupEventData{SessionID: s.id, Op: op, By: by, UIDs: uids})
	for _, u := range r.users {
		for _, cl := range u.online() {
			cl.reply(ev)
		}
	}
	c.publish(Event{Topic: TopicGroup, App: s.app, UID: by, Session: s.id, Type: op, Members: uids})
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
