package chat_test

import (
	"context"
	"runtime"
	"sync"
	"testing"
	"time"

	"chatd/chat"
	"chatd/chat/memstore"
)

// BenchmarkConsultClock10k measures what 10,000 concurrent active
// consultations cost: one op is one second of the clock (a ConsultTick
// after the replaced clock moved 1 s), in which about a tenth of them
// get their remaining-time event (consult_tick 10 s). Reported:
// cpu-%-of-a-core (ns per op / 1e7: the share of one core the clock
// takes at that rate) and heap-B/consult (live heap growth per
// consultation after creating them, store included: memstore keeps the
// records in the same heap).
func BenchmarkConsultClock10k(b *testing.B) {
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
	for _, uid := range []string{"lawyer", "cust"} {
		if _, err := core.PushUser(ctx, app.ID, chat.UserInput{UID: uid}); err != nil {
			b.Fatal(err)
		}
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
}
