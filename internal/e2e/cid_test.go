package e2e_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"

	"chatd/chat"
	"chatd/internal/teststack"
)

// A retried cid in a busy group, on the real store: thousands of other
// members' messages later, and after a restart that replays and reopens
// the store, the retry returns the original (same seq) and stores nothing.
func TestCIDRetryInABusyGroupSurvivesARestart(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	s := teststack.Start(t, dir, teststack.Options{})
	if _, err := s.Core.CreateApp(ctx, "shop", "Shop"); err != nil {
		t.Fatal(err)
	}
	uids := []string{"a"}
	for i := range 8 {
		uids = append(uids, fmt.Sprintf("m%d", i))
	}
	for _, u := range uids {
		if _, err := s.Core.PushUser(ctx, "shop", chat.UserInput{UID: u}); err != nil {
			t.Fatal(err)
		}
	}
	g, err := s.Core.CreateGroup(ctx, "shop", chat.GroupInput{Owner: "a", Name: "busy", Members: uids[1:]})
	if err != nil {
		t.Fatal(err)
	}
	send := func(core *chat.Core, from, cid string) chat.SendResult {
		t.Helper()
		r, err := core.Send(ctx, "shop", chat.SendInput{From: from, Session: g.ID, Type: "text", Content: json.RawMessage(`{"text":"x"}`), CID: cid})
		if err != nil {
			t.Errorf("send %s %q: %v", from, cid, err)
		}
		return r
	}
	orig := send(s.Core, "a", "k")
	var wg sync.WaitGroup
	for _, u := range uids[1:] { // 8 × 500 messages from the others, concurrently
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range 500 {
				send(s.Core, u, fmt.Sprintf("%s-%d", u, n))
			}
		}()
	}
	wg.Wait()
	if r := send(s.Core, "a", "k"); !r.Duplicate || r.Seq != orig.Seq || r.CreatedAt != orig.CreatedAt {
		t.Fatalf("retry after 4,000 others' messages: %+v, want the original %+v", r, orig)
	}
	s.Stop()

	s = teststack.Start(t, dir, teststack.Options{})
	if r := send(s.Core, "a", "k"); !r.Duplicate || r.Seq != orig.Seq || r.CreatedAt != orig.CreatedAt {
		t.Fatalf("retry after a restart: %+v, want the original %+v", r, orig)
	}
	copies, total := 0, 0
	for before := uint64(0); ; {
		page, more, err := s.Core.History(ctx, "shop", g.ID, before, chat.MaxPage)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range page {
			total++
			if m.From == "a" && m.CID == "k" {
				copies++
			}
		}
		if !more || len(page) == 0 {
			break
		}
		before = page[0].Seq
	}
	if copies != 1 || total != 4001 {
		t.Fatalf("%d copies of a's cid k among %d stored messages, want 1 among 4,001", copies, total)
	}
}
