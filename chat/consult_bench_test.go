package chat_test

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"chatd/chat"
	"chatd/chat/memstore"
)

// BenchmarkConsultClock10k measures, with the two members of all of them
// offline and then online (each event encoded and sent to both), what 10,000 concurrent active
// consultations cost: one op is one second of the clock (a ConsultTick
// after the replaced clock moved 1 s), in which about a tenth of them
// get their remaining-time event (consult_tick 10 s). Reported:
// cpu-%-of-a-core (ns per op / 1e7: the share of one core the clock
// takes at that rate) and heap-B/consult (live heap growth per
// consultation after creating them, store included: memstore keeps the
// records in the same heap).
func BenchmarkConsultClock10k(b *testing.B) {
	b.Run("members=offline", func(b *testing.B) { benchConsultClock(b, false) })
	b.Run("members=online", func(b *testing.B) { benchConsultClock(b, true) })
}

// countPeer is a Peer that only counts what it is sent.
type countPeer struct{ n atomic.Int64 }

func (p *countPeer) Send(b []byte) bool { p.n.Add(1); return true }
func (p *countPeer) Close(int, string)  {}
func (p *countPeer) RemoteAddr() string { return "127.0.0.1:1" }

func benchConsultClock(b *testing.B, online bool) {
	const n = 10_000
	clk := newFakeClock()
	st := memstore.New()
	core, err := chat.New(clk.cfg(chat.ConsultConfig{MaxPerConsultant: n}), st)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- core.Run(ctx) }()
	defer func() { cancel(); <-done }()
	app, err := core.CreateApp(ctx, "shop", "Shop")
	if err != nil {
		b.Fatal(err)
	}
	var peers []*countPeer
	for _, uid := range []string{"lawyer", "cust"} {
		if _, err := core.PushUser(ctx, app.ID, chat.UserInput{UID: uid}); err != nil {
			b.Fatal(err)
		}
		if !online {
			continue
		}
		g, err := core.IssueToken(ctx, app.ID, uid, 0)
		if err != nil {
			b.Fatal(err)
		}
		p := &countPeer{}
		core.Accept(p).HandleMessage([]byte(`{"id":"1","action":"login","app":"shop","token":"` + g.Token + `"}`))
		for p.n.Load() == 0 {
			time.Sleep(time.Millisecond) // the login's reply
		}
		peers = append(peers, p)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; i < n; i += 8 {
				if _, err := core.CreateConsultation(ctx, app.ID, chat.ConsultInput{Consultant: "lawyer", Customer: "cust",
					Seconds: 24 * 3600, Start: chat.StartNow}); err != nil {
					b.Error(err)
					return
				}
				clk.add(time.Millisecond) // spread the starts over 10 s, so the counts spread over the seconds
			}
		}(w)
	}
	wg.Wait()
	runtime.GC()
	runtime.ReadMemStats(&after)
	heap := float64(after.HeapAlloc-before.HeapAlloc) / n
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		clk.add(time.Second)
		core.ConsultTick(ctx)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1e7, "cpu-%-of-a-core")
	b.ReportMetric(heap, "heap-B/consult")
	if online {
		b.ReportMetric(float64(peers[0].n.Load())/float64(b.N), "events/op/member")
	}
}
