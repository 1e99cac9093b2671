package chat_test

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"chatd/chat"
	"chatd/chat/memstore"
	"chatd/chat/storetest"
)

// Two nodes on one shared store (storetest.RunTwoNodes; pgstore runs it
// on PostgreSQL with a pool per node).
func TestSharedStoreTwoNodes(t *testing.T) {
	st := memstore.NewShared()
	storetest.RunTwoNodes(t, st, st)
}

// lockWatch counts the message reads made while the store holds the
// row locks of a commit (inside ApplyLocked's build): each one makes the
// other nodes appending to those sessions wait.
type lockWatch struct {
	*memstore.Shared
	inLocks     atomic.Bool
	readsLocked atomic.Int64
	reads       atomic.Int64
}

func (s *lockWatch) Messages(ctx context.Context, sid chat.SessionID, from, to uint64, limit int, desc bool) ([]chat.Message, error) {
	s.reads.Add(1)
	if s.inLocks.Load() {
		s.readsLocked.Add(1)
	}
	return s.Shared.Messages(ctx, sid, from, to, limit, desc)
}

func (s *lockWatch) ApplyLockedSince(ctx context.Context, sessions []chat.SessionID, since map[chat.SessionID]uint64, b *chat.Batch,
	build func(map[chat.SessionID]uint64, []chat.Message) error) error {
	return s.Shared.ApplyLockedSince(ctx, sessions, since, b, func(last map[chat.SessionID]uint64, appended []chat.Message) error {
		s.inLocks.Store(true)
		defer s.inLocks.Store(false)
		return build(last, appended)
	})
}

// TestSharedCIDRebuildOutsideLocks: a node that has just started rebuilds
// a session's CID lists (reading its stored messages) before it takes
// the session's row lock, not while holding it; and the rebuilt lists
// still recognise a retry of a cid stored by the other node, including
// one stored between the rebuild and the lock (the lock's round trip
// brings it).
func TestSharedCIDRebuildOutsideLocks(t *testing.T) {
	ctx := context.Background()
	shared := memstore.NewShared()
	a := storetest.StartNode(t, shared)
	if _, err := a.CreateApp(ctx, "shop", "Shop"); err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"u0", "u1"} {
		if _, err := a.PushUser(ctx, "shop", chat.UserInput{UID: u}); err != nil {
			t.Fatal(err)
		}
	}
	text := json.RawMessage(`{"text":"x"}`)
	var sid chat.SessionID
	for i := 0; i < 50; i++ {
		r, err := a.Send(ctx, "shop", chat.SendInput{From: "u0", To: "u1", Type: "text", Content: text, CID: "a" + strconv.Itoa(i)})
		if err != nil {
			t.Fatal(err)
		}
		sid = r.Session
	}
	w := &lockWatch{Shared: shared}
	b := storetest.StartNode(t, w)
	// b's first send with a cid into the session: its lists are rebuilt.
	if _, err := b.Send(ctx, "shop", chat.SendInput{From: "u1", Session: sid, Type: "text", Content: text, CID: "b0"}); err != nil {
		t.Fatal(err)
	}
	if w.reads.Load() == 0 {
		t.Fatal("no message was read: the test no longer sees the rebuild")
	}
	if n := w.readsLocked.Load(); n != 0 {
		t.Fatalf("%d message reads while holding the session's lock; want 0 (the rebuild runs before the lock)", n)
	}
	// A retry on b of a cid a stored before b started, and of one a
	// stored after b's rebuild: both duplicates of the originals.
	late, err := a.Send(ctx, "shop", chat.SendInput{From: "u0", Session: sid, Type: "text", Content: text, CID: "late"})
	if err != nil {
		t.Fatal(err)
	}
	for cid, seq := range map[string]uint64{"a3": 4, "late": late.Seq} {
		r, err := b.Send(ctx, "shop", chat.SendInput{From: "u0", Session: sid, Type: "text", Content: text, CID: cid})
		if err != nil || !r.Duplicate || r.Seq != seq {
			t.Fatalf("retry of %s on b = %+v, %v; want the original seq %d as a duplicate", cid, r, err, seq)
		}
	}
}

// TestSharedAppQuota: an app's max_users holds across nodes: a node that
// counted the app's users earlier does not let one more in after
// another node filled the last places.
func TestSharedAppQuota(t *testing.T) {
	ctx := context.Background()
	shared := memstore.NewShared()
	a := storetest.StartNode(t, shared)
	b := storetest.StartNode(t, shared)
	if _, err := a.CreateApp(ctx, "shop", "Shop"); err != nil {
		t.Fatal(err)
	}
	three := 3
	if _, err := a.SetAppLimits(ctx, "shop", chat.AppLimitsInput{MaxUsers: &three}); err != nil {
		t.Fatal(err)
	}
	push := func(n *chat.Core, uid string) error {
		_, err := n.PushUser(ctx, "shop", chat.UserInput{UID: uid})
		return err
	}
	if err := push(b, "u1"); err != nil { // b counts: 1
		t.Fatal(err)
	}
	for _, u := range []string{"u2", "u3"} { // a fills the app
		if err := push(a, u); err != nil {
			t.Fatal(err)
		}
	}
	err := push(b, "u4")
	var ce *chat.Error
	if !errors.As(err, &ce) || ce.Code != chat.CodeForbidden || !strings.Contains(ce.Message, "app_users limit") {
		t.Fatalf("a fourth user through b = %v; want forbidden app_users limit (3 stored)", err)
	}
	if n, err := shared.CountUsers(ctx, "shop"); err != nil || n != 3 {
		t.Fatalf("%d users stored, %v; want 3", n, err)
	}
}
