// Package storetest is the conformance suite for chat.Store. Every Store
// implementation runs it from its own tests:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) chat.Store { return memstore.New() })
//	}
//
// Stores that keep data across a restart also run RunPersistence.
//
// Beyond the doc comments on chat.Store, the suite pins these choices:
//   - every single-record getter returns an error wrapping chat.ErrNotFound
//     when the record does not exist;
//   - list getters (Apps, Members, UserSessions, Messages) return an empty
//     result and a nil error when there is nothing to list;
//   - Apply fails with an error wrapping chat.ErrNotFound, committing nothing,
//     when a Member names a session that is neither stored nor in the batch
//     (the store needs the session's app to index UserSessions);
//   - a Summary for a missing session is ignored, like a ReadMark for a
//     missing member;
//   - a replaced private Session with a new pair is found only by the new pair;
//     a replaced Token belongs only to its new user.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"chatd/chat"
)

// Run runs the conformance suite. open returns a new, empty store for one
// subtest; Run closes it when the subtest ends, so open must not.
func Run(t *testing.T, open func(t *testing.T) chat.Store) {
	t.Helper()
	if n := reflect.TypeFor[chat.Message]().NumField(); n != 12 {
		t.Fatalf("storetest: chat.Message has %d fields, sameMessage compares 12: update it", n)
	}
	tests := []struct {
		name string
		fn   func(t *testing.T, s chat.Store)
	}{
		{name: "EmptyStore", fn: testEmptyStore},
		{name: "Apps", fn: testApps},
		{name: "Users", fn: testUsers},
		{name: "Tokens", fn: testTokens},
		{name: "Sessions", fn: testSessions},
		{name: "PrivatePairIndex", fn: testPrivatePairIndex},
		{name: "Members", fn: testMembers},
		{name: "MemberOfMissingSession", fn: testMemberOfMissingSession},
		{name: "Messages", fn: testMessages},
		{name: "MessagesRange", fn: testMessagesRange},
		{name: "CID", fn: testCID},
		{name: "Summaries", fn: testSummaries},
		{name: "Reads", fn: testReads},
		{name: "BatchOrder", fn: testBatchOrder},
		{name: "IDsWithSeparatorBytes", fn: testIDsWithSeparatorBytes},
		{name: "NoAliasing", fn: testNoAliasing},
		{name: "MaxSessionID", fn: testMaxSessionID},
		{name: "PruneMessages", fn: testPruneMessages},
		{name: "Records", fn: testRecords},
		{name: "UsersListAndDelete", fn: testUsersListAndDelete},
		{name: "RecordKeys", fn: testRecordKeys},
		{name: "RecordsOverBatches", fn: testRecordsOverBatches},
		{name: "ConcurrentReadsDuringApply", fn: testConcurrent},
		{name: "LargeBatch", fn: testLargeBatch},
		{name: "Restrictions", fn: testRestrictions},
		{name: "Counts", fn: testCounts},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			t.Cleanup(func() {
				if err := s.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
			tc.fn(t, s)
		})
	}
}

// RunPersistence checks that a store keeps everything across Close and a
// reopen of the same dir. open opens (or creates) the store kept in dir;
// RunPersistence closes every store it opens.
func RunPersistence(t *testing.T, open func(t *testing.T, dir string) chat.Store) {
	t.Helper()
	t.Run("ReopenKeepsEverything", func(t *testing.T) {
		dir := t.TempDir()
		ctx := context.Background()

		s := open(t, dir)
		f := newFixture()
		apply(t, s, f.batch())
		f.verify(t, s)
		closeStore(t, s)

		s = open(t, dir)
		f.verify(t, s)
		// A second generation of writes on the reopened store.
		more := &chat.Batch{
			Sessions:  []chat.Session{{ID: 900, App: "app1", Kind: chat.KindGroup, Name: "late", CreatedAt: 9}},
			Members:   []chat.Member{{Session: 900, UID: "u1", Role: chat.RoleOwner, JoinedAt: 9}},
			Messages:  []chat.Message{{Session: 10, Seq: 4, App: "app1", From: "u2", Type: "text", Content: []byte(`{"n":4}`), CID: "c4", CreatedAt: 40}},
			Summaries: []chat.Summary{{Session: 10, Seq: 4, At: 40, From: "u2", Type: "text", Preview: "4"}},
			DelTokens: [][32]byte{hash("t1")},
			Records: []chat.Record{
				{Kind: "svc.conv", Key: []byte("k1"), Value: []byte("v1")},
				{Kind: "svc.conv", Key: []byte("k2"), Value: []byte("v2")},
			},
			Restrictions: []chat.Restriction{{App: "app1", UID: "u1", Kind: chat.RestrictMute, Until: 77, Reason: "r", CreatedAt: 9}},
		}
		apply(t, s, more)
		apply(t, s, &chat.Batch{DelRecords: []chat.RecordKey{{Kind: "svc.conv", Key: []byte("k1")}}})
		closeStore(t, s)

		s = open(t, dir)
		defer closeStore(t, s)
		if id, err := s.MaxSessionID(ctx); err != nil || id != 900 {
			t.Fatalf("MaxSessionID after reopen = %d, %v; want 900", id, err)
		}
		if _, err := s.Token(ctx, hash("t1")); !errors.Is(err, chat.ErrNotFound) {
			t.Fatalf("deleted token after reopen: err = %v, want ErrNotFound", err)
		}
		wantSeqs(t, s, 10, 1, 1<<63, 0, false, 1, 2, 3, 4)
		if ss, err := s.UserSessions(ctx, "app1", "u1"); err != nil || !slices.Equal(ss, []chat.SessionID{10, 11, 900}) {
			t.Fatalf("UserSessions(app1,u1) after reopen = %v, %v; want [10 11 900]", ss, err)
		}
		if sess := mustSession(t, s, 10); sess.LastSeq != 4 || sess.LastPreview != "4" {
			t.Fatalf("session 10 after reopen: LastSeq=%d LastPreview=%q, want 4 \"4\"", sess.LastSeq, sess.LastPreview)
		}
		wantCID(t, s, 10, 4, "u2", "c4")
		if rs, err := s.ScanRecords(ctx, "svc.conv", nil, nil, 0, false); err != nil || len(rs) != 1 || string(rs[0].Key) != "k2" || string(rs[0].Value) != "v2" {
			t.Fatalf("records after reopen = %+v, %v; want only k2=v2", rs, err)
		}
		rs, err := s.Restrictions(ctx)
		equal(t, "Restrictions after reopen", rs, more.Restrictions)
		if err != nil {
			t.Fatal(err)
		}
	})
}

// ---- helpers ----

func apply(t *testing.T, s chat.Store, b *chat.Batch) {
	t.Helper()
	if err := s.Apply(context.Background(), b); err != nil {
		t.Fatalf("Apply: %v", err)
	}
}

func closeStore(t *testing.T, s chat.Store) {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

func hash(s string) [32]byte {
	var h [32]byte
	copy(h[:], s)
	h[31] = byte(len(s))
	return h
}

func wantNotFound(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, chat.ErrNotFound) {
		t.Fatalf("%s: err = %v, want an error wrapping chat.ErrNotFound", what, err)
	}
}

func mustSession(t *testing.T, s chat.Store, id chat.SessionID) chat.Session {
	t.Helper()
	got, err := s.Session(context.Background(), id)
	if err != nil {
		t.Fatalf("Session(%d): %v", id, err)
	}
	return got
}

func mustMember(t *testing.T, s chat.Store, id chat.SessionID, uid string) chat.Member {
	t.Helper()
	got, err := s.Member(context.Background(), id, uid)
	if err != nil {
		t.Fatalf("Member(%d, %q): %v", id, uid, err)
	}
	return got
}

func equal[T any](t *testing.T, what string, got, want T) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s:\n got %+v\nwant %+v", what, got, want)
	}
}

// sameUser compares users, treating nil and empty Extra alike.
func sameUser(a, b chat.User) bool {
	if !bytes.Equal(a.Extra, b.Extra) {
		return false
	}
	a.Extra, b.Extra = nil, nil
	return reflect.DeepEqual(a, b)
}

// sameMessage compares messages, treating nil and empty Content alike.
func sameMessage(a, b chat.Message) bool {
	return a.Session == b.Session && a.Seq == b.Seq && a.App == b.App && a.From == b.From &&
		a.Type == b.Type && a.CID == b.CID && a.CreatedAt == b.CreatedAt && bytes.Equal(a.Content, b.Content) &&
		a.EditedAt == b.EditedAt && a.Edits == b.Edits && a.MentionAll == b.MentionAll && slices.Equal(a.Mentions, b.Mentions)
}

func seqsOf(ms []chat.Message) []uint64 {
	out := make([]uint64, len(ms))
	for i, m := range ms {
		out[i] = m.Seq
	}
	return out
}

func wantSeqs(t *testing.T, s chat.Store, id chat.SessionID, lo, hi uint64, limit int, newest bool, want ...uint64) {
	t.Helper()
	ms, err := s.Messages(context.Background(), id, lo, hi, limit, newest)
	if err != nil {
		t.Fatalf("Messages(%d, %d, %d, %d, %v): %v", id, lo, hi, limit, newest, err)
	}
	for _, m := range ms {
		if m.Session != id {
			t.Fatalf("Messages(%d, ...) returned a message of session %d", id, m.Session)
		}
	}
	if got := seqsOf(ms); !slices.Equal(got, want) {
		t.Fatalf("Messages(%d, %d, %d, limit=%d, newest=%v) seqs = %v, want %v", id, lo, hi, limit, newest, got, want)
	}
}

func msg(id chat.SessionID, seq uint64, from, cid string) chat.Message {
	return chat.Message{
		Session: id, Seq: seq, App: "app1", From: from, Type: "text",
		Content:   []byte(`{"text":"m` + strconv.FormatUint(seq, 10) + `"}`),
		CID:       cid,
		CreatedAt: 1_766_000_000_000 + int64(seq),
	}
}

// ---- tests ----

func testEmptyStore(t *testing.T, s chat.Store) {
	ctx := context.Background()
	_, err := s.App(ctx, "a")
	wantNotFound(t, "App", err)
	_, err = s.User(ctx, "a", "u")
	wantNotFound(t, "User", err)
	_, err = s.Token(ctx, hash("x"))
	wantNotFound(t, "Token", err)
	_, err = s.Session(ctx, 1)
	wantNotFound(t, "Session", err)
	_, err = s.PrivateSession(ctx, "a", "u", "v")
	wantNotFound(t, "PrivateSession", err)
	_, err = s.Member(ctx, 1, "u")
	wantNotFound(t, "Member", err)

	if apps, err := s.Apps(ctx); err != nil || len(apps) != 0 {
		t.Fatalf("Apps = %v, %v; want empty, nil", apps, err)
	}
	if ms, err := s.Members(ctx, 1); err != nil || len(ms) != 0 {
		t.Fatalf("Members = %v, %v; want empty, nil", ms, err)
	}
	if ss, err := s.UserSessions(ctx, "a", "u"); err != nil || len(ss) != 0 {
		t.Fatalf("UserSessions = %v, %v; want empty, nil", ss, err)
	}
	if ms, err := s.Messages(ctx, 1, 0, ^uint64(0), 0, false); err != nil || len(ms) != 0 {
		t.Fatalf("Messages = %v, %v; want empty, nil", ms, err)
	}
	if id, err := s.MaxSessionID(ctx); err != nil || id != 0 {
		t.Fatalf("MaxSessionID = %d, %v; want 0, nil", id, err)
	}
	apply(t, s, &chat.Batch{}) // an empty batch is fine
	if id, err := s.MaxSessionID(ctx); err != nil || id != 0 {
		t.Fatalf("MaxSessionID after empty Apply = %d, %v; want 0, nil", id, err)
	}
}

func testApps(t *testing.T, s chat.Store) {
	ctx := context.Background()
	apps := []chat.App{
		{ID: "shop", Name: "Shop", Secret: "s1", CreatedAt: 1},
		{ID: "blog", Name: "Blog ✍", Secret: "s2", CreatedAt: 2},
		{ID: "a", Name: "", Secret: "", CreatedAt: -3},
		{ID: "kept", Name: "Kept", Secret: "s3", CreatedAt: 4, RetentionDays: 30},
		{ID: "forever", Name: "Forever", Secret: "s4", CreatedAt: 5, RetentionDays: -1},
	}
	apply(t, s, &chat.Batch{Apps: apps})
	for _, a := range apps {
		got, err := s.App(ctx, a.ID)
		if err != nil {
			t.Fatalf("App(%q): %v", a.ID, err)
		}
		equal(t, "App("+a.ID+")", got, a)
	}
	_, err := s.App(ctx, "sho")
	wantNotFound(t, "App(prefix of an id)", err)

	// Put replaces.
	apps[0].Name, apps[0].Secret = "Shop 2", "rotated"
	apply(t, s, &chat.Batch{Apps: apps[:1]})
	got, err := s.App(ctx, "shop")
	if err != nil {
		t.Fatal(err)
	}
	equal(t, "replaced App", got, apps[0])

	list, err := s.Apps(ctx)
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(list, func(a, b chat.App) int { return cmpString(a.ID, b.ID) })
	want := slices.Clone(apps)
	slices.SortFunc(want, func(a, b chat.App) int { return cmpString(a.ID, b.ID) })
	equal(t, "Apps", list, want)
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func testUsers(t *testing.T, s chat.Store) {
	ctx := context.Background()
	users := []chat.User{
		{App: "a1", UID: "u1", Nickname: "Ann", Avatar: "https://x/a.png", Extra: []byte(`{"vip":true}`), CreatedAt: 1, UpdatedAt: 2},
		{App: "a2", UID: "u1", Nickname: "Other app's u1", CreatedAt: 3, UpdatedAt: 3},
		{App: "a1", UID: "u2", Nickname: "李雷", CreatedAt: 4, UpdatedAt: 5},
	}
	apply(t, s, &chat.Batch{Users: users})
	for _, u := range users {
		got, err := s.User(ctx, u.App, u.UID)
		if err != nil {
			t.Fatalf("User(%q, %q): %v", u.App, u.UID, err)
		}
		if !sameUser(got, u) {
			t.Fatalf("User(%q, %q) = %+v, want %+v", u.App, u.UID, got, u)
		}
	}
	_, err := s.User(ctx, "a3", "u1")
	wantNotFound(t, "User of another app", err)
	_, err = s.User(ctx, "a1", "u3")
	wantNotFound(t, "missing User", err)

	upd := users[0]
	upd.Nickname, upd.Extra, upd.UpdatedAt = "Anna", nil, 9
	apply(t, s, &chat.Batch{Users: []chat.User{upd}})
	got, err := s.User(ctx, "a1", "u1")
	if err != nil {
		t.Fatal(err)
	}
	if !sameUser(got, upd) {
		t.Fatalf("replaced User = %+v, want %+v", got, upd)
	}
	if got2, _ := s.User(ctx, "a2", "u1"); !sameUser(got2, users[1]) {
		t.Fatalf("replacing a1/u1 changed a2/u1: %+v", got2)
	}
}

func testTokens(t *testing.T, s chat.Store) {
	ctx := context.Background()
	tok := func(name, app, uid string) chat.Token {
		return chat.Token{Hash: hash(name), App: app, UID: uid, CreatedAt: 10, ExpiresAt: 20}
	}
	toks := []chat.Token{
		tok("t1", "a1", "u1"), tok("t2", "a1", "u1"), tok("t3", "a1", "u2"),
		tok("t4", "a2", "u1"), tok("t5", "a1", "u1"),
	}
	apply(t, s, &chat.Batch{Tokens: toks})
	for _, tk := range toks {
		got, err := s.Token(ctx, tk.Hash)
		if err != nil {
			t.Fatalf("Token(%x): %v", tk.Hash[:4], err)
		}
		equal(t, "Token", got, tk)
	}

	present := func(names ...string) {
		t.Helper()
		for _, n := range []string{"t1", "t2", "t3", "t4", "t5", "t6"} {
			_, err := s.Token(ctx, hash(n))
			want := slices.Contains(names, n)
			if want && err != nil {
				t.Fatalf("Token %s: %v, want present", n, err)
			}
			if !want && !errors.Is(err, chat.ErrNotFound) {
				t.Fatalf("Token %s: err = %v, want ErrNotFound", n, err)
			}
		}
	}

	// DelTokens by hash; a missing hash is not an error.
	apply(t, s, &chat.Batch{DelTokens: [][32]byte{hash("t2"), hash("nope")}})
	present("t1", "t3", "t4", "t5")

	// A token re-put under another user belongs to that user only.
	apply(t, s, &chat.Batch{Tokens: []chat.Token{tok("t5", "a1", "u2")}})

	// DelUserTokens removes every token of a1/u1 and no other user's.
	apply(t, s, &chat.Batch{DelUserTokens: []chat.UserKey{{App: "a1", UID: "u1"}, {App: "a9", UID: "nobody"}}})
	present("t3", "t4", "t5")

	// Deleting a token also drops it from its user's index: putting it back
	// under u1 and deleting u2's tokens leaves it.
	apply(t, s, &chat.Batch{Tokens: []chat.Token{tok("t6", "a1", "u2")}, DelTokens: [][32]byte{hash("t6")}})
	apply(t, s, &chat.Batch{Tokens: []chat.Token{tok("t6", "a1", "u1")}})
	apply(t, s, &chat.Batch{DelUserTokens: []chat.UserKey{{App: "a1", UID: "u2"}}})
	present("t4", "t6")
}

func testSessions(t *testing.T, s chat.Store) {
	ctx := context.Background()
	sessions := []chat.Session{
		{ID: 1, App: "a1", Kind: chat.KindPrivate, Pair: [2]string{"u1", "u2"}, CreatedAt: 100},
		{ID: 2, App: "a1", Kind: chat.KindGroup, Name: "Group ✓", Avatar: "g.png", Owner: "u1", CreatedAt: 200,
			LastSeq: 7, LastAt: 300, LastFrom: "u2", LastType: "text", LastPreview: "hello"},
		{ID: 3, App: "a2", Kind: chat.KindSystem, Owner: "u9", CreatedAt: 300},
	}
	apply(t, s, &chat.Batch{Sessions: sessions})
	for _, want := range sessions {
		equal(t, "Session", mustSession(t, s, want.ID), want)
	}
	_, err := s.Session(ctx, 4)
	wantNotFound(t, "Session(4)", err)

	upd := sessions[1]
	upd.Name, upd.LastSeq = "Renamed", 8
	apply(t, s, &chat.Batch{Sessions: []chat.Session{upd}})
	equal(t, "replaced Session", mustSession(t, s, 2), upd)
	equal(t, "untouched Session", mustSession(t, s, 1), sessions[0])
}

func testPrivatePairIndex(t *testing.T, s chat.Store) {
	ctx := context.Background()
	apply(t, s, &chat.Batch{Sessions: []chat.Session{
		{ID: 5, App: "a1", Kind: chat.KindPrivate, Pair: [2]string{"alice", "bob"}},
		{ID: 6, App: "a2", Kind: chat.KindPrivate, Pair: [2]string{"alice", "bob"}},
		{ID: 7, App: "a1", Kind: chat.KindGroup, Pair: [2]string{"carol", "dave"}},
		{ID: 8, App: "a1", Kind: chat.KindPrivate, Pair: [2]string{"alice", "carol"}},
	}})
	tests := []struct {
		name string
		app  string
		a, b string
		want chat.SessionID // 0: not found
	}{
		{name: "sorted order", app: "a1", a: "alice", b: "bob", want: 5},
		{name: "reverse order", app: "a1", a: "bob", b: "alice", want: 5},
		{name: "other app", app: "a2", a: "bob", b: "alice", want: 6},
		{name: "second pair", app: "a1", a: "carol", b: "alice", want: 8},
		{name: "group pair not indexed", app: "a1", a: "carol", b: "dave", want: 0},
		{name: "unknown pair", app: "a1", a: "bob", b: "carol", want: 0},
		{name: "unknown app", app: "a3", a: "alice", b: "bob", want: 0},
	}
	for _, tc := range tests {
		got, err := s.PrivateSession(ctx, tc.app, tc.a, tc.b)
		if tc.want == 0 {
			wantNotFound(t, tc.name, err)
			continue
		}
		if err != nil || got != tc.want {
			t.Fatalf("%s: PrivateSession(%q, %q, %q) = %d, %v; want %d", tc.name, tc.app, tc.a, tc.b, got, err, tc.want)
		}
	}

	// Replacing a private session with another pair moves its index entry.
	apply(t, s, &chat.Batch{Sessions: []chat.Session{
		{ID: 8, App: "a1", Kind: chat.KindPrivate, Pair: [2]string{"carol", "erin"}},
	}})
	_, err := s.PrivateSession(ctx, "a1", "alice", "carol")
	wantNotFound(t, "old pair after replace", err)
	if got, err := s.PrivateSession(ctx, "a1", "erin", "carol"); err != nil || got != 8 {
		t.Fatalf("new pair after replace = %d, %v; want 8", got, err)
	}
}

func testMembers(t *testing.T, s chat.Store) {
	ctx := context.Background()
	apply(t, s, &chat.Batch{Sessions: []chat.Session{
		{ID: 30, App: "a1", Kind: chat.KindGroup},
		{ID: 4, App: "a1", Kind: chat.KindGroup},
		{ID: 12, App: "a1", Kind: chat.KindGroup},
		{ID: 20, App: "a2", Kind: chat.KindGroup},
	}})
	members := []chat.Member{
		{Session: 30, UID: "u1", Role: chat.RoleOwner, ReadSeq: 3, JoinedAt: 1},
		{Session: 30, UID: "u2", Role: chat.RoleMember, JoinedAt: 2},
		{Session: 30, UID: "u10", Role: chat.RoleAdmin, JoinedAt: 3},
		{Session: 4, UID: "u1", Role: chat.RoleMember, JoinedAt: 4},
		{Session: 12, UID: "u1", Role: chat.RoleMember, JoinedAt: 5},
		{Session: 20, UID: "u1", Role: chat.RoleMember, JoinedAt: 6},
	}
	apply(t, s, &chat.Batch{Members: members})

	for _, m := range members {
		equal(t, "Member", mustMember(t, s, m.Session, m.UID), m)
	}
	_, err := s.Member(ctx, 30, "u3")
	wantNotFound(t, "Member(30, u3)", err)
	_, err = s.Member(ctx, 31, "u1")
	wantNotFound(t, "Member(31, u1)", err)

	got, err := s.Members(ctx, 30)
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(got, func(a, b chat.Member) int { return cmpString(a.UID, b.UID) })
	equal(t, "Members(30)", got, []chat.Member{members[0], members[2], members[1]})

	userSessions := func(app, uid string, want ...chat.SessionID) {
		t.Helper()
		got, err := s.UserSessions(ctx, app, uid)
		if err != nil {
			t.Fatalf("UserSessions(%q, %q): %v", app, uid, err)
		}
		if len(got) != len(want) || (len(want) > 0 && !slices.Equal(got, want)) {
			t.Fatalf("UserSessions(%q, %q) = %v, want %v (ascending)", app, uid, got, want)
		}
	}
	userSessions("a1", "u1", 4, 12, 30)
	userSessions("a2", "u1", 20)
	userSessions("a1", "u2", 30)
	userSessions("a1", "u" /* prefix of u1 */)

	// Put replaces; the index is unchanged.
	upd := members[1]
	upd.Role = chat.RoleAdmin
	apply(t, s, &chat.Batch{Members: []chat.Member{upd}})
	equal(t, "replaced Member", mustMember(t, s, 30, "u2"), upd)
	userSessions("a1", "u2", 30)

	// DelMembers removes the member and its UserSessions entry; a missing
	// member is not an error.
	apply(t, s, &chat.Batch{DelMembers: []chat.MemberKey{{Session: 12, UID: "u1"}, {Session: 12, UID: "ghost"}, {Session: 999, UID: "u1"}}})
	_, err = s.Member(ctx, 12, "u1")
	wantNotFound(t, "deleted Member", err)
	userSessions("a1", "u1", 4, 30)
	if ms, err := s.Members(ctx, 12); err != nil || len(ms) != 0 {
		t.Fatalf("Members(12) after delete = %v, %v; want empty", ms, err)
	}
	userSessions("a2", "u1", 20)
}

func testMemberOfMissingSession(t *testing.T, s chat.Store) {
	ctx := context.Background()
	err := s.Apply(ctx, &chat.Batch{
		Apps:    []chat.App{{ID: "a1", Name: "must not be committed"}},
		Members: []chat.Member{{Session: 77, UID: "u1", Role: chat.RoleMember}},
	})
	if !errors.Is(err, chat.ErrNotFound) {
		t.Fatalf("Apply with a member of a missing session: err = %v, want an error wrapping ErrNotFound", err)
	}
	_, err = s.App(ctx, "a1")
	wantNotFound(t, "App from the failed batch (all or nothing)", err)
	_, err = s.Member(ctx, 77, "u1")
	wantNotFound(t, "Member from the failed batch", err)
}

func testMessages(t *testing.T, s chat.Store) {
	ctx := context.Background()
	big := bytes.Repeat([]byte("x"), 64<<10)
	bigContent := append(append([]byte(`{"text":"`), big...), `"}`...)
	ms := []chat.Message{
		{Session: 1, Seq: 1, App: "a1", From: "u1", Type: "text", Content: []byte(`{"text":"hi"}`), CID: "c1", CreatedAt: 1766000000123},
		{Session: 1, Seq: 2, App: "a1", From: "", Type: "notice", Content: []byte(`{"text":"系统"}`), CreatedAt: 2},
		{Session: 1, Seq: 3, App: "a1", From: "u2", Type: "image", Content: bigContent, CreatedAt: -5},
		{Session: 1, Seq: 4, App: "a1", From: "u2", Type: "empty", Content: nil, CreatedAt: 0},
		{Session: 2, Seq: 1, App: "a1", From: "u3", Type: "text", Content: []byte(`{}`), CreatedAt: 7},
	}
	apply(t, s, &chat.Batch{Messages: ms})
	got, err := s.Messages(ctx, 1, 0, ^uint64(0), 0, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 4 {
		t.Fatalf("Messages(1) returned %d messages, want 4", len(got))
	}
	for i := range got {
		if !sameMessage(got[i], ms[i]) {
			t.Fatalf("Messages(1)[%d] = %+v, want %+v", i, got[i], ms[i])
		}
	}

	// Put replaces the message at (Session, Seq).
	repl := ms[1]
	repl.Content = []byte(`{"text":"edited"}`)
	repl.EditedAt, repl.Edits = 1766000000999, 2 // an edit (chat/msgops.go)
	repl.Mentions, repl.MentionAll = []string{"u1", "u2"}, true
	apply(t, s, &chat.Batch{Messages: []chat.Message{repl}})
	got, err = s.Messages(ctx, 1, 2, 2, 0, false)
	if err != nil || len(got) != 1 || !sameMessage(got[0], repl) {
		t.Fatalf("replaced message = %+v, %v; want %+v", got, err, repl)
	}

	// Out-of-order puts, within a batch and across batches, read back ascending.
	apply(t, s, &chat.Batch{Messages: []chat.Message{msg(3, 9, "u", ""), msg(3, 2, "u", ""), msg(3, 5, "u", "")}})
	apply(t, s, &chat.Batch{Messages: []chat.Message{msg(3, 1, "u", ""), msg(3, 7, "u", "")}})
	wantSeqs(t, s, 3, 0, ^uint64(0), 0, false, 1, 2, 5, 7, 9)

	// Two puts of one (Session, Seq) in a batch: the later wins.
	first, second := msg(4, 1, "u", ""), msg(4, 1, "u", "")
	second.Content = []byte(`{"text":"second"}`)
	apply(t, s, &chat.Batch{Messages: []chat.Message{first, second}})
	got, err = s.Messages(ctx, 4, 1, 1, 0, false)
	if err != nil || len(got) != 1 || !sameMessage(got[0], second) {
		t.Fatalf("duplicate (Session, Seq) in one batch = %+v, %v; want the later put", got, err)
	}
}

func testMessagesRange(t *testing.T, s chat.Store) {
	// Session 10: seqs 1..20 except 11..14. Sessions 9 and 11 border it.
	var b chat.Batch
	for seq := uint64(1); seq <= 20; seq++ {
		if seq >= 11 && seq <= 14 {
			continue
		}
		b.Messages = append(b.Messages, msg(10, seq, "u1", ""))
	}
	b.Messages = append(b.Messages, msg(9, 100, "u1", ""), msg(11, 1, "u1", ""), msg(11, 0, "u1", ""))
	apply(t, s, &b)

	const max = ^uint64(0)
	seqs := func(from, to uint64) []uint64 {
		var out []uint64
		for i := from; i <= to; i++ {
			if i < 11 || i > 14 {
				out = append(out, i)
			}
		}
		return out
	}
	tests := []struct {
		name   string
		id     chat.SessionID
		lo, hi uint64
		limit  int
		newest bool
		want   []uint64
	}{
		{name: "everything", id: 10, lo: 0, hi: max, want: seqs(1, 20)},
		{name: "everything newest", id: 10, lo: 0, hi: max, newest: true, want: seqs(1, 20)},
		{name: "inclusive bounds", id: 10, lo: 3, hi: 6, want: seqs(3, 6)},
		{name: "single seq", id: 10, lo: 7, hi: 7, want: []uint64{7}},
		{name: "single missing seq", id: 10, lo: 12, hi: 12, want: nil},
		{name: "range inside gap", id: 10, lo: 11, hi: 14, want: nil},
		{name: "range over gap", id: 10, lo: 9, hi: 16, want: seqs(9, 16)},
		{name: "lo greater than hi", id: 10, lo: 8, hi: 7, want: nil},
		{name: "lo greater than hi newest", id: 10, lo: 8, hi: 7, limit: 3, newest: true, want: nil},
		{name: "past the end", id: 10, lo: 21, hi: 100, want: nil},
		{name: "past the end newest", id: 10, lo: 21, hi: 100, limit: 5, newest: true, want: nil},
		{name: "hi past the end", id: 10, lo: 18, hi: 1000, want: seqs(18, 20)},
		{name: "oldest page", id: 10, lo: 0, hi: max, limit: 5, want: seqs(1, 5)},
		{name: "newest page", id: 10, lo: 0, hi: max, limit: 5, newest: true, want: seqs(16, 20)},
		{name: "newest page crossing gap", id: 10, lo: 0, hi: 15, limit: 4, newest: true, want: []uint64{8, 9, 10, 15}},
		{name: "newest before hi", id: 10, lo: 0, hi: 9, limit: 3, newest: true, want: seqs(7, 9)},
		{name: "newest hi inside gap", id: 10, lo: 0, hi: 13, limit: 2, newest: true, want: seqs(9, 10)},
		{name: "newest limit larger than range", id: 10, lo: 4, hi: 6, limit: 50, newest: true, want: seqs(4, 6)},
		{name: "oldest from lo inside gap", id: 10, lo: 12, hi: max, limit: 2, want: seqs(15, 16)},
		{name: "limit zero unlimited", id: 10, lo: 5, hi: 17, limit: 0, want: seqs(5, 17)},
		{name: "negative limit unlimited", id: 10, lo: 5, hi: 17, limit: -1, newest: true, want: seqs(5, 17)},
		{name: "limit one newest", id: 10, lo: 0, hi: max, limit: 1, newest: true, want: []uint64{20}},
		{name: "limit one oldest", id: 10, lo: 0, hi: max, limit: 1, want: []uint64{1}},
		{name: "unknown session", id: 12, lo: 0, hi: max, want: nil},
		{name: "neighbour below", id: 9, lo: 0, hi: max, newest: true, want: []uint64{100}},
		{name: "neighbour above with seq 0", id: 11, lo: 0, hi: max, want: []uint64{0, 1}},
		{name: "neighbour above hi max newest", id: 11, lo: 1, hi: max, limit: 1, newest: true, want: []uint64{1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			wantSeqs(t, s, tc.id, tc.lo, tc.hi, tc.limit, tc.newest, tc.want...)
		})
	}
}

func testCID(t *testing.T, s chat.Store) {
	m1 := msg(1, 1, "u1", "c-1")
	m2 := msg(1, 2, "u2", "c-1") // same cid, other sender
	m3 := msg(2, 5, "u1", "c-2")
	m4 := msg(2, 6, "u1", "") // no cid
	m5 := msg(3, 1, "u1", "c-1")
	m5.App = "a2" // same sender and cid, other app
	apply(t, s, &chat.Batch{Messages: []chat.Message{m1, m2, m3, m4, m5}})
	for _, m := range []chat.Message{m1, m2, m3, m4, m5} {
		wantCID(t, s, m.Session, m.Seq, m.From, m.CID)
	}
}

// wantCID checks that message id/seq is stored with sender from and cid:
// the journal finds retried sends by reading them back.
func wantCID(t *testing.T, s chat.Store, id chat.SessionID, seq uint64, from, cid string) {
	t.Helper()
	ms, err := s.Messages(context.Background(), id, seq, seq, 1, false)
	if err != nil || len(ms) != 1 || ms[0].From != from || ms[0].CID != cid {
		t.Fatalf("message %d/%d = %+v, %v; want from %q with cid %q", id, seq, ms, err, from, cid)
	}
}

func testSummaries(t *testing.T, s chat.Store) {
	base := chat.Session{ID: 1, App: "a1", Kind: chat.KindGroup, Name: "g", CreatedAt: 1,
		LastSeq: 5, LastAt: 50, LastFrom: "u1", LastType: "text", LastPreview: "five"}
	apply(t, s, &chat.Batch{Sessions: []chat.Session{base}})

	sum := func(seq uint64, preview string) chat.Summary {
		return chat.Summary{Session: 1, Seq: seq, At: int64(seq) * 10, From: "u" + preview, Type: "t" + preview, Preview: preview}
	}
	withSum := func(sm chat.Summary) chat.Session {
		s := base
		s.LastSeq, s.LastAt, s.LastFrom, s.LastType, s.LastPreview = sm.Seq, sm.At, sm.From, sm.Type, sm.Preview
		return s
	}
	tests := []struct {
		name      string
		summaries []chat.Summary
		want      chat.Session
	}{
		{name: "lower seq ignored", summaries: []chat.Summary{sum(4, "four")}, want: base},
		{name: "equal seq ignored", summaries: []chat.Summary{sum(5, "other")}, want: base},
		{name: "higher seq applied", summaries: []chat.Summary{sum(6, "six")}, want: withSum(sum(6, "six"))},
		{name: "highest of a batch wins in any order", summaries: []chat.Summary{sum(9, "nine"), sum(8, "eight"), sum(7, "seven")}, want: withSum(sum(9, "nine"))},
		{name: "missing session ignored", summaries: []chat.Summary{{Session: 99, Seq: 100, Preview: "x"}}, want: withSum(sum(9, "nine"))},
	}
	for _, tc := range tests {
		apply(t, s, &chat.Batch{Summaries: tc.summaries})
		equal(t, tc.name, mustSession(t, s, 1), tc.want)
	}
	_, err := s.Session(context.Background(), 99)
	wantNotFound(t, "Session of an ignored Summary", err)

	// A put made from an older read (here: a rename with the summary of seq
	// 5) changes the record but never rolls the summary back.
	stale := base
	stale.Name, stale.Owner = "renamed", "u2"
	apply(t, s, &chat.Batch{Sessions: []chat.Session{stale}})
	want := withSum(sum(9, "nine"))
	want.Name, want.Owner = "renamed", "u2"
	equal(t, "stale put keeps the newer summary", mustSession(t, s, 1), want)
	// A put with a newer summary does replace it.
	newer := want
	newer.LastSeq, newer.LastPreview = 12, "twelve"
	apply(t, s, &chat.Batch{Sessions: []chat.Session{newer}})
	equal(t, "newer put replaces the summary", mustSession(t, s, 1), newer)
}

func testReads(t *testing.T, s chat.Store) {
	apply(t, s, &chat.Batch{
		Sessions: []chat.Session{{ID: 1, App: "a1", Kind: chat.KindGroup}},
		Members: []chat.Member{
			{Session: 1, UID: "u1", Role: chat.RoleAdmin, ReadSeq: 10, JoinedAt: 5},
			{Session: 1, UID: "u2", Role: chat.RoleMember, ReadSeq: 0, JoinedAt: 6},
		},
	})
	tests := []struct {
		name  string
		reads []chat.ReadMark
		want1 uint64 // u1's ReadSeq after
		want2 uint64 // u2's ReadSeq after
	}{
		{name: "raise", reads: []chat.ReadMark{{Session: 1, UID: "u1", Seq: 12}}, want1: 12},
		{name: "lower ignored", reads: []chat.ReadMark{{Session: 1, UID: "u1", Seq: 3}}, want1: 12},
		{name: "equal ignored", reads: []chat.ReadMark{{Session: 1, UID: "u1", Seq: 12}}, want1: 12},
		{name: "highest of a batch in any order", reads: []chat.ReadMark{{Session: 1, UID: "u2", Seq: 9}, {Session: 1, UID: "u2", Seq: 4}}, want1: 12, want2: 9},
		{name: "missing member ignored", reads: []chat.ReadMark{{Session: 1, UID: "ghost", Seq: 9}, {Session: 2, UID: "u1", Seq: 9}}, want1: 12, want2: 9},
	}
	for _, tc := range tests {
		apply(t, s, &chat.Batch{Reads: tc.reads})
		m1, m2 := mustMember(t, s, 1, "u1"), mustMember(t, s, 1, "u2")
		if m1.ReadSeq != tc.want1 || m2.ReadSeq != tc.want2 {
			t.Fatalf("%s: ReadSeq u1=%d u2=%d, want %d %d", tc.name, m1.ReadSeq, m2.ReadSeq, tc.want1, tc.want2)
		}
		if m1.Role != chat.RoleAdmin || m1.JoinedAt != 5 {
			t.Fatalf("%s: a read mark changed other member fields: %+v", tc.name, m1)
		}
	}
	_, err := s.Member(context.Background(), 1, "ghost")
	wantNotFound(t, "member of an ignored ReadMark", err)
}

// testBatchOrder checks that Apply applies the parts of one batch in the
// documented order: each case puts and then removes or updates the same
// record in a single batch.
func testBatchOrder(t *testing.T, s chat.Store) {
	ctx := context.Background()
	apply(t, s, &chat.Batch{Tokens: []chat.Token{{Hash: hash("old"), App: "a1", UID: "u1"}}})
	tests := []struct {
		name  string
		batch chat.Batch
		check func(t *testing.T)
	}{
		{
			name:  "Tokens before DelTokens",
			batch: chat.Batch{Tokens: []chat.Token{{Hash: hash("x"), App: "a1", UID: "u1"}}, DelTokens: [][32]byte{hash("x")}},
			check: func(t *testing.T) {
				_, err := s.Token(ctx, hash("x"))
				wantNotFound(t, "token put and deleted in one batch", err)
			},
		},
		{
			name:  "Tokens before DelUserTokens",
			batch: chat.Batch{Tokens: []chat.Token{{Hash: hash("y"), App: "a1", UID: "u1"}}, DelUserTokens: []chat.UserKey{{App: "a1", UID: "u1"}}},
			check: func(t *testing.T) {
				_, err := s.Token(ctx, hash("y"))
				wantNotFound(t, "new token of a user whose tokens are deleted in the same batch", err)
				_, err = s.Token(ctx, hash("old"))
				wantNotFound(t, "older token of that user", err)
			},
		},
		{
			name: "Sessions before Members before DelMembers",
			batch: chat.Batch{
				Sessions:   []chat.Session{{ID: 3, App: "a1", Kind: chat.KindGroup}},
				Members:    []chat.Member{{Session: 3, UID: "u1", Role: chat.RoleOwner}, {Session: 3, UID: "u2", Role: chat.RoleMember}},
				DelMembers: []chat.MemberKey{{Session: 3, UID: "u2"}},
			},
			check: func(t *testing.T) {
				mustMember(t, s, 3, "u1")
				_, err := s.Member(ctx, 3, "u2")
				wantNotFound(t, "member put and deleted in one batch", err)
				if ss, err := s.UserSessions(ctx, "a1", "u2"); err != nil || len(ss) != 0 {
					t.Fatalf("UserSessions of a member put and deleted in one batch = %v, %v; want empty", ss, err)
				}
				if ss, err := s.UserSessions(ctx, "a1", "u1"); err != nil || !slices.Equal(ss, []chat.SessionID{3}) {
					t.Fatalf("UserSessions(a1, u1) = %v, %v; want [3]", ss, err)
				}
			},
		},
		{
			name: "Members before Reads",
			batch: chat.Batch{
				Members: []chat.Member{{Session: 3, UID: "u3", Role: chat.RoleMember}},
				Reads:   []chat.ReadMark{{Session: 3, UID: "u3", Seq: 4}},
			},
			check: func(t *testing.T) {
				if m := mustMember(t, s, 3, "u3"); m.ReadSeq != 4 {
					t.Fatalf("ReadSeq of a member added in the same batch = %d, want 4", m.ReadSeq)
				}
			},
		},
		{
			name: "Sessions and Messages before Summaries",
			batch: chat.Batch{
				Sessions:  []chat.Session{{ID: 4, App: "a1", Kind: chat.KindGroup, Name: "new"}},
				Messages:  []chat.Message{msg(4, 1, "u1", "cid-4")},
				Summaries: []chat.Summary{{Session: 4, Seq: 1, At: 11, From: "u1", Type: "text", Preview: "m1"}},
			},
			check: func(t *testing.T) {
				sess := mustSession(t, s, 4)
				if sess.Name != "new" || sess.LastSeq != 1 || sess.LastPreview != "m1" {
					t.Fatalf("session created with a summary in one batch = %+v", sess)
				}
				wantSeqs(t, s, 4, 0, 10, 0, false, 1)
			},
		},
		{
			name: "Sessions then Summaries on an existing session",
			batch: chat.Batch{
				Sessions:  []chat.Session{{ID: 4, App: "a1", Kind: chat.KindGroup, Name: "renamed"}},
				Summaries: []chat.Summary{{Session: 4, Seq: 2, Preview: "m2"}},
			},
			check: func(t *testing.T) {
				sess := mustSession(t, s, 4)
				if sess.Name != "renamed" || sess.LastSeq != 2 || sess.LastPreview != "m2" {
					t.Fatalf("session replaced and summarised in one batch = %+v", sess)
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			apply(t, s, &tc.batch)
			tc.check(t)
		})
	}
}

// testIDsWithSeparatorBytes checks that ids are compared whole: an id may
// contain any byte, and (app, uid) pairs that concatenate to the same bytes
// stay distinct.
func testIDsWithSeparatorBytes(t *testing.T, s chat.Store) {
	ctx := context.Background()
	u1 := chat.User{App: "a\x00b", UID: "c", Nickname: "one"}
	u2 := chat.User{App: "a", UID: "b\x00c", Nickname: "two"}
	apply(t, s, &chat.Batch{
		Users: []chat.User{u1, u2},
		Sessions: []chat.Session{
			{ID: 1, App: "a\x00b", Kind: chat.KindPrivate, Pair: [2]string{"c", "d"}},
			{ID: 2, App: "a", Kind: chat.KindPrivate, Pair: [2]string{"b\x00c", "d"}},
			{ID: 3, App: "a", Kind: chat.KindPrivate, Pair: [2]string{"b", "c\x00d"}},
		},
		Members: []chat.Member{{Session: 1, UID: "c"}, {Session: 2, UID: "b\x00c"}, {Session: 2, UID: "b"}},
		Messages: []chat.Message{
			{Session: 1, Seq: 1, App: "a\x00b", From: "c", CID: "x"},
			{Session: 2, Seq: 1, App: "a", From: "b\x00c", CID: "x"},
			{Session: 2, Seq: 2, App: "a", From: "b", CID: "c\x00x"},
		},
	})
	if got, err := s.User(ctx, "a\x00b", "c"); err != nil || got.Nickname != "one" {
		t.Fatalf("User(a\\0b, c) = %+v, %v", got, err)
	}
	if got, err := s.User(ctx, "a", "b\x00c"); err != nil || got.Nickname != "two" {
		t.Fatalf("User(a, b\\0c) = %+v, %v", got, err)
	}
	if ss, err := s.UserSessions(ctx, "a", "b"); err != nil || !slices.Equal(ss, []chat.SessionID{2}) {
		t.Fatalf("UserSessions(a, b) = %v, %v; want [2]", ss, err)
	}
	if ss, err := s.UserSessions(ctx, "a\x00b", "c"); err != nil || !slices.Equal(ss, []chat.SessionID{1}) {
		t.Fatalf("UserSessions(a\\0b, c) = %v, %v; want [1]", ss, err)
	}
	if id, err := s.PrivateSession(ctx, "a", "d", "b\x00c"); err != nil || id != 2 {
		t.Fatalf("PrivateSession(a, d, b\\0c) = %d, %v; want 2", id, err)
	}
	if id, err := s.PrivateSession(ctx, "a", "c\x00d", "b"); err != nil || id != 3 {
		t.Fatalf("PrivateSession(a, c\\0d, b) = %d, %v; want 3", id, err)
	}
	wantCID(t, s, 2, 1, "b\x00c", "x")
	wantCID(t, s, 2, 2, "b", "c\x00x")
	wantCID(t, s, 1, 1, "c", "x")
}

// testNoAliasing checks that a store copies in and out: changing a batch
// after Apply, or a value a getter returned, does not change the store.
func testNoAliasing(t *testing.T, s chat.Store) {
	ctx := context.Background()
	b := &chat.Batch{
		Apps:     []chat.App{{ID: "a1", Name: "A"}},
		Users:    []chat.User{{App: "a1", UID: "u1", Nickname: "n", Extra: []byte(`{"k":1}`)}},
		Sessions: []chat.Session{{ID: 1, App: "a1", Kind: chat.KindGroup, Name: "g"}},
		Members:  []chat.Member{{Session: 1, UID: "u1", Role: chat.RoleMember}},
		Messages: []chat.Message{{Session: 1, Seq: 1, App: "a1", From: "u1", Type: "text", Content: []byte(`{"text":"orig"}`)}},
	}
	apply(t, s, b)

	// Mutate everything the batch pointed at.
	b.Users[0].Extra[2] = 'X'
	b.Messages[0].Content[3] = 'X'
	b.Apps[0].Name = "changed"
	b.Members[0].Role = chat.RoleOwner
	b.Reset()

	check := func(when string) {
		t.Helper()
		u, err := s.User(ctx, "a1", "u1")
		if err != nil || string(u.Extra) != `{"k":1}` {
			t.Fatalf("%s: User.Extra = %q, %v; want {\"k\":1}", when, u.Extra, err)
		}
		ms, err := s.Messages(ctx, 1, 1, 1, 0, false)
		if err != nil || len(ms) != 1 || string(ms[0].Content) != `{"text":"orig"}` {
			t.Fatalf("%s: message = %+v, %v; want content {\"text\":\"orig\"}", when, ms, err)
		}
		if a, err := s.App(ctx, "a1"); err != nil || a.Name != "A" {
			t.Fatalf("%s: App = %+v, %v", when, a, err)
		}
		if m, err := s.Member(ctx, 1, "u1"); err != nil || m.Role != chat.RoleMember {
			t.Fatalf("%s: Member = %+v, %v", when, m, err)
		}
	}
	check("after mutating the applied batch")

	// Mutate everything getters return.
	u, _ := s.User(ctx, "a1", "u1")
	for i := range u.Extra {
		u.Extra[i] = 'Z'
	}
	ms, _ := s.Messages(ctx, 1, 0, 10, 0, false)
	for i := range ms[0].Content {
		ms[0].Content[i] = 'Z'
	}
	ms[0].From = "mallory"
	_ = append(ms[:0], chat.Message{Session: 1, Seq: 1, Content: []byte("junk")})
	apps, _ := s.Apps(ctx)
	apps[0].Name = "changed"
	members, _ := s.Members(ctx, 1)
	members[0].Role = chat.RoleOwner
	ss, _ := s.UserSessions(ctx, "a1", "u1")
	ss[0] = 42
	check("after mutating returned values")
	if ss, err := s.UserSessions(ctx, "a1", "u1"); err != nil || !slices.Equal(ss, []chat.SessionID{1}) {
		t.Fatalf("UserSessions after mutating a returned slice = %v, %v; want [1]", ss, err)
	}
}

func testMaxSessionID(t *testing.T, s chat.Store) {
	ctx := context.Background()
	steps := []struct {
		name string
		ids  []chat.SessionID
		want chat.SessionID
	}{
		{name: "first", ids: []chat.SessionID{5}, want: 5},
		{name: "lower does not lower it", ids: []chat.SessionID{3}, want: 5},
		{name: "largest of a batch", ids: []chat.SessionID{9, 1 << 40, 7}, want: 1 << 40},
		{name: "top bit set", ids: []chat.SessionID{1<<63 + 1}, want: 1<<63 + 1},
	}
	for _, st := range steps {
		var b chat.Batch
		for _, id := range st.ids {
			b.Sessions = append(b.Sessions, chat.Session{ID: id, App: "a", Kind: chat.KindGroup})
		}
		apply(t, s, &b)
		if got, err := s.MaxSessionID(ctx); err != nil || got != st.want {
			t.Fatalf("%s: MaxSessionID = %d, %v; want %d", st.name, got, err, st.want)
		}
	}
	// Messages of a session never stored do not count.
	apply(t, s, &chat.Batch{Messages: []chat.Message{msg(1<<63+5, 1, "u", "")}})
	if got, err := s.MaxSessionID(ctx); err != nil || got != 1<<63+1 {
		t.Fatalf("MaxSessionID after a message of an unstored session = %d, %v; want %d", got, err, uint64(1<<63+1))
	}
}

// testConcurrent runs readers in parallel with a writer. Each batch appends
// messages, a summary and a read mark for one session and creates a session;
// a reader must see every batch whole and nothing go backwards.
func testConcurrent(t *testing.T, s chat.Store) {
	ctx := context.Background()
	const (
		batches  = 60
		perBatch = 4
		readers  = 4
	)
	apply(t, s, &chat.Batch{
		Sessions: []chat.Session{{ID: 1, App: "a1", Kind: chat.KindGroup}},
		Members:  []chat.Member{{Session: 1, UID: "u1", Role: chat.RoleMember}},
	})

	done := make(chan struct{})
	var wg, ready sync.WaitGroup // ready: every reader has done one pass
	ready.Add(readers)
	for r := range readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var once sync.Once
			defer once.Do(ready.Done) // also when a check fails early
			var lastSeq, lastRead uint64
			var lastMax chat.SessionID
			for i := 0; ; i++ {
				if i == 1 {
					once.Do(ready.Done)
				}
				if i > 1 {
					select {
					case <-done:
						return
					default:
					}
				}
				sess, err := s.Session(ctx, 1)
				if err != nil {
					t.Errorf("reader %d: Session: %v", r, err)
					return
				}
				ms, err := s.Messages(ctx, 1, 0, ^uint64(0), 0, false)
				if err != nil {
					t.Errorf("reader %d: Messages: %v", r, err)
					return
				}
				if uint64(len(ms)) < sess.LastSeq || len(ms)%perBatch != 0 {
					t.Errorf("reader %d: %d messages after seeing LastSeq %d: a batch was seen in part", r, len(ms), sess.LastSeq)
					return
				}
				for j, m := range ms {
					if m.Seq != uint64(j+1) {
						t.Errorf("reader %d: message %d has seq %d", r, j, m.Seq)
						return
					}
				}
				if sess.LastSeq < lastSeq {
					t.Errorf("reader %d: LastSeq went back from %d to %d", r, lastSeq, sess.LastSeq)
					return
				}
				lastSeq = sess.LastSeq
				page, err := s.Messages(ctx, 1, 0, ^uint64(0), 3, true)
				if err != nil || (len(page) > 0 && page[len(page)-1].Seq < uint64(len(ms))) {
					t.Errorf("reader %d: newest page %v, %v after %d messages", r, seqsOf(page), err, len(ms))
					return
				}
				m, err := s.Member(ctx, 1, "u1")
				if err != nil || m.ReadSeq < lastRead {
					t.Errorf("reader %d: Member = %+v, %v; ReadSeq before %d", r, m, err, lastRead)
					return
				}
				lastRead = m.ReadSeq
				mx, err := s.MaxSessionID(ctx)
				if err != nil || mx < lastMax {
					t.Errorf("reader %d: MaxSessionID = %d, %v; before %d", r, mx, err, lastMax)
					return
				}
				lastMax = mx
				if _, err := s.UserSessions(ctx, "a1", "u1"); err != nil {
					t.Errorf("reader %d: UserSessions: %v", r, err)
					return
				}
			}
		}()
	}

	ready.Wait()
	var b chat.Batch
	seq := uint64(0)
	for i := range batches {
		b.Reset()
		for range perBatch {
			seq++
			b.Messages = append(b.Messages, msg(1, seq, "u1", "c"+strconv.FormatUint(seq, 10)))
		}
		b.Summaries = append(b.Summaries, chat.Summary{Session: 1, Seq: seq, Preview: "p"})
		b.Reads = append(b.Reads, chat.ReadMark{Session: 1, UID: "u1", Seq: seq})
		b.Sessions = append(b.Sessions, chat.Session{ID: chat.SessionID(i + 2), App: "a1", Kind: chat.KindGroup})
		b.Members = append(b.Members, chat.Member{Session: chat.SessionID(i + 2), UID: "u1"})
		if err := s.Apply(ctx, &b); err != nil {
			t.Errorf("Apply %d: %v", i, err)
			break
		}
	}
	close(done)
	wg.Wait()
	if t.Failed() {
		return
	}
	if ss, err := s.UserSessions(ctx, "a1", "u1"); err != nil || len(ss) != batches+1 {
		t.Fatalf("UserSessions after the run: %d sessions, %v; want %d", len(ss), err, batches+1)
	}
	wantSeqs(t, s, 1, seq, seq, 0, false, seq)
}

// testLargeBatch applies 10,000 messages across several sessions in one
// batch, with CIDs, summaries and read marks.
func testLargeBatch(t *testing.T, s chat.Store) {
	ctx := context.Background()
	const (
		n        = 10_000
		sessions = 10
	)
	var b chat.Batch
	for i := range sessions {
		id := chat.SessionID(i + 1)
		b.Sessions = append(b.Sessions, chat.Session{ID: id, App: "app1", Kind: chat.KindGroup})
		b.Members = append(b.Members, chat.Member{Session: id, UID: "u1"})
	}
	for i := range n {
		id := chat.SessionID(i%sessions + 1)
		seq := uint64(i/sessions + 1)
		b.Messages = append(b.Messages, msg(id, seq, "u1", "c"+strconv.Itoa(i)))
	}
	for i := range sessions {
		id := chat.SessionID(i + 1)
		b.Summaries = append(b.Summaries, chat.Summary{Session: id, Seq: n / sessions, Preview: "last"})
		b.Reads = append(b.Reads, chat.ReadMark{Session: id, UID: "u1", Seq: n / sessions})
	}
	apply(t, s, &b)

	for i := range sessions {
		id := chat.SessionID(i + 1)
		ms, err := s.Messages(ctx, id, 0, ^uint64(0), 0, false)
		if err != nil || len(ms) != n/sessions {
			t.Fatalf("Messages(%d) = %d messages, %v; want %d", id, len(ms), err, n/sessions)
		}
		for j, m := range ms {
			want := msg(id, uint64(j+1), "u1", "c"+strconv.Itoa(j*sessions+i))
			if !sameMessage(m, want) {
				t.Fatalf("Messages(%d)[%d] = %+v, want %+v", id, j, m, want)
			}
		}
		if sess := mustSession(t, s, id); sess.LastSeq != n/sessions {
			t.Fatalf("session %d LastSeq = %d, want %d", id, sess.LastSeq, n/sessions)
		}
		if m := mustMember(t, s, id, "u1"); m.ReadSeq != n/sessions {
			t.Fatalf("member of %d ReadSeq = %d, want %d", id, m.ReadSeq, n/sessions)
		}
	}
	wantSeqs(t, s, 3, 0, ^uint64(0), 3, true, n/sessions-2, n/sessions-1, n/sessions)
	for _, i := range []int{0, 1, 4_999, n - 1} {
		wantCID(t, s, chat.SessionID(i%sessions+1), uint64(i/sessions+1), "u1", "c"+strconv.Itoa(i))
	}
}

// fixture is a store's worth of every kind of record, for RunPersistence.
type fixture struct {
	apps     []chat.App
	users    []chat.User
	tokens   []chat.Token
	sessions []chat.Session
	members  []chat.Member
	messages []chat.Message
}

func newFixture() *fixture {
	f := &fixture{
		apps: []chat.App{{ID: "app1", Name: "One", Secret: "s", CreatedAt: 1}, {ID: "app2", Name: "Two", CreatedAt: 2}},
		users: []chat.User{
			{App: "app1", UID: "u1", Nickname: "U1", Avatar: "a", Extra: []byte(`{"x":[1,2]}`), CreatedAt: 3, UpdatedAt: 4},
			{App: "app1", UID: "u2", Nickname: "U2"},
		},
		tokens: []chat.Token{
			{Hash: hash("t1"), App: "app1", UID: "u1", CreatedAt: 5, ExpiresAt: 6},
			{Hash: hash("t2"), App: "app1", UID: "u2", CreatedAt: 7, ExpiresAt: 8},
		},
		sessions: []chat.Session{
			{ID: 10, App: "app1", Kind: chat.KindPrivate, Pair: [2]string{"u1", "u2"}, CreatedAt: 9},
			{ID: 11, App: "app1", Kind: chat.KindGroup, Name: "G", Owner: "u1", CreatedAt: 10},
		},
		members: []chat.Member{
			{Session: 10, UID: "u1", Role: chat.RoleMember, JoinedAt: 9},
			{Session: 10, UID: "u2", Role: chat.RoleMember, JoinedAt: 9},
			{Session: 11, UID: "u1", Role: chat.RoleOwner, JoinedAt: 10},
		},
	}
	for seq := uint64(1); seq <= 3; seq++ {
		f.messages = append(f.messages, msg(10, seq, "u1", "c"+strconv.FormatUint(seq, 10)))
	}
	return f
}

func (f *fixture) batch() *chat.Batch {
	return &chat.Batch{
		Apps: f.apps, Users: f.users, Tokens: f.tokens, Sessions: f.sessions, Members: f.members,
		Messages:  f.messages,
		Summaries: []chat.Summary{{Session: 10, Seq: 3, At: 30, From: "u1", Type: "text", Preview: "m3"}},
		Reads:     []chat.ReadMark{{Session: 10, UID: "u2", Seq: 2}},
	}
}

// verify checks every record of the fixture through every getter.
func (f *fixture) verify(t *testing.T, s chat.Store) {
	t.Helper()
	ctx := context.Background()
	apps, err := s.Apps(ctx)
	if err != nil || len(apps) != len(f.apps) {
		t.Fatalf("Apps = %v, %v", apps, err)
	}
	for _, a := range f.apps {
		got, err := s.App(ctx, a.ID)
		if err != nil {
			t.Fatalf("App(%s): %v", a.ID, err)
		}
		equal(t, "App", got, a)
	}
	for _, u := range f.users {
		got, err := s.User(ctx, u.App, u.UID)
		if err != nil || !sameUser(got, u) {
			t.Fatalf("User(%s) = %+v, %v; want %+v", u.UID, got, err, u)
		}
	}
	for _, tk := range f.tokens {
		got, err := s.Token(ctx, tk.Hash)
		if err != nil {
			t.Fatalf("Token: %v", err)
		}
		equal(t, "Token", got, tk)
	}
	for _, want := range f.sessions {
		if want.ID == 10 {
			want.LastSeq, want.LastAt, want.LastFrom, want.LastType, want.LastPreview = 3, 30, "u1", "text", "m3"
		}
		equal(t, "Session", mustSession(t, s, want.ID), want)
	}
	if id, err := s.PrivateSession(ctx, "app1", "u2", "u1"); err != nil || id != 10 {
		t.Fatalf("PrivateSession = %d, %v; want 10", id, err)
	}
	for _, want := range f.members {
		if want.Session == 10 && want.UID == "u2" {
			want.ReadSeq = 2
		}
		equal(t, "Member", mustMember(t, s, want.Session, want.UID), want)
	}
	if ms, err := s.Members(ctx, 10); err != nil || len(ms) != 2 {
		t.Fatalf("Members(10) = %v, %v; want 2 members", ms, err)
	}
	if ss, err := s.UserSessions(ctx, "app1", "u1"); err != nil || !slices.Equal(ss, []chat.SessionID{10, 11}) {
		t.Fatalf("UserSessions = %v, %v; want [10 11]", ss, err)
	}
	got, err := s.Messages(ctx, 10, 0, ^uint64(0), 0, false)
	if err != nil || len(got) != len(f.messages) {
		t.Fatalf("Messages = %d, %v; want %d", len(got), err, len(f.messages))
	}
	for i := range got {
		if !sameMessage(got[i], f.messages[i]) {
			t.Fatalf("Messages[%d] = %+v, want %+v", i, got[i], f.messages[i])
		}
	}
	if id, err := s.MaxSessionID(ctx); err != nil || id != 11 {
		t.Fatalf("MaxSessionID = %d, %v; want 11", id, err)
	}
}

// testPruneMessages: PruneMessages deletes only the given app's messages
// older than the cutoff, oldest first, at most max per call, resuming
// from the session it returns; sessions keep LastSeq and summary, later
// seqs stay where they were, and a message not older stops the session's
// scan even if an older one follows.
func testPruneMessages(t *testing.T, s chat.Store) {
	ctx := context.Background()
	b := &chat.Batch{}
	for _, id := range []chat.SessionID{1, 2, 3} {
		app := "app1"
		if id == 2 {
			app = "app2"
		}
		b.Sessions = append(b.Sessions, chat.Session{ID: id, App: app, Kind: chat.KindGroup, Name: "g"})
		for seq := uint64(1); seq <= 5; seq++ {
			m := msg(id, seq, "u1", "")
			m.App = app
			m.CreatedAt = int64(seq) * 100 // seqs 1..5 at 100..500
			b.Messages = append(b.Messages, m)
		}
		b.Summaries = append(b.Summaries, chat.Summary{Session: id, Seq: 5, At: 500, From: "u1", Type: "text", Preview: "m5"})
	}
	// Session 3's seq 5 is out of time order: older than the cutoff, but
	// after a newer message (seq 4), so it stays.
	b.Messages[14].CreatedAt = 50
	apply(t, s, b)

	total, from, calls := 0, chat.SessionID(0), 0
	for {
		n, next, err := s.PruneMessages(ctx, "app1", 350, from, 2)
		if err != nil {
			t.Fatal(err)
		}
		if n > 2 {
			t.Fatalf("PruneMessages deleted %d with max 2", n)
		}
		total += n
		calls++
		if next == 0 {
			break
		}
		if next < from || calls > 10 {
			t.Fatalf("PruneMessages resumes at %d after %d", next, from)
		}
		from = next
	}
	if total != 6 {
		t.Fatalf("pruned %d messages, want 6 (seqs 1-3 of sessions 1 and 3)", total)
	}
	wantSeqs(t, s, 1, 0, ^uint64(0), 0, false, 4, 5)
	wantSeqs(t, s, 2, 0, ^uint64(0), 0, false, 1, 2, 3, 4, 5)
	wantSeqs(t, s, 3, 0, ^uint64(0), 0, false, 4, 5)
	for _, id := range []chat.SessionID{1, 3} {
		if sess := mustSession(t, s, id); sess.LastSeq != 5 || sess.LastPreview != "m5" {
			t.Fatalf("session %d after pruning: %+v; want LastSeq 5 and its summary kept", id, sess)
		}
	}
	// A second pass finds nothing more.
	if n, next, err := s.PruneMessages(ctx, "app1", 350, 0, 0); err != nil || n != 0 || next != 0 {
		t.Fatalf("second pass: %d, %d, %v", n, next, err)
	}
}

// testUsersListAndDelete: Users pages through one app's users, each once,
// in the same order on every call; DelUsers removes a user.
func testUsersListAndDelete(t *testing.T, s chat.Store) {
	ctx := context.Background()
	var us []chat.User
	for _, uid := range []string{"u10", "u2", "bob", "a", "李雷", "zz"} {
		us = append(us, chat.User{App: "a1", UID: uid, Nickname: uid, CreatedAt: 1, UpdatedAt: 1})
	}
	us = append(us, chat.User{App: "a10", UID: "x", Nickname: "x"}, chat.User{App: "a", UID: "y", Nickname: "y"})
	apply(t, s, &chat.Batch{Users: us})
	page := func(after string, limit int) []string {
		t.Helper()
		got, err := s.Users(ctx, "a1", after, limit)
		if err != nil {
			t.Fatalf("Users: %v", err)
		}
		var out []string
		for _, u := range got {
			if u.App != "a1" {
				t.Fatalf("Users of a1 listed %+v", u)
			}
			out = append(out, u.UID)
		}
		return out
	}
	all := page("", 0)
	if len(all) != 6 {
		t.Fatalf("Users(a1) = %v, want 6 users", all)
	}
	var paged []string
	for after := ""; ; {
		p := page(after, 4)
		paged = append(paged, p...)
		if len(p) < 4 {
			break
		}
		after = p[len(p)-1]
	}
	if strings.Join(paged, ",") != strings.Join(all, ",") {
		t.Fatalf("pages of 4 gave %v, the whole list is %v", paged, all)
	}
	apply(t, s, &chat.Batch{DelUsers: []chat.UserKey{{App: "a1", UID: "bob"}, {App: "a1", UID: "missing"}}})
	_, err := s.User(ctx, "a1", "bob")
	wantNotFound(t, "deleted User", err)
	if got := page("", 0); len(got) != 5 {
		t.Fatalf("after delete Users(a1) = %v", got)
	}
}
