package pgstore_test

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"

	"chatd/chat"
	"chatd/chat/storetest"
	"chatd/internal/testpg"
	"chatd/pgstore"
)

// openShared opens n handles on dsn, as n nodes would: each its own pool.
func openShared(t *testing.T, dsn string, n int) []*pgstore.Store {
	t.Helper()
	out := make([]*pgstore.Store, n)
	for i := range out {
		s, err := pgstore.OpenShared(context.Background(), dsn)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = s
	}
	return out
}

// TestSharedConformance: chat.SharedStore's suite with two nodes on one
// database, each with its own pool.
func TestSharedConformance(t *testing.T) {
	storetest.RunShared(t, func(t *testing.T) (a, b chat.SharedStore) {
		s := openShared(t, testpg.DSN(t), 2)
		return s[0], s[1]
	})
}

// TestTwoNodes: two cores on one database, each with its own pool, as
// two chatd nodes run (storetest.RunTwoNodes: concurrent sends gapless,
// a cid retried on the other node, one private chat, distinct and
// claimed session ids).
func TestTwoNodes(t *testing.T) {
	s := openShared(t, testpg.DSN(t), 2)
	t.Cleanup(func() { s[0].Close(); s[1].Close() })
	storetest.RunTwoNodes(t, s[0], s[1])
}

// lateNode is a node that looked the pair up just before the other node
// stored its private session: its first PrivateSession of a pair misses.
type lateNode struct {
	*pgstore.Store
	mu     sync.Mutex
	missed map[[2]string]bool
}

func (n *lateNode) PrivateSession(ctx context.Context, app, a, b string) (chat.SessionID, error) {
	n.mu.Lock()
	key := [2]string{min(a, b), max(a, b)}
	miss := !n.missed[key]
	n.missed[key] = true
	n.mu.Unlock()
	if miss {
		return 0, chat.ErrNotFound
	}
	return n.Store.PrivateSession(ctx, app, a, b)
}

// TestPrivatePairRace: two nodes open one pair's private chat at once.
// The store keeps one session per pair (ErrPairTaken for the second);
// the losing node's send lands in the winner's session, and nothing of
// its own session is stored.
func TestPrivatePairRace(t *testing.T) {
	ctx := context.Background()
	s := openShared(t, testpg.DSN(t), 2)
	t.Cleanup(func() { s[0].Close(); s[1].Close() })
	late := &lateNode{Store: s[1], missed: map[[2]string]bool{}}
	a := storetest.StartNode(t, s[0])
	b := storetest.StartNode(t, late)
	if _, err := a.CreateApp(ctx, "shop", "Shop"); err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"u0", "u1"} {
		if _, err := a.PushUser(ctx, "shop", chat.UserInput{UID: u}); err != nil {
			t.Fatal(err)
		}
	}
	text := json.RawMessage(`{"text":"hi"}`)
	first, err := a.Send(ctx, "shop", chat.SendInput{From: "u0", To: "u1", Type: "text", Content: text})
	if err != nil {
		t.Fatal(err)
	}
	// b misses a's session, creates its own, is refused, and reads a's.
	got, err := b.Send(ctx, "shop", chat.SendInput{From: "u1", To: "u0", Type: "text", Content: text, CID: "late-1"})
	if err != nil || got.Session != first.Session || got.Seq != 2 {
		t.Fatalf("send on the late node = %+v, %v; want session %d seq 2", got, err, first.Session)
	}
	if top, err := s[0].MaxSessionID(ctx); err != nil || top != first.Session {
		t.Fatalf("highest stored session %d, %v; want only %d (the losing session not stored)", top, err, first.Session)
	}

	// The store itself: a second private session of a pair, in either
	// order, fails its batch with ErrPairTaken and stores none of it.
	err = s[1].Apply(ctx, &chat.Batch{
		Sessions: []chat.Session{{ID: first.Session + 100, App: "shop", Kind: chat.KindPrivate, Pair: [2]string{"u0", "u1"}}},
		Members:  []chat.Member{{Session: first.Session + 100, UID: "u0"}, {Session: first.Session + 100, UID: "u1"}},
	})
	if !errors.Is(err, pgstore.ErrPairTaken) {
		t.Fatalf("second private session of a pair: %v, want ErrPairTaken", err)
	}
	if _, err := s[0].Session(ctx, first.Session+100); !errors.Is(err, chat.ErrNotFound) {
		t.Fatalf("the refused session: %v, want ErrNotFound", err)
	}
}
