package pgstore_test

import (
	"context"
	"fmt"
	"strconv"
	"testing"

	"chatd/chat"
	"chatd/internal/testpg"
	"chatd/pgstore"
)

// BenchmarkApply commits group commits as the journal builds them: per
// message a Message, a Summary and a ReadMark, over 10 sessions. The
// figure that matters is ns per message at 200 a batch against 1.
func BenchmarkApply(b *testing.B) {
	ctx := context.Background()
	s, err := pgstore.Open(ctx, testpg.DSN(b))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	const sessions = 10
	var setup chat.Batch
	for i := range sessions {
		id := chat.SessionID(i + 1)
		setup.Sessions = append(setup.Sessions, chat.Session{ID: id, App: "app1", Kind: chat.KindGroup})
		setup.Members = append(setup.Members, chat.Member{Session: id, UID: "u1", Role: chat.RoleMember})
	}
	if err := s.Apply(ctx, &setup); err != nil {
		b.Fatal(err)
	}
	seq := uint64(0)
	for _, size := range []int{1, 200} {
		b.Run(fmt.Sprintf("messages=%d", size), func(b *testing.B) {
			b.ReportAllocs()
			var batch chat.Batch
			for b.Loop() {
				batch.Reset()
				for i := range size {
					id := chat.SessionID(i%sessions + 1)
					if i%sessions == 0 {
						seq++
					}
					batch.Messages = append(batch.Messages, chat.Message{Session: id, Seq: seq, App: "app1", From: "u1",
						Type: "text", Content: []byte(`{"text":"hello, this is a message of typical length"}`),
						CID: "c" + strconv.FormatUint(seq, 10), CreatedAt: 1_766_000_000_000})
					batch.Summaries = append(batch.Summaries, chat.Summary{Session: id, Seq: seq, At: 1, From: "u1", Type: "text", Preview: "hello"})
					batch.Reads = append(batch.Reads, chat.ReadMark{Session: id, UID: "u1", Seq: seq})
				}
				if err := s.Apply(ctx, &batch); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*size), "ns/msg")
		})
	}
}
