package metrics

import (
	"context"
	"sync"
	"testing"
	"time"

	"chatd/chat"
	"chatd/chat/memstore"
)

func newCore(t *testing.T) *chat.Core {
	t.Helper()
	core, err := chat.New(chat.Config{}, memstore.New())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- core.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return core
}

func TestServerInfoRates(t *testing.T) {
	t0 := time.Unix(1_766_000_000, 0)
	p := &InfoPublisher{Version: "v9", StartedAt: t0.Add(-time.Hour)}
	tests := []struct {
		name               string
		prev, cur          counterSample
		wantIn, wantOut    float64
		wantBIn, wantBOut  float64
		wantUptime         int64
		wantConns, wantDep int
	}{
		{
			name:   "two seconds apart",
			prev:   counterSample{at: t0, msgsIn: 100, deliveries: 1000, bytesIn: 4000, bytesOut: 10_000},
			cur:    counterSample{at: t0.Add(2 * time.Second), msgsIn: 300, deliveries: 5000, bytesIn: 6000, bytesOut: 30_000, conns: 7, core: chat.Stats{UsersOnline: 5, JournalDepth: 3, LastCommit: 1500 * time.Microsecond}},
			wantIn: 100, wantOut: 2000, wantBIn: 1000, wantBOut: 10_000,
			wantUptime: 3602, wantConns: 7, wantDep: 3,
		},
		{
			name:       "half a second apart",
			prev:       counterSample{at: t0, msgsIn: 10},
			cur:        counterSample{at: t0.Add(500 * time.Millisecond), msgsIn: 11},
			wantIn:     2,
			wantUptime: 3600,
		},
		{
			name:       "counters went backwards (restart of a source): no negative rate",
			prev:       counterSample{at: t0, bytesIn: 500},
			cur:        counterSample{at: t0.Add(time.Second), bytesIn: 100},
			wantUptime: 3601,
		},
		{
			name:       "no time passed",
			prev:       counterSample{at: t0, msgsIn: 1},
			cur:        counterSample{at: t0, msgsIn: 5},
			wantUptime: 3600,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := p.info(tc.prev, tc.cur)
			if in.MsgsInPerSec != tc.wantIn || in.MsgsOutPerSec != tc.wantOut ||
				in.BytesInPerSec != tc.wantBIn || in.BytesOutPerSec != tc.wantBOut {
				t.Fatalf("rates in %v out %v bytes in %v out %v", in.MsgsInPerSec, in.MsgsOutPerSec, in.BytesInPerSec, in.BytesOutPerSec)
			}
			if in.UptimeSeconds != tc.wantUptime || in.Conns != tc.wantConns || in.JournalDepth != tc.wantDep {
				t.Fatalf("uptime %d conns %d journal %d", in.UptimeSeconds, in.Conns, in.JournalDepth)
			}
			if in.Version != "v9" || in.StartedAt != t0.Add(-time.Hour).UnixMilli() {
				t.Fatalf("version %q started %d", in.Version, in.StartedAt)
			}
		})
	}
	in := p.info(tests[0].prev, tests[0].cur)
	if in.LastCommitMS != 1.5 || in.UsersOnline != 5 {
		t.Fatalf("last commit %v ms, users %d", in.LastCommitMS, in.UsersOnline)
	}
	if in.HeapBytes == 0 || in.RSSBytes == 0 || in.Goroutines == 0 {
		t.Fatalf("runtime figures not filled: %+v", in)
	}
}

func TestServerInfoPublished(t *testing.T) {
	core := newCore(t)
	sub := core.Subscribe([]chat.Filter{{Topic: chat.TopicServerInfo}}, 16)
	defer sub.Close()

	var mu sync.Mutex // guards calls
	calls := 0
	p := &InfoPublisher{
		Core:     core,
		Interval: 20 * time.Millisecond,
		Version:  "v-test",
		Transport: func() Transport {
			mu.Lock()
			defer mu.Unlock()
			calls++
			return Transport{Conns: 42, BytesIn: uint64(calls) * 1000, BytesOut: uint64(calls) * 3000}
		},
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	defer func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Error(err)
			}
		case <-time.After(5 * time.Second):
			t.Error("Run did not return after cancel")
		}
	}()
	for i := 0; i < 2; i++ {
		select {
		case ev := <-sub.C:
			in := ev.Info
			if ev.Topic != chat.TopicServerInfo || in == nil {
				t.Fatalf("event %+v", ev)
			}
			if in.Conns != 42 || in.Version != "v-test" || in.BytesInPerSec <= 0 || in.BytesOutPerSec <= in.BytesInPerSec {
				t.Fatalf("info %+v", *in)
			}
			if in.StartedAt != StartTime().UnixMilli() || in.HeapBytes == 0 || in.RSSBytes == 0 || in.Goroutines == 0 {
				t.Fatalf("info %+v", *in)
			}
			if ev.Time == 0 {
				t.Fatal("event without time")
			}
		case <-time.After(5 * time.Second):
			t.Fatal("no serverInfo event")
		}
	}
}
