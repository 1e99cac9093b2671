package pgstore

import (
	"context"
	"testing"

	"chatd/chat"
	"chatd/internal/testpg"
)

// TestPruneUnsignedOrder: sessions go by unsigned id, so one past 2^63
// (a negative bigint) comes after the others, and a pass resumed from it
// skips them.
func TestPruneUnsignedOrder(t *testing.T) {
	ctx := context.Background()
	s, err := OpenShared(ctx, testpg.DSN(t))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const high = chat.SessionID(1<<63 + 3)
	var b chat.Batch
	for _, id := range []chat.SessionID{high, 5} {
		b.Sessions = append(b.Sessions, chat.Session{ID: id, App: "a", Kind: chat.KindGroup})
		for seq := uint64(1); seq <= 2; seq++ {
			b.Messages = append(b.Messages, chat.Message{Session: id, Seq: seq, App: "a", CreatedAt: 1})
		}
	}
	if err := s.Apply(ctx, &b); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name string
		from chat.SessionID
		n    int
		next chat.SessionID
	}{
		{name: "low id first", from: 0, n: 2, next: 5},
		{name: "resumed after 5 (now empty): the high id", from: 5, n: 2, next: high},
		{name: "resumed at the high id", from: high, n: 0, next: 0},
	}
	for _, st := range steps {
		n, next, err := s.PruneMessages(ctx, "a", 10, st.from, 2)
		if err != nil || n != st.n || next != st.next {
			t.Fatalf("%s: PruneMessages(from %d) = %d, %d, %v; want %d, %d", st.name, st.from, n, next, err, st.n, st.next)
		}
	}
}
