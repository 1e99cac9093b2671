package chat_test

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"chatd/chat"
)

// Host sends with an old created_at racing live sends into the same
// session: whatever the journal batches together, the stored session stays
// in time order (a backdated send behind a newer message is refused, even
// when that message is in the same group commit and not stored yet).
func TestBackdatedSendsKeepTimeOrder(t *testing.T) {
	e := newEnv(t, chat.Config{})
	e.user("alice")
	e.user("bob")
	ctx := context.Background()
	first, err := e.core.Send(ctx, "shop", chat.SendInput{From: "alice", To: "bob", Type: "text",
		Content: json.RawMessage(`{"text":"old"}`), CreatedAt: 1_600_000_000_000})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now().Add(-time.Hour).UnixMilli()
	var wg sync.WaitGroup
	for i := 0; i < 200; i++ {
		wg.Add(2)
		go func() {
			defer wg.Done()
			e.core.Send(ctx, "shop", chat.SendInput{From: "bob", To: "alice", Type: "text", Content: json.RawMessage(`{"text":"live"}`)})
		}()
		go func(i int) {
			defer wg.Done()
			e.core.Send(ctx, "shop", chat.SendInput{From: "alice", Session: first.Session, Type: "text",
				Content: json.RawMessage(`{"text":"backdated"}`), CreatedAt: t0 + int64(i)})
		}(i)
	}
	wg.Wait()
	msgs, err := e.store.Messages(ctx, first.Session, 1, ^uint64(0), 0, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) < 201 {
		t.Fatalf("%d messages stored, want at least the 200 live ones and the first", len(msgs))
	}
	for i := 1; i < len(msgs); i++ {
		if msgs[i].CreatedAt < msgs[i-1].CreatedAt {
			t.Fatalf("seq %d at %d comes after seq %d at %d", msgs[i].Seq, msgs[i].CreatedAt, msgs[i-1].Seq, msgs[i-1].CreatedAt)
		}
	}
	// A time in the future is refused.
	if _, err := e.core.Send(ctx, "shop", chat.SendInput{From: "alice", To: "bob", Type: "text",
		Content: json.RawMessage(`{"text":"x"}`), CreatedAt: time.Now().Add(time.Hour).UnixMilli()}); err == nil {
		t.Fatal("a created_at in the future was accepted")
	}
}
