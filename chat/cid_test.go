package chat_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"chatd/chat"
	"chatd/chat/memstore"
)

// cidFixture is a store with app "shop", users a, b and m0…m7, a private
// session 1 (a, b) and a group 2 with all of them; and a clock the test
// moves.
type cidFixture struct {
	t     *testing.T
	st    chat.Store
	clock atomic.Int64 // unix ms
	core  *chat.Core
	stop  func()
}

func newCIDFixture(t *testing.T, st chat.Store) *cidFixture {
	t.Helper()
	f := &cidFixture{t: t, st: st}
	f.clock.Store(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC).UnixMilli())
	uids := []string{"a", "b"}
	for i := range 8 {
		uids = append(uids, fmt.Sprintf("m%d", i))
	}
	b := chat.Batch{
		Apps: []chat.App{{ID: "shop", Secret: "s"}},
		Sessions: []chat.Session{{ID: 1, App: "shop", Kind: chat.KindPrivate, Pair: [2]string{"a", "b"}},
			{ID: 2, App: "shop", Kind: chat.KindGroup}},
		Members: []chat.Member{{Session: 1, UID: "a", Role: chat.RoleMember}, {Session: 1, UID: "b", Role: chat.RoleMember}},
	}
	for _, u := range uids {
		b.Users = append(b.Users, chat.User{App: "shop", UID: u})
		b.Members = append(b.Members, chat.Member{Session: 2, UID: u, Role: chat.RoleMember})
	}
	if err := st.Apply(context.Background(), &b); err != nil {
		t.Fatal(err)
	}
	f.start()
	t.Cleanup(func() { f.stop() })
	return f
}

// start runs a core on the store (the old one must be stopped): a restart.
func (f *cidFixture) start() {
	f.core, f.stop = startCoreWith(f.t, chat.Config{Now: func() time.Time { return time.UnixMilli(f.clock.Load()) }}, f.st)
}

func (f *cidFixture) restart() {
	f.stop()
	f.start()
}

func (f *cidFixture) send(from string, sid chat.SessionID, cid string) chat.SendResult {
	f.t.Helper()
	r, err := f.core.Send(context.Background(), "shop", chat.SendInput{From: from, Session: sid, Type: "text",
		Content: json.RawMessage(`{"text":"x"}`), CID: cid})
	if err != nil {
		f.t.Fatalf("send %s/%d/%q: %v", from, sid, cid, err)
	}
	return r
}

// copies counts the stored messages of sid that from sent with cid.
func (f *cidFixture) copies(sid chat.SessionID, from, cid string) int {
	f.t.Helper()
	ms, err := f.st.Messages(context.Background(), sid, 1, ^uint64(0), 0, false)
	if err != nil {
		f.t.Fatal(err)
	}
	n := 0
	for _, m := range ms {
		if m.From == from && m.CID == cid {
			n++
		}
	}
	return n
}

// crowd has the eight other members send n messages each into the group,
// concurrently (so they share group commits), most with a cid.
func (f *cidFixture) crowd(n int) {
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			from := fmt.Sprintf("m%d", i)
			for k := range n {
				cid := ""
				if k%5 != 0 {
					cid = fmt.Sprintf("%s-%d", from, k)
				}
				f.send(from, 2, cid)
			}
		}()
	}
	wg.Wait()
}

func (f *cidFixture) wantDup(what string, r, orig chat.SendResult) {
	f.t.Helper()
	if !r.Duplicate || r.Session != orig.Session || r.Seq != orig.Seq || r.CreatedAt != orig.CreatedAt || r.MsgID != orig.MsgID {
		f.t.Fatalf("%s: %+v, want the original %+v", what, r, orig)
	}
}

// A retry is recognised whatever the other members send meanwhile: the
// check counts the sender's own messages, not the session's. The crash
// test found a retry stored twice once a busy group had moved 512
// messages on.
func TestCIDRetryInABusyGroup(t *testing.T) {
	f := newCIDFixture(t, memstore.New())
	orig := f.send("a", 2, "k")
	f.crowd(600) // 4,800 messages from the others
	for i := range 100 {
		f.send("a", 2, fmt.Sprintf("own-%d", i))
	}
	f.wantDup("retry after 4,800 others' messages", f.send("a", 2, "k"), orig)
	f.restart()
	f.wantDup("the same after a restart", f.send("a", 2, "k"), orig)
	if n := f.copies(2, "a", "k"); n != 1 {
		t.Fatalf("%d copies of a's cid k stored, want 1", n)
	}

	// The guarantee's edge: the original as the sender's 512th newest
	// message with a cid is recognised, in memory and rebuilt from the
	// store through the crowd's messages; the 513th is not promised, and
	// a rebuild does not look for it.
	for i := 100; i < 511; i++ {
		f.send("a", 2, fmt.Sprintf("own-%d", i))
		if i%100 == 0 {
			f.crowd(20)
		}
	}
	f.send("a", 2, "") // without a cid: not counted
	f.wantDup("as the 512th newest", f.send("a", 2, "k"), orig)
	f.restart()
	f.wantDup("as the 512th newest, after a restart", f.send("a", 2, "k"), orig)
	f.send("a", 2, "own-511")
	f.restart()
	if r := f.send("a", 2, "k"); r.Duplicate {
		t.Fatalf("as the 513th newest, after a restart: %+v, want a new message", r)
	}
	// The other members' retries are answered from their own lists.
	if r := f.send("m3", 2, "m3-599"); !r.Duplicate {
		t.Fatalf("m3's newest cid, retried: %+v, want a duplicate", r)
	}
	if r := f.send("m3", 2, "m3-599"); !r.Duplicate || f.copies(2, "m3", "m3-599") != 1 {
		t.Fatalf("m3's retry: %+v, %d copies", r, f.copies(2, "m3", "m3-599"))
	}
}

// A cid is scoped to its sender and session.
func TestCIDScope(t *testing.T) {
	f := newCIDFixture(t, memstore.New())
	orig := f.send("a", 1, "k")
	for _, tc := range []struct {
		name    string
		from    string
		session chat.SessionID
		dup     bool
	}{
		{name: "retry", from: "a", session: 1, dup: true},
		{name: "same cid, other session", from: "a", session: 2},
		{name: "same cid, other sender", from: "b", session: 1},
	} {
		r := f.send(tc.from, tc.session, "k")
		if r.Duplicate != tc.dup {
			t.Fatalf("%s: duplicate = %v, want %v", tc.name, r.Duplicate, tc.dup)
		}
		if tc.dup {
			f.wantDup(tc.name, r, orig)
		}
	}
}

// countingStore counts the messages Messages returns.
type countingStore struct {
	chat.Store
	read atomic.Int64
}

func (s *countingStore) Messages(ctx context.Context, id chat.SessionID, lo, hi uint64, limit int, newest bool) ([]chat.Message, error) {
	ms, err := s.Store.Messages(ctx, id, lo, hi, limit, newest)
	s.read.Add(int64(len(ms)))
	return ms, err
}

// An original up to 24 h old is recognised after a restart; a rebuild
// reads no further back than that, so its work is bounded by a day of the
// session's messages however long the session's history.
func TestCIDRebuildIsBoundedByAge(t *testing.T) {
	st := &countingStore{Store: memstore.New()}
	f := newCIDFixture(t, st)
	old := f.send("a", 2, "old")
	f.crowd(400) // 3,200 messages, all older than a day by the end
	f.clock.Add((24*time.Hour - time.Minute).Milliseconds())
	young := f.send("a", 2, "young")
	for range 50 {
		f.send("b", 2, "")
	}
	f.restart()
	f.wantDup("a day less a minute later, after a restart", f.send("a", 2, "young"), young)
	f.clock.Add((2 * time.Minute).Milliseconds())
	f.restart()
	st.read.Store(0)
	r := f.send("a", 2, "old")
	if r.Duplicate {
		t.Fatalf("original a day and more old, after a restart: %+v (original %+v), want a new message", r, old)
	}
	// The rebuild read one page (the 52 young messages and the older
	// ones that share their page), not the whole day-old crowd.
	if n := st.read.Load(); n > 1024+8 {
		t.Fatalf("the rebuild read %d of the 3,253 stored messages; want one page of 1,024", n)
	}
	if n := f.copies(2, "a", "old"); n != 2 {
		t.Fatalf("%d copies of the day-old cid, want 2 (the original and the new one)", n)
	}
}
