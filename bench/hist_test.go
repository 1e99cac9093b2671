package bench

import (
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"
)

// exactQuantile is the nearest-rank percentile of sorted values.
func exactQuantile(sorted []int64, q float64) int64 {
	rank := int(math.Ceil(q / 100 * float64(len(sorted))))
	return sorted[max(rank-1, 0)]
}

// HDR histograms with three significant digits bound a bucket's error at
// 0.1%; nearest-rank differences at the tail add a little. chatbench's promise
// is an error well under 1%.
func TestRecorderPercentilesWithinHalfPercent(t *testing.T) {
	tests := []struct {
		name string
		gen  func(r *rand.Rand) int64 // microseconds
	}{
		{name: "uniform 1µs-10ms", gen: func(r *rand.Rand) int64 { return 1 + r.Int64N(10_000) }},
		{name: "exponential around 500µs", gen: func(r *rand.Rand) int64 { return 1 + int64(r.ExpFloat64()*500) }},
		{name: "bimodal 200µs and 80ms", gen: func(r *rand.Rand) int64 {
			if r.IntN(100) < 97 {
				return 150 + r.Int64N(100)
			}
			return 80_000 + r.Int64N(5_000)
		}},
		{name: "heavy tail up to 30s", gen: func(r *rand.Rand) int64 { return 1 + int64(math.Pow(r.Float64(), 6)*30e6) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(1, 2))
			rec := NewRecorder()
			vals := make([]int64, 50_000)
			for i := range vals {
				vals[i] = tt.gen(r)
				rec.Record(i, time.Duration(vals[i])*time.Microsecond)
			}
			slices.Sort(vals)
			got := rec.Summary()
			if got.Count != int64(len(vals)) {
				t.Fatalf("count %d, want %d", got.Count, len(vals))
			}
			for _, c := range []struct {
				name string
				q    float64
				got  int64
			}{
				{name: "p50", q: 50, got: got.P50US},
				{name: "p90", q: 90, got: got.P90US},
				{name: "p99", q: 99, got: got.P99US},
				{name: "p99.9", q: 99.9, got: got.P999US},
				{name: "max", q: 100, got: got.MaxUS},
			} {
				want := exactQuantile(vals, c.q)
				if err := math.Abs(float64(c.got-want)) / float64(want); err > 0.005 {
					t.Errorf("%s = %dµs, exact %dµs: error %.4f%% > 0.5%%", c.name, c.got, want, err*100)
				}
			}
		})
	}
}

func TestRecorderClampsAndEmpty(t *testing.T) {
	rec := NewRecorder()
	if got := rec.Summary(); got != (Latency{}) {
		t.Fatalf("empty summary = %+v, want zero", got)
	}
	rec.Record(0, -5*time.Millisecond) // clock skew: counts as 0
	rec.Record(1, 500*time.Second)     // past the top: clamped to 100s
	got := rec.Summary()
	if got.Count != 2 {
		t.Fatalf("count %d, want 2", got.Count)
	}
	if got.P50US != 0 {
		t.Errorf("negative latency recorded as %dµs, want 0", got.P50US)
	}
	if d := math.Abs(float64(got.MaxUS-histHighest)) / histHighest; d > 0.001 {
		t.Errorf("max %dµs, want clamped to %dµs", got.MaxUS, histHighest)
	}
}

func TestRecorderConcurrentWriters(t *testing.T) {
	rec := NewRecorder()
	const writers, each = 16, 2000
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				rec.Record(w*each+i, time.Duration(100+i%50)*time.Microsecond)
			}
		})
	}
	done := make(chan struct{})
	go func() { // a live reader, as the progress line is
		for {
			select {
			case <-done:
				return
			default:
				rec.Snapshot()
			}
		}
	}()
	wg.Wait()
	close(done)
	if got := rec.Summary(); got.Count != writers*each || got.MaxUS < 149 || got.MaxUS > 150 {
		t.Fatalf("summary %+v: want %d values up to 149µs", got, writers*each)
	}
}

func TestFormatMicros(t *testing.T) {
	tests := []struct {
		name string
		us   int64
		want string
	}{
		{name: "micros", us: 412, want: "412µs"},
		{name: "few millis", us: 1240, want: "1.24ms"},
		{name: "tens of millis", us: 12345, want: "12.3ms"},
		{name: "seconds", us: 1_200_000, want: "1.20s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := formatMicros(tt.us); got != tt.want {
				t.Errorf("formatMicros(%d) = %q, want %q", tt.us, got, tt.want)
			}
		})
	}
}
