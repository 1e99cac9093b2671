package chat

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"time"
	"unicode/utf8"
)

// This file is the core's Go API as the HTTP side uses it. Every method is
// safe for concurrent use and may block on the store; never call one from an
// event loop. Errors a client should see are *Error; anything else is an
// internal failure.

// UserInput is what the host backend pushes for a user.
type UserInput struct {
	UID      string          `json:"uid"`
	Nickname string          `json:"nickname"`
	Avatar   string          `json:"avatar,omitempty"`
	Extra    json.RawMessage `json:"extra,omitempty"`
	// Keep names the fields the host left out: an existing user keeps
	// their stored values, a new one gets the defaults. Zero replaces all.
	Keep UserFields `json:"-"`
}

// UserFields is a set of a user's pushable fields.
type UserFields uint8

const (
	FieldNickname UserFields = 1 << iota
	FieldAvatar
	FieldExtra
)

// TokenGrant is a freshly issued chat token. The token string is shown once;
// only its hash is stored.
type TokenGrant struct {
	Token     string `json:"token"`
	ExpiresAt int64  `json:"expires_at"` // unix ms
}

// SendInput is one message to send. Exactly one of To and Session names the
// target. From is the sender's uid; empty From sends a system notice (then
// To names the user whose system session receives it, or Session a group).
type SendInput struct {
	From    string          `json:"from"`
	To      string          `json:"to,omitempty"`
	Session SessionID       `json:"session_id,omitempty"`
	Type    string          `json:"type"`
	Content json.RawMessage `json:"content"`
	CID     string          `json:"cid,omitempty"`
	// CreatedAt, when not zero, is the message's time (unix ms) instead of
	// now: the host's server API only, for importing history. It may not be
	// in the future nor before the session's last message (checked on the
	// journal, so seqs stay in time order).
	CreatedAt int64 `json:"created_at,omitempty"`
	// client: sent by a user's connection (not the host): blocks and the
	// app's messaging policy apply.
	client bool
}

// SendResult acknowledges a durable message. Duplicate is true when CID
// matched an earlier send and nothing new was stored.
type SendResult struct {
	Session   SessionID `json:"session_id"`
	Seq       uint64    `json:"seq"`
	MsgID     string    `json:"msg_id"`
	CreatedAt int64     `json:"created_at"`
	Duplicate bool      `json:"duplicate,omitempty"`
}

// GroupInput creates a group.
type GroupInput struct {
	// ID is the session id the host chooses (server API only; 0: the
	// core allocates one). See hostGroupID.
	ID      SessionID `json:"id,omitempty"`
	Owner   string    `json:"owner"`
	Name    string    `json:"name"`
	Avatar  string    `json:"avatar,omitempty"`
	Members []string  `json:"members"`
}

// Identity is a logged-in user (one device).
type Identity struct {
	App string
	UID string
}

// ---- apps

// CreateApp registers a host site. id may be empty (one is generated); it is
// 1–64 of [a-z0-9_-]. The returned App carries its secret.
func (c *Core) CreateApp(ctx context.Context, id, name string) (App, error) {
	if id == "" {
		id = "app_" + newSecret()[:12]
	}
	if !validName(id, 64) {
		return App{}, Errf(CodeBadRequest, "app id must be 1-64 characters of a-z, 0-9, _ and -")
	}
	if name == "" {
		name = id
	}
	if len(name) > 128 {
		return App{}, Errf(CodeBadRequest, "app name longer than 128 bytes")
	}
	c.appMu.Lock()
	defer c.appMu.Unlock()
	if _, err := c.store.App(ctx, id); err == nil {
		return App{}, Errf(CodeConflict, "app "+id+" already exists")
	} else if !errors.Is(err, ErrNotFound) {
		return App{}, err
	}
	a := App{ID: id, Name: name, Secret: newSecret(), CreatedAt: c.nowMS()}
	if err := c.write(ctx, &Batch{Apps: []App{a}}); err != nil {
		return App{}, err
	}
	return a, nil
}

// App returns one app, with its secret (the HTTP side needs it to check
// signatures).
func (c *Core) App(ctx context.Context, id string) (App, error) {
	a, err := c.store.App(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return App{}, Errf(CodeNotFound, "no app "+clip(id, 64))
	}
	return a, err
}

// Apps lists every app.
func (c *Core) Apps(ctx context.Context) ([]App, error) { return c.store.Apps(ctx) }

// ---- users and tokens

// PushUser creates or updates a user of app. The fields in in.Keep stay
// as stored (for a new user: the defaults); every other field is set from
// in, an empty nickname meaning the uid.
func (c *Core) PushUser(ctx context.Context, app string, in UserInput) (User, error) {
	a, err := c.App(ctx, app)
	if err != nil {
		return User{}, err
	}
	if in.UID == "" || len(in.UID) > 64 || strings.ContainsAny(in.UID, "\x00") || !utf8.ValidString(in.UID) {
		return User{}, Errf(CodeBadRequest, "uid must be 1-64 bytes of UTF-8 without NUL")
	}
	if len(in.Nickname) > 128 || len(in.Avatar) > 1024 || len(in.Extra) > 8192 {
		return User{}, Errf(CodeTooLarge, "nickname ≤ 128, avatar ≤ 1024 and extra ≤ 8192 bytes")
	}
	if len(in.Extra) > 0 && !json.Valid(in.Extra) {
		return User{}, Errf(CodeBadRequest, "extra must be valid JSON")
	}
	if len(in.Extra) > 0 {
		if why := jsonTextProblem(in.Extra); why != "" {
			return User{}, Errf(CodeBadRequest, "extra "+why)
		}
	}
	var avatarRef *Record
	if strings.HasPrefix(in.Avatar, FileURLScheme) {
		r, err := c.avatarFile(ctx, app, in.UID, in.Avatar)
		if err != nil {
			return User{}, err
		}
		avatarRef = &r
	} else if in.Avatar != "" {
		if why := checkURL(in.Avatar); why != "" {
			return User{}, urlError("avatar", why)
		}
		if why := c.mediaHostProblem(in.Avatar); why != "" {
			return User{}, urlError("avatar", why)
		}
	}
	// Read, merge and write as one step per user: two pushes of the same
	// user at once must not write back each other's stale fields.
	l := c.lockFor("\x02" + app + "\x00" + in.UID)
	l.Lock()
	defer l.Unlock()
	now := c.nowMS()
	u := User{App: app, UID: in.UID, Nickname: in.Nickname, Avatar: in.Avatar, Extra: in.Extra, CreatedAt: now, UpdatedAt: now}
	old, err := c.store.User(ctx, app, in.UID)
	switch {
	case err == nil:
		u.CreatedAt = old.CreatedAt
		if in.Keep&FieldNickname != 0 {
			u.Nickname = old.Nickname
		}
		if in.Keep&FieldAvatar != 0 {
			u.Avatar = old.Avatar
		}
		if in.Keep&FieldExtra != 0 {
			u.Extra = old.Extra
		}
	case !errors.Is(err, ErrNotFound):
		return User{}, err
	}
	if u.Nickname == "" {
		u.Nickname = in.UID
	}
	b := &Batch{Users: []User{u}}
	if avatarRef != nil && u.Avatar == in.Avatar {
		b.Records = append(b.Records, *avatarRef)
	}
	isNew := func() (bool, error) { // under the app's cap (limits.go)
		_, err := c.store.User(ctx, app, in.UID)
		if errors.Is(err, ErrNotFound) {
			return true, nil
		}
		return false, err
	}
	if err := c.withQuota(ctx, &a, quotaUsers, isNew, func() error { return c.write(ctx, b) }); err != nil {
		return User{}, err
	}
	return u, nil
}

// User returns one user.
func (c *Core) User(ctx context.Context, app, uid string) (User, error) {
	u, err := c.store.User(ctx, app, uid)
	if errors.Is(err, ErrNotFound) {
		return User{}, Errf(CodeNotFound, "no user \""+clip(uid, 64)+"\" in app "+clip(app, 64))
	}
	u.Extra = cleanStored(u.Extra)
	return u, err
}

// IssueToken creates a chat token for an existing user. ttl <= 0 means the
// configured default.
func (c *Core) IssueToken(ctx context.Context, app, uid string, ttl time.Duration) (TokenGrant, error) {
	if _, err := c.User(ctx, app, uid); err != nil {
		return TokenGrant{}, err
	}
	if ttl <= 0 {
		ttl = c.cfg.TokenTTL
	}
	if ttl > MaxTokenTTL {
		return TokenGrant{}, Errf(CodeBadRequest, "token ttl of "+ttl.String()+" is over the maximum of 365 days")
	}
	now := c.nowMS()
	tok := newToken()
	t := Token{Hash: HashToken(tok), App: app, UID: uid, CreatedAt: now, ExpiresAt: now + ttl.Milliseconds()}
	if err := c.write(ctx, &Batch{Tokens: []Token{t}}); err != nil {
		return TokenGrant{}, err
	}
	return TokenGrant{Token: tok, ExpiresAt: t.ExpiresAt}, nil
}

// RevokeToken deletes one token and closes the connections logged in with it.
func (c *Core) RevokeToken(ctx context.Context, app, token string) (kicked int, err error) {
	h := HashToken(token)
	t, err := c.store.Token(ctx, h)
	if errors.Is(err, ErrNotFound) || (err == nil && t.App != app) {
		return 0, Errf(CodeNotFound, "no such token")
	}
	if err != nil {
		return 0, err
	}
	if err := c.write(ctx, &Batch{DelTokens: [][32]byte{h}}); err != nil {
		return 0, err
	}
	return c.kick(t.App, t.UID, &h), nil
}

// RevokeUserTokens deletes every token of a user and closes all of the user's
// connections. It returns how many were closed.
func (c *Core) RevokeUserTokens(ctx context.Context, app, uid string) (kicked int, err error) {
	if _, err := c.User(ctx, app, uid); err != nil {
		return 0, err
	}
	if err := c.write(ctx, &Batch{DelUserTokens: []UserKey{{App: app, UID: uid}}}); err != nil {
		return 0, err
	}
	return c.kick(app, uid, nil), nil
}

// kick closes the user's connections (those logged in with token h, or all).
func (c *Core) kick(app, uid string, h *[32]byte) int {
	n := 0
	for _, cl := range c.userRef(app, uid).online() {
		if h != nil && !cl.usesToken(h) {
			continue
		}
		c.logout(cl, "token revoked")
		cl.peer.Close(CloseKicked, "token revoked")
		n++
	}
	return n
}

// Login checks a chat token (the HTTP user API's authentication).
func (c *Core) Login(ctx context.Context, app, token string) (Identity, error) {
	id, _, err := c.authenticate(ctx, app, token)
	return id, err
}

// ---- messages and groups

// Send stores a message as a user (or, with empty From, a system notice) and
// returns once it is durable; online members receive it after that.
func (c *Core) Send(ctx context.Context, app string, in SendInput) (SendResult, error) {
	return c.sendWith(ctx, app, in, nil)
}

// sendWith is Send with attach: domain records committed in the same
// transaction as the message (see op.attach), as when an automatic reply
// and the state change that caused it must be durable together.
func (c *Core) sendWith(ctx context.Context, app string, in SendInput, attach func(m *Message, b *Batch)) (SendResult, error) {
	if in.From != "" {
		if _, err := c.User(ctx, app, in.From); err != nil {
			return SendResult{}, err
		}
	}
	o, err := c.prepareSend(ctx, app, &in)
	if err != nil {
		return SendResult{}, err
	}
	o.res = make(chan opResult, 1)
	if prev := o.attach; prev != nil && attach != nil { // a consultation's first reply or an upload's reference set one
		o.attach = func(m *Message, b *Batch) { prev(m, b); attach(m, b) }
	} else if attach != nil {
		o.attach = attach
	}
	if err := c.submit(ctx, o); err != nil {
		return SendResult{}, err
	}
	r := <-o.res
	if r.err == nil {
		r.send.MsgID = MsgID(r.send.Session, r.send.Seq)
	}
	return r.send, r.err
}

// CreateGroup creates a group owned by in.Owner with the given members.
// It is the server API's: the per-user group budgets bind only the client
// action (limits_group.go).
func (c *Core) CreateGroup(ctx context.Context, app string, in GroupInput) (Session, error) {
	return c.createGroup(ctx, app, in, false)
}

// createGroup creates a group; limited spends the owner's group budgets.
func (c *Core) createGroup(ctx context.Context, app string, in GroupInput, limited bool) (Session, error) {
	if in.Owner == "" {
		return Session{}, Errf(CodeBadRequest, "missing owner")
	}
	if len(in.Name) > 128 {
		return Session{}, Errf(CodeBadRequest, "group name longer than 128 bytes")
	}
	if len(in.Members) >= c.cfg.MaxGroupMembers {
		return Session{}, Errf(CodeTooLarge, "a group has at most "+itoa(uint64(c.cfg.MaxGroupMembers))+" members, its owner included")
	}
	if len(in.Avatar) > 1024 {
		return Session{}, Errf(CodeTooLarge, "group avatar longer than 1024 bytes")
	}
	if in.Avatar != "" {
		if why := checkURL(in.Avatar); why != "" {
			return Session{}, urlError("avatar", why)
		}
		if why := c.mediaHostProblem(in.Avatar); why != "" {
			return Session{}, urlError("avatar", why)
		}
	}
	if in.ID != 0 && limited {
		return Session{}, Errf(CodeBadRequest, "only the host chooses group ids")
	}
	for _, uid := range append([]string{in.Owner}, in.Members...) {
		if _, err := c.User(ctx, app, uid); err != nil {
			return Session{}, err
		}
	}
	now := c.nowMS()
	id := in.ID
	if id == 0 {
		var err error
		if id, err = c.newSessionID(ctx); err != nil {
			return Session{}, err
		}
	} else if e := c.hostGroupID(ctx, id); e != nil { // groups_admin.go
		return Session{}, e
	}
	rec := Session{ID: id, App: app, Kind: KindGroup, Name: in.Name, Avatar: in.Avatar,
		Owner: in.Owner, CreatedAt: now}
	ms := []Member{{Session: rec.ID, UID: in.Owner, Role: RoleOwner, JoinedAt: now}}
	seen := map[string]bool{in.Owner: true}
	for _, uid := range append([]string{in.Owner}, in.Members...) {
		if !seen[uid] {
			seen[uid] = true
			ms = append(ms, Member{Session: rec.ID, UID: uid, Role: RoleMember, JoinedAt: now})
		}
	}
	if limited {
		if e := c.takeGroupBudget(app, in.Owner, 1, len(ms)-1); e != nil {
			return Session{}, e
		}
	}
	a, err := c.App(ctx, app)
	if err != nil {
		return Session{}, err
	}
	b := &Batch{Sessions: []Session{rec}, Members: ms}
	uids := make([]string, len(ms))
	for i := range ms {
		uids[i] = ms[i].UID
	}
	c.emitWebhook(b, app,
		WebhookEvent{Type: WebhookSessionCreated, Data: sessionCreatedData{SessionID: rec.ID, Kind: rec.Kind.String(), By: in.Owner, Members: uids}},
		WebhookEvent{Type: WebhookGroupChanged, Data: groupEventData{SessionID: rec.ID, Op: "create", By: in.Owner, UIDs: uids}})
	if err := c.withQuota(ctx, &a, quotaGroups, nil, func() error { return c.write(ctx, b) }); err != nil {
		return Session{}, err
	}
	s := c.cacheSession(&rec, ms)
	c.groupEvent(s, s.members(), "create", in.Owner, s.members().uids())
	c.publish(Event{Topic: TopicSession, App: app, UID: in.Owner, Session: rec.ID, Type: "group", Members: s.members().uids()})
	return rec, nil
}

// History returns a page of a session's messages older than before (0: the
// newest), oldest first, for the server API. hasMore says whether older
// messages remain.
func (c *Core) History(ctx context.Context, app string, id SessionID, before uint64, limit int) (msgs []Message, hasMore bool, err error) {
	if _, err := c.session(ctx, app, id); err != nil {
		return nil, false, err
	}
	p, err := c.historyPage(ctx, id, before, limit)
	if err != nil {
		return nil, false, err
	}
	return p.Messages, p.HasMore, nil
}

// Do runs one client action (the WebSocket request JSON) for a logged-in
// identity and returns the reply JSON. It serves the HTTP user API; the
// caller's connection receives no events.
func (c *Core) Do(ctx context.Context, id Identity, req []byte) []byte {
	p := &capturePeer{ch: make(chan []byte, 1)}
	cl := &Client{core: c, peer: p, id: id, u: c.userRef(id.App, id.UID)}
	cl.loggedIn.Store(true) // not registered: it receives no events
	var r request
	if e := decodeRequest(req, &r); e == nil && r.Action == "login" {
		return appendError(nil, r.ID, CodeBadRequest, "already authenticated by the Authorization header")
	} else if e == nil && r.Action == "logout" {
		return appendError(nil, r.ID, CodeBadRequest, "logout is for connections; revoke the token instead")
	}
	var now int64
	if e := c.allowRequest(cl.u, &now); e != nil {
		c.countError(e.Code)
		return appendErrorFull(nil, r.ID, e)
	}
	c.handle(ctx, cl, req)
	select {
	case b := <-p.ch:
		return b
	case <-ctx.Done():
		return appendError(nil, r.ID, CodeUnavailable, "request cancelled")
	}
}

// capturePeer collects the one reply of a Do call.
type capturePeer struct{ ch chan []byte }

func (p *capturePeer) Send(b []byte) bool {
	select {
	case p.ch <- b:
		return true
	default:
		return false
	}
}
func (p *capturePeer) Close(int, string)  {}
func (p *capturePeer) RemoteAddr() string { return "http" }

func validName(s string, n int) bool {
	if len(s) == 0 || len(s) > n {
		return false
	}
	for i := 0; i < len(s); i++ {
		b := s[i]
		if !(b >= 'a' && b <= 'z' || b >= '0' && b <= '9' || b == '_' || b == '-') {
			return false
		}
	}
	return true
}
