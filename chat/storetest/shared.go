package storetest

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"chatd/chat"
)

// RunShared runs the suite of chat.SharedStore: the guarantees several
// nodes writing one store rely on. open returns two handles on one new,
// empty store, as two nodes would hold (the same value twice is fine for
// an in-process store); RunShared closes them.
func RunShared(t *testing.T, open func(t *testing.T) (a, b chat.SharedStore)) {
	tests := []struct {
		name string
		fn   func(t *testing.T, a, b chat.SharedStore)
	}{
		{name: "LastSeq", fn: testSharedLastSeq},
		{name: "ConcurrentAppendsGapless", fn: testSharedConcurrentAppends},
		{name: "BuildErrorWritesNothing", fn: testSharedBuildError},
		{name: "AppendedSince", fn: testSharedAppendedSince},
		{name: "SessionIDs", fn: testSharedSessionIDs},
		{name: "Lease", fn: testSharedLease},
		{name: "Fence", fn: testSharedFence},
		{name: "Blobs", fn: testSharedBlobs},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, b := open(t)
			t.Cleanup(func() {
				if err := a.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
				if any(b) != any(a) {
					if err := b.Close(); err != nil {
						t.Errorf("Close: %v", err)
					}
				}
			})
			tc.fn(t, a, b)
		})
	}
}

func sharedSessions(t *testing.T, s chat.Store, ids ...chat.SessionID) {
	t.Helper()
	b := &chat.Batch{Apps: []chat.App{{ID: "app1", Name: "A", Secret: "s"}}}
	for _, id := range ids {
		b.Sessions = append(b.Sessions, chat.Session{ID: id, App: "app1", Kind: chat.KindGroup, Name: "g" + strconv.Itoa(int(id))})
	}
	apply(t, s, b)
}

// appendOne appends one message to each of sessions under the lock, as a
// journal does, and returns the seqs it got.
func appendOne(ctx context.Context, s chat.SharedStore, from string, sessions ...chat.SessionID) (map[chat.SessionID]uint64, error) {
	got := map[chat.SessionID]uint64{}
	b := &chat.Batch{}
	err := s.ApplyLocked(ctx, sessions, b, func(last map[chat.SessionID]uint64) error {
		for _, id := range sessions {
			m := msg(id, last[id]+1, from, from+"-"+strconv.FormatUint(last[id]+1, 10))
			b.Messages = append(b.Messages, m)
			b.Summaries = append(b.Summaries, chat.Summary{Session: id, Seq: m.Seq, At: m.CreatedAt, From: from, Type: m.Type})
			got[id] = m.Seq
		}
		return nil
	})
	return got, err
}

func testSharedLastSeq(t *testing.T, a, _ chat.SharedStore) {
	ctx := context.Background()
	sharedSessions(t, a, 1, 2)
	apply(t, a, &chat.Batch{Messages: []chat.Message{msg(1, 1, "u", ""), msg(1, 2, "u", ""), msg(1, 3, "u", "")},
		Summaries: []chat.Summary{{Session: 1, Seq: 3, From: "u", Type: "text"}}})
	err := a.ApplyLocked(ctx, []chat.SessionID{1, 2, 9}, &chat.Batch{}, func(last map[chat.SessionID]uint64) error {
		equal(t, "last seq of a session with 3 messages", last[1], uint64(3))
		equal(t, "last seq of an empty session", last[2], uint64(0))
		equal(t, "last seq of an unknown session", last[9], uint64(0))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func testSharedConcurrentAppends(t *testing.T, a, b chat.SharedStore) {
	ctx := context.Background()
	sharedSessions(t, a, 1, 2)
	const writers, each = 8, 25
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			s := a
			if w%2 == 1 {
				s = b // the other node
			}
			from := "w" + strconv.Itoa(w)
			for i := 0; i < each; i++ {
				sessions := []chat.SessionID{1}
				if i%3 == 0 {
					sessions = []chat.SessionID{1, 2} // two locks, taken in order
				}
				if _, err := appendOne(ctx, s, from, sessions...); err != nil {
					errs <- err
					return
				}
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for _, c := range []struct {
		id chat.SessionID
		n  int
	}{{1, writers * each}, {2, writers * ((each + 2) / 3)}} {
		ms, err := b.Messages(ctx, c.id, 1, ^uint64(0), 0, false)
		if err != nil {
			t.Fatal(err)
		}
		want := make([]uint64, c.n)
		for i := range want {
			want[i] = uint64(i + 1)
		}
		if got := seqsOf(ms); !slices.Equal(got, want) {
			t.Fatalf("session %d: seqs %v, want 1..%d each once", c.id, got, c.n)
		}
		equal(t, "summary LastSeq", mustSession(t, a, c.id).LastSeq, uint64(c.n))
	}
}

func testSharedBuildError(t *testing.T, a, _ chat.SharedStore) {
	ctx := context.Background()
	sharedSessions(t, a, 1)
	boom := errors.New("build failed")
	b := &chat.Batch{}
	err := a.ApplyLocked(ctx, []chat.SessionID{1}, b, func(last map[chat.SessionID]uint64) error {
		b.Messages = append(b.Messages, msg(1, last[1]+1, "u", ""))
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("ApplyLocked = %v, want the build's error", err)
	}
	wantSeqs(t, a, 1, 1, ^uint64(0), 0, false)
	// The lock was released: the next append goes through.
	if got, err := appendOne(ctx, a, "u", 1); err != nil || got[1] != 1 {
		t.Fatalf("append after a failed build: %v, %v", got, err)
	}
}

func testSharedSessionIDs(t *testing.T, a, b chat.SharedStore) {
	ctx := context.Background()
	sharedSessions(t, a, 5) // written before: ids continue above it
	var mu sync.Mutex
	seen := map[chat.SessionID]bool{}
	var wg sync.WaitGroup
	for w := 0; w < 6; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			s := a
			if w%2 == 1 {
				s = b
			}
			for i := 0; i < 10; i++ {
				first, err := s.ReserveSessionIDs(ctx, 4)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				for id := first; id < first+4; id++ {
					if id <= 5 || seen[id] {
						t.Errorf("session id %d reserved twice or not above the stored ones", id)
					}
					seen[id] = true
				}
				mu.Unlock()
			}
		}(w)
	}
	wg.Wait()
	var top chat.SessionID
	for id := range seen {
		top = max(top, id)
	}
	ok, next, err := b.ClaimSessionID(ctx, top)
	if err != nil || ok || next != top+1 {
		t.Fatalf("ClaimSessionID(%d) of a reserved id = %v, %d, %v; want refused, next %d", top, ok, next, err, top+1)
	}
	ok, _, err = a.ClaimSessionID(ctx, top+100)
	if err != nil || !ok {
		t.Fatalf("ClaimSessionID(%d) = %v, %v; want taken", top+100, ok, err)
	}
	first, err := b.ReserveSessionIDs(ctx, 1)
	if err != nil || first != top+101 {
		t.Fatalf("ReserveSessionIDs after a claim = %d, %v; want %d", first, err, top+101)
	}
}

// testSharedLease: one holder at a time; the holder renews; an expired
// lease goes to the next taker; a released one is free at once.
func testSharedLease(t *testing.T, a, b chat.SharedStore) {
	ctx := context.Background()
	const ttl = 300 * time.Millisecond
	try := func(s chat.SharedStore, holder string, d time.Duration) bool {
		t.Helper()
		ok, err := s.TryLease(ctx, "work", holder, d)
		if err != nil {
			t.Fatalf("TryLease(%s): %v", holder, err)
		}
		return ok
	}
	// waitFor polls until holder takes the lease (it expires: ttl).
	waitFor := func(s chat.SharedStore, holder string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !try(s, holder, time.Minute) {
			if time.Now().After(deadline) {
				t.Fatalf("%s never got the lease after it expired", holder)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	lease := func(s chat.SharedStore) chat.LeaseInfo {
		t.Helper()
		l, err := s.Lease(ctx, "work")
		if err != nil {
			t.Fatalf("Lease: %v", err)
		}
		return l
	}
	if l := lease(b); l.Holder != "" || l.Live() {
		t.Fatalf("Lease of a lease never taken = %+v; want free", l)
	}
	if !try(a, "node-a", time.Minute) {
		t.Fatal("a free lease was refused")
	}
	if l := lease(b); l.Holder != "node-a" || !l.Live() || l.Left > time.Minute || l.Left < 30*time.Second {
		t.Fatalf("Lease read by the other node = %+v; want node-a's, about a minute left", l)
	}
	if try(b, "node-b", time.Minute) {
		t.Fatal("node-b took node-a's live lease")
	}
	if !try(a, "node-a", ttl) {
		t.Fatal("the holder's renewal was refused")
	}
	if ok, err := b.TryLease(ctx, "other", "node-b", time.Minute); err != nil || !ok {
		t.Fatalf("another lease name = %v, %v; want taken (leases are independent)", ok, err)
	}
	// The renewal shortened it to ttl: once that passes it reads as
	// expired, still naming its holder, and node-b gets it.
	for l := lease(b); l.Live(); l = lease(b) {
		time.Sleep(20 * time.Millisecond)
	}
	if l := lease(b); l.Holder != "node-a" || l.Left > 0 {
		t.Fatalf("Lease after it ran out = %+v; want node-a's, expired", l)
	}
	waitFor(b, "node-b")
	if try(a, "node-a", time.Minute) {
		t.Fatal("node-a took the lease back from node-b")
	}
	// Releasing someone else's lease does nothing; the holder's frees it.
	if err := a.ReleaseLease(ctx, "work", "node-a"); err != nil {
		t.Fatal(err)
	}
	if try(a, "node-a", time.Minute) {
		t.Fatal("a non-holder's release freed the lease")
	}
	if err := b.ReleaseLease(ctx, "work", "node-b"); err != nil {
		t.Fatal(err)
	}
	if l := lease(a); l.Holder != "" || l.Live() {
		t.Fatalf("Lease after a release = %+v; want free", l)
	}
	if !try(a, "node-a", ttl) {
		t.Fatal("a released lease was refused")
	}
	// Renewals keep it: node-a renews for longer than ttl in all, and
	// node-b is refused throughout, as long as each renewal comes before
	// the lease's end (the renewal's answer bounds when it was made).
	start := time.Now()
	for time.Since(start) < 2*ttl {
		before := time.Now()
		if !try(a, "node-a", ttl) {
			t.Fatal("the holder's renewal was refused")
		}
		if ok := try(b, "node-b", ttl); ok && time.Since(before) < ttl/2 {
			t.Fatal("node-b took a lease renewed moments ago")
		} else if ok {
			t.Skip("too slow to check renewals (a renewal took ttl/2)")
		}
		time.Sleep(ttl / 5)
	}
}

// ApplyLockedSince hands build the messages with a CID appended above
// since, per session, and nothing for sessions not in since.
func testSharedAppendedSince(t *testing.T, a, b chat.SharedStore) {
	ctx := context.Background()
	sharedSessions(t, a, 1, 2, 3)
	apply(t, a, &chat.Batch{Messages: []chat.Message{msg(1, 1, "u", "c1"), msg(1, 2, "v", ""), msg(1, 3, "v", "c3"),
		msg(2, 1, "u", "d1"), msg(3, 1, "u", "e1")}})
	var got []string
	err := b.ApplyLockedSince(ctx, []chat.SessionID{1, 2, 3}, map[chat.SessionID]uint64{1: 1, 2: 0}, &chat.Batch{},
		func(last map[chat.SessionID]uint64, appended []chat.Message) error {
			equal(t, "last seq of session 1", last[1], uint64(3))
			for _, m := range appended {
				got = append(got, strconv.Itoa(int(m.Session))+"/"+strconv.FormatUint(m.Seq, 10)+"/"+m.From+"/"+m.CID)
			}
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	equal(t, "appended since", strings.Join(got, " "), "1/3/v/c3 2/1/u/d1")
}

// A fenced batch (Batch.Fence) commits while its holder holds the lease,
// through Apply and ApplyLocked, and is refused with ErrFenced, writing
// nothing, when the lease is another holder's, released or expired.
func testSharedFence(t *testing.T, a, b chat.SharedStore) {
	ctx := context.Background()
	sharedSessions(t, a, 1)
	mine := &chat.Fence{Lease: "owner", Holder: "node-a/1"}
	rec := func(key string) *chat.Batch {
		return &chat.Batch{Records: []chat.Record{{Kind: "test.fence", Key: []byte(key), Value: []byte("v")}}, Fence: mine}
	}
	stored := func(key string) bool {
		t.Helper()
		_, err := b.Record(ctx, "test.fence", []byte(key))
		if err != nil && !errors.Is(err, chat.ErrNotFound) {
			t.Fatal(err)
		}
		return err == nil
	}
	refused := func(what string, err error, key string) {
		t.Helper()
		if !errors.Is(err, chat.ErrFenced) {
			t.Fatalf("%s: err %v, want ErrFenced", what, err)
		}
		if stored(key) {
			t.Fatalf("%s: refused, yet its record was written", what)
		}
	}
	refused("a fence on a lease never taken", a.Apply(ctx, rec("k0")), "k0")
	if ok, err := a.TryLease(ctx, "owner", "node-a/1", time.Minute); err != nil || !ok {
		t.Fatalf("TryLease = %v, %v", ok, err)
	}
	if err := a.Apply(ctx, rec("k1")); err != nil || !stored("k1") {
		t.Fatalf("Apply fenced by the holder: %v (stored %v)", err, stored("k1"))
	}
	locked := rec("k2")
	err := a.ApplyLocked(ctx, []chat.SessionID{1}, locked, func(last map[chat.SessionID]uint64) error {
		locked.Messages = []chat.Message{msg(1, last[1]+1, "u", "")}
		return nil
	})
	if err != nil || !stored("k2") {
		t.Fatalf("ApplyLocked fenced by the holder: %v (stored %v)", err, stored("k2"))
	}
	other := rec("k3")
	other.Fence = &chat.Fence{Lease: "owner", Holder: "node-b/2"}
	refused("a fence naming another holder", b.Apply(ctx, other), "k3")
	if err := a.ReleaseLease(ctx, "owner", "node-a/1"); err != nil {
		t.Fatal(err)
	}
	refused("a fence on a released lease", a.Apply(ctx, rec("k4")), "k4")
	if ok, err := a.TryLease(ctx, "owner", "node-a/1", 50*time.Millisecond); err != nil || !ok {
		t.Fatalf("TryLease = %v, %v", ok, err)
	}
	time.Sleep(100 * time.Millisecond)
	refused("a fence on an expired lease", a.Apply(ctx, rec("k5")), "k5")
	late := rec("k6")
	err = a.ApplyLocked(ctx, []chat.SessionID{1}, late, func(last map[chat.SessionID]uint64) error {
		late.Messages = []chat.Message{msg(1, last[1]+1, "u", "")}
		return nil
	})
	refused("ApplyLocked fenced on an expired lease", err, "k6")
	ms, err := b.Messages(ctx, 1, 1, ^uint64(0), 10, false)
	if err != nil {
		t.Fatal(err)
	}
	equal(t, "messages of session 1 (the refused commit's message not stored)", len(ms), 1)
}
