package pgstore

import (
	"context"
	"testing"
	"time"

	"chatd/chat"
	"chatd/internal/testpg"
)

// TestHoldLimit: a node that stops while it holds the locks (its build
// never returns in time) loses its connection after holdLimit, which
// rolls back and frees the session for the other nodes; the limit is
// its transaction's only.
func TestHoldLimit(t *testing.T) {
	defer func(d time.Duration) { holdLimit = d }(holdLimit)
	holdLimit = 200 * time.Millisecond
	ctx := context.Background()
	dsn := testpg.DSN(t)
	a, err := OpenShared(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := OpenShared(ctx, dsn+"&pool_max_conns=1") // SHOW below reads ApplyLocked's connection
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	batch := &chat.Batch{}
	err = a.ApplyLocked(ctx, []chat.SessionID{1}, batch, func(last map[chat.SessionID]uint64) error {
		batch.Messages = append(batch.Messages, chat.Message{Session: 1, Seq: last[1] + 1, App: "app1", From: "a", Type: "text"})
		// Stall until PostgreSQL has ended this transaction's connection.
		for {
			var n int
			err := b.pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
				AND state = 'idle in transaction'`).Scan(&n)
			if err != nil {
				t.Fatal(err)
			}
			if n == 0 {
				return nil
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
	if err == nil {
		t.Fatal("ApplyLocked past its hold limit succeeded")
	}
	t.Logf("ApplyLocked past its hold limit: %v", err)
	b2 := &chat.Batch{}
	err = b.ApplyLocked(ctx, []chat.SessionID{1}, b2, func(last map[chat.SessionID]uint64) error {
		if last[1] != 0 {
			t.Errorf("last seq %d after the stalled node's rollback, want 0", last[1])
		}
		b2.Messages = append(b2.Messages, chat.Message{Session: 1, Seq: last[1] + 1, App: "app1", From: "b", Type: "text"})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var limit string
	if err := b.pool.QueryRow(ctx, `SHOW idle_in_transaction_session_timeout`).Scan(&limit); err != nil || limit != "0" {
		t.Fatalf("idle_in_transaction_session_timeout outside ApplyLocked = %q, %v; want 0 (off)", limit, err)
	}
}
