package bench

import (
	"context"
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"
	"time"
)

func TestSleeperNeverEarly(t *testing.T) {
	clk := newClock()
	s := newSleeper()
	defer s.close()
	if runtime.GOOS == "linux" && s.precise == nil {
		t.Fatal("no precise timer on Linux")
	}
	for i := range 300 {
		// Both paths: the Go timer for most of a long wait, the precise
		// timer for the last preciseWindow.
		at := clk.now() + rand.Int64N(int64(3*preciseWindow/2))
		if !s.until(context.Background(), clk, at) {
			t.Fatalf("wait %d: reported a cancel that did not happen", i)
		}
		if now := clk.now(); now < at {
			t.Fatalf("wait %d: returned %v early", i, time.Duration(at-now))
		}
	}
}

func TestSleeperStopsOnCancel(t *testing.T) {
	clk := newClock()
	s := newSleeper()
	defer s.close()
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(20*time.Millisecond, cancel)
	start := time.Now()
	if s.until(ctx, clk, clk.now()+int64(time.Hour)) {
		t.Fatal("an hour-long wait reported done")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("cancel took %v to stop the wait", d)
	}
}

// BenchmarkSleeperLateness reports how late 400 µs waits (a 10,000/s
// schedule on 4 senders) wake, with the precise timer and with Go timers
// alone: go test -run x -bench SleeperLateness ./bench
func BenchmarkSleeperLateness(b *testing.B) {
	for _, tc := range []struct {
		name    string
		precise bool
	}{{name: "precise", precise: true}, {name: "go-timer"}} {
		b.Run(tc.name, func(b *testing.B) {
			clk := newClock()
			s := newSleeper()
			defer s.close()
			if !tc.precise && s.precise != nil {
				s.precise.close()
				s.precise = nil
			}
			late := make([]time.Duration, 0, b.N)
			for b.Loop() {
				at := clk.now() + int64(400*time.Microsecond)
				s.until(context.Background(), clk, at)
				late = append(late, time.Duration(clk.now()-at))
			}
			slices.Sort(late)
			b.ReportMetric(float64(late[len(late)/2].Microseconds()), "p50-late-µs")
			b.ReportMetric(float64(late[len(late)*99/100].Microseconds()), "p99-late-µs")
		})
	}
}
