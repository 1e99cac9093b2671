package e2e_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"chatd/chat"
)

type bcastSessions struct {
	Sessions   []json0             `json:"sessions"`
	Broadcasts *chat.BroadcastView `json:"broadcasts"`
}

type json0 = map[string]any

// TestBroadcastToOnlineAndOfflineUsers: a notice to every user and one to
// a list are each stored once (one channel message, no per-user copies);
// online recipients get a broadcast event at once, others do not; an
// offline user sees theirs at login with an unread count, pages them and
// marks them read; all of it survives a restart.
func TestBroadcastToOnlineAndOfflineUsers(t *testing.T) {
	dir := t.TempDir()
	s := start(t, dir, options{})
	app := s.app("shop")
	ctx := context.Background()
	tok := map[string]string{}
	for _, u := range []string{"u1", "u2", "u3", "u4"} {
		tok[u] = pushUser(t, app, u)
	}
	c1 := login(t, s.WSAddr, "shop", tok["u1"])
	c2a, c2b := login(t, s.WSAddr, "shop", tok["u2"]), login(t, s.WSAddr, "shop", tok["u2"])

	var all chat.BroadcastResult
	if err := app.Do(ctx, http.MethodPost, "/api/v1/broadcasts", map[string]any{"content": map[string]string{"text": "maintenance tonight"}}, &all); err != nil {
		t.Fatal(err)
	}
	if all.Seq != 1 || all.Online != 3 || all.Recipients != 0 {
		t.Fatalf("broadcast to all: %+v", all)
	}
	for i, c := range []*client{c1, c2a, c2b} {
		m := decode[eventMsg](t, c.next("broadcast"))
		if uint64(m.Session) != uint64(all.Channel) || m.Seq != 1 || m.Type != "notice" || m.Content.Text != "maintenance tonight" || m.From != "" {
			t.Fatalf("device %d got %+v", i, m)
		}
	}
	var some chat.BroadcastResult
	if err := app.Do(ctx, http.MethodPost, "/api/v1/broadcasts", map[string]any{"uids": []string{"u3", "u2", "u3"}, "content": map[string]string{"text": "your refund"}}, &some); err != nil {
		t.Fatal(err)
	}
	if some.Seq != 2 || some.Recipients != 2 || some.Online != 2 {
		t.Fatalf("broadcast to a list: %+v", some)
	}
	if m := decode[eventMsg](t, c2a.next("broadcast")); m.Content.Text != "your refund" {
		t.Fatalf("u2 got %+v", m)
	}
	c1.quiet("broadcast", 200*time.Millisecond)
	err := app.Do(ctx, http.MethodPost, "/api/v1/broadcasts", map[string]any{"uids": []string{"u1"}}, nil)
	wantAPIError(t, "broadcast without content", err, "bad_request", "content")
	wantReplyError(t, "a client sends into the channel", c1.do(fmt.Sprintf(`"action":"send","session_id":%d,"type":"text","content":{"text":"x"}`, all.Channel)), "forbidden", "not a member")

	// Stored once: the channel holds two messages; nobody has a system
	// session (no per-user copies).
	msgs, _, err := s.Core.History(ctx, "shop", all.Channel, 0, 50)
	if err != nil || len(msgs) != 2 {
		t.Fatalf("channel history: %d messages, %v", len(msgs), err)
	}

	// u3 was offline: at login the sessions list says 2 unread broadcasts.
	c3 := login(t, s.WSAddr, "shop", tok["u3"])
	ls := decode[bcastSessions](t, c3.do(`"action":"sessions"`))
	if ls.Broadcasts == nil || ls.Broadcasts.Unread != 2 || ls.Broadcasts.LastSeq != 2 || len(ls.Sessions) != 0 {
		t.Fatalf("u3's sessions %+v (%v)", ls.Broadcasts, ls.Sessions)
	}
	p := decode[opPage](t, c3.do(`"action":"broadcasts"`))
	if len(p.Messages) != 2 {
		t.Fatalf("u3's broadcasts %+v", p.Messages)
	}
	if f := c3.do(`"action":"broadcast_read","seq":2`); !f.OK {
		t.Fatal(f.Error)
	}
	if ls := decode[bcastSessions](t, c3.do(`"action":"sessions"`)); ls.Broadcasts.Unread != 0 || ls.Broadcasts.ReadSeq != 2 {
		t.Fatalf("u3 after reading %+v", ls.Broadcasts)
	}
	for _, c := range []*client{c1, c2a, c2b, c3} {
		c.conn.Close()
	}
	s.Stop()

	// u4 (never online, not on the list) after a restart: one unread.
	s2 := start(t, dir, options{})
	c4 := login(t, s2.WSAddr, "shop", tok["u4"])
	if ls := decode[bcastSessions](t, c4.do(`"action":"sessions"`)); ls.Broadcasts == nil || ls.Broadcasts.Unread != 1 {
		t.Fatalf("u4 after restart %+v", ls.Broadcasts)
	}
	p = decode[opPage](t, c4.do(`"action":"broadcasts","after":0`))
	if len(p.Messages) != 1 || p.Messages[0].Seq != 1 {
		t.Fatalf("u4's broadcasts %+v", p.Messages)
	}
	p = decode[opPage](t, c4.do(`"action":"broadcasts","before":2`))
	if len(p.Messages) != 1 || p.Messages[0].Seq != 1 {
		t.Fatalf("u4's broadcasts before 2: %+v", p.Messages)
	}
	// u3's read mark survived too.
	c3 = login(t, s2.WSAddr, "shop", tok["u3"])
	if ls := decode[bcastSessions](t, c3.do(`"action":"sessions"`)); ls.Broadcasts.Unread != 0 {
		t.Fatalf("u3 after restart %+v", ls.Broadcasts)
	}
}
