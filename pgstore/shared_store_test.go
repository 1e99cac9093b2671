package pgstore_test

import (
	"context"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"chatd/chat"
	"chatd/internal/testpg"
	"chatd/pgstore"
)

func text(id chat.SessionID, seq uint64, from string) chat.Message {
	return chat.Message{Session: id, Seq: seq, App: "app1", From: from, Type: "text",
		Content: []byte(`{"text":"m` + strconv.FormatUint(seq, 10) + `"}`), CreatedAt: 1_766_000_000_000 + int64(seq)}
}

func sqlConn(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	c, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

func counter(t *testing.T, c *pgx.Conn, id chat.SessionID) uint64 {
	t.Helper()
	var n int64
	if err := c.QueryRow(context.Background(), `SELECT last_seq FROM session_seqs WHERE session_id = $1`, int64(id)).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return uint64(n)
}

func storedSeqs(t *testing.T, s chat.Store, id chat.SessionID) []uint64 {
	t.Helper()
	ms, err := s.Messages(context.Background(), id, 1, ^uint64(0), 0, false)
	if err != nil {
		t.Fatal(err)
	}
	var out []uint64
	for _, m := range ms {
		out = append(out, m.Seq)
	}
	return out
}

// appendTo appends one message from `from` to session id under the lock
// and returns the last seq build was given.
func appendTo(t *testing.T, s *pgstore.Store, id chat.SessionID, from string) uint64 {
	t.Helper()
	var got uint64
	b := &chat.Batch{}
	err := s.ApplyLocked(context.Background(), []chat.SessionID{id}, b, func(last map[chat.SessionID]uint64) error {
		got = last[id]
		b.Messages = append(b.Messages, text(id, got+1, from))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// TestApplyLockedLastSeq: a database a single node wrote (Apply, no
// counter) and then a cluster writes: the last seq is the greatest of
// the counter, the summary and the messages, whichever is ahead; the
// counter follows.
func TestApplyLockedLastSeq(t *testing.T) {
	ctx := context.Background()
	dsn := testpg.DSN(t)
	s := openShared(t, dsn, 1)[0]
	defer s.Close()
	db := sqlConn(t, dsn)
	// 1: messages 1..5, summary at 3. 2: summary at 9, its messages
	// pruned. 3: messages 1..2, no session row. 4: counter at 12 only.
	b := &chat.Batch{Sessions: []chat.Session{
		{ID: 1, App: "app1", Kind: chat.KindGroup, LastSeq: 3},
		{ID: 2, App: "app1", Kind: chat.KindGroup, LastSeq: 9},
	}}
	for seq := uint64(1); seq <= 5; seq++ {
		b.Messages = append(b.Messages, text(1, seq, "u"))
	}
	b.Messages = append(b.Messages, text(3, 1, "u"), text(3, 2, "u"))
	if err := s.Apply(ctx, b); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(ctx, `INSERT INTO session_seqs VALUES (4, 12)`); err != nil {
		t.Fatal(err)
	}
	want := map[chat.SessionID]uint64{1: 5, 2: 9, 3: 2, 4: 12, 5: 0}
	ids := []chat.SessionID{1, 2, 3, 4, 5}
	b = &chat.Batch{}
	err := s.ApplyLocked(ctx, ids, b, func(last map[chat.SessionID]uint64) error {
		for _, id := range ids {
			if last[id] != want[id] {
				t.Errorf("session %d: last seq %d, want %d", id, last[id], want[id])
			}
		}
		b.Messages = append(b.Messages, text(1, 6, "c"), text(1, 7, "c"))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want[1] = 7
	for _, id := range ids {
		if got := counter(t, db, id); got != want[id] {
			t.Errorf("session %d: counter %d after the commit, want %d", id, got, want[id])
		}
	}
	if got := storedSeqs(t, s, 1); !slices.Equal(got, []uint64{1, 2, 3, 4, 5, 6, 7}) {
		t.Fatalf("session 1 seqs %v", got)
	}
}

// TestApplyLockedWithoutMessages: a batch with no messages (every send a
// duplicate, or only other writes) commits what it has, or nothing, and
// releases the locks; no sessions at all is Apply.
func TestApplyLockedWithoutMessages(t *testing.T) {
	ctx := context.Background()
	dsn := testpg.DSN(t)
	s := openShared(t, dsn, 1)[0]
	defer s.Close()
	for _, tc := range []struct {
		name     string
		sessions []chat.SessionID
		fill     func(b *chat.Batch)
	}{
		{name: "nothing", sessions: []chat.SessionID{1}, fill: func(*chat.Batch) {}},
		{name: "a session put", sessions: []chat.SessionID{1}, fill: func(b *chat.Batch) {
			b.Sessions = append(b.Sessions, chat.Session{ID: 1, App: "app1", Kind: chat.KindGroup, Name: "renamed"})
		}},
		{name: "no sessions", fill: func(b *chat.Batch) {
			b.Apps = append(b.Apps, chat.App{ID: "app1", Name: "A"})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := &chat.Batch{}
			called := false
			err := s.ApplyLocked(ctx, tc.sessions, b, func(last map[chat.SessionID]uint64) error {
				called = true
				tc.fill(b)
				return nil
			})
			if err != nil || !called {
				t.Fatalf("ApplyLocked = %v (build called: %v)", err, called)
			}
		})
	}
	if x, err := s.Session(ctx, 1); err != nil || x.Name != "renamed" {
		t.Fatalf("session 1 = %+v, %v; want renamed", x, err)
	}
	if _, err := s.App(ctx, "app1"); err != nil {
		t.Fatal(err)
	}
	if got := appendTo(t, s, 1, "u"); got != 0 {
		t.Fatalf("last seq %d after batches without messages, want 0", got)
	}
}

// TestApplyLockedConnectionDies: a node whose connection dies while it
// holds the locks (killed, or cut off) leaves nothing of its batch, and
// the node waiting for the same session goes on as soon as PostgreSQL
// has ended that connection.
func TestApplyLockedConnectionDies(t *testing.T) {
	ctx := context.Background()
	dsn := testpg.DSN(t)
	nodes := openShared(t, dsn, 2)
	a, b := nodes[0], nodes[1]
	defer a.Close()
	defer b.Close()
	db := sqlConn(t, dsn)
	appendTo(t, a, 1, "a") // seq 1

	waited := make(chan uint64, 1)
	batch := &chat.Batch{}
	err := a.ApplyLocked(ctx, []chat.SessionID{1}, batch, func(last map[chat.SessionID]uint64) error {
		batch.Messages = append(batch.Messages, text(1, last[1]+1, "a"))
		// b asks for the session and waits for a's lock.
		go func() {
			var got uint64
			bb := &chat.Batch{}
			err := b.ApplyLocked(ctx, []chat.SessionID{1}, bb, func(last map[chat.SessionID]uint64) error {
				got = last[1]
				bb.Messages = append(bb.Messages, text(1, got+1, "b"))
				return nil
			})
			if err != nil {
				t.Error(err)
			}
			waited <- got
		}()
		waitFor(t, db, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`)
		// a's connection, idle in its transaction while build runs, dies.
		var pid int32
		err := db.QueryRow(ctx, `SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND state = 'idle in transaction'`).Scan(&pid)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec(ctx, `SELECT pg_terminate_backend($1)`, pid); err != nil {
			t.Fatal(err)
		}
		if got := <-waited; got != 1 {
			t.Errorf("b appended after seq %d, want 1: a's uncommitted seq 2 leaked", got)
		}
		return nil
	})
	if err == nil {
		t.Fatal("ApplyLocked on a terminated connection succeeded")
	}
	t.Logf("a's ApplyLocked: %v", err)
	ms, err := b.Messages(ctx, 1, 1, ^uint64(0), 0, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 2 || ms[1].Seq != 2 || ms[1].From != "b" || counter(t, db, 1) != 2 {
		t.Fatalf("messages %+v, counter %d; want seq 1 from a, seq 2 from b, counter 2", ms, counter(t, db, 1))
	}
	// a's pool replaced the connection: it appends again.
	if got := appendTo(t, a, 1, "a"); got != 2 {
		t.Fatalf("a's next append after seq %d, want 2", got)
	}
}

// waitFor polls query (a count) until it is positive. No time limit of
// its own: a hang shows as the test binary's timeout, with stacks. The
// pause only spares the database.
func waitFor(t *testing.T, db *pgx.Conn, query string) {
	t.Helper()
	for {
		var n int
		if err := db.QueryRow(context.Background(), query).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			return
		}
		time.Sleep(time.Millisecond)
	}
}

// TestSessionIDsUnsigned: ids are uint64 in bigint; a stored id past
// 2^63 (negative as bigint) is above every other, and the counter
// continues after it.
func TestSessionIDsUnsigned(t *testing.T) {
	ctx := context.Background()
	s := openShared(t, testpg.DSN(t), 1)[0]
	defer s.Close()
	big := chat.SessionID(1<<63 + 5)
	err := s.Apply(ctx, &chat.Batch{Sessions: []chat.Session{
		{ID: 7, App: "app1", Kind: chat.KindGroup}, {ID: big, App: "app1", Kind: chat.KindGroup},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if first, err := s.ReserveSessionIDs(ctx, 2); err != nil || first != big+1 {
		t.Fatalf("ReserveSessionIDs = %d, %v; want %d", first, err, big+1)
	}
	if ok, next, err := s.ClaimSessionID(ctx, 10); err != nil || ok || next != big+3 {
		t.Fatalf("ClaimSessionID(10) = %v, %d, %v; want refused, next %d", ok, next, err, big+3)
	}
	if _, err := s.ReserveSessionIDs(ctx, 0); err == nil {
		t.Fatal("ReserveSessionIDs(0) succeeded")
	}
}
