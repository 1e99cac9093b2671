package e2e_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"chatd/chat"
	"chatd/httpapi/apiclient"
	"chatd/internal/teststack"
)

// startClocked runs a server on a fake clock (contenthard_test.go) whose
// sweeper ticks every 100 ms (a login timeout of 400 ms): a moved clock takes
// effect within that.
func startClocked(t *testing.T, cfg chat.Config) (*server, *fakeClock) {
	clk := newClock()
	cfg.Now = clk.Now
	cfg.LoginTimeout = 400 * time.Millisecond
	ts := teststack.Start(t, t.TempDir(), teststack.Options{Core: cfg})
	return &server{Server: ts, t: t}, clk
}

type presenceEv struct {
	UID       string   `json:"uid"`
	Online    bool     `json:"online"`
	Platforms []string `json:"platforms"`
	LastSeen  int64    `json:"last_seen"`
}

func loginOn(t *testing.T, addr, token, platform string) *client {
	t.Helper()
	c := dial(t, addr)
	mustOK(t, c.do(`"action":"login","app":"shop","token":"`+token+`","platform":"`+platform+`"`), "login on "+platform)
	return c
}

func TestPresenceReachesFriendsAndPeersDebounced(t *testing.T) {
	s, clk := startClocked(t, chat.Config{})
	app := s.app("shop")
	tok := map[string]string{}
	for _, u := range []string{"alice", "bob", "carol", "dave", "eve"} {
		tok[u] = pushUser(t, app, u)
	}
	var res chat.ContactImportResult
	if err := app.Do(context.Background(), "POST", "/api/v1/contacts/import", chat.ContactImport{
		Friends: []chat.ContactPair{{UID: "alice", Peer: "bob"}, {UID: "alice", Peer: "eve"}},
		Block:   []chat.ContactPair{{UID: "alice", Peer: "eve"}},
	}, &res); err != nil {
		t.Fatal(err)
	}
	// carol is alice's private-session peer, dave a stranger.
	if _, err := app.Send(context.Background(), apiclient.SendInput{From: "carol", To: "alice", Type: "text", Content: json.RawMessage(`{"text":"hi"}`)}); err != nil {
		t.Fatal(err)
	}
	c := map[string]*client{}
	for _, u := range []string{"bob", "carol", "dave", "eve"} {
		c[u] = login(t, s.WSAddr, "shop", tok[u])
	}
	clk.Advance(6 * time.Second)
	time.Sleep(150 * time.Millisecond) // a few sweeps: their own logins are announced (to nobody online)

	a := loginOn(t, s.WSAddr, tok["alice"], "web")
	clk.Advance(3 * time.Second)
	c["bob"].quiet("presence", 300*time.Millisecond) // debounced (5 s): not yet
	clk.Advance(3 * time.Second)
	for _, u := range []string{"bob", "carol"} {
		ev := decode[presenceEv](t, c[u].next("presence"))
		if ev.UID != "alice" || !ev.Online || len(ev.Platforms) != 1 || ev.Platforms[0] != "web" {
			t.Fatalf("%s got %+v", u, ev)
		}
	}

	// A flap within the debounce is never announced.
	a2 := loginOn(t, s.WSAddr, tok["alice"], "ios")
	a.conn.Close()
	time.Sleep(100 * time.Millisecond)
	clk.Advance(2 * time.Second)
	a2.conn.Close()
	time.Sleep(200 * time.Millisecond)
	c["bob"].quiet("presence", 0)
	clk.Advance(2 * time.Second)
	a3 := loginOn(t, s.WSAddr, tok["alice"], "ios")
	clk.Advance(6 * time.Second)
	c["bob"].quiet("presence", 300*time.Millisecond)
	for _, u := range []string{"dave", "eve"} {
		c[u].quiet("presence", 0)
	}

	// The query: platforms while online; blocked users see offline.
	q := func(who string) presenceEv {
		r := mustOK(t, c[who].do(`"action":"presence","uids":["alice"]`), "presence query")
		return decode[struct {
			Presence []presenceEv `json:"presence"`
		}](t, r).Presence[0]
	}
	if p := q("bob"); !p.Online || len(p.Platforms) != 1 || p.Platforms[0] != "ios" {
		t.Fatalf("bob's query: %+v", p)
	}
	if p := q("eve"); p.Online || p.LastSeen != 0 {
		t.Fatalf("eve (blocked) sees %+v", p)
	}
	mustFail(t, c["bob"].do(`"action":"presence"`), chat.CodeBadRequest, "query without uids")

	// Offline after the debounce, with the last-seen time.
	before := clk.Now().UnixMilli()
	a3.conn.Close()
	time.Sleep(100 * time.Millisecond)
	clk.Advance(6 * time.Second)
	ev := decode[presenceEv](t, c["bob"].next("presence"))
	if ev.UID != "alice" || ev.Online || ev.LastSeen < before {
		t.Fatalf("bob got %+v (last seen at least %d)", ev, before)
	}
	if p := q("bob"); p.Online || p.LastSeen != ev.LastSeen {
		t.Fatalf("query after offline: %+v, event %+v", p, ev)
	}

	// Hiding presence: friends see alice go offline and stay offline.
	a4 := loginOn(t, s.WSAddr, tok["alice"], "android")
	clk.Advance(6 * time.Second)
	if ev := decode[presenceEv](t, c["bob"].next("presence")); !ev.Online {
		t.Fatalf("bob got %+v", ev)
	}
	mustOK(t, a4.do(`"action":"hide_presence"`), "hide")
	if ev := decode[presenceEv](t, c["bob"].next("presence")); ev.Online {
		t.Fatalf("after hide bob got %+v", ev)
	}
	if p := q("bob"); p.Online {
		t.Fatalf("hidden alice queried as %+v", p)
	}
	mustOK(t, a4.do(`"action":"show_presence"`), "show")
	if ev := decode[presenceEv](t, c["bob"].next("presence")); !ev.Online {
		t.Fatalf("after show bob got %+v", ev)
	}
	c["eve"].quiet("presence", 100*time.Millisecond)
	c["dave"].quiet("presence", 0)
}

func TestTypingForwardedAndRateLimited(t *testing.T) {
	s, clk := startClocked(t, chat.Config{})
	app := s.app("shop")
	ta, tb, tc := pushUser(t, app, "alice"), pushUser(t, app, "bob"), pushUser(t, app, "carol")
	a, a2, b := login(t, s.WSAddr, "shop", ta), login(t, s.WSAddr, "shop", ta), login(t, s.WSAddr, "shop", tb)
	cc := login(t, s.WSAddr, "shop", tc)
	sid := decode[ack](t, mustOK(t, a.do(`"action":"send","to":"bob","type":"text","content":{"text":"hi"}`), "send")).Session

	type typingEv struct {
		Session uint64 `json:"session_id"`
		UID     string `json:"uid"`
	}
	typing := func(c *client, sid uint64) bool {
		t.Helper()
		return decode[struct {
			Forwarded bool `json:"forwarded"`
		}](t, mustOK(t, c.do(fmt.Sprintf(`"action":"typing","session_id":%d`, sid)), "typing")).Forwarded
	}
	if !typing(a, sid) {
		t.Fatal("first typing not forwarded")
	}
	if ev := decode[typingEv](t, b.next("typing")); ev.Session != sid || ev.UID != "alice" {
		t.Fatalf("bob got %+v", ev)
	}
	for i := 0; i < 5; i++ {
		if typing(a, sid) {
			t.Fatal("a second typing within a second was forwarded")
		}
	}
	b.quiet("typing", 150*time.Millisecond)
	a2.quiet("typing", 0) // the typer's own devices are not told
	clk.Advance(1100 * time.Millisecond)
	if !typing(a, sid) {
		t.Fatal("typing a second later not forwarded")
	}
	b.next("typing")
	mustFail(t, cc.do(fmt.Sprintf(`"action":"typing","session_id":%d`, sid)), chat.CodeForbidden, "typing in someone else's session")
	mustFail(t, cc.do(`"action":"typing"`), chat.CodeBadRequest, "typing without session_id")
	// Never stored.
	h := decode[struct {
		Messages []json.RawMessage `json:"messages"`
	}](t, mustOK(t, b.do(fmt.Sprintf(`"action":"history","session_id":%d`, sid)), "history"))
	if len(h.Messages) != 1 {
		t.Fatalf("history holds %d messages, want the one text", len(h.Messages))
	}
}

// TestLastSeenSurvivesRestart: the last-seen time written by the sweep
// (not on the login path) is read back by a new server on the same data.
func TestLastSeenSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	clk := newClock()
	cfg := chat.Config{Now: clk.Now, LoginTimeout: 400 * time.Millisecond}
	s := &server{Server: teststack.Start(t, dir, teststack.Options{Core: cfg}), t: t}
	a0, err := s.Admin.CreateApp(context.Background(), "shop", "Shop")
	if err != nil {
		t.Fatal(err)
	}
	app := s.AppClient(a0.ID, a0.Secret)
	ta, tb := pushUser(t, app, "alice"), pushUser(t, app, "bob")
	a := login(t, s.WSAddr, "shop", ta)
	left := clk.Now().UnixMilli()
	a.conn.Close()
	time.Sleep(100 * time.Millisecond)
	clk.Advance(6 * time.Second)
	time.Sleep(400 * time.Millisecond) // a few sweeps: the last-seen batch is written
	s.Stop()

	s = &server{Server: teststack.Start(t, dir, teststack.Options{Core: cfg}), t: t}
	b := login(t, s.WSAddr, "shop", tb)
	p := decode[struct {
		Presence []presenceEv `json:"presence"`
	}](t, mustOK(t, b.do(`"action":"presence","uids":["alice"]`), "presence")).Presence[0]
	if p.Online || p.LastSeen < left || p.LastSeen > clk.Now().UnixMilli() {
		t.Fatalf("alice after restart: %+v (left at %d)", p, left)
	}
}
