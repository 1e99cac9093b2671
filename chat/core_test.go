package chat_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"chatd/chat"
	"chatd/chat/memstore"
)

// fakePeer records what the core sends to one connection.
type fakePeer struct {
	mu     sync.Mutex
	msgs   [][]byte
	closed int
	reason string
	notify chan struct{}
	// slow, when set, is called before each frame is recorded: a
	// connection that takes a while to accept a frame.
	slow func(b []byte)
}

func newPeer() *fakePeer { return &fakePeer{notify: make(chan struct{}, 1)} }

func (p *fakePeer) Send(b []byte) bool {
	if p.slow != nil {
		p.slow(b)
	}
	p.mu.Lock()
	p.msgs = append(p.msgs, append([]byte(nil), b...))
	p.mu.Unlock()
	select {
	case p.notify <- struct{}{}:
	default:
	}
	return true
}

func (p *fakePeer) Close(code int, reason string) {
	p.mu.Lock()
	if p.closed == 0 {
		p.closed, p.reason = code, reason
	}
	p.mu.Unlock()
	select {
	case p.notify <- struct{}{}:
	default:
	}
}

func (p *fakePeer) RemoteAddr() string { return "127.0.0.1:1" }

// frame is any reply or event, decoded loosely for assertions.
type frame struct {
	ReplyTo json.RawMessage `json:"reply_to"`
	OK      bool            `json:"ok"`
	Event   string          `json:"event"`
	Data    json.RawMessage `json:"data"`
	Error   *chat.Error     `json:"error"`
}

// wait returns the first recorded frame (consuming it) that matches.
func (p *fakePeer) wait(t *testing.T, match func(f frame) bool) frame {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		p.mu.Lock()
		for i, b := range p.msgs {
			var f frame
			if err := json.Unmarshal(b, &f); err != nil {
				p.mu.Unlock()
				t.Fatalf("core sent invalid JSON %q: %v", b, err)
			}
			if match(f) {
				p.msgs = append(p.msgs[:i], p.msgs[i+1:]...)
				p.mu.Unlock()
				return f
			}
		}
		p.mu.Unlock()
		select {
		case <-p.notify:
		case <-deadline:
			p.mu.Lock()
			defer p.mu.Unlock()
			t.Fatalf("timed out; have %d frames: %s", len(p.msgs), dump(p.msgs))
		}
	}
}

func (p *fakePeer) count(event string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, b := range p.msgs {
		var f frame
		_ = json.Unmarshal(b, &f)
		if f.Event == event {
			n++
		}
	}
	return n
}

func dump(ms [][]byte) string {
	var sb strings.Builder
	for _, m := range ms {
		sb.Write(m)
		sb.WriteByte('\n')
	}
	return sb.String()
}

func reply(id string) func(frame) bool {
	return func(f frame) bool { return string(f.ReplyTo) == `"`+id+`"` }
}

func event(name string) func(frame) bool { return func(f frame) bool { return f.Event == name } }

type env struct {
	t     *testing.T
	core  *chat.Core
	app   chat.App
	store chat.Store
	stop  func()
}

func newEnv(t *testing.T, cfg chat.Config) *env {
	t.Helper()
	return newEnvOn(t, cfg, memstore.New())
}

// newEnvOn is newEnv on the store st.
func newEnvOn(t *testing.T, cfg chat.Config, st chat.Store) *env {
	t.Helper()
	core, err := chat.New(cfg, st)
	if err != nil {
		t.Fatal(err)
	}
	e := runEnv(t, core, st)
	if e.app, err = core.CreateApp(context.Background(), "shop", "Shop"); err != nil {
		t.Fatal(err)
	}
	return e
}

// runEnv runs core on st until the test ends or e.stop is called.
func runEnv(t *testing.T, core *chat.Core, st chat.Store) *env {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- core.Run(ctx) }()
	e := &env{t: t, core: core, store: st}
	e.stop = func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}
	t.Cleanup(func() {
		select {
		case <-ctx.Done():
		default:
			e.stop()
		}
	})
	return e
}

// user pushes a user and returns a token.
func (e *env) user(uid string) string {
	e.t.Helper()
	ctx := context.Background()
	if _, err := e.core.PushUser(ctx, e.app.ID, chat.UserInput{UID: uid, Nickname: strings.ToUpper(uid)}); err != nil {
		e.t.Fatal(err)
	}
	g, err := e.core.IssueToken(ctx, e.app.ID, uid, 0)
	if err != nil {
		e.t.Fatal(err)
	}
	return g.Token
}

// device connects and logs in.
type device struct {
	*fakePeer
	h chat.Handler
	e *env
	n int
}

func (e *env) connect() *device {
	p := newPeer()
	return &device{fakePeer: p, h: e.core.Accept(p), e: e}
}

func (e *env) login(token string) *device {
	e.t.Helper()
	d := e.connect()
	f := d.do(`"action":"login","app":"shop","token":"` + token + `"`)
	if !f.OK {
		e.t.Fatalf("login: %+v", f.Error)
	}
	return d
}

// do sends one request (fields without braces and id) and waits for its reply.
func (d *device) do(fields string) frame {
	d.e.t.Helper()
	d.n++
	id := fmt.Sprintf("r%d", d.n)
	d.h.HandleMessage([]byte(`{"id":"` + id + `",` + fields + `}`))
	return d.wait(d.e.t, reply(id))
}

func data[T any](t *testing.T, f frame) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(f.Data, &v); err != nil {
		t.Fatalf("decode %s: %v", f.Data, err)
	}
	return v
}

type ack struct {
	Session   uint64 `json:"session_id"`
	Seq       uint64 `json:"seq"`
	MsgID     string `json:"msg_id"`
	Duplicate bool   `json:"duplicate"`
}

type msgEvent struct {
	Session uint64          `json:"session_id"`
	Seq     uint64          `json:"seq"`
	From    string          `json:"from"`
	Type    string          `json:"type"`
	Content json.RawMessage `json:"content"`
	CID     string          `json:"cid"`
}

func TestPrivateMessageReachesPeerAndOtherDevices(t *testing.T) {
	e := newEnv(t, chat.Config{})
	ta, tb := e.user("alice"), e.user("bob")
	a1, a2, b := e.login(ta), e.login(ta), e.login(tb)

	f := a1.do(`"action":"send","to":"bob","type":"text","content":{"text":"hi bob"},"cid":"c1"`)
	if !f.OK {
		t.Fatalf("send: %+v", f.Error)
	}
	got := data[ack](t, f)
	if got.Seq != 1 || got.MsgID != fmt.Sprintf("%d-1", got.Session) {
		t.Fatalf("ack = %+v, want seq 1", got)
	}
	for name, d := range map[string]*device{"bob": b, "alice's other device": a2} {
		ev := data[msgEvent](t, d.wait(t, event("message")))
		if ev.Seq != 1 || ev.From != "alice" || string(ev.Content) != `{"text":"hi bob"}` || ev.CID != "c1" {
			t.Errorf("%s got %+v", name, ev)
		}
	}
	time.Sleep(50 * time.Millisecond)
	if n := a1.count("message"); n != 0 {
		t.Errorf("sending device got its own message back %d times", n)
	}

	r := b.do(fmt.Sprintf(`"action":"send","session_id":%d,"type":"text","content":{"text":"hi alice"}`, got.Session))
	if s := data[ack](t, r).Seq; s != 2 {
		t.Fatalf("reply seq = %d, want 2", s)
	}
	a1.wait(t, event("message"))
}

func TestCIDRetryReturnsOriginal(t *testing.T) {
	e := newEnv(t, chat.Config{})
	ta := e.user("alice")
	e.user("bob")
	a := e.login(ta)
	first := data[ack](t, a.do(`"action":"send","to":"bob","type":"text","content":{"text":"once"},"cid":"same"`))
	again := data[ack](t, a.do(`"action":"send","to":"bob","type":"text","content":{"text":"once"},"cid":"same"`))
	if again.Seq != first.Seq || !again.Duplicate || again.Session != first.Session {
		t.Fatalf("retry = %+v, first = %+v", again, first)
	}
	// Concurrent retries in one batch also collapse to one message.
	for i := 0; i < 20; i++ {
		a.h.HandleMessage([]byte(`{"id":"x","action":"send","to":"bob","type":"text","content":{"text":"burst"},"cid":"burst"}`))
	}
	seqs := map[uint64]bool{}
	for i := 0; i < 20; i++ {
		seqs[data[ack](t, a.wait(t, reply("x"))).Seq] = true
	}
	if len(seqs) != 1 {
		t.Fatalf("20 sends with one cid made %d messages: %v", len(seqs), seqs)
	}
	h := data[struct {
		Messages []msgEvent `json:"messages"`
	}](t, a.do(fmt.Sprintf(`"action":"history","session_id":%d`, first.Session)))
	if len(h.Messages) != 2 {
		t.Fatalf("history has %d messages, want 2 (one per cid)", len(h.Messages))
	}
}

func TestGroupFanOutOncePerMember(t *testing.T) {
	e := newEnv(t, chat.Config{})
	uids := []string{"owner", "m1", "m2", "m3", "m4"}
	devs := map[string]*device{}
	for _, u := range uids {
		devs[u] = e.login(e.user(u))
	}
	g := devs["owner"].do(`"action":"group_create","name":"team","uids":["m1","m2","m3"]`)
	if !g.OK {
		t.Fatalf("group_create: %+v", g.Error)
	}
	sid := data[struct {
		ID uint64 `json:"session_id"`
	}](t, g).ID
	f := devs["m1"].do(fmt.Sprintf(`"action":"send","session_id":%d,"type":"text","content":{"text":"hello team"}`, sid))
	if !f.OK {
		t.Fatalf("send: %+v", f.Error)
	}
	for _, u := range []string{"owner", "m2", "m3"} {
		devs[u].wait(t, event("message"))
	}
	time.Sleep(50 * time.Millisecond)
	for _, u := range uids {
		want := map[string]int{"owner": 0, "m2": 0, "m3": 0, "m1": 0, "m4": 0}[u]
		if n := devs[u].count("message"); n != want {
			t.Errorf("%s has %d extra message events", u, n)
		}
	}
	// m4 is not a member.
	r := devs["m4"].do(fmt.Sprintf(`"action":"send","session_id":%d,"type":"text","content":{"text":"let me in"}`, sid))
	if r.OK || r.Error.Code != chat.CodeForbidden {
		t.Fatalf("non-member send = %+v", r)
	}
	// add m4, remove m3; only the owner may.
	if r := devs["m2"].do(fmt.Sprintf(`"action":"group_add","session_id":%d,"uids":["m4"]`, sid)); r.OK || r.Error.Code != chat.CodeForbidden {
		t.Fatalf("member adding = %+v", r)
	}
	if r := devs["owner"].do(fmt.Sprintf(`"action":"group_add","session_id":%d,"uids":["m4"]`, sid)); !r.OK {
		t.Fatalf("group_add: %+v", r.Error)
	}
	if r := devs["owner"].do(fmt.Sprintf(`"action":"group_remove","session_id":%d,"uids":["m3"]`, sid)); !r.OK {
		t.Fatalf("group_remove: %+v", r.Error)
	}
	devs["owner"].do(fmt.Sprintf(`"action":"send","session_id":%d,"type":"text","content":{"text":"after"}`, sid))
	devs["m4"].wait(t, func(f frame) bool { return f.Event == "message" && strings.Contains(string(f.Data), "after") })
	time.Sleep(50 * time.Millisecond)
	devs["m3"].mu.Lock()
	for _, b := range devs["m3"].msgs {
		if strings.Contains(string(b), `"after"`) {
			t.Errorf("removed member received %s", b)
		}
	}
	devs["m3"].mu.Unlock()
	// Owner leaves: ownership passes on, the group keeps working.
	if r := devs["owner"].do(fmt.Sprintf(`"action":"group_leave","session_id":%d`, sid)); !r.OK {
		t.Fatalf("leave: %+v", r.Error)
	}
	info := data[struct {
		Owner   string   `json:"owner"`
		Members []string `json:"members"`
	}](t, devs["m1"].do(fmt.Sprintf(`"action":"session","session_id":%d`, sid)))
	if info.Owner == "owner" || info.Owner == "" || len(info.Members) != 3 {
		t.Fatalf("after leave: %+v", info)
	}
}

func TestHistorySyncSessionsRead(t *testing.T) {
	e := newEnv(t, chat.Config{})
	ta, tb := e.user("alice"), e.user("bob")
	a, b := e.login(ta), e.login(tb)
	var sid uint64
	for i := 1; i <= 7; i++ {
		f := a.do(fmt.Sprintf(`"action":"send","to":"bob","type":"text","content":{"text":"m%d"}`, i))
		sid = data[ack](t, f).Session
	}
	type page struct {
		Messages []msgEvent `json:"messages"`
		HasMore  bool       `json:"has_more"`
	}
	h := data[page](t, b.do(fmt.Sprintf(`"action":"history","session_id":%d,"limit":3`, sid)))
	if len(h.Messages) != 3 || h.Messages[0].Seq != 5 || h.Messages[2].Seq != 7 || !h.HasMore {
		t.Fatalf("newest page = %+v", h)
	}
	h = data[page](t, b.do(fmt.Sprintf(`"action":"history","session_id":%d,"before":5,"limit":10`, sid)))
	if len(h.Messages) != 4 || h.Messages[0].Seq != 1 || h.HasMore {
		t.Fatalf("older page = %+v", h)
	}
	s := data[page](t, b.do(fmt.Sprintf(`"action":"sync","session_id":%d,"after":4,"limit":2`, sid)))
	if len(s.Messages) != 2 || s.Messages[0].Seq != 5 || !s.HasMore {
		t.Fatalf("sync = %+v", s)
	}
	type sessions struct {
		Sessions []struct {
			ID          uint64 `json:"session_id"`
			Unread      uint64 `json:"unread"`
			Peer        string `json:"peer"`
			LastPreview string `json:"last_preview"`
			LastSeq     uint64 `json:"last_seq"`
		} `json:"sessions"`
		Unread uint64 `json:"unread"`
	}
	ls := data[sessions](t, b.do(`"action":"sessions"`))
	if len(ls.Sessions) != 1 || ls.Sessions[0].Unread != 7 || ls.Sessions[0].Peer != "alice" || ls.Sessions[0].LastPreview != "m7" {
		t.Fatalf("bob's sessions = %+v", ls)
	}
	if as := data[sessions](t, a.do(`"action":"sessions"`)); as.Sessions[0].Unread != 0 {
		t.Fatalf("sender has unread own messages: %+v", as)
	}
	if r := b.do(fmt.Sprintf(`"action":"read","session_id":%d,"seq":5`, sid)); !r.OK {
		t.Fatalf("read: %+v", r.Error)
	}
	a.wait(t, event("read")) // the peer sees the receipt
	ls = data[sessions](t, b.do(`"action":"sessions"`))
	if ls.Sessions[0].Unread != 2 || ls.Unread != 2 {
		t.Fatalf("after read: %+v", ls)
	}
	// Read marks never go backwards.
	b.do(fmt.Sprintf(`"action":"read","session_id":%d,"seq":1`, sid))
	if ls = data[sessions](t, b.do(`"action":"sessions"`)); ls.Sessions[0].Unread != 2 {
		t.Fatalf("read went backwards: %+v", ls)
	}
}

func TestBadInputGetsSpecificErrors(t *testing.T) {
	e := newEnv(t, chat.Config{MaxContent: 100})
	ta := e.user("alice")
	e.user("bob")
	anon := e.connect()
	anon.h.HandleMessage([]byte(`{"id":"1","action":"sessions"}`))
	if f := anon.wait(t, reply("1")); f.Error == nil || f.Error.Code != chat.CodeUnauthorized {
		t.Fatalf("before login: %+v", f)
	}
	anon.h.HandleMessage([]byte(`{"id":"2","action":"login","app":"shop","token":"forged"}`))
	if f := anon.wait(t, reply("2")); f.Error == nil || f.Error.Code != chat.CodeUnauthorized {
		t.Fatalf("wrong token: %+v", f)
	}
	a := e.login(ta)
	cases := []struct {
		name, req string
		code      chat.Code
		msg       string
	}{
		{name: "bad JSON", req: `{"id":"b1","action":"send",`, code: chat.CodeBadRequest, msg: "bad JSON"},
		{name: "wrong field type", req: `{"id":"b2","action":"send","session_id":"x"}`, code: chat.CodeBadRequest, msg: "session_id"},
		{name: "unknown action", req: `{"id":"b3","action":"teleport"}`, code: chat.CodeBadRequest, msg: `unknown action "teleport"`},
		{name: "missing action", req: `{"id":"b4"}`, code: chat.CodeBadRequest, msg: "missing action"},
		{name: "not a member", req: `{"id":"b5","action":"send","session_id":999,"type":"text","content":{"text":"x"}}`, code: chat.CodeNotFound, msg: "no session 999"},
		{name: "unknown type", req: `{"id":"b6","action":"send","to":"bob","type":"hologram","content":{}}`, code: chat.CodeBadRequest, msg: "unknown message type"},
		{name: "empty text", req: `{"id":"b7","action":"send","to":"bob","type":"text","content":{"text":""}}`, code: chat.CodeBadRequest, msg: `non-empty "text"`},
		{name: "too large", req: `{"id":"b8","action":"send","to":"bob","type":"text","content":{"text":"` + strings.Repeat("x", 200) + `"}}`, code: chat.CodeTooLarge, msg: "limit is 100"},
		{name: "unknown user", req: `{"id":"b9","action":"send","to":"nobody","type":"text","content":{"text":"x"}}`, code: chat.CodeNotFound, msg: `no user "nobody"`},
		{name: "login twice", req: `{"id":"b10","action":"login","app":"shop","token":"` + ta + `"}`, code: chat.CodeConflict, msg: "already logged in"},
		{name: "history without session", req: `{"id":"b11","action":"history"}`, code: chat.CodeBadRequest, msg: "missing session_id"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a.h.HandleMessage([]byte(tc.req))
			f := a.wait(t, reply(fmt.Sprintf("b%d", i+1)))
			if f.OK || f.Error == nil || f.Error.Code != tc.code || !strings.Contains(f.Error.Message, tc.msg) {
				t.Fatalf("got %+v %+v, want %s containing %q", f, f.Error, tc.code, tc.msg)
			}
		})
	}
	// A session bob and carol share is forbidden to alice.
	e.user("carol")
	tb := e.user("bob")
	b := e.login(tb)
	sid := data[ack](t, b.do(`"action":"send","to":"carol","type":"text","content":{"text":"private"}`)).Session
	f := a.do(fmt.Sprintf(`"action":"history","session_id":%d`, sid))
	if f.OK || f.Error.Code != chat.CodeForbidden {
		t.Fatalf("outsider history = %+v", f)
	}
	// The connection still works after all that.
	if f := a.do(`"action":"ping"`); !f.OK {
		t.Fatalf("ping after errors: %+v", f.Error)
	}
}

func TestLoginTimeoutAndRevocation(t *testing.T) {
	e := newEnv(t, chat.Config{LoginTimeout: 100 * time.Millisecond})
	idle := e.connect()
	deadline := time.Now().Add(3 * time.Second)
	for {
		idle.mu.Lock()
		code := idle.closed
		idle.mu.Unlock()
		if code == chat.CloseLoginTimeout {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("connection without login not closed; code %d", code)
		}
		time.Sleep(20 * time.Millisecond)
	}
	tok := e.user("alice")
	d := e.login(tok)
	time.Sleep(300 * time.Millisecond)
	d.mu.Lock()
	if d.closed != 0 {
		t.Fatalf("logged-in connection closed with %d", d.closed)
	}
	d.mu.Unlock()
	n, err := e.core.RevokeToken(context.Background(), "shop", tok)
	if err != nil || n != 1 {
		t.Fatalf("revoke: kicked %d, %v", n, err)
	}
	d.mu.Lock()
	if d.closed != chat.CloseKicked {
		t.Errorf("revoked device close code = %d", d.closed)
	}
	d.mu.Unlock()
	again := e.connect()
	again.h.HandleMessage([]byte(`{"id":"1","action":"login","app":"shop","token":"` + tok + `"}`))
	if f := again.wait(t, reply("1")); f.Error == nil || f.Error.Code != chat.CodeUnauthorized {
		t.Fatalf("login with revoked token: %+v", f)
	}
	if st := e.core.Stats(); st.UsersOnline != 0 || st.Online != 0 {
		t.Fatalf("stats after revoke: %+v", st)
	}
}

func TestSystemNoticeAndServerSend(t *testing.T) {
	e := newEnv(t, chat.Config{})
	ta := e.user("alice")
	e.user("bob")
	a := e.login(ta)
	ctx := context.Background()
	r, err := e.core.Send(ctx, "shop", chat.SendInput{To: "alice", Type: "notice", Content: json.RawMessage(`{"text":"order shipped"}`)})
	if err != nil {
		t.Fatal(err)
	}
	ev := data[msgEvent](t, a.wait(t, event("message")))
	if ev.From != "" || ev.Type != "notice" || ev.Seq != r.Seq {
		t.Fatalf("notice event %+v, result %+v", ev, r)
	}
	r2, err := e.core.Send(ctx, "shop", chat.SendInput{To: "alice", Type: "notice", Content: json.RawMessage(`{"text":"delivered"}`)})
	if err != nil || r2.Session != r.Session || r2.Seq != 2 {
		t.Fatalf("second notice %+v, %v; want same session, seq 2", r2, err)
	}
	// As a user, from the host backend.
	r3, err := e.core.Send(ctx, "shop", chat.SendInput{From: "bob", To: "alice", Type: "text", Content: json.RawMessage(`{"text":"via API"}`)})
	if err != nil || r3.Seq != 1 {
		t.Fatalf("api send %+v %v", r3, err)
	}
	a.wait(t, func(f frame) bool { return f.Event == "message" && strings.Contains(string(f.Data), "via API") })
	ms, more, err := e.core.History(ctx, "shop", r3.Session, 0, 10)
	if err != nil || len(ms) != 1 || ms[0].From != "bob" || more {
		t.Fatalf("history %+v %v %v", ms, more, err)
	}
	e.core.Send(ctx, "shop", chat.SendInput{From: "bob", To: "alice", Type: "text", Content: json.RawMessage(`{"text":"again"}`)})
	if ms, more, err = e.core.History(ctx, "shop", r3.Session, 0, 1); err != nil || len(ms) != 1 || !more || ms[0].Seq != 2 {
		t.Fatalf("history page of 1: %+v more=%v %v", ms, more, err)
	}
	if _, _, err := e.core.History(ctx, "other-app", r3.Session, 0, 10); err == nil {
		t.Fatal("another app read the session")
	}
}

// Concurrent senders: every session's seqs are 1..N with no gap or repeat,
// and each connection's messages keep their order.
func TestConcurrentSendsKeepSeqsDense(t *testing.T) {
	e := newEnv(t, chat.Config{})
	const senders, each = 8, 50
	recvTok := e.user("hub")
	hub := e.login(recvTok)
	var wg sync.WaitGroup
	for s := 0; s < senders; s++ {
		tok := e.user(fmt.Sprintf("s%d", s))
		d := e.login(tok)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				d.h.HandleMessage([]byte(fmt.Sprintf(`{"id":"%d","action":"send","to":"hub","type":"text","content":{"text":"%d"}}`, i, i)))
			}
			last := uint64(0)
			for i := 0; i < each; i++ {
				a := data[ack](t, d.wait(t, reply(fmt.Sprint(i))))
				if a.Seq != uint64(i+1) || a.Seq <= last {
					t.Errorf("sender ack %d has seq %d", i, a.Seq)
				}
				last = a.Seq
			}
		}()
	}
	wg.Wait()
	deadline := time.Now().Add(5 * time.Second)
	for hub.count("message") < senders*each && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := hub.count("message"); n != senders*each {
		t.Fatalf("hub got %d events, want %d", n, senders*each)
	}
	if st := e.core.Stats(); st.MessagesIn != senders*each || st.Commits == 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestShutdownDrainsJournal(t *testing.T) {
	e := newEnv(t, chat.Config{})
	ta := e.user("alice")
	e.user("bob")
	a := e.login(ta)
	for i := 0; i < 200; i++ {
		a.h.HandleMessage([]byte(fmt.Sprintf(`{"id":"%d","action":"send","to":"bob","type":"text","content":{"text":"%d"}}`, i, i)))
	}
	acked := 0
	for i := 0; i < 200; i++ {
		if f := a.wait(t, reply(fmt.Sprint(i))); f.OK {
			acked++
		}
	}
	e.stop()
	sid, err := e.store.PrivateSession(context.Background(), "shop", "alice", "bob")
	if err != nil {
		t.Fatal(err)
	}
	ms, err := e.store.Messages(context.Background(), sid, 1, ^uint64(0), 0, false)
	if err != nil || len(ms) != acked {
		t.Fatalf("store has %d messages, %d were acknowledged (%v)", len(ms), acked, err)
	}
	if _, err := e.core.Send(context.Background(), "shop", chat.SendInput{From: "alice", To: "bob", Type: "text", Content: json.RawMessage(`{"text":"late"}`)}); err == nil {
		t.Fatal("send after shutdown succeeded")
	}
}

func TestEventBusFilters(t *testing.T) {
	e := newEnv(t, chat.Config{})
	mustFilter := func(s string) chat.Filter {
		f, err := chat.ParseFilter(s)
		if err != nil {
			t.Fatalf("ParseFilter(%q): %v", s, err)
		}
		return f
	}
	u1 := e.core.Subscribe([]chat.Filter{mustFilter("all;uid=u1")}, 0)
	u2 := e.core.Subscribe([]chat.Filter{mustFilter("all;uid=u2")}, 0)
	msgs := e.core.Subscribe([]chat.Filter{mustFilter("message"), mustFilter("serverInfo")}, 0)
	stuck := e.core.Subscribe([]chat.Filter{mustFilter("all")}, 1)
	defer u1.Close()
	defer u2.Close()
	defer msgs.Close()
	defer stuck.Close()

	t1 := e.user("u1")
	e.user("u3")
	d := e.login(t1)
	d.do(`"action":"send","to":"u3","type":"text","content":{"text":"x"}`)
	e.core.Publish(chat.Event{Topic: chat.TopicServerInfo, Info: &chat.ServerInfo{Conns: 1}})

	seen := map[string]int{}
	timeout := time.After(2 * time.Second)
	for seen["message"] == 0 || seen["login"] == 0 {
		select {
		case ev := <-u1.C:
			seen[ev.Topic]++
		case <-timeout:
			t.Fatalf("uid=u1 saw only %v", seen)
		}
	}
	select {
	case ev := <-u2.C:
		t.Fatalf("uid=u2 got an event about u1: %+v", ev)
	case <-time.After(100 * time.Millisecond):
	}
	topics := map[string]bool{}
	for len(topics) < 2 {
		select {
		case ev := <-msgs.C:
			topics[ev.Topic] = true
			if ev.Topic != "message" && ev.Topic != "serverInfo" {
				t.Fatalf("message+serverInfo subscriber got %s", ev.Topic)
			}
		case <-time.After(2 * time.Second):
			t.Fatalf("got topics %v", topics)
		}
	}
	if stuck.Dropped() == 0 {
		t.Fatal("a subscriber that never reads had nothing dropped")
	}
	for _, bad := range []string{"nope", "all;uid", "all;colour=red", "message;session=x"} {
		if _, err := chat.ParseFilter(bad); err == nil {
			t.Errorf("ParseFilter(%q) accepted", bad)
		}
	}
}

// A session whose stored summary lags its messages (e.g. written by an older
// version) must not get a seq that is already taken.
func TestSeqsContinueFromStoredMessagesNotJustSummary(t *testing.T) {
	st := memstore.New()
	ctx := context.Background()
	if err := st.Apply(ctx, &chat.Batch{
		Apps:     []chat.App{{ID: "shop", Secret: "s"}},
		Users:    []chat.User{{App: "shop", UID: "a"}, {App: "shop", UID: "b"}},
		Sessions: []chat.Session{{ID: 1, App: "shop", Kind: chat.KindPrivate, Pair: [2]string{"a", "b"}, LastSeq: 1}},
		Members:  []chat.Member{{Session: 1, UID: "a", Role: chat.RoleMember}, {Session: 1, UID: "b", Role: chat.RoleMember}},
		Messages: []chat.Message{
			{Session: 1, Seq: 1, App: "shop", From: "a", Type: "text", Content: json.RawMessage(`{"text":"1"}`)},
			{Session: 1, Seq: 2, App: "shop", From: "a", Type: "text", Content: json.RawMessage(`{"text":"2"}`)},
		},
	}); err != nil {
		t.Fatal(err)
	}
	core, stop := startCore(t, st)
	defer stop()
	r, err := core.Send(ctx, "shop", chat.SendInput{From: "b", Session: 1, Type: "text", Content: json.RawMessage(`{"text":"3"}`)})
	if err != nil || r.Seq != 3 {
		t.Fatalf("send = %+v, %v; want seq 3", r, err)
	}
	ms, _ := st.Messages(ctx, 1, 1, 10, 0, false)
	if len(ms) != 3 || string(ms[1].Content) != `{"text":"2"}` {
		t.Fatalf("stored messages %+v", ms)
	}
}

// slowStore makes every commit take a while, so writes pile up.
type slowStore struct{ chat.Store }

func (s slowStore) Apply(ctx context.Context, b *chat.Batch) error {
	time.Sleep(2 * time.Millisecond)
	return s.Store.Apply(ctx, b)
}

// Shutting down with a backlog many batches deep: the drain commits it batch
// by batch, every request gets exactly one answer, and every acknowledged
// message is stored (-race also checks that a batch handed to the deliverer
// is not reused while it is read).
func TestShutdownDrainsBacklogInManyBatches(t *testing.T) {
	st := memstore.New()
	core, err := chat.New(chat.Config{MaxBatch: 3}, slowStore{st})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- core.Run(ctx) }()
	e := &env{t: t, core: core, store: st}
	if e.app, err = core.CreateApp(ctx, "shop", "Shop"); err != nil {
		t.Fatal(err)
	}
	ta := e.user("alice")
	e.user("bob")
	a := e.login(ta)
	a.do(`"action":"send","to":"bob","type":"text","content":{"text":"warm the cache"}`)
	const n = 300
	for i := 0; i < n; i++ {
		a.h.HandleMessage([]byte(fmt.Sprintf(`{"id":"%d","action":"send","to":"bob","type":"text","content":{"text":"%d"}}`, i, i)))
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	acked := 1 // the warm-up message
	for i := 0; i < n; i++ {
		f := a.wait(t, reply(fmt.Sprint(i)))
		if f.OK {
			acked++
		} else if f.Error.Code != chat.CodeUnavailable {
			t.Fatalf("request %d: %+v", i, f.Error)
		}
	}
	a.mu.Lock()
	extra := 0
	for _, b := range a.msgs {
		if strings.Contains(string(b), `"reply_to"`) {
			extra++
		}
	}
	a.mu.Unlock()
	if extra != 0 {
		t.Fatalf("%d requests were answered twice", extra)
	}
	sid, err := st.PrivateSession(context.Background(), "shop", "alice", "bob")
	if err != nil {
		t.Fatal(err)
	}
	ms, err := st.Messages(context.Background(), sid, 1, ^uint64(0), 0, false)
	if err != nil || len(ms) != acked {
		t.Fatalf("store has %d messages, %d were acknowledged (%v)", len(ms), acked, err)
	}
	if acked < 10 {
		t.Fatalf("only %d of %d sends were committed before shutdown; the backlog was not drained", acked, n)
	}
}

// Shutting down while callers keep sending: every Send returns (acknowledged
// or unavailable), none hangs, and every acknowledged message is stored.
func TestShutdownWhileSending(t *testing.T) {
	for round := 0; round < 20; round++ {
		e := newEnv(t, chat.Config{MaxBatch: 2})
		e.user("alice")
		e.user("bob")
		ctx := context.Background()
		var acked atomic.Int64
		var wg sync.WaitGroup
		for g := 0; g < 8; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					_, err := e.core.Send(ctx, "shop", chat.SendInput{From: "alice", To: "bob", Type: "text", Content: json.RawMessage(`{"text":"x"}`)})
					if err != nil {
						return
					}
					acked.Add(1)
				}
			}()
		}
		time.Sleep(time.Duration(round%5) * time.Millisecond)
		e.stop()
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatalf("round %d: a Send never returned after shutdown", round)
		}
		if acked.Load() == 0 {
			continue
		}
		sid, err := e.store.PrivateSession(ctx, "shop", "alice", "bob")
		if err != nil {
			t.Fatal(err)
		}
		ms, _ := e.store.Messages(ctx, sid, 1, ^uint64(0), 0, false)
		if int64(len(ms)) != acked.Load() {
			t.Fatalf("round %d: %d stored, %d acknowledged", round, len(ms), acked.Load())
		}
	}
}

// Deliveries keep commit order even when the journal delivers small batches
// itself and hands big ones to the deliverer: one sender alternates between
// a big group (its fan-out goes to the deliverer) and a private chat with
// the same recipient (small enough to deliver inline), and the recipient
// must see every message in the order it was sent.
func TestDeliveryKeepsCommitOrder(t *testing.T) {
	e := newEnv(t, chat.Config{})
	var members []string
	for i := range 80 { // more than the inline fan-out bound
		u := fmt.Sprintf("m%02d", i)
		e.user(u)
		members = append(members, strconv.Quote(u))
	}
	x := e.login(e.user("x"))
	hub := e.login(e.user("hub"))
	g := x.do(`"action":"group_create","name":"big","uids":["hub",` + strings.Join(members, ",") + `]`)
	if !g.OK {
		t.Fatalf("group_create: %+v", g.Error)
	}
	gid := data[struct {
		ID uint64 `json:"session_id"`
	}](t, g).ID
	if r := x.do(`"action":"send","to":"hub","type":"text","content":{"text":"open"}`); !r.OK {
		t.Fatalf("private send: %+v", r.Error)
	}
	hub.wait(t, event("message")) // consumed: only the n below remain
	// The group's deliveries to hub are slow, so the deliverer is still
	// busy with one when the next private message is committed.
	groupMark := []byte(fmt.Sprintf(`"session_id":%d,`, gid))
	hub.slow = func(b []byte) {
		if bytes.Contains(b, groupMark) {
			time.Sleep(2 * time.Millisecond)
		}
	}
	const n = 200
	for i := range n {
		target := `"to":"hub"`
		if i%2 == 0 {
			target = fmt.Sprintf(`"session_id":%d`, gid)
		}
		x.h.HandleMessage([]byte(fmt.Sprintf(`{"id":"%d","action":"send",%s,"type":"text","content":{"text":"%d"}}`, i, target, i)))
		time.Sleep(100 * time.Microsecond) // most sends commit in a batch of their own
	}
	deadline := time.Now().Add(10 * time.Second)
	for hub.count("message") < n && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	hub.mu.Lock()
	defer hub.mu.Unlock()
	want := 0
	for _, raw := range hub.msgs {
		var f struct {
			Event string `json:"event"`
			Data  struct {
				Content struct {
					Text string `json:"text"`
				} `json:"content"`
			} `json:"data"`
		}
		if err := json.Unmarshal(raw, &f); err != nil || f.Event != "message" {
			continue
		}
		if f.Data.Content.Text != strconv.Itoa(want) {
			t.Fatalf("message %d arrived where %d was due (order broken)", atoiOr(f.Data.Content.Text), want)
		}
		want++
	}
	if want != n {
		t.Fatalf("hub got %d of %d messages", want, n)
	}
}

func atoiOr(s string) int {
	v, err := strconv.Atoi(s)
	if err != nil {
		return -1
	}
	return v
}

// startCore runs a core on st; stop ends it and waits for Run to return.
func startCore(t *testing.T, st chat.Store) (core *chat.Core, stop func()) {
	t.Helper()
	return startCoreWith(t, chat.Config{}, st)
}

// startCoreWith is startCore with a config.
func startCoreWith(t *testing.T, cfg chat.Config, st chat.Store) (core *chat.Core, stop func()) {
	t.Helper()
	core, err := chat.New(cfg, st)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- core.Run(ctx) }()
	return core, func() { cancel(); <-done }
}

// Drain, the first step of a stop: when it returns, every send that is
// stored has its ok reply queued to its connection already (the transport
// closes the connection next); later writes are refused "server is
// stopping" while reads are still served.
func TestDrainAnswersEveryStoredSendFirst(t *testing.T) {
	st := memstore.New()
	core, err := chat.New(chat.Config{MaxBatch: 3}, slowStore{st})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- core.Run(ctx) }()
	defer func() { cancel(); <-done }()
	e := &env{t: t, core: core, store: st}
	if e.app, err = core.CreateApp(ctx, "shop", "Shop"); err != nil {
		t.Fatal(err)
	}
	ta, tb := e.user("alice"), e.user("bob")
	a, b := e.login(ta), e.login(tb)
	first := data[ack](t, a.do(`"action":"send","to":"bob","type":"text","content":{"text":"warm the cache"}`))
	const n = 200
	for i := 0; i < n; i++ {
		for _, d := range []*device{a, b} {
			d.h.HandleMessage([]byte(fmt.Sprintf(`{"id":"%d","action":"send","to":"%s","type":"text","cid":"c%d","content":{"text":"%d"}}`,
				i, map[*device]string{a: "bob", b: "alice"}[d], i, i)))
		}
	}
	dctx, dcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer dcancel()
	if err := core.Drain(dctx); err != nil {
		t.Fatal(err)
	}
	// Snapshot the replies as they are when Drain returns.
	replied := map[*device]map[string]uint64{}
	for _, d := range []*device{a, b} {
		replied[d] = map[string]uint64{}
		d.mu.Lock()
		for _, m := range d.msgs {
			var f frame
			if json.Unmarshal(m, &f) == nil && f.OK && len(f.ReplyTo) > 0 {
				var r ack
				json.Unmarshal(f.Data, &r)
				replied[d][strings.Trim(string(f.ReplyTo), `"`)] = r.Seq
			}
		}
		d.mu.Unlock()
	}
	ms, err := st.Messages(context.Background(), chat.SessionID(first.Session), 1, ^uint64(0), 0, false)
	if err != nil {
		t.Fatal(err)
	}
	stored := 0
	for _, m := range ms[1:] {
		d := map[string]*device{"alice": a, "bob": b}[m.From]
		id := strings.TrimPrefix(m.CID, "c")
		if seq, ok := replied[d][id]; !ok || seq != m.Seq {
			t.Fatalf("%s's send %s is stored as seq %d but had no ok reply when Drain returned (%v, %d)", m.From, id, m.Seq, ok, seq)
		}
		stored++
	}
	if stored < 10 {
		t.Fatalf("only %d of %d sends stored before the drain", stored, 2*n)
	}
	// After the drain: reads served, writes refused.
	if f := a.do(`"action":"history","session_id":` + strconv.FormatUint(first.Session, 10)); !f.OK {
		t.Fatalf("history after Drain: %+v", f.Error)
	}
	f := a.do(`"action":"send","to":"bob","type":"text","content":{"text":"late"}`)
	if f.OK || f.Error.Code != chat.CodeUnavailable || f.Error.Message != "server is stopping" {
		t.Fatalf("send after Drain: %+v, want unavailable: server is stopping", f)
	}
	if _, err := core.Send(context.Background(), "shop", chat.SendInput{From: "alice", To: "bob", Type: "text", Content: json.RawMessage(`{"text":"late"}`)}); err == nil {
		t.Fatal("Send after Drain succeeded")
	}
}
