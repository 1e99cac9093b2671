package storage

import (
	"context"
	"testing"

	"chatd/chat"
)

// BenchmarkCIDRebuildScan reads a session's messages newest first, 1,024
// at a time, as the core's CID check does when it rebuilds a sender's
// list after a restart (chat/cidring.go): the cost per message read
// bounds how long a rebuild holds the journal, from bbolt (checkpointed)
// and from the overlay (recent).
func BenchmarkCIDRebuildScan(b *testing.B) {
	const total = 100_000
	for _, where := range []string{"bbolt", "overlay"} {
		b.Run("from="+where, func(b *testing.B) {
			s := openTemp(b)
			defer s.Close()
			setupSessions(b, s, 1)
			seqs := []uint64{0}
			next := 0
			var batch chat.Batch
			for n := 0; n < total; n += 1000 {
				fillBatch(&batch, 1000, seqs, &next)
				if err := s.Apply(context.Background(), &batch); err != nil {
					b.Fatal(err)
				}
			}
			if where == "bbolt" {
				if err := s.checkpoint(); err != nil {
					b.Fatal(err)
				}
			}
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				hi, read := ^uint64(0), 0
				for {
					ms, err := s.Messages(ctx, 1, 1, hi, 1024, true)
					if err != nil {
						b.Fatal(err)
					}
					read += len(ms)
					if len(ms) < 1024 {
						break
					}
					hi = ms[0].Seq - 1
				}
				if read != total {
					b.Fatalf("read %d of %d", read, total)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*total), "ns/msg")
		})
	}
}
