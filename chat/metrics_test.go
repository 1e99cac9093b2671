package chat_test

import (
	"encoding/json"
	"sync"
	"testing"

	"chatd/chat"
)

func TestHistogram(t *testing.T) {
	h := chat.NewHistogram([]uint64{10, 100, 1000}, 10)
	for _, v := range []uint64{0, 10, 11, 100, 5000, 7} {
		h.Observe(v)
	}
	s := h.Snapshot()
	want := chat.HistogramSnapshot{Bounds: []float64{1, 10, 100}, Counts: []uint64{3, 5, 5}, Count: 6, Sum: 512.8}
	if len(s.Bounds) != 3 || s.Count != want.Count || s.Sum != want.Sum {
		t.Fatalf("snapshot %+v, want %+v", s, want)
	}
	for i := range want.Bounds {
		if s.Bounds[i] != want.Bounds[i] || s.Counts[i] != want.Counts[i] {
			t.Fatalf("snapshot %+v, want %+v", s, want)
		}
	}
	defer func() {
		if recover() == nil {
			t.Fatal("NewHistogram accepted bounds that do not ascend")
		}
	}()
	chat.NewHistogram([]uint64{5, 5}, 1)
}

func TestHistogramConcurrent(t *testing.T) {
	h := chat.NewHistogram([]uint64{1, 2, 4, 8}, 1)
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := uint64(0); i < 1000; i++ {
				h.Observe(i % 10)
				if s := h.Snapshot(); s.Count < s.Counts[len(s.Counts)-1] {
					t.Errorf("inconsistent snapshot %+v", s)
					return
				}
			}
		}()
	}
	wg.Wait()
	if s := h.Snapshot(); s.Count != 4000 || s.Sum != 4*100*45 {
		t.Fatalf("after 4000 observations: %+v", s)
	}
}

func TestStoreHistograms(t *testing.T) {
	e := newEnv(t, chat.Config{})
	before := e.core.StoreHistograms()
	tok := e.user("u1")
	e.user("u2")
	d := e.login(tok)
	for i := 0; i < 5; i++ {
		if f := d.do(`"action":"send","to":"u2","type":"text","content":{"text":"x"}`); !f.OK {
			t.Fatalf("send: %+v", f.Error)
		}
	}
	st := e.core.Stats()
	h := e.core.StoreHistograms()
	commits := st.Commits
	if h.BatchSize.Count != commits || h.CommitSeconds.Count != commits || commits < 5 {
		t.Fatalf("commits %d, histogram counts %d and %d (before %d)", commits, h.BatchSize.Count, h.CommitSeconds.Count, before.BatchSize.Count)
	}
	// Every write is in one batch: the batch sizes add up to at least the
	// five messages, the users and the token.
	if h.BatchSize.Sum < 5 || h.CommitSeconds.Sum <= 0 {
		t.Fatalf("batch sum %v, commit seconds %v", h.BatchSize.Sum, h.CommitSeconds.Sum)
	}
	// The five sends were acknowledged: five send-to-ack observations, each
	// at least as long as a commit is short.
	if n := h.SendAckSeconds.Count - before.SendAckSeconds.Count; n != 5 || h.SendAckSeconds.Sum <= 0 {
		t.Fatalf("send-to-ack histogram: %d observations (sum %v), want 5", n, h.SendAckSeconds.Sum)
	}
	if h.CommitSeconds.Bounds[0] != 50e-6 || h.BatchSize.Bounds[len(h.BatchSize.Bounds)-1] != 4096 {
		t.Fatalf("bounds %v / %v", h.CommitSeconds.Bounds, h.BatchSize.Bounds)
	}
	// Another core has its own histograms.
	other := newEnv(t, chat.Config{})
	if n := other.core.StoreHistograms().BatchSize.Count; n > 2 {
		b, _ := json.Marshal(other.core.StoreHistograms())
		t.Fatalf("a fresh core shows %d commits: %s", n, b)
	}
	if n := e.core.Subscribers(); n != 0 {
		t.Fatalf("subscribers %d", n)
	}
	sub := e.core.Subscribe([]chat.Filter{{Topic: "all"}}, 1)
	if n := e.core.Subscribers(); n != 1 {
		t.Fatalf("subscribers %d after Subscribe", n)
	}
	sub.Close()
	if n := e.core.Subscribers(); n != 0 {
		t.Fatalf("subscribers %d after Close", n)
	}
}
