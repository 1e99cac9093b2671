package storage

import (
	"testing"
)

// settle checkpoints, so what was applied is in bbolt, not the overlay.
func settle(tb testing.TB, s *Bolt) {
	tb.Helper()
	if err := s.checkpoint(); err != nil {
		tb.Fatal(err)
	}
}

// BenchmarkCheckpoint writes 200,000 messages with unique cids over 1,000
// sessions through the WAL and checkpoints them into bbolt at once, as
// after a burst: one transaction, so its cost must stay linear.
func BenchmarkCheckpoint(b *testing.B) {
	for b.Loop() {
		s := openTemp(b)
		setupSessions(b, s, 1000)
		growStore(b, s, 1000, 200_000)
	}
}

// TestCheckpointInChunks checks a checkpoint larger than one transaction
// (ckptChunk) of each kind: messages, summaries, read marks and cids all
// reach bbolt, as a reopen without any WAL shows.
func TestCheckpointInChunks(t *testing.T) {
	sessions := ckptChunk + ckptChunk/2 // every kind spans two transactions
	s := openTempOpt(t, Options{CheckpointInterval: -1})
	setupSessions(t, s, sessions)
	for seq := uint64(1); seq <= 2; seq++ {
		mustApply(t, s, p2pBatch(sessions, seq))
	}
	settle(t, s)
	if !s.active.empty() || s.frozen != nil {
		t.Fatal("overlays not empty after the checkpoint")
	}
	checkSessions(t, s, sessions, 2)
	path := s.path
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	c := reopen(t, path)
	checkSessions(t, c, sessions, 2)
}
