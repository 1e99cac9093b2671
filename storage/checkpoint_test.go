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
// (ckptChunkBehind, as nothing paces it) of each kind: messages, summaries,
// read marks and cids all reach bbolt, as a reopen without any WAL shows.
func TestCheckpointInChunks(t *testing.T) {
	sessions := ckptChunkBehind + ckptChunkBehind/2 // every kind spans two transactions
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

// TestCheckpointChunkSize checks the size of a checkpoint's transactions:
// the background checkpointer, while relaxed, commits at most ckptChunk
// Puts per transaction, so each WAL sync queues behind little of bbolt's
// writing; a checkpoint someone waits for commits ckptChunkBehind.
func TestCheckpointChunkSize(t *testing.T) {
	sessions := 2*ckptChunk + 10
	s := openTempOpt(t, Options{CheckpointInterval: -1})
	setupSessions(t, s, sessions)
	settle(t, s)

	mustApply(t, s, p2pBatch(sessions, 1))
	before := s.ckptTxs.Load()
	if err := s.checkpointPaced(true); err != nil {
		t.Fatal(err)
	}
	// Messages, summaries and read marks: three chunks each.
	if got, want := s.ckptTxs.Load()-before, int64(3*3); got != want {
		t.Errorf("relaxed checkpoint of %d sessions: %d transactions, want %d (at most %d puts each)", sessions, got, want, ckptChunk)
	}

	mustApply(t, s, p2pBatch(sessions, 2))
	before = s.ckptTxs.Load()
	settle(t, s) // unpaced: one transaction per kind
	if got, want := s.ckptTxs.Load()-before, int64(3); got != want {
		t.Errorf("unpaced checkpoint of %d sessions: %d transactions, want %d", sessions, got, want)
	}
	checkSessions(t, s, sessions, 2)
}
