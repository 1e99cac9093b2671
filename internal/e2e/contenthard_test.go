package e2e_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"chatd/chat"
	"chatd/httpapi/apiclient"
	"chatd/internal/teststack"
)

// Attacks through message content, tokens and group membership (issue 14),
// each against a real chatd on 127.0.0.1 with real clients.

func startWith(t *testing.T, o teststack.Options) *server {
	t.Helper()
	return &server{Server: teststack.Start(t, t.TempDir(), o), t: t}
}

// wantAPIError checks that err is an HTTP API error with this code whose
// message contains part.
func wantAPIError(t *testing.T, what string, err error, code, part string) {
	t.Helper()
	var ae *apiclient.APIError
	if !errors.As(err, &ae) || ae.Code != code || !strings.Contains(ae.Message, part) {
		t.Fatalf("%s: got %v; want %s containing %q", what, err, code, part)
	}
}

// wantReplyError checks that a reply failed with this code and a message
// containing part.
func wantReplyError(t *testing.T, what string, f frame, code, part string) {
	t.Helper()
	if f.OK || f.Error == nil || string(f.Error.Code) != code || !strings.Contains(f.Error.Message, part) {
		t.Fatalf("%s: got ok=%v error=%+v; want %s containing %q", what, f.OK, f.Error, code, part)
	}
}

// TestInvalidTextNeverReachesReaders: bytes that are not UTF-8, and lone
// surrogate escapes, are refused at every door (server API send, the HTTP
// client API, a user's extra, the WebSocket), so a reader's history page
// stays valid UTF-8 and the reader stays connected.
func TestInvalidTextNeverReachesReaders(t *testing.T) {
	s := start(t, t.TempDir(), options{})
	app := s.app("shop")
	ta, tb := pushUser(t, app, "alice"), pushUser(t, app, "bob")
	a := login(t, s.WSAddr, "shop", ta)
	b := login(t, s.WSAddr, "shop", tb)
	ctx := context.Background()

	first := decode[ack](t, a.do(`"action":"send","to":"bob","type":"text","content":{"text":"hello"}`))
	b.next("message")

	// POST /api/v1/messages: the host backend's send.
	err := app.Do(ctx, http.MethodPost, "/api/v1/messages",
		[]byte("{\"from\":\"alice\",\"to\":\"bob\",\"type\":\"text\",\"content\":{\"text\":\"a\xffb\"}}"), nil)
	wantAPIError(t, "server API send of invalid UTF-8", err, "bad_request", "not valid UTF-8")
	err = app.Do(ctx, http.MethodPost, "/api/v1/messages",
		[]byte(`{"from":"alice","to":"bob","type":"custom","content":{"k":["\ud800"]}}`), nil)
	wantAPIError(t, "server API send of a lone surrogate", err, "bad_request", "lone UTF-16 surrogate")

	// POST /v1/client: a user's action over HTTP.
	raw, err := app.ClientDo(ctx, ta, []byte("{\"id\":\"h1\",\"action\":\"send\",\"session_id\":"+
		strconv.FormatUint(first.Session, 10)+",\"type\":\"text\",\"content\":{\"text\":\"\xc3(\"}}"))
	if err != nil {
		t.Fatal(err)
	}
	var rep frame
	if err := json.Unmarshal(raw, &rep); err != nil {
		t.Fatalf("client API answer %q: %v", raw, err)
	}
	wantReplyError(t, "client API send of invalid UTF-8", rep, "bad_request", "not valid UTF-8")

	// A user's extra.
	err = app.Do(ctx, http.MethodPost, "/api/v1/users", []byte("{\"uid\":\"carol\",\"extra\":{\"bio\":\"\xed\xa0\x80\"}}"), nil)
	wantAPIError(t, "extra with invalid UTF-8", err, "bad_request", "extra is not valid UTF-8")
	err = app.Do(ctx, http.MethodPost, "/api/v1/users", []byte(`{"uid":"carol","extra":{"bio":"\udfff"}}`), nil)
	wantAPIError(t, "extra with a lone surrogate", err, "bad_request", "extra holds a lone UTF-16 surrogate")

	// Over the WebSocket the frame is valid UTF-8; the escape is not.
	wantReplyError(t, "WebSocket send of a lone surrogate", a.do(`"action":"send","to":"bob","type":"text","content":{"text":"x\udbff"}`),
		"bad_request", "lone UTF-16 surrogate")
	// A pair is a character, and stays allowed.
	if f := a.do(`"action":"send","to":"bob","type":"text","content":{"text":"\ud83d\ude00"}`); !f.OK {
		t.Fatalf("surrogate pair refused: %+v", f.Error)
	}

	h := b.do(`"action":"history","session_id":` + strconv.FormatUint(first.Session, 10))
	if !h.OK || !utf8.Valid(h.raw) {
		t.Fatalf("history: ok=%v, valid UTF-8 %v: %q", h.OK, utf8.Valid(h.raw), h.raw)
	}
	page := decode[struct {
		Messages []json.RawMessage `json:"messages"`
	}](t, h)
	if len(page.Messages) != 2 {
		t.Fatalf("history holds %d messages, want the 2 valid ones: %s", len(page.Messages), h.raw)
	}
	if f := b.do(`"action":"ping"`); !f.OK {
		t.Fatalf("reader's ping after history: %+v", f.Error)
	}
}

// TestContentCannotAttackRenderers: link and media fields take only http(s)
// URLs, avatars too, and a client cannot send a notice (which clients show
// as the host site's own voice).
func TestContentCannotAttackRenderers(t *testing.T) {
	s := start(t, t.TempDir(), options{})
	app := s.app("shop")
	ta := pushUser(t, app, "alice")
	pushUser(t, app, "bob")
	a := login(t, s.WSAddr, "shop", ta)
	ctx := context.Background()

	for _, c := range []struct{ typ, content, field string }{
		{"image", `{"url":"javascript:alert(document.cookie)"}`, "content.url"},
		{"image", `{"url":"JaVaScRiPt:alert(1)"}`, "content.url"},
		{"file", `{"url":"java\u0073cript:alert(1)","name":"x.pdf"}`, "content.url"},
		{"file", `{"url":"file:///etc/passwd","name":"passwd"}`, "content.url"},
		{"voice", `{"url":"vbscript:msgbox(1)","duration":3}`, "content.url"},
		{"video", `{"url":"https://cdn.example/v.mp4","cover":"data:image/svg+xml,<svg onload=alert(1)>"}`, "content.cover"},
		{"card", `{"title":"Sale","url":"https://shop.example/sale","image":"data:text/html,<script>alert(1)</script>"}`, "content.image"},
		{"card", `{"title":"Sale","url":"javascript:alert(1)"}`, "content.url"},
		{"image", `{"url":"https://ok.example/a.png","url":"javascript:alert(1)"}`, "content.url"},
	} {
		f := a.do(`"action":"send","to":"bob","type":"` + c.typ + `","content":` + c.content)
		wantReplyError(t, c.typ+" "+c.content, f, "bad_request", `"`+c.field+`" must be`)
	}
	for _, c := range []struct{ typ, content string }{
		{"image", `{"url":"https://cdn.example/a.png","width":10}`},
		{"card", `{"title":"Sale","url":"http://shop.example/sale","image":"https://cdn.example/c.png"}`},
		{"video", `{"url":"https://cdn.example/v.mp4","cover":"https://cdn.example/v.jpg"}`},
	} {
		if f := a.do(`"action":"send","to":"bob","type":"` + c.typ + `","content":` + c.content); !f.OK {
			t.Fatalf("%s %s refused: %+v", c.typ, c.content, f.Error)
		}
	}

	// notice: the server API's alone.
	wantReplyError(t, "WebSocket notice", a.do(`"action":"send","to":"bob","type":"notice","content":{"text":"Your account is locked, log in at https://evil.example"}`),
		"forbidden", "reserved for the server API")
	raw, err := app.ClientDo(ctx, ta, map[string]any{"id": "n", "action": "send", "to": "bob", "type": "notice", "content": map[string]string{"text": "x"}})
	if err != nil {
		t.Fatal(err)
	}
	var rep frame
	if err := json.Unmarshal(raw, &rep); err != nil {
		t.Fatal(err)
	}
	wantReplyError(t, "client API notice", rep, "forbidden", "reserved for the server API")
	if _, err := app.Send(ctx, apiclient.SendInput{To: "alice", Type: "notice", Content: json.RawMessage(`{"text":"order shipped"}`)}); err != nil {
		t.Fatalf("server API notice: %v", err)
	}

	// Avatars: a user's (server API) and a group's (both APIs).
	_, err = app.PushUser(ctx, apiclient.PushUserInput{UID: "mallory", Avatar: "javascript:alert(1)"})
	wantAPIError(t, "user avatar", err, "bad_request", `"avatar" must be`)
	if _, err := app.PushUser(ctx, apiclient.PushUserInput{UID: "mallory", Avatar: "https://cdn.example/m.png"}); err != nil {
		t.Fatalf("https user avatar: %v", err)
	}
	wantReplyError(t, "group avatar over WebSocket", a.do(`"action":"group_create","name":"g","uids":["bob"],"avatar":"data:text/html,<script>alert(1)</script>"`),
		"bad_request", `"avatar" must be`)
	_, err = app.CreateGroup(ctx, apiclient.GroupInput{Owner: "alice", Name: "g", Avatar: "file:///etc/passwd", Members: []string{"bob"}})
	wantAPIError(t, "group avatar over the server API", err, "bad_request", `"avatar" must be`)
}

// dialLogin logs in on a connection read by the test itself, so that it
// sees the close frame and its reason.
func dialLogin(t *testing.T, addr, token string) *wsConn {
	t.Helper()
	conn, _, _, err := ws.Dial(context.Background(), "ws://"+addr+"/")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	c := &wsConn{t: t, conn: conn, closed: make(chan wsutil.ClosedError, 1)}
	if err := wsutil.WriteClientText(conn, []byte(`{"id":"l","action":"login","app":"shop","token":"`+token+`"}`)); err != nil {
		t.Fatal(err)
	}
	b, _, err := wsutil.ReadServerData(conn)
	if err != nil || !strings.Contains(string(b), `"ok":true`) {
		t.Fatalf("login: %q %v", b, err)
	}
	go func() {
		for {
			if _, _, err := wsutil.ReadServerData(conn); err != nil {
				var ce wsutil.ClosedError
				errors.As(err, &ce)
				c.closed <- ce
				return
			}
		}
	}()
	return c
}

type wsConn struct {
	t      *testing.T
	conn   interface{ Close() error }
	closed chan wsutil.ClosedError
}

// waitClose waits for the server's close frame.
func (c *wsConn) waitClose(within time.Duration) (wsutil.ClosedError, bool) {
	select {
	case ce := <-c.closed:
		return ce, true
	case <-time.After(within):
		return wsutil.ClosedError{}, false
	}
}

// TestExpiredTokenClosesConnection: a connection does not outlive its
// token (close 4002 "token expired" once the core's clock passes the
// expiry), and a TTL so large that it would wrap is refused.
func TestExpiredTokenClosesConnection(t *testing.T) {
	clock := newClock()
	// A short login timeout makes the sweeper tick every 50 ms.
	s := startWith(t, teststack.Options{LoginTimeout: 200 * time.Millisecond, Core: chat.Config{Now: clock.Now}})
	app := s.app("shop")
	ctx := context.Background()
	pushUser(t, app, "alice")
	pushUser(t, app, "bob")
	short, err := app.IssueToken(ctx, "alice", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	long, err := app.IssueToken(ctx, "bob", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	a := dialLogin(t, s.WSAddr, short.Token)
	b := login(t, s.WSAddr, "shop", long.Token)

	if ce, ok := a.waitClose(300 * time.Millisecond); ok {
		t.Fatalf("closed before its token expired: %+v", ce)
	}
	clock.Advance(time.Minute + time.Second)
	ce, ok := a.waitClose(10 * time.Second)
	if !ok {
		t.Fatal("connection still open 10 s after its token expired")
	}
	if ce.Code != 4002 || ce.Reason != "token expired" {
		t.Fatalf("closed with %d %q; want 4002 \"token expired\"", ce.Code, ce.Reason)
	}
	if f := b.do(`"action":"ping"`); !f.OK {
		t.Fatalf("bob's connection (token valid for an hour) broke: %+v", f.Error)
	}
	if f := dial(t, s.WSAddr).do(`"action":"login","app":"shop","token":"` + short.Token + `"`); f.OK || f.Error == nil || f.Error.Code != chat.CodeUnauthorized {
		t.Fatalf("login with the expired token: %+v", f.Error)
	}

	// TTL bounds: 18446744074 s × 10^9 wraps int64 to 288 ms.
	for _, c := range []struct{ path, body string }{
		{"/api/v1/users/bob/tokens", `{"ttl":18446744074}`},
		{"/api/v1/users/bob/tokens", `{"ttl":31536001}`},
		{"/api/v1/users", `{"uid":"bob","issue_token":true,"token_ttl":18446744074}`},
	} {
		err := app.Do(ctx, http.MethodPost, c.path, []byte(c.body), nil)
		wantAPIError(t, c.path+" "+c.body, err, "bad_request", "over the maximum of 31536000 s (365 days)")
	}
	g, err := app.IssueToken(ctx, "bob", 365*24*time.Hour)
	if err != nil {
		t.Fatalf("a 365-day token: %v", err)
	}
	if want := clock.Now().Add(365 * 24 * time.Hour).UnixMilli(); g.ExpiresAt != want {
		t.Fatalf("365-day token expires at %d, want %d", g.ExpiresAt, want)
	}
}

// TestGroupFloodIsLimited: a user cannot put others into groups faster than
// the per-user budgets allow, and the error says which limit and when to
// retry.
func TestGroupFloodIsLimited(t *testing.T) {
	clock := newClock()
	s := startWith(t, teststack.Options{Core: chat.Config{Now: clock.Now, GroupsPerMinute: 5, MemberAddsPerMinute: 12}})
	app := s.app("shop")
	tm := pushUser(t, app, "mallory")
	var many []string // 13 users: one more than the member budget
	for i := range 13 {
		many = append(many, "u"+strconv.Itoa(i))
	}
	for _, u := range append([]string{"victim", "v2"}, many...) {
		pushUser(t, app, u)
	}
	uids := func(us []string) string { b, _ := json.Marshal(us); return string(b) }
	m := login(t, s.WSAddr, "shop", tm)
	for i := range 5 {
		if f := m.do(`"action":"group_create","name":"spam","uids":["victim"]`); !f.OK {
			t.Fatalf("group %d: %+v", i, f.Error)
		}
	}
	wantReplyError(t, "6th group in a minute", m.do(`"action":"group_create","name":"spam","uids":["victim"]`),
		"rate_limited", "group creation limit: at most 5 groups per minute; retry in 12 s")
	clock.Advance(12 * time.Second)
	f := m.do(`"action":"group_create","name":"spam","uids":["victim","v2"]`)
	if !f.OK {
		t.Fatalf("group after the wait: %+v", f.Error)
	}
	// Member adds: 12 - 5 + 2.4 refilled in 12 s - 2 = 7.4 left; 8 are
	// 0.6 short, which 12 a minute refill in 3 s.
	sid := strconv.FormatUint(decode[struct {
		ID uint64 `json:"session_id"`
	}](t, f).ID, 10)
	wantReplyError(t, "group_add past the member budget", m.do(`"action":"group_add","session_id":`+sid+`,"uids":`+uids(many[:8])),
		"rate_limited", "member limit: at most 12 members added to groups per minute; retry in 3 s")
	clock.Advance(3 * time.Second)
	if f := m.do(`"action":"group_add","session_id":` + sid + `,"uids":` + uids(many[:8])); !f.OK {
		t.Fatalf("group_add after the wait: %+v", f.Error)
	}
	clock.Advance(time.Minute)
	wantReplyError(t, "one create over the whole budget", m.do(`"action":"group_create","name":"big","uids":`+uids(many)),
		"rate_limited", "at most 12 members can be added per minute, and this adds 13")
	// The server API is the host's, and not limited.
	for range 8 {
		if _, err := app.CreateGroup(context.Background(), apiclient.GroupInput{Owner: "mallory", Name: "host", Members: []string{"victim"}}); err != nil {
			t.Fatalf("server API group: %v", err)
		}
	}
}

// TestVictimInManyGroupsKeepsItsConnection: a user in more sessions than
// one reply can carry still gets a `sessions` reply (the most recent ones,
// truncated: true) and stays connected, instead of being closed 1008 by
// its own reply each time it resyncs.
func TestVictimInManyGroupsKeepsItsConnection(t *testing.T) {
	ctx := context.Background()
	t.Run("over the outbound limit", func(t *testing.T) {
		s := startWith(t, teststack.Options{MaxOutbound: 16 << 10})
		app := s.app("shop")
		tv := pushUser(t, app, "victim")
		pushUser(t, app, "mallory")
		name := strings.Repeat("spam ", 24)
		var last uint64
		for range 120 { // ~120 × 300 bytes: twice the outbound limit
			g, err := app.CreateGroup(ctx, apiclient.GroupInput{Owner: "mallory", Name: name, Members: []string{"victim"}})
			if err != nil {
				t.Fatal(err)
			}
			last = g.ID
		}
		v := login(t, s.WSAddr, "shop", tv)
		f := v.do(`"action":"sessions"`)
		if !f.OK || len(f.raw) > 8<<10 {
			t.Fatalf("sessions: ok=%v, %d bytes (limit %d)", f.OK, len(f.raw), 8<<10)
		}
		ls := decode[struct {
			Sessions []struct {
				ID uint64 `json:"session_id"`
			} `json:"sessions"`
			Truncated bool `json:"truncated"`
		}](t, f)
		if !ls.Truncated || len(ls.Sessions) == 0 || len(ls.Sessions) >= 120 || ls.Sessions[0].ID != last {
			t.Fatalf("sessions: truncated=%v, %d listed, first %v; want truncated, the newest (%d) first",
				ls.Truncated, len(ls.Sessions), ls.Sessions, last)
		}
		if f := v.do(`"action":"ping"`); !f.OK {
			t.Fatalf("ping after sessions: %+v", f.Error)
		}
	})
	t.Run("a group whose member list is over the outbound limit", func(t *testing.T) {
		s := startWith(t, teststack.Options{MaxOutbound: 16 << 10})
		app := s.app("shop")
		tv := pushUser(t, app, "victim")
		var members []string
		for i := range 60 { // 60 uids of 64 bytes, each 369 encoded: 22 KB
			uid := strconv.Itoa(100+i) + strings.Repeat("<", 61)
			if _, err := app.PushUser(ctx, apiclient.PushUserInput{UID: uid}); err != nil {
				t.Fatal(err)
			}
			members = append(members, uid)
		}
		g, err := app.CreateGroup(ctx, apiclient.GroupInput{Owner: "victim", Name: "big", Members: members})
		if err != nil {
			t.Fatal(err)
		}
		v := login(t, s.WSAddr, "shop", tv)
		f := v.do(`"action":"session","session_id":` + strconv.FormatUint(g.ID, 10))
		if !f.OK || len(f.raw) > 8<<10 {
			t.Fatalf("session: ok=%v, %d bytes (limit %d)", f.OK, len(f.raw), 8<<10)
		}
		sv := decode[struct {
			Members   []string `json:"members"`
			Truncated bool     `json:"members_truncated"`
		}](t, f)
		if !sv.Truncated || len(sv.Members) == 0 || len(sv.Members) >= 61 || sv.Members[0] != "victim" {
			t.Fatalf("session: members_truncated=%v, %d members listed, first %q", sv.Truncated, len(sv.Members), sv.Members)
		}
		if f := v.do(`"action":"ping"`); !f.OK {
			t.Fatalf("ping after session: %+v", f.Error)
		}
	})
	t.Run("history and sync pages over the outbound limit", func(t *testing.T) {
		s := startWith(t, teststack.Options{MaxOutbound: 16 << 10})
		app := s.app("shop")
		tv := pushUser(t, app, "victim")
		pushUser(t, app, "mallory")
		big := strings.Repeat("x", 3000)
		var sid uint64
		for range 8 { // 8 × 3 KB: a default page of 50 would be 24 KB
			r, err := app.Send(ctx, apiclient.SendInput{From: "mallory", To: "victim", Type: "text", Content: json.RawMessage(`{"text":"` + big + `"}`)})
			if err != nil {
				t.Fatal(err)
			}
			sid = r.Session
		}
		v := login(t, s.WSAddr, "shop", tv)
		type page struct {
			Messages []struct {
				Seq uint64 `json:"seq"`
			} `json:"messages"`
			HasMore bool `json:"has_more"`
		}
		var seen []uint64
		before := uint64(0)
		for range 10 {
			f := v.do(`"action":"history","session_id":` + strconv.FormatUint(sid, 10) + `,"before":` + strconv.FormatUint(before, 10))
			if !f.OK || len(f.raw) > 8<<10 {
				t.Fatalf("history before %d: ok=%v, %d bytes", before, f.OK, len(f.raw))
			}
			p := decode[page](t, f)
			for i := len(p.Messages) - 1; i >= 0; i-- {
				seen = append(seen, p.Messages[i].Seq)
			}
			if !p.HasMore {
				break
			}
			before = p.Messages[0].Seq
		}
		if len(seen) != 8 || seen[0] != 8 || seen[7] != 1 {
			t.Fatalf("paging back saw seqs %v; want 8 down to 1", seen)
		}
		f := v.do(`"action":"sync","session_id":` + strconv.FormatUint(sid, 10) + `,"after":0`)
		if p := decode[page](t, f); !f.OK || len(f.raw) > 8<<10 || !p.HasMore || len(p.Messages) == 0 || p.Messages[0].Seq != 1 {
			t.Fatalf("sync: ok=%v, %d bytes, %+v", f.OK, len(f.raw), p)
		}
	})
	t.Run("over the count cap", func(t *testing.T) {
		s := startWith(t, teststack.Options{Core: chat.Config{MaxSessionsListed: 10}})
		app := s.app("shop")
		tv := pushUser(t, app, "victim")
		pushUser(t, app, "mallory")
		for range 15 {
			if _, err := app.CreateGroup(ctx, apiclient.GroupInput{Owner: "mallory", Name: "g", Members: []string{"victim"}}); err != nil {
				t.Fatal(err)
			}
		}
		v := login(t, s.WSAddr, "shop", tv)
		ls := decode[struct {
			Sessions  []json.RawMessage `json:"sessions"`
			Truncated bool              `json:"truncated"`
		}](t, v.do(`"action":"sessions"`))
		if len(ls.Sessions) != 10 || !ls.Truncated {
			t.Fatalf("%d sessions listed, truncated=%v; want 10, true", len(ls.Sessions), ls.Truncated)
		}
	})
}
