package bench

import (
	"context"
	"sync"
	"testing"
	"time"
)

func TestPacerScheduleCoversEveryEventOnce(t *testing.T) {
	tests := []struct {
		name    string
		rate    float64
		d       time.Duration
		workers int
		want    int64
	}{
		{name: "one worker", rate: 1000, d: 2 * time.Second, workers: 1, want: 2000},
		{name: "four workers", rate: 10000, d: 3 * time.Second, workers: 4, want: 30000},
		{name: "uneven split", rate: 333, d: time.Second, workers: 4, want: 333},
		{name: "fractional rate rounds", rate: 2.5, d: 3 * time.Second, workers: 2, want: 8}, // 7.5 → 8
		{name: "more workers than events", rate: 2, d: time.Second, workers: 4, want: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			seen := map[int64]int64{}
			var total int64
			for w := range tt.workers {
				p := newPacer(1000, tt.rate, tt.d, w, tt.workers)
				var n int64
				last := int64(-1)
				for {
					k, at, ok := p.Next()
					if !ok {
						break
					}
					if k%int64(tt.workers) != int64(w) {
						t.Fatalf("worker %d got event %d", w, k)
					}
					if at < last {
						t.Fatalf("intended times go backwards: %d after %d", at, last)
					}
					if want := 1000 + int64(float64(k)*1e9/tt.rate); at != want {
						t.Fatalf("event %d intended at %d, want %d", k, at, want)
					}
					last = at
					seen[k] = at
					p.Advance()
					n++
				}
				if n != p.Count() {
					t.Errorf("worker %d emitted %d, Count says %d", w, n, p.Count())
				}
				total += n
			}
			if total != tt.want || int64(len(seen)) != tt.want {
				t.Fatalf("emitted %d events (%d distinct), want %d", total, len(seen), tt.want)
			}
		})
	}
}

func TestPacerRunEmitsIntendedCountOnTime(t *testing.T) {
	clk := newClock()
	const rate, workers = 4000.0, 3
	d := 300 * time.Millisecond
	start := clk.now() + int64(5*time.Millisecond)
	var mu sync.Mutex // guards below
	var n int64
	var early int64
	var wg sync.WaitGroup
	for w := range workers {
		p := newPacer(start, rate, d, w, workers)
		wg.Go(func() {
			p.run(context.Background(), clk, func(k, at int64) {
				now := clk.now()
				mu.Lock()
				n++
				if now < at {
					early++
				}
				mu.Unlock()
			})
		})
	}
	wg.Wait()
	if want := streamTotal(rate, d); n != want {
		t.Fatalf("emitted %d events, want %d", n, want)
	}
	if early > 0 {
		t.Fatalf("%d events emitted before their intended time", early)
	}
	if took := time.Duration(clk.now() - start); took < d-time.Second/rate || took > d+2*time.Second {
		t.Errorf("schedule of %v took %v", d, took)
	}
}

func TestPacerRunStopsOnCancel(t *testing.T) {
	clk := newClock()
	ctx, cancel := context.WithCancel(context.Background())
	p := newPacer(clk.now(), 100, time.Hour, 0, 1)
	done := make(chan int64)
	go func() { done <- p.run(ctx, clk, func(k, at int64) {}) }()
	time.Sleep(50 * time.Millisecond)
	cancel()
	select {
	case n := <-done:
		if n == 0 || n > 100 {
			t.Errorf("emitted %d events in ~50ms at 100/s", n)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("run did not stop after cancel")
	}
}

// TestPacerRunStopsOnCancelAtHighRate: at 2,000 events/s every wait is
// shorter than the sleeper's precise window, which does not watch ctx; the
// pacer must still stop soon after cancel, not at the end of its hour.
func TestPacerRunStopsOnCancelAtHighRate(t *testing.T) {
	clk := newClock()
	ctx, cancel := context.WithCancel(context.Background())
	p := newPacer(clk.now(), 2000, time.Hour, 0, 1)
	done := make(chan int64)
	go func() { done <- p.run(ctx, clk, func(k, at int64) {}) }()
	time.Sleep(50 * time.Millisecond)
	cancel()
	t0 := time.Now()
	select {
	case <-done:
		// 64 events at 2,000/s is 32 ms; allow for a loaded box.
		if el := time.Since(t0); el > time.Second {
			t.Errorf("stopped %v after cancel", el)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not stop after cancel")
	}
}

func TestPacerRunCatchesUpWhenLate(t *testing.T) {
	// An emitter slower than the schedule must not drop events or shift
	// their intended times: late events keep their original time.
	clk := newClock()
	p := newPacer(clk.now(), 1000, 50*time.Millisecond, 0, 1)
	var ats []int64
	p.run(context.Background(), clk, func(k, at int64) {
		ats = append(ats, at)
		if k == 0 {
			time.Sleep(30 * time.Millisecond) // stall: 30 events fall due
		}
	})
	if len(ats) != 50 {
		t.Fatalf("emitted %d events, want 50", len(ats))
	}
	for k, at := range ats {
		if want := p.Start + int64(k)*int64(time.Millisecond); at != want {
			t.Fatalf("event %d intended at %d, want %d", k, at, want)
		}
	}
}
