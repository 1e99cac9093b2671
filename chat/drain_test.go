package chat_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"chatd/chat"
	"chatd/chat/memstore"
)

// commitDelayStore holds every commit for a while, so that acks are still
// due when the requests before a Drain have run.
type commitDelayStore struct{ chat.Store }

func (s commitDelayStore) Apply(ctx context.Context, b *chat.Batch) error {
	time.Sleep(50 * time.Millisecond)
	return s.Store.Apply(ctx, b)
}

type drainer interface{ Drain(done func()) bool }

// replied lists the reply_to ids among the frames p has recorded.
func replied(p *fakePeer) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var ids []string
	for _, b := range p.msgs {
		if i := strings.Index(string(b), `"reply_to":"`); i >= 0 {
			rest := string(b[i+len(`"reply_to":"`):])
			ids = append(ids, rest[:strings.IndexByte(rest, '"')])
		}
	}
	return ids
}

// Drain's done comes after the replies to everything handed in before it:
// requests that ran on the drain goroutine and sends whose acks wait for
// a (slow) commit.
func TestDrainWaitsForReplies(t *testing.T) {
	st := memstore.New()
	core, err := chat.New(chat.Config{}, commitDelayStore{st})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- core.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	e := &env{t: t, core: core, store: st}
	if e.app, err = core.CreateApp(ctx, "shop", "Shop"); err != nil {
		t.Fatal(err)
	}
	a := e.login(e.user("alice"))
	e.user("bob")
	// Open the pair's session first, so the sends below take the fast
	// path straight to the journal.
	if f := a.do(`"action":"send","to":"bob","type":"text","content":{"text":"first"}`); !f.OK {
		t.Fatalf("send: %+v", f.Error)
	}

	a.h.HandleMessage([]byte(`{"id":"s1","action":"send","to":"bob","type":"text","content":{"text":"one"}}`))
	a.h.HandleMessage([]byte(`{"id":"q1","action":"sessions"}`))
	a.h.HandleMessage([]byte(`{"id":"s2","action":"send","to":"bob","type":"text","content":{"text":"two"}}`))
	got := make(chan []string, 1)
	if !a.h.(drainer).Drain(func() { got <- replied(a.fakePeer) }) {
		t.Fatal("Drain reported nothing in progress")
	}
	select {
	case ids := <-got:
		have := strings.Join(ids, ",")
		for _, id := range []string{"s1", "q1", "s2"} {
			if !strings.Contains(have, id) {
				t.Fatalf("done ran before the reply to %s (replies so far: %s)", id, have)
			}
		}
	case <-time.After(5 * time.Second):
		t.Fatal("done not called")
	}
}

// A client with nothing in progress has nothing to drain; one that is not
// logged in drains only its queue.
func TestDrainWithoutLogin(t *testing.T) {
	e := newEnv(t, chat.Config{})
	idle := e.connect()
	if idle.h.(drainer).Drain(func() { t.Error("done called for an idle client") }) {
		t.Fatal("Drain on an idle client that never logged in reported work in progress")
	}

	d := e.connect()
	d.h.HandleMessage([]byte(`{"id":"x1","action":"sessions"}`)) // unauthorized, answered by the drain goroutine
	got := make(chan []string, 1)
	if d.h.(drainer).Drain(func() { got <- replied(d.fakePeer) }) {
		select {
		case ids := <-got:
			if len(ids) != 1 || ids[0] != "x1" {
				t.Fatalf("replies when done ran: %v, want [x1]", ids)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("done not called")
		}
	} else if ids := replied(d.fakePeer); len(ids) != 1 {
		// The request had already been answered: nothing to wait for.
		t.Fatalf("Drain reported nothing in progress, but the replies are %v", ids)
	}
}
