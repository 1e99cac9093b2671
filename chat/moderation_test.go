package chat_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"chatd/chat"
)

// Ended bans and mutes leave the store at the next change, and the table
// the core loads at start holds what the store holds.
func TestRestrictionsPruneAndReload(t *testing.T) {
	var clock atomic.Int64
	clock.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	now := func() time.Time { return time.Unix(0, clock.Load()) }
	e := newEnv(t, chat.Config{Now: now})
	ctx := context.Background()
	for _, uid := range []string{"a", "b", "c"} {
		e.user(uid)
	}
	restrict := func(kind chat.RestrictionKind, uid string, d time.Duration) {
		t.Helper()
		if _, _, err := e.core.Restrict(ctx, "shop", kind, chat.ModerationInput{UID: uid, Duration: d.Milliseconds()}); err != nil {
			t.Fatal(err)
		}
	}
	stored := func() map[string]bool {
		t.Helper()
		rs, err := e.store.Restrictions(ctx)
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]bool{}
		for _, r := range rs {
			m[r.Kind.String()+":"+r.UID] = true
		}
		return m
	}
	restrict(chat.RestrictBan, "a", time.Minute)
	restrict(chat.RestrictMute, "a", time.Hour)
	restrict(chat.RestrictBan, "b", 0) // for ever
	if got := stored(); len(got) != 3 {
		t.Fatalf("stored %v, want 3", got)
	}
	clock.Add(int64(2 * time.Minute)) // a's ban has ended
	if l := e.core.Moderation(ctx, "shop"); len(l.Banned) != 1 || l.Banned[0].UID != "b" || len(l.Muted) != 1 {
		t.Fatalf("list after a's ban ended: %+v", l)
	}
	restrict(chat.RestrictMute, "c", time.Hour) // any change prunes
	if got := stored(); got["ban:a"] || !got["mute:a"] || !got["ban:b"] || !got["mute:c"] || len(got) != 3 {
		t.Fatalf("stored after prune %v, want mute:a ban:b mute:c", got)
	}
	// A core started on the same store finds them all.
	e.stop()
	core2, err := chat.New(chat.Config{Now: now}, e.store)
	if err != nil {
		t.Fatal(err)
	}
	if l := core2.Moderation(ctx, "shop"); len(l.Banned) != 1 || len(l.Muted) != 2 || l.Muted[0].UID != "a" || l.Muted[1].UID != "c" {
		t.Fatalf("reloaded: %+v", l)
	}
}
