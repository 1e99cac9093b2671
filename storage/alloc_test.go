//go:build !race

package storage

import (
	"context"
	"testing"

	bolt "go.etcd.io/bbolt"

	"chatd/chat"
)

func TestMessageCodecAllocs(t *testing.T) {
	m := chat.Message{App: "app", From: "u1", Type: "text", Content: benchContent, CID: "c-1", CreatedAt: 1}
	buf := make([]byte, 0, maxMessageLen(&m))
	if n := testing.AllocsPerRun(100, func() { buf = appendMessage(buf[:0], &m) }); n != 0 {
		t.Errorf("appendMessage: %v allocs, want 0", n)
	}
	var got chat.Message
	if n := testing.AllocsPerRun(100, func() { decodeMessage(buf, &got) }); n != 2 {
		t.Errorf("decodeMessage: %v allocs, want 2 (one string for all strings, one Content)", n)
	}
}

// TestMessagesAllocs checks that a history page costs the same few
// allocations whatever its length.
func TestMessagesAllocs(t *testing.T) {
	s := openTempOpt(t, Options{CheckpointInterval: -1})
	setupSessions(t, s, 3)
	seqs := make([]uint64, 3)
	next := 0
	var b chat.Batch
	fillBatch(&b, 600, seqs, &next)
	if err := s.Apply(context.Background(), &b); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	allocs := func(limit int) float64 {
		return testing.AllocsPerRun(50, func() {
			ms, err := s.Messages(ctx, 2, 0, 200, limit, true)
			if err != nil || len(ms) != limit {
				t.Fatalf("Messages = %d, %v", len(ms), err)
			}
		})
	}
	// First from the overlay (the WAL's changes), then from bbolt.
	for _, where := range []string{"overlay", "bbolt"} {
		if where == "bbolt" {
			settle(t, s)
		}
		small, large := allocs(5), allocs(50)
		if large != small {
			t.Errorf("Messages from %s: %v allocs for 5 messages, %v for 50; want the same", where, small, large)
		}
		if large > 16 {
			t.Errorf("Messages from %s: %v allocs for a page, want at most 16", where, large)
		}
	}
}

// TestApplyAllocs checks that Apply allocates, per message, no more than
// bbolt itself needs to put the same keys and values: what Apply allocates
// beyond raw bbolt puts does not grow with the batch.
func TestApplyAllocs(t *testing.T) {
	const sessions = 10
	ctx := context.Background()

	measure := func(n int, run func(s *Bolt, b *chat.Batch) error) float64 {
		s := openTemp(t)
		defer s.Close()
		setupSessions(t, s, sessions)
		seqs := make([]uint64, sessions)
		next := 0
		var b chat.Batch
		fillBatch(&b, n, seqs, &next) // warm up the arena and the file
		if err := run(s, &b); err != nil {
			t.Fatal(err)
		}
		return testing.AllocsPerRun(10, func() {
			fillBatch(&b, n, seqs, &next)
			if err := run(s, &b); err != nil {
				t.Fatal(err)
			}
		})
	}
	apply := func(s *Bolt, b *chat.Batch) error { return s.Apply(ctx, b) }

	// The same message and cid puts straight into bbolt, encoded into
	// buffers reused across runs so that only bbolt's allocations count.
	var keys, vals [][]byte
	arena := make([]byte, 0, 1<<20)
	raw := func(s *Bolt, b *chat.Batch) error {
		keys, vals, arena = keys[:0], vals[:0], arena[:0]
		for i := range b.Messages {
			m := &b.Messages[i]
			k0 := len(arena)
			arena = appendMsgKey(arena, m.Session, m.Seq)
			v0 := len(arena)
			arena = appendMessage(arena, m)
			keys = append(keys, arena[k0:v0])
			vals = append(vals, arena[v0:])
		}
		return s.db.Update(func(tx *bolt.Tx) error {
			msgs := tx.Bucket(bMsgs)
			msgs.FillPercent = 0.9
			for i := range keys {
				if err := msgs.Put(keys[i], vals[i]); err != nil {
					return err
				}
			}
			return nil
		})
	}

	var excess [2]float64
	for i, n := range []int{250, 4000} {
		a, r := measure(n, apply), measure(n, raw)
		excess[i] = a - r
		t.Logf("batch of %d: Apply %v allocs, raw bbolt puts %v", n, a, r)
	}
	// The excess is the batch's summaries and fixed costs. bbolt's own
	// count jitters by a few hundred with page splits; one allocation per
	// message would add 3,750.
	if excess[1]-excess[0] > 1000 {
		t.Errorf("Apply's allocations beyond bbolt's grew from %v to %v with 3,750 more messages", excess[0], excess[1])
	}
}

// TestOverlaySizedAfterPrevious checks that an overlay sized after the one
// it follows takes a session's messages without regrowing its slice.
func TestOverlaySizedAfterPrevious(t *testing.T) {
	const n = 200
	fill := func(o *overlay) {
		for seq := uint64(1); seq <= n; seq++ {
			o.putMsg(chat.Message{Session: 7, Seq: seq})
		}
	}
	prev := newOverlay(nil)
	fill(prev)
	unsized := testing.AllocsPerRun(20, func() { fill(newOverlay(nil)) })
	sized := testing.AllocsPerRun(20, func() { fill(newOverlay(prev)) })
	// newOverlay's own maps, plus one slice of the right size.
	t.Logf("allocs: sized %v, unsized %v", sized, unsized)
	if sized > 8 || sized >= unsized {
		t.Fatalf("allocs: %v sized after the previous overlay, %v unsized; want the sized one to allocate its slice once", sized, unsized)
	}
}
