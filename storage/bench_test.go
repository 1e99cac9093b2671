package storage

import (
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"chatd/chat"
)

// benchContent is a typical short text message.
var benchContent = []byte(`{"text":"hello there, how is it going today?"}`)

// benchCIDs is a ring of client message ids, made once so the loop does
// not allocate them.
var benchCIDs = func() []string {
	out := make([]string, 1<<16)
	for i := range out {
		out[i] = "c-" + strconv.Itoa(i)
	}
	return out
}()

// setupSessions stores sessions 1..n, private pairs with two members each.
func setupSessions(tb testing.TB, s *Bolt, n int) {
	tb.Helper()
	var b chat.Batch
	for i := range n {
		id := chat.SessionID(i + 1)
		a, c := "u"+strconv.Itoa(2*i), "u"+strconv.Itoa(2*i+1)
		b.Sessions = append(b.Sessions, chat.Session{ID: id, App: "app", Kind: chat.KindPrivate, Pair: [2]string{a, c}})
		b.Members = append(b.Members, chat.Member{Session: id, UID: a, Role: chat.RoleMember}, chat.Member{Session: id, UID: c, Role: chat.RoleMember})
	}
	if err := s.Apply(context.Background(), &b); err != nil {
		tb.Fatal(err)
	}
}

// fillBatch puts n messages round-robin over sessions 1..len(seqs) into b,
// each with a cid, plus one summary per session touched, as the core's
// journal does.
func fillBatch(b *chat.Batch, n int, seqs []uint64, next *int) {
	b.Reset()
	for i := range n {
		k := i % len(seqs)
		seqs[k]++
		*next++
		b.Messages = append(b.Messages, chat.Message{
			Session: chat.SessionID(k + 1), Seq: seqs[k], App: "app", From: "u" + "0", Type: "text",
			Content: benchContent, CID: benchCIDs[*next%len(benchCIDs)], CreatedAt: 1766000000000 + int64(*next),
		})
	}
	for k := range min(n, len(seqs)) {
		b.Summaries = append(b.Summaries, chat.Summary{Session: chat.SessionID(k + 1), Seq: seqs[k], At: 1, From: "u0", Type: "text", Preview: "hello"})
	}
}

// BenchmarkApply commits batches of messages with fsync, as the journal
// does. sessions is how many sessions a batch spreads over: bbolt's cost
// grows with the distinct pages a commit dirties, so many sessions per
// commit is the expensive case.
func BenchmarkApply(b *testing.B) {
	tests := []struct {
		name     string
		msgs     int
		sessions int
	}{
		{name: "msgs=1", msgs: 1, sessions: 1},
		{name: "msgs=100", msgs: 100, sessions: 10},
		{name: "msgs=1000", msgs: 1000, sessions: 10},
		{name: "msgs=1000/sessions=1000", msgs: 1000, sessions: 1000},
	}
	for _, tc := range tests {
		b.Run(tc.name, func(b *testing.B) {
			s := openTemp(b)
			defer s.Close()
			setupSessions(b, s, tc.sessions)
			seqs := make([]uint64, tc.sessions)
			next := 0
			var batch chat.Batch
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				fillBatch(&batch, tc.msgs, seqs, &next)
				if err := s.Apply(ctx, &batch); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*tc.msgs)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}

// BenchmarkMessagesRange reads a history page of 50, newest first, from a
// session of 10,000 messages among 100 sessions.
func BenchmarkMessagesRange(b *testing.B) {
	s := openTemp(b)
	defer s.Close()
	const sessions, perSession = 100, 10_000
	setupSessions(b, s, sessions)
	seqs := make([]uint64, sessions)
	next := 0
	var batch chat.Batch
	for range perSession / 10 {
		fillBatch(&batch, 10*sessions, seqs, &next)
		if err := s.Apply(context.Background(), &batch); err != nil {
			b.Fatal(err)
		}
	}
	ctx := context.Background()
	hi := uint64(perSession)
	b.ReportAllocs()
	for b.Loop() {
		ms, err := s.Messages(ctx, 42, 0, hi, 50, true)
		if err != nil || len(ms) != 50 {
			b.Fatalf("Messages = %d, %v", len(ms), err)
		}
		if hi -= 50; hi < 50 {
			hi = perSession
		}
	}
}

// growStore fills sessions 1..sessions (already set up) with total
// messages, round-robin, each with a unique cid, and returns the seqs it
// reached. The benchmark then measures commits against a store that
// already holds a realistic amount of history and cid index.
func growStore(b *testing.B, s *Bolt, sessions, total int) []uint64 {
	b.Helper()
	seqs := make([]uint64, sessions)
	var batch chat.Batch
	ctx := context.Background()
	for done := 0; done < total; {
		batch.Reset()
		for i := 0; i < 5000 && done < total; i++ {
			k := done % sessions
			seqs[k]++
			batch.Messages = append(batch.Messages, chat.Message{
				Session: chat.SessionID(k + 1), Seq: seqs[k], App: "app", From: "u0", Type: "text",
				Content: benchContent, CID: "g-" + strconv.Itoa(done), CreatedAt: 1766000000000 + int64(done),
			})
			done++
		}
		if err := s.Apply(ctx, &batch); err != nil {
			b.Fatal(err)
		}
	}
	settle(b, s)
	return seqs
}

// BenchmarkApplyGrown is BenchmarkApply on a store that already holds
// 200,000 messages and 200,000 cids over 1,000 sessions: the p2p shape
// (each message of a commit in its own session) on a grown file.
func BenchmarkApplyGrown(b *testing.B) {
	tests := []struct {
		name     string
		msgs     int
		sessions int
	}{
		{name: "msgs=100/sessions=100", msgs: 100, sessions: 100},
		{name: "msgs=1000/sessions=1000", msgs: 1000, sessions: 1000},
	}
	for _, tc := range tests {
		b.Run(tc.name, func(b *testing.B) {
			s := openTemp(b)
			defer s.Close()
			setupSessions(b, s, 1000)
			grown := growStore(b, s, 1000, 200_000)
			seqs := grown[:tc.sessions]
			next := 0
			var batch chat.Batch
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				fillBatch(&batch, tc.msgs, seqs, &next)
				if err := s.Apply(ctx, &batch); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*tc.msgs)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}

// BenchmarkWALSync is one 600-byte record written and made durable, the
// cost every group commit pays: appended to a growing file and fsynced (a
// WAL file with no blocks allocated ahead of its records), or written in
// place over a preallocated file and fdatasynced (recycled and grown WAL
// files). It reports the p50 and p99 of one write + sync, since the tail
// is what queues commits up.
func BenchmarkWALSync(b *testing.B) {
	rec := make([]byte, 600)
	tests := []struct {
		name    string
		prepare func(b *testing.B, f *os.File)
		sync    func(f *os.File) error
	}{
		{name: "grow+fsync", prepare: func(*testing.B, *os.File) {}, sync: (*os.File).Sync},
		{name: "in-place+fdatasync", prepare: func(b *testing.B, f *os.File) {
			if err := extend(f, walMaxAlloc); err != nil {
				b.Fatal(err)
			}
			if err := f.Sync(); err != nil {
				b.Fatal(err)
			}
		}, sync: datasync},
	}
	for _, tc := range tests {
		b.Run(tc.name, func(b *testing.B) {
			f, err := os.Create(filepath.Join(b.TempDir(), "wal"))
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			tc.prepare(b, f)
			var took []time.Duration
			off := int64(0)
			b.ResetTimer()
			for b.Loop() {
				start := time.Now()
				if _, err := f.WriteAt(rec, off); err != nil {
					b.Fatal(err)
				}
				if err := tc.sync(f); err != nil {
					b.Fatal(err)
				}
				took = append(took, time.Since(start))
				if off += int64(len(rec)); off+int64(len(rec)) > walMaxAlloc {
					off = 0
				}
			}
			slices.Sort(took)
			b.ReportMetric(float64(took[len(took)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(took[len(took)*99/100].Microseconds()), "p99-µs")
		})
	}
}

// extend writes zeroes from f's end up to size bytes, as grow does, in
// one go.
func extend(f *os.File, size int64) error {
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	for off := fi.Size(); off < size; {
		n := min(int64(len(zeroes)), size-off)
		if _, err := f.WriteAt(zeroes[:n], off); err != nil {
			return err
		}
		off += n
	}
	return nil
}

// BenchmarkApplyRecords commits batches of 1 or 64 messages (over as
// many sessions) with fsync, alone and with a record per message
// alongside (a webhook outbox event: growing 8-byte keys, ~200-byte JSON
// values), as the journal's group commit does when an app subscribes to
// message.created. Both ride the WAL; a checkpoint writes the records
// into bbolt later.
func BenchmarkApplyRecords(b *testing.B) {
	value := []byte(`{"type":"message.created","app":"app","session":123456,"seq":42,"from":"u0","msg_type":"text","content":{"text":"hello there, how is it going today?"},"created_at":1766000000000}`)
	for _, tc := range []struct{ msgs, records int }{{1, 0}, {1, 1}, {64, 0}, {64, 64}} {
		b.Run("msgs="+strconv.Itoa(tc.msgs)+"/records="+strconv.Itoa(tc.records), func(b *testing.B) {
			msgs, sessions, records := tc.msgs, tc.msgs, tc.records
			s := openTemp(b)
			defer s.Close()
			setupSessions(b, s, sessions)
			seqs := make([]uint64, sessions)
			next := 0
			var batch chat.Batch
			var event uint64
			keys := make([]byte, 0, 8*records)
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				fillBatch(&batch, msgs, seqs, &next)
				keys = keys[:0]
				for range records {
					event++
					keys = binary.BigEndian.AppendUint64(keys, event)
					batch.Records = append(batch.Records, chat.Record{Kind: "wh.ev", Key: keys[len(keys)-8:], Value: value})
				}
				if err := s.Apply(ctx, &batch); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*msgs)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}
