package storage

import "testing"

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
