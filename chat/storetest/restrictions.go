package storetest

import (
	"context"
	"sort"
	"testing"

	"chatd/chat"
)

// testRestrictions: bans and mutes are put and replaced by (app, uid,
// kind), deleted by key (a missing key is ignored), listed across apps,
// and a ban and a mute of one user are separate records.
func testRestrictions(t *testing.T, s chat.Store) {
	ctx := context.Background()
	list := func() []chat.Restriction {
		t.Helper()
		rs, err := s.Restrictions(ctx)
		if err != nil {
			t.Fatalf("Restrictions: %v", err)
		}
		sort.Slice(rs, func(i, j int) bool {
			a, b := rs[i], rs[j]
			if a.App != b.App {
				return a.App < b.App
			}
			if a.UID != b.UID {
				return a.UID < b.UID
			}
			return a.Kind < b.Kind
		})
		return rs
	}
	if rs := list(); len(rs) != 0 {
		t.Fatalf("empty store lists %+v", rs)
	}
	ban := chat.Restriction{App: "app1", UID: "u\x001", Kind: chat.RestrictBan, Until: 0, Reason: "spam", CreatedAt: 5}
	mute := chat.Restriction{App: "app1", UID: "u\x001", Kind: chat.RestrictMute, Until: 9000, CreatedAt: 6}
	other := chat.Restriction{App: "app2", UID: "u", Kind: chat.RestrictBan, Until: -1 << 40, Reason: "ü", CreatedAt: 7}
	apply(t, s, &chat.Batch{Restrictions: []chat.Restriction{ban, mute, other}})
	equal(t, "after put", list(), []chat.Restriction{ban, mute, other})

	ban2 := ban
	ban2.Until, ban2.Reason = 12345, ""
	apply(t, s, &chat.Batch{Restrictions: []chat.Restriction{ban2},
		DelRestrictions: []chat.RestrictionKey{mute.Key(), {App: "nope", UID: "x", Kind: chat.RestrictMute}}})
	equal(t, "after replace and delete", list(), []chat.Restriction{ban2, other})

	// Put then delete in one batch: the delete comes after.
	apply(t, s, &chat.Batch{Restrictions: []chat.Restriction{mute}, DelRestrictions: []chat.RestrictionKey{mute.Key(), other.Key()}})
	equal(t, "after put+delete in one batch", list(), []chat.Restriction{ban2})
}

// testCounts: CountUsers and CountGroups count one app's records only
// (an app id that is a prefix of another's is not confused with it), and
// CountGroups counts groups, not private or system sessions.
func testCounts(t *testing.T, s chat.Store) {
	ctx := context.Background()
	want := func(app string, users, groups int) {
		t.Helper()
		u, err := s.CountUsers(ctx, app)
		if err != nil || u != users {
			t.Fatalf("CountUsers(%q) = %d, %v; want %d", app, u, err, users)
		}
		g, err := s.CountGroups(ctx, app)
		if err != nil || g != groups {
			t.Fatalf("CountGroups(%q) = %d, %v; want %d", app, g, err, groups)
		}
	}
	want("app", 0, 0)
	apply(t, s, &chat.Batch{
		Users: []chat.User{{App: "app", UID: "a"}, {App: "app", UID: "b"}, {App: "app1", UID: "a"}, {App: "ap", UID: "pa"}},
		Sessions: []chat.Session{
			{ID: 1, App: "app", Kind: chat.KindGroup},
			{ID: 2, App: "app", Kind: chat.KindPrivate, Pair: [2]string{"a", "b"}},
			{ID: 3, App: "app", Kind: chat.KindSystem},
			{ID: 4, App: "app1", Kind: chat.KindGroup},
			{ID: 5, App: "app", Kind: chat.KindGroup},
		},
	})
	want("app", 2, 2)
	want("app1", 1, 1)
	want("ap", 1, 0)
	want("other", 0, 0)
}
