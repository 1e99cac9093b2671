package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"chatd/chat"
	"chatd/chat/memstore"
	"chatd/httpapi/apiclient"
)

func TestNewRequiresAdminKey(t *testing.T) {
	core, err := chat.New(chat.Config{}, memstore.New())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := New(Config{}, core, zerolog.Nop()); err == nil || !strings.Contains(err.Error(), "AdminKey") {
		t.Fatalf("New without AdminKey: err %v, want one naming AdminKey", err)
	}
	if _, err := New(Config{AdminKey: "k"}, nil, zerolog.Nop()); err == nil {
		t.Fatal("New with a nil core: no error")
	}
}

func TestHealth(t *testing.T) {
	h := newHarness(t, nil)
	got, err := (&apiclient.Client{BaseURL: baseURL, HTTP: h.remote}).Health(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != "ok" || got.Version != "v-test" {
		t.Fatalf("health %+v", got)
	}
	a := do(t, h.local, rawReq(t, reqOpts{method: "GET", path: "/healthz"}))
	if string(a.Body) != `{"ok":true,"data":{"status":"ok","version":"v-test"}}` {
		t.Fatalf("healthz body %s", a.Body)
	}
}

func TestAdminApps(t *testing.T) {
	h := newHarness(t, nil)
	ctx := context.Background()
	a, err := h.admin.CreateApp(ctx, "shop", "The Shop")
	if err != nil {
		t.Fatal(err)
	}
	if a.ID != "shop" || a.Name != "The Shop" || len(a.Secret) < 16 || a.CreatedAt == 0 {
		t.Fatalf("created %+v", a)
	}
	gen, err := h.admin.CreateApp(ctx, "", "Generated")
	if err != nil {
		t.Fatal(err)
	}
	if gen.ID == "" {
		t.Fatal("no generated id")
	}
	apps, err := h.admin.Apps(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(apps) != 2 {
		t.Fatalf("apps %+v", apps)
	}
	for _, x := range apps {
		if x.ID == "shop" && x.Secret != a.Secret {
			t.Fatalf("listed secret %q, created %q", x.Secret, a.Secret)
		}
	}
	_, err = h.admin.CreateApp(ctx, "shop", "again")
	apiErr(t, err, 409, "conflict")

	// The wrong admin key signs a valid-looking request that fails.
	wrong := &apiclient.Client{BaseURL: baseURL, AdminKey: "not-the-key", HTTP: h.local}
	_, err = wrong.CreateApp(ctx, "evil", "Evil")
	if ae := apiErr(t, err, 401, "unauthorized"); ae.Message != "bad signature" {
		t.Fatalf("wrong admin key message %q", ae.Message)
	}
	// An app secret does not open the admin API either.
	byApp := &apiclient.Client{BaseURL: baseURL, AdminKey: a.Secret, HTTP: h.local}
	_, err = byApp.Apps(ctx)
	apiErr(t, err, 401, "unauthorized")
}

func TestAdminLoopbackOnly(t *testing.T) {
	tests := []struct {
		name     string
		anywhere bool
		remote   bool
		status   int
	}{
		{name: "loopback peer", remote: false, status: 200},
		{name: "remote peer", remote: true, status: 403},
		{name: "remote peer, AdminFromAnywhere", remote: true, anywhere: true, status: 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, func(c *Config) { c.AdminFromAnywhere = tt.anywhere })
			hc := h.local
			if tt.remote {
				hc = h.remote
			}
			a := do(t, hc, rawReq(t, reqOpts{method: "GET", path: "/admin/v1/status", key: testAdminKey}))
			if a.Status != tt.status {
				t.Fatalf("status %d, want %d (%s)", a.Status, tt.status, a.Body)
			}
			if tt.status == 403 && (a.Code != "forbidden" || a.Msg != "admin API is loopback-only") {
				t.Fatalf("403 answer %s %q", a.Code, a.Msg)
			}
		})
	}
}

func TestStatus(t *testing.T) {
	t.Run("default", func(t *testing.T) {
		h := newHarness(t, nil)
		st, err := h.admin.Status(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if st.Version != "v-test" || st.PID == 0 || st.StartedAt == 0 || st.Goroutines == 0 ||
			st.HeapBytes == 0 || st.HTTPAddr == "" {
			t.Fatalf("status %+v", st)
		}
		if runtime.GOOS == "linux" && st.RSSBytes < st.HeapBytes/2 {
			t.Fatalf("rss_bytes %d is not the process RSS (heap %d)", st.RSSBytes, st.HeapBytes)
		}
	})
	t.Run("from Config.Status", func(t *testing.T) {
		h := newHarness(t, func(c *Config) {
			c.Status = func() Status {
				return Status{PID: 42, WSAddr: "127.0.0.1:22886", DataDir: "/data", Conns: 7, UsersOnline: 3}
			}
		})
		st, err := h.admin.Status(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		want := apiclient.Status{Version: "v-test", PID: 42, WSAddr: "127.0.0.1:22886", HTTPAddr: h.srv.Addr(),
			DataDir: "/data", Conns: 7, UsersOnline: 3}
		if st != want {
			t.Fatalf("status %+v\nwant %+v", st, want)
		}
	})
}

func TestUsersAndTokens(t *testing.T) {
	h := newHarness(t, nil)
	ctx := context.Background()
	c := h.app("shop")

	r, err := c.PushUser(ctx, apiclient.PushUserInput{UID: "u 1/x", Nickname: "Ann", Extra: json.RawMessage(`{"vip":true}`)})
	if err != nil {
		t.Fatal(err)
	}
	if r.User.UID != "u 1/x" || r.User.Nickname != "Ann" || r.User.App != "shop" || r.Token != "" || r.ExpiresAt != 0 {
		t.Fatalf("push without token: %+v", r)
	}
	// Update, and ask for a token with a TTL.
	before := time.Now()
	r, err = c.PushUser(ctx, apiclient.PushUserInput{UID: "u 1/x", Nickname: "Anna", IssueToken: true, TokenTTL: 3600})
	if err != nil {
		t.Fatal(err)
	}
	if r.User.Nickname != "Anna" || r.Token == "" {
		t.Fatalf("push with token: %+v", r)
	}
	if exp := time.UnixMilli(r.ExpiresAt); exp.Before(before.Add(time.Hour-time.Second)) || exp.After(time.Now().Add(time.Hour+time.Second)) {
		t.Fatalf("token expires at %v, want about an hour from now", exp)
	}
	// GET the user back (the uid has a space and a slash: path escaping).
	u, err := c.User(ctx, "u 1/x")
	if err != nil {
		t.Fatal(err)
	}
	if u.Nickname != "Anna" || u.UID != "u 1/x" || u.App != "shop" {
		t.Fatalf("user %+v", u)
	}
	_, err = c.User(ctx, "nobody")
	apiErr(t, err, 404, "not_found")

	g, err := c.IssueToken(ctx, "u 1/x", 0)
	if err != nil {
		t.Fatal(err)
	}
	if g.Token == "" || g.Token == r.Token || g.ExpiresAt <= time.Now().UnixMilli() {
		t.Fatalf("grant %+v", g)
	}
	_, err = c.IssueToken(ctx, "nobody", 0)
	apiErr(t, err, 404, "not_found")

	// Both tokens work on the user API; revoking one leaves the other.
	for _, tok := range []string{r.Token, g.Token} {
		if _, err := c.ClientDo(ctx, tok, map[string]string{"id": "1", "action": "ping"}); err != nil {
			t.Fatalf("token before revoke: %v", err)
		}
	}
	rv, err := c.RevokeToken(ctx, r.Token)
	if err != nil {
		t.Fatal(err)
	}
	if !rv.Revoked || rv.Kicked != 0 {
		t.Fatalf("revoke token: %+v", rv)
	}
	_, err = c.ClientDo(ctx, r.Token, map[string]string{"id": "1", "action": "ping"})
	apiErr(t, err, 401, "unauthorized")
	if _, err := c.ClientDo(ctx, g.Token, map[string]string{"id": "1", "action": "ping"}); err != nil {
		t.Fatalf("other token after revoke: %v", err)
	}
	_, err = c.RevokeToken(ctx, r.Token)
	apiErr(t, err, 404, "not_found")

	// Another app cannot see or revoke this app's users and tokens.
	other := h.app("other")
	_, err = other.User(ctx, "u 1/x")
	apiErr(t, err, 404, "not_found")
	_, err = other.RevokeToken(ctx, g.Token)
	apiErr(t, err, 404, "not_found")
}

// fakePeer is a WebSocket connection as the core sees it.
type fakePeer struct {
	mu     sync.Mutex // guards sent, closed
	sent   [][]byte
	closed int
	gotMsg chan struct{}
}

func newFakePeer() *fakePeer { return &fakePeer{gotMsg: make(chan struct{}, 64)} }

func (p *fakePeer) Send(b []byte) bool {
	p.mu.Lock()
	p.sent = append(p.sent, append([]byte(nil), b...))
	p.mu.Unlock()
	p.gotMsg <- struct{}{}
	return true
}

func (p *fakePeer) Close(code int, _ string) {
	p.mu.Lock()
	p.closed = code
	p.mu.Unlock()
}

func (p *fakePeer) RemoteAddr() string { return "127.0.0.1:1" }

func (p *fakePeer) closeCode() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.closed
}

func TestRevokeUserKicksDevices(t *testing.T) {
	h := newHarness(t, nil)
	ctx := context.Background()
	c := h.app("shop")
	tok := h.user(c, "alice")
	tok2, err := c.IssueToken(ctx, "alice", 0)
	if err != nil {
		t.Fatal(err)
	}
	// Two devices log in over the core's transport interface.
	var peers []*fakePeer
	for _, tk := range []string{tok, tok2.Token} {
		p := newFakePeer()
		hd := h.core.Accept(p)
		hd.HandleMessage([]byte(`{"id":"l","action":"login","app":"shop","token":"` + tk + `"}`))
		select {
		case <-p.gotMsg:
		case <-time.After(5 * time.Second):
			t.Fatal("no login reply")
		}
		if !bytes.Contains(p.sent[0], []byte(`"ok":true`)) {
			t.Fatalf("login reply %s", p.sent[0])
		}
		peers = append(peers, p)
	}
	n, err := c.RevokeUserTokens(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Fatalf("kicked %d, want 2", n)
	}
	for i, p := range peers {
		if p.closeCode() != chat.CloseKicked {
			t.Fatalf("device %d close code %d, want %d", i, p.closeCode(), chat.CloseKicked)
		}
	}
	_, err = c.ClientDo(ctx, tok, map[string]string{"id": "1", "action": "ping"})
	apiErr(t, err, 401, "unauthorized")
	_, err = c.RevokeUserTokens(ctx, "nobody")
	apiErr(t, err, 404, "not_found")
}

func TestMessagesGroupsHistory(t *testing.T) {
	h := newHarness(t, nil)
	ctx := context.Background()
	c := h.app("shop")
	for _, uid := range []string{"alice", "bob", "carol"} {
		h.user(c, uid)
	}

	// As a user, to a user: opens their private session.
	s1, err := c.Send(ctx, apiclient.SendInput{From: "alice", To: "bob", Type: "text", Content: json.RawMessage(`{"text":"hi bob"}`), CID: "c-1"})
	if err != nil {
		t.Fatal(err)
	}
	if s1.Session == 0 || s1.Seq != 1 || s1.MsgID == "" || s1.CreatedAt == 0 || s1.Duplicate {
		t.Fatalf("send: %+v", s1)
	}
	s2, err := c.Send(ctx, apiclient.SendInput{From: "bob", To: "alice", Type: "text", Content: json.RawMessage(`{"text":"hi alice"}`)})
	if err != nil {
		t.Fatal(err)
	}
	if s2.Session != s1.Session || s2.Seq != 2 {
		t.Fatalf("reply went to %+v, want session %d seq 2", s2, s1.Session)
	}
	// Same cid again: the original, not a second copy.
	dup, err := c.Send(ctx, apiclient.SendInput{From: "alice", To: "bob", Type: "text", Content: json.RawMessage(`{"text":"hi bob"}`), CID: "c-1"})
	if err != nil {
		t.Fatal(err)
	}
	if !dup.Duplicate || dup.Seq != 1 {
		t.Fatalf("duplicate send: %+v", dup)
	}

	// System notice: empty from, to a user.
	sys, err := c.Send(ctx, apiclient.SendInput{To: "alice", Type: "text", Content: json.RawMessage(`{"text":"your order shipped"}`)})
	if err != nil {
		t.Fatal(err)
	}
	if sys.Session == s1.Session || sys.Seq != 1 {
		t.Fatalf("system notice: %+v", sys)
	}

	msgs, err := c.History(ctx, s1.Session, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 2 || msgs[0].From != "alice" || msgs[1].From != "bob" || msgs[0].Seq != 1 ||
		string(msgs[1].Content) != `{"text":"hi alice"}` {
		t.Fatalf("history %+v", msgs)
	}
	msgs, err = c.History(ctx, s1.Session, 2, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 1 || msgs[0].Seq != 1 {
		t.Fatalf("history before=2 limit=1: %+v", msgs)
	}
	msgs, err = c.History(ctx, sys.Session, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 1 || msgs[0].From != "" || string(msgs[0].Content) != `{"text":"your order shipped"}` {
		t.Fatalf("system history %+v", msgs)
	}

	// Groups.
	g, err := c.CreateGroup(ctx, apiclient.GroupInput{Owner: "alice", Name: "Team", Members: []string{"bob", "carol"}})
	if err != nil {
		t.Fatal(err)
	}
	if g.ID == 0 || g.Kind != int(chat.KindGroup) || g.Owner != "alice" || g.Name != "Team" || g.App != "shop" {
		t.Fatalf("group %+v", g)
	}
	gs, err := c.Send(ctx, apiclient.SendInput{From: "carol", Session: g.ID, Type: "text", Content: json.RawMessage(`{"text":"hello team"}`)})
	if err != nil {
		t.Fatal(err)
	}
	if gs.Session != g.ID || gs.Seq != 1 {
		t.Fatalf("group send %+v", gs)
	}
	msgs, err = c.History(ctx, g.ID, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 1 || msgs[0].From != "carol" {
		t.Fatalf("group history %+v", msgs)
	}
	_, err = c.CreateGroup(ctx, apiclient.GroupInput{Owner: "alice", Name: "X", Members: []string{"ghost"}})
	apiErr(t, err, 404, "not_found")

	// A session of another app is not this app's to read.
	other := h.app("other")
	_, err = other.History(ctx, s1.Session, 0, 0)
	apiErr(t, err, 404, "not_found")
	_, err = c.History(ctx, 999999, 0, 0)
	apiErr(t, err, 404, "not_found")
	// A non-member cannot send into the group.
	h.user(c, "dave")
	_, err = c.Send(ctx, apiclient.SendInput{From: "dave", Session: g.ID, Type: "text", Content: json.RawMessage(`{"text":"x"}`)})
	apiErr(t, err, 403, "forbidden")
}

func TestUserClientAPI(t *testing.T) {
	h := newHarness(t, nil)
	ctx := context.Background()
	c := h.app("shop")
	tok := h.user(c, "alice")
	h.user(c, "bob")

	reply, err := c.ClientDo(ctx, tok, json.RawMessage(`{"id":"1","action":"send","to":"bob","type":"text","content":{"text":"over http"}}`))
	if err != nil {
		t.Fatal(err)
	}
	var r struct {
		ReplyTo string          `json:"reply_to"`
		OK      bool            `json:"ok"`
		Data    chat.SendResult `json:"data"`
	}
	if err := json.Unmarshal(reply, &r); err != nil {
		t.Fatalf("reply %s: %v", reply, err)
	}
	if r.ReplyTo != "1" || !r.OK || r.Data.Seq != 1 || r.Data.Session == 0 {
		t.Fatalf("send reply %s", reply)
	}
	msgs, err := c.History(ctx, uint64(r.Data.Session), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 1 || msgs[0].From != "alice" {
		t.Fatalf("history after user-API send: %+v", msgs)
	}

	// An action's own failure is a 200 with the core's error reply inside.
	reply, err = c.ClientDo(ctx, tok, json.RawMessage(`{"id":"2","action":"fly"}`))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(reply, []byte(`"reply_to":"2","ok":false`)) || !bytes.Contains(reply, []byte(`unknown action`)) {
		t.Fatalf("unknown action reply %s", reply)
	}

	tests := []struct {
		name   string
		app    string
		auth   string
		body   string
		status int
		code   string
		msg    string
	}{
		{name: "no app header", auth: "Bearer " + tok, body: `{"id":"1","action":"ping"}`, status: 401, code: "unauthorized", msg: "missing X-Chatd-App"},
		{name: "no authorization", app: "shop", body: `{"id":"1","action":"ping"}`, status: 401, code: "unauthorized", msg: "missing Authorization: Bearer <token>"},
		{name: "basic scheme", app: "shop", auth: "Basic Zm9vOmJhcg==", body: `{"id":"1","action":"ping"}`, status: 401, code: "unauthorized", msg: `Authorization must be "Bearer <token>"`},
		{name: "unknown token", app: "shop", auth: "Bearer nope", body: `{"id":"1","action":"ping"}`, status: 401, code: "unauthorized", msg: "invalid or revoked token"},
		{name: "token of the wrong app", app: "other", auth: "Bearer " + tok, body: `{"id":"1","action":"ping"}`, status: 401, code: "unauthorized", msg: "invalid or revoked token"},
		{name: "empty body", app: "shop", auth: "Bearer " + tok, status: 400, code: "bad_request", msg: "request body is empty; expected one client action JSON object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest("POST", baseURL+"/v1/client", strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			if tt.app != "" {
				req.Header.Set(HeaderApp, tt.app)
			}
			if tt.auth != "" {
				req.Header.Set("Authorization", tt.auth)
			}
			a := do(t, h.local, req)
			if a.Status != tt.status || a.Code != tt.code || a.Msg != tt.msg {
				t.Fatalf("got %d %s %q, want %d %s %q", a.Status, a.Code, a.Msg, tt.status, tt.code, tt.msg)
			}
		})
	}
	// Bearer is case-insensitive.
	req, _ := http.NewRequest("POST", baseURL+"/v1/client", strings.NewReader(`{"id":"9","action":"ping"}`))
	req.Header.Set(HeaderApp, "shop")
	req.Header.Set("Authorization", "bearer "+tok)
	resp, err := h.local.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("lowercase bearer: %d", resp.StatusCode)
	}
}

func TestBadRequests(t *testing.T) {
	// The body limit is small so that the oversized request still goes out
	// in one write: the in-memory pipe refuses writes once the server has
	// answered 413 and closed (a TCP socket buffers them).
	h := newHarness(t, func(c *Config) { c.MaxBody = 256 })
	c := h.app("shop")
	h.user(c, "alice")
	tests := []struct {
		name   string
		method string
		path   string
		body   string
		status int
		code   string
		msg    string
	}{
		{name: "unknown route", method: "POST", path: "/x", body: "{}", status: 404, code: "not_found", msg: "no such endpoint: POST /x"},
		{name: "unknown api route", method: "GET", path: "/api/v1/nothing", status: 404, code: "not_found", msg: "no such endpoint: GET /api/v1/nothing"},
		{name: "trailing slash", method: "GET", path: "/api/v1/users/alice/", status: 404, code: "not_found", msg: "no such endpoint: GET /api/v1/users/alice/"},
		{name: "wrong method", method: "DELETE", path: "/api/v1/users", status: 405, code: "bad_request", msg: "method DELETE not allowed on /api/v1/users; use GET, POST"},
		{name: "wrong method on user", method: "POST", path: "/api/v1/users/alice", body: "{}", status: 405, code: "bad_request", msg: "method POST not allowed on /api/v1/users/{uid}; use GET"},
		{name: "syntax error", method: "POST", path: "/api/v1/users", body: `{"uid": "a",}`, status: 400, code: "bad_request", msg: "invalid JSON at offset 13: invalid character '}' looking for beginning of object key string"},
		{name: "truncated", method: "POST", path: "/api/v1/users", body: `{"uid": "a"`, status: 400, code: "bad_request", msg: "invalid JSON: unexpected end of input"},
		{name: "wrong type", method: "POST", path: "/api/v1/users", body: `{"uid": 7}`, status: 400, code: "bad_request", msg: `invalid JSON at offset 9: field "uid" must be a string, got number`},
		{name: "not an object", method: "POST", path: "/api/v1/users", body: `[1]`, status: 400, code: "bad_request", msg: "invalid JSON: expected a JSON object, got array"},
		{name: "unknown field", method: "POST", path: "/api/v1/users", body: `{"uid":"a","nickame":"x"}`, status: 400, code: "bad_request", msg: `invalid JSON: unknown field "nickame"`},
		{name: "trailing data", method: "POST", path: "/api/v1/users", body: `{"uid":"a"} {}`, status: 400, code: "bad_request", msg: "invalid JSON: unexpected data after the object at offset 12"},
		{name: "empty body", method: "POST", path: "/api/v1/users", status: 400, code: "bad_request", msg: "request body is empty; expected a JSON object"},
		{name: "missing uid", method: "POST", path: "/api/v1/users", body: `{"nickname":"x"}`, status: 400, code: "bad_request", msg: `missing field "uid"`},
		{name: "negative token ttl", method: "POST", path: "/api/v1/users", body: `{"uid":"a","issue_token":true,"token_ttl":-1}`, status: 400, code: "bad_request", msg: "token_ttl must not be negative"},
		{name: "ttl without issue_token", method: "POST", path: "/api/v1/users", body: `{"uid":"a","token_ttl":60}`, status: 400, code: "bad_request", msg: `token_ttl given without "issue_token": true`},
		{name: "negative ttl", method: "POST", path: "/api/v1/users/alice/tokens", body: `{"ttl":-5}`, status: 400, code: "bad_request", msg: "ttl must not be negative"},
		{name: "revoke nothing", method: "POST", path: "/api/v1/tokens/revoke", body: `{}`, status: 400, code: "bad_request", msg: `missing field "token" or "uid"`},
		{name: "revoke both", method: "POST", path: "/api/v1/tokens/revoke", body: `{"token":"t","uid":"u"}`, status: 400, code: "bad_request", msg: `give only one of "token" and "uid"`},
		{name: "send no target", method: "POST", path: "/api/v1/messages", body: `{"from":"alice","type":"text","content":{"text":"x"}}`, status: 400, code: "bad_request", msg: `missing field "to" or "session_id"`},
		{name: "send two targets", method: "POST", path: "/api/v1/messages", body: `{"from":"alice","to":"b","session_id":3,"type":"text","content":{}}`, status: 400, code: "bad_request", msg: `give only one of "to" and "session_id"`},
		{name: "send no type", method: "POST", path: "/api/v1/messages", body: `{"from":"alice","to":"b","content":{"text":"x"}}`, status: 400, code: "bad_request", msg: `missing field "type"`},
		{name: "send no content", method: "POST", path: "/api/v1/messages", body: `{"from":"alice","to":"b","type":"text"}`, status: 400, code: "bad_request", msg: `missing field "content"`},
		{name: "send negative session", method: "POST", path: "/api/v1/messages", body: `{"from":"alice","session_id":-1,"type":"text","content":{}}`, status: 400, code: "bad_request", msg: `invalid JSON at offset 31: field "session_id" must be a non-negative integer, got number -1`},
		{name: "group no owner", method: "POST", path: "/api/v1/groups", body: `{"name":"g","members":[]}`, status: 400, code: "bad_request", msg: `missing field "owner"`},
		{name: "history bad id", method: "GET", path: "/api/v1/sessions/abc/messages", status: 400, code: "bad_request", msg: `bad session id "abc": want a positive integer`},
		{name: "history bad limit", method: "GET", path: "/api/v1/sessions/1/messages?limit=x", status: 400, code: "bad_request", msg: `bad query parameter "limit": want a non-negative integer`},
		{name: "history bad before", method: "GET", path: "/api/v1/sessions/1/messages?before=-1", status: 400, code: "bad_request", msg: `bad query parameter "before": want a non-negative integer`},
		{name: "bad path escape", method: "GET", path: "/api/v1/users/placeholder", status: 400, code: "bad_request", msg: `bad escape in path segment "a%zz"`},
		{name: "create app without name", method: "POST", path: "/admin/v1/apps", body: `{"id":"x"}`, status: 400, code: "bad_request", msg: `missing field "name"`},
		{name: "body too large", method: "POST", path: "/api/v1/users", body: `{"uid":"` + strings.Repeat("a", 300) + `"}`, status: 413, code: "too_large", msg: "request body over the 256 byte limit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := reqOpts{method: tt.method, path: tt.path, key: c.Secret, app: "shop"}
			if strings.HasPrefix(tt.path, "/admin/") {
				o.key, o.app = testAdminKey, ""
			}
			if tt.body != "" {
				o.body = []byte(tt.body)
			}
			req := rawReq(t, o)
			if tt.name == "bad path escape" { // net/http refuses to parse this URL
				req.URL.Opaque = "/api/v1/users/a%zz"
			}
			a := do(t, h.local, req)
			if a.Status != tt.status || a.Code != tt.code || a.Msg != tt.msg {
				t.Fatalf("got %d %s %q\nwant %d %s %q", a.Status, a.Code, a.Msg, tt.status, tt.code, tt.msg)
			}
			if tt.status == 405 && a.Header.Get("Allow") == "" {
				t.Fatal("405 without an Allow header")
			}
		})
	}
}

func TestHandlerBodyLimit(t *testing.T) {
	// The handler enforces MaxBody itself too, for servers that hand it
	// bodies fasthttp did not limit (Handler used directly).
	h := newHarness(t, func(c *Config) { c.MaxBody = 10 })
	var ctx fasthttpCtx
	ctx.init("POST", "/api/v1/users", []byte(`{"uid":"abcdefgh"}`), loopbackPeer)
	h.srv.Handler()(&ctx.RequestCtx)
	if st := ctx.Response.StatusCode(); st != 413 {
		t.Fatalf("status %d, want 413", st)
	}
	if !bytes.Contains(ctx.Response.Body(), []byte(`"code":"too_large"`)) {
		t.Fatalf("body %s", ctx.Response.Body())
	}
}

// failingStore fails or panics on some reads to exercise the 500 path.
type failingStore struct {
	*memstore.Store
}

func (failingStore) Apps(context.Context) ([]chat.App, error) {
	return nil, errors.New("disk on fire at sector 7")
}

func (failingStore) User(context.Context, string, string) (chat.User, error) {
	panic("store exploded")
}

func TestInternalErrors(t *testing.T) {
	h := newHarnessStore(t, failingStore{memstore.New()}, nil)
	a := do(t, h.local, rawReq(t, reqOpts{method: "GET", path: "/admin/v1/apps", key: testAdminKey}))
	if a.Status != 500 || a.Code != "internal" || a.Msg != "internal error" {
		t.Fatalf("got %d %s %q", a.Status, a.Code, a.Msg)
	}
	if bytes.Contains(a.Body, []byte("disk on fire")) {
		t.Fatal("internal error detail leaked to the client")
	}
	if !strings.Contains(h.logBuf.String(), "disk on fire at sector 7") {
		t.Fatalf("internal error not logged; log:\n%s", h.logBuf.String())
	}

	c := h.app("shop")
	_, err := c.User(context.Background(), "alice") // the store panics
	apiErr(t, err, 500, "internal")
	if !strings.Contains(h.logBuf.String(), "store exploded") {
		t.Fatalf("panic not logged; log:\n%s", h.logBuf.String())
	}
}

func TestQuietOnSuccess(t *testing.T) {
	h := newHarness(t, nil)
	c := h.app("shop")
	mark := len(h.logBuf.String())
	for i := 0; i < 5; i++ {
		h.user(c, "alice")
		if _, err := c.Send(context.Background(), apiclient.SendInput{To: "alice", Type: "text", Content: json.RawMessage(`{"text":"x"}`)}); err != nil {
			t.Fatal(err)
		}
	}
	if tail := h.logBuf.String()[mark:]; tail != "" {
		t.Fatalf("successful requests logged:\n%s", tail)
	}
	// An auth failure is logged at debug.
	do(t, h.local, rawReq(t, reqOpts{method: "GET", path: "/admin/v1/apps"}))
	if tail := h.logBuf.String()[mark:]; !strings.Contains(tail, `"level":"debug"`) || !strings.Contains(tail, "missing X-Chatd-Signature") {
		t.Fatalf("auth failure log:\n%s", tail)
	}
}
