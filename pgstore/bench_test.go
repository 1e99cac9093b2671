package pgstore_test

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"

	"chatd/chat"
	"chatd/internal/testpg"
	"chatd/pgstore"
)

// benchSessions stores sessions 1..n, each with member u1.
func benchSessions(b *testing.B, s *pgstore.Store, n int) {
	var setup chat.Batch
	for i := range n {
		id := chat.SessionID(i + 1)
		setup.Sessions = append(setup.Sessions, chat.Session{ID: id, App: "app1", Kind: chat.KindGroup})
		setup.Members = append(setup.Members, chat.Member{Session: id, UID: "u1", Role: chat.RoleMember})
	}
	if err := s.Apply(context.Background(), &setup); err != nil {
		b.Fatal(err)
	}
}

// addMessage adds what the journal writes per message: the Message, its
// Summary and the sender's ReadMark.
func addMessage(batch *chat.Batch, id chat.SessionID, seq uint64) {
	batch.Messages = append(batch.Messages, chat.Message{Session: id, Seq: seq, App: "app1", From: "u1",
		Type: "text", Content: []byte(`{"text":"hello, this is a message of typical length"}`),
		CID: "c" + strconv.FormatUint(seq, 10), CreatedAt: 1_766_000_000_000})
	batch.Summaries = append(batch.Summaries, chat.Summary{Session: id, Seq: seq, At: 1, From: "u1", Type: "text", Preview: "hello"})
	batch.Reads = append(batch.Reads, chat.ReadMark{Session: id, UID: "u1", Seq: seq})
}

func perMessage(b *testing.B, size int) {
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*size), "ns/msg")
}

// A group commit's shape: its messages, spread over how many sessions.
var shapes = []struct{ size, sessions int }{{1, 1}, {200, 1}, {200, 10}, {200, 200}}

// benchShapes runs commit (which commits batch, filled by fill) for each
// shape, on sessions 1..200.
func benchShapes(b *testing.B, commit func(ids []chat.SessionID, batch *chat.Batch, fill func(last map[chat.SessionID]uint64)) error) {
	for _, c := range shapes {
		ids := make([]chat.SessionID, c.sessions)
		for i := range ids {
			ids[i] = chat.SessionID(i + 1)
		}
		b.Run(fmt.Sprintf("messages=%d/sessions=%d", c.size, c.sessions), func(b *testing.B) {
			b.ReportAllocs()
			var batch chat.Batch
			fill := func(last map[chat.SessionID]uint64) {
				for i := range c.size {
					id := ids[i%len(ids)]
					last[id]++
					addMessage(&batch, id, last[id])
				}
			}
			for b.Loop() {
				batch.Reset()
				if err := commit(ids, &batch, fill); err != nil {
					b.Fatal(err)
				}
			}
			perMessage(b, c.size)
		})
	}
}

// BenchmarkApply commits group commits as a single node's journal builds
// them: per message a Message, a Summary and a ReadMark, the seqs
// counted in memory. The figure that matters is ns per message at 200 a
// batch against 1. Numbers in docs/cluster.md.
func BenchmarkApply(b *testing.B) {
	ctx := context.Background()
	s, err := pgstore.Open(ctx, testpg.DSN(b))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	benchSessions(b, s, 200)
	last := map[chat.SessionID]uint64{} // the journal's, across the shapes
	benchShapes(b, func(_ []chat.SessionID, batch *chat.Batch, fill func(map[chat.SessionID]uint64)) error {
		fill(last)
		return s.Apply(ctx, batch)
	})
}

// BenchmarkApplyLocked commits the same group commits as a cluster
// node's journal does (chat.SharedStore): the sessions locked and their
// last seqs read, then the batch and the counters written and committed.
// "contended" runs two stores (two nodes' pools) with 4 goroutines each
// (per GOMAXPROCS), one message a batch, all into one session: the
// lock's hand-over. Numbers in docs/cluster.md.
func BenchmarkApplyLocked(b *testing.B) {
	ctx := context.Background()
	dsn := testpg.DSN(b)
	nodes := make([]*pgstore.Store, 2)
	for i := range nodes {
		s, err := pgstore.OpenShared(ctx, dsn)
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		nodes[i] = s
	}
	s := nodes[0]
	benchSessions(b, s, 200)
	benchShapes(b, func(ids []chat.SessionID, batch *chat.Batch, fill func(map[chat.SessionID]uint64)) error {
		return s.ApplyLocked(ctx, ids, batch, func(last map[chat.SessionID]uint64) error {
			fill(last)
			return nil
		})
	})
	b.Run("contended/messages=1/nodes=2", func(b *testing.B) {
		b.ReportAllocs()
		var mu sync.Mutex
		g := 0
		b.SetParallelism(4) // × GOMAXPROCS goroutines, half on each node
		b.RunParallel(func(pb *testing.PB) {
			mu.Lock()
			node := nodes[g%2]
			g++
			mu.Unlock()
			ids := []chat.SessionID{1}
			var batch chat.Batch
			for pb.Next() {
				batch.Reset()
				err := node.ApplyLocked(ctx, ids, &batch, func(last map[chat.SessionID]uint64) error {
					addMessage(&batch, 1, last[1]+1)
					return nil
				})
				if err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}
