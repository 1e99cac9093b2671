package chat_test

import (
	"context"
	"encoding/json"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"chatd/chat"
	"chatd/chat/memstore"
	"chatd/internal/webhook"
)

// presenceLog is the user.online/user.offline deliveries a receiver got,
// per user, in event order (deliveries may arrive in any order; event ids
// increase in commit order): "on", "off:<reason>".
func presenceLog(t *testing.T, hs []hook) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	sort.Slice(hs, func(i, j int) bool {
		a, _ := strconv.ParseUint(hs[i].Envelope.EventID, 10, 64)
		b, _ := strconv.ParseUint(hs[j].Envelope.EventID, 10, 64)
		return a < b
	})
	seen := map[string]bool{}
	for _, h := range hs {
		if seen[h.ID] { // a repeat (the stop fell between a POST and its record): the host dedupes
			continue
		}
		seen[h.ID] = true
		var d struct {
			UID    string `json:"uid"`
			Reason string `json:"reason"`
		}
		if err := json.Unmarshal(h.Envelope.Data, &d); err != nil {
			t.Fatal(err)
		}
		switch h.Envelope.Type {
		case chat.WebhookUserOnline:
			out[d.UID] = append(out[d.UID], "on")
		case chat.WebhookUserOffline:
			out[d.UID] = append(out[d.UID], "off:"+d.Reason)
		}
	}
	return out
}

// startHookedCore runs a core and its webhook dispatcher on st until the test
// ends or the returned crash/stop is called.
func startHookedCore(t *testing.T, cfg chat.Config, st chat.Store) (core *chat.Core, crash func()) {
	t.Helper()
	core, err := chat.New(cfg, st)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); core.Run(ctx) }()
	go func() {
		defer wg.Done()
		core.RunWebhooks(ctx, chat.WebhookConfig{Sender: webhook.New(webhook.Config{AllowLoopback: true}), Tick: 2 * time.Millisecond})
	}()
	var once sync.Once
	crash = func() { once.Do(func() { cancel(); wg.Wait() }) }
	t.Cleanup(crash)
	return core, crash
}

// Every user.online is followed by one user.offline, whatever happens to
// the process: users online when it dies get theirs ("restart") when it
// starts again, users online at a graceful stop get theirs
// ("server_stopping") from the stop itself; a full journal delays the
// events rather than dropping them.
func TestWebhookPresenceNeverLost(t *testing.T) {
	rcv := newReceiver(t)
	st := memstore.New()
	// A journal of one slot: logins race sends for it, and the old
	// fire-and-forget write dropped presence events whenever it was full.
	cfg := chat.Config{JournalSize: 1}
	e := newEnvOn(t, cfg, st)
	url := rcv.srv.URL + "/hook"
	ctx := context.Background()
	if _, err := e.core.CreateWebhookEndpoint(ctx, e.app.ID, chat.WebhookEndpointInput{URL: &url,
		Events: []string{chat.WebhookUserOnline, chat.WebhookUserOffline}}); err != nil {
		t.Fatal(err)
	}
	uids := []string{"u0", "u1", "u2", "u3", "u4", "u5", "u6", "u7", "u8", "u9"}
	toks := map[string]string{}
	for _, u := range uids {
		toks[u] = e.user(u)
	}
	tok := e.user("sender")
	s := e.login(tok)
	var wg sync.WaitGroup
	devs := make([]*device, len(uids))
	wg.Add(1)
	go func() { // sends keep the one-slot journal busy meanwhile
		defer wg.Done()
		for i := 0; i < 100; i++ {
			s.do(`"action":"send","to":"u0","type":"text","content":{"text":"x"}`)
		}
	}()
	for i, u := range uids {
		devs[i] = e.login(toks[u])
	}
	wg.Wait()
	// u0..u4 leave; u5 flaps (leaves and comes back); the rest stay.
	for i := 0; i < 5; i++ {
		devs[i].h.HandleClose()
	}
	devs[5].h.HandleClose()
	devs[5] = e.login(toks["u5"])
	s.h.HandleClose()
	// Wait for the durable online set to hold exactly the users online.
	waitOnlineSet(t, st, "shop", "u5", "u6", "u7", "u8", "u9")
	// The process dies: no Drain, nothing more written.
	e.stop()

	core, crash := startHookedCore(t, cfg, st)
	want1 := map[string][]string{}
	for i, u := range uids {
		switch {
		case i < 5:
			want1[u] = []string{"on", "off:disconnected"}
		case i == 5:
			want1[u] = []string{"on", "off:disconnected", "on", "off:restart"}
		default:
			want1[u] = []string{"on", "off:restart"}
		}
	}
	want1["sender"] = []string{"on", "off:disconnected"}
	waitPresence(t, rcv, want1)

	// A graceful stop writes the offline event of whoever is online.
	p := newPeer()
	d := &device{fakePeer: p, h: core.Accept(p), e: e}
	if f := d.do(`"action":"login","app":"shop","token":"` + toks["u0"] + `"`); !f.OK {
		t.Fatalf("login: %+v", f.Error)
	}
	want1["u0"] = append(want1["u0"], "on")
	waitPresence(t, rcv, want1)
	if err := core.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	d.h.HandleClose() // after the stop's event: not a second one
	crash()
	startHookedCore(t, cfg, st)
	want1["u0"] = append(want1["u0"], "off:server_stopping")
	waitPresence(t, rcv, want1)
	if recs, _ := st.ScanRecords(ctx, "wh.on", nil, nil, 0, false); len(recs) != 0 {
		t.Errorf("%d users still recorded online after the stop", len(recs))
	}
}

// waitOnlineSet waits until the durable online set (the "wh.on" records)
// holds exactly uids of app: their user.online events are committed. The
// presence events are written by a goroutine of their own, after the
// login's reply, so a test that kills a node must wait for them first: a
// login whose user.online had not committed when its node died is never
// announced, online or offline (webhook_presence.go).
func waitOnlineSet(t *testing.T, st chat.Store, app string, uids ...string) {
	t.Helper()
	var want []string
	for _, u := range uids {
		want = append(want, app+"\x00"+u)
	}
	sort.Strings(want)
	deadline := time.Now().Add(10 * time.Second)
	for {
		recs, err := st.ScanRecords(context.Background(), "wh.on", nil, nil, 0, false)
		if err != nil {
			t.Fatal(err)
		}
		var keys []string
		for _, r := range recs {
			keys = append(keys, string(r.Key))
		}
		sort.Strings(keys)
		if slices.Equal(keys, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("online set %q, want %q", keys, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitPresence waits until the receiver's presence log is want, then
// checks that nothing more arrives meanwhile.
func waitPresence(t *testing.T, rcv *receiver, want map[string][]string) {
	t.Helper()
	wantS := presenceString(want)
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := presenceString(presenceLog(t, rcv.all()))
		if got == wantS {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("presence events:\n%s\nwant:\n%s", got, wantS)
		}
		select {
		case <-rcv.notify:
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func presenceString(m map[string][]string) string {
	var lines []string
	for u, evs := range m {
		lines = append(lines, u+": "+strings.Join(evs, " "))
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}
