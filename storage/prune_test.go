package storage

import (
	"context"
	"testing"

	"chatd/chat"
)

// TestPruneIncludesOverlay prunes messages that are still only in the WAL
// and the overlay (no checkpoint has run): the pass checkpoints first, so
// they are deleted for good and do not come back from a later checkpoint
// or a reopen.
func TestPruneIncludesOverlay(t *testing.T) {
	s := openTempOpt(t, Options{CheckpointInterval: -1})
	setupSessions(t, s, 3)
	for seq := uint64(1); seq <= 4; seq++ {
		mustApply(t, s, p2pBatch(3, seq)) // CreatedAt = seq
	}
	if s.active.empty() {
		t.Fatal("the messages are not in the overlay")
	}
	ctx := context.Background()
	n, next, err := s.PruneMessages(ctx, "app", 3, 0, 0) // seqs 1 and 2
	if err != nil || n != 6 || next != 0 {
		t.Fatalf("prune: %d, %d, %v; want 6 deleted", n, next, err)
	}
	mustApply(t, s, p2pBatch(3, 5))
	settle(t, s)
	path := s.path
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	c := reopen(t, path)
	for id := 1; id <= 3; id++ {
		ms, err := c.Messages(ctx, chat.SessionID(id), 0, ^uint64(0), 0, false)
		if err != nil || len(ms) != 3 || ms[0].Seq != 3 || ms[2].Seq != 5 {
			t.Fatalf("session %d after prune and reopen: %v, %v; want seqs 3-5", id, ms, err)
		}
	}
}
