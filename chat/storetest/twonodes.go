package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"sync"
	"testing"

	"chatd/chat"
)

// StartNode runs a core on st as a node of a cluster sharing it
// (Config.SharedStore), stopped when t ends.
func StartNode(t *testing.T, st chat.Store) *chat.Core {
	t.Helper()
	core, err := chat.New(chat.Config{SharedStore: true}, st)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { core.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return core
}

// RunTwoNodes runs two cores (nodes of a cluster) on sa and sb, two
// handles on one new, empty shared store (the same value twice is fine
// for an in-process store): sends racing into one group from both get
// gapless seqs, each message stored once; a cid retried on the other
// node returns the original; a private chat opened on one node is the
// same session on the other; session ids never collide, and a
// host-chosen id already taken is refused with a conflict.
func RunTwoNodes(t *testing.T, sa, sb chat.SharedStore) {
	ctx := context.Background()
	a := StartNode(t, sa)
	b := StartNode(t, sb)
	if _, err := a.CreateApp(ctx, "shop", "Shop"); err != nil {
		t.Fatal(err)
	}
	uids := []string{"u0", "u1", "u2", "u3"}
	for _, u := range uids {
		if _, err := a.PushUser(ctx, "shop", chat.UserInput{UID: u}); err != nil {
			t.Fatal(err)
		}
	}
	g, err := b.CreateGroup(ctx, "shop", chat.GroupInput{Owner: "u0", Name: "g", Members: uids[1:]})
	if err != nil {
		t.Fatal(err)
	}
	text := func(s string) json.RawMessage { return json.RawMessage(`{"text":"` + s + `"}`) }

	// 8 senders, half on each node, 40 sends each, every one with a cid.
	const per = 40
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			node := a
			if i%2 == 1 {
				node = b
			}
			from := uids[i%len(uids)]
			for k := 0; k < per; k++ {
				cid := "c" + strconv.Itoa(i) + "-" + strconv.Itoa(k)
				if _, err := node.Send(ctx, "shop", chat.SendInput{From: from, Session: g.ID, Type: "text", Content: text(cid), CID: cid}); err != nil {
					t.Error(err)
					return
				}
			}
		}(i)
	}
	wg.Wait()
	ms, err := sa.Messages(ctx, g.ID, 1, ^uint64(0), 0, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 8*per {
		t.Fatalf("%d messages stored, want %d", len(ms), 8*per)
	}
	cids := map[string]bool{}
	for i, m := range ms {
		if m.Seq != uint64(i+1) {
			t.Fatalf("message %d has seq %d: not gapless", i, m.Seq)
		}
		if cids[m.CID] {
			t.Fatalf("cid %s stored twice", m.CID)
		}
		cids[m.CID] = true
	}

	// A retry on the other node: b has this session's cid lists (it just
	// sent into it), and learns a's new message when it next commits.
	orig, err := a.Send(ctx, "shop", chat.SendInput{From: "u1", Session: g.ID, Type: "text", Content: text("once"), CID: "retry-1"})
	if err != nil {
		t.Fatal(err)
	}
	again, err := b.Send(ctx, "shop", chat.SendInput{From: "u1", Session: g.ID, Type: "text", Content: text("once"), CID: "retry-1"})
	if err != nil {
		t.Fatal(err)
	}
	if !again.Duplicate || again.Seq != orig.Seq {
		t.Fatalf("retry on the other node = %+v, want the original seq %d as a duplicate", again, orig.Seq)
	}
	next, err := b.Send(ctx, "shop", chat.SendInput{From: "u2", Session: g.ID, Type: "text", Content: text("after")})
	if err != nil || next.Seq != orig.Seq+1 {
		t.Fatalf("next send = %+v, %v; want seq %d", next, err, orig.Seq+1)
	}

	// A private chat opened on one node is the same session on the other.
	p1, err := a.Send(ctx, "shop", chat.SendInput{From: "u0", To: "u1", Type: "text", Content: text("hi")})
	if err != nil {
		t.Fatal(err)
	}
	p2, err := b.Send(ctx, "shop", chat.SendInput{From: "u1", To: "u0", Type: "text", Content: text("hello")})
	if err != nil || p2.Session != p1.Session || p2.Seq != 2 {
		t.Fatalf("reply on the other node = %+v, %v; want session %d seq 2", p2, err, p1.Session)
	}

	// Groups created on both nodes at once get distinct ids.
	ids := make(chan chat.SessionID, 40)
	for i := 0; i < 2; i++ {
		wg.Add(1)
		go func(node *chat.Core) {
			defer wg.Done()
			for k := 0; k < 20; k++ {
				s, err := node.CreateGroup(ctx, "shop", chat.GroupInput{Owner: "u0", Name: "x", Members: []string{"u1"}})
				if err != nil {
					t.Error(err)
					return
				}
				ids <- s.ID
			}
		}([]*chat.Core{a, b}[i])
	}
	wg.Wait()
	close(ids)
	seen := map[chat.SessionID]bool{g.ID: true, p1.Session: true}
	for id := range ids {
		if seen[id] {
			t.Fatalf("session id %d given twice", id)
		}
		seen[id] = true
	}
	if len(seen) != 42 {
		t.Fatalf("%d distinct sessions, want 42", len(seen))
	}
	// A host-chosen id is checked against every node's reservations.
	_, err = b.CreateGroup(ctx, "shop", chat.GroupInput{ID: g.ID, Owner: "u0", Name: "dup", Members: []string{"u1"}})
	var e *chat.Error
	if !errors.As(err, &e) || e.Code != chat.CodeConflict {
		t.Fatalf("a taken host-chosen id: %v, want conflict", err)
	}
}
