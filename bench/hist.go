package bench

import (
	"strconv"
	"sync"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// Histogram geometry: latencies are recorded in microseconds from 1 µs to
// 100 s with three significant digits (at most 0.1% error). Larger values
// are clamped to the top.
const (
	histLowest  = 1
	histHighest = 100_000_000 // µs
	histDigits  = 3
)

// recorderShards is how many independently locked histograms a Recorder
// holds: enough that the reader goroutines of thousands of connections
// rarely wait on each other on a 2-core box.
const recorderShards = 32

// newHistogram returns an empty histogram with the package's geometry.
func newHistogram() *hdrhistogram.Histogram {
	return hdrhistogram.New(histLowest, histHighest, histDigits)
}

// Recorder collects latencies from many goroutines into HDR histograms.
// Writers pick a shard (any int, e.g. a connection index); each shard is
// guarded by its own mutex. The zero Recorder is not usable; call
// NewRecorder.
type Recorder struct {
	shards [recorderShards]recShard
}

type recShard struct {
	mu sync.Mutex // guards h
	h  *hdrhistogram.Histogram
	_  [48]byte // keeps neighbouring shards' locks off one cache line
}

// NewRecorder returns an empty Recorder.
func NewRecorder() *Recorder {
	r := &Recorder{}
	for i := range r.shards {
		r.shards[i].h = newHistogram()
	}
	return r
}

// Record adds one latency. Negative values count as 0; values past 100 s
// are clamped to 100 s. Safe for concurrent use.
func (r *Recorder) Record(shard int, d time.Duration) {
	us := clampMicros(d)
	s := &r.shards[uint(shard)%recorderShards]
	s.mu.Lock()
	s.h.RecordValue(us) // cannot fail: us is within the geometry
	s.mu.Unlock()
}

func clampMicros(d time.Duration) int64 {
	us := int64(d / time.Microsecond)
	if us < 0 {
		return 0
	}
	if us > histHighest {
		return histHighest
	}
	return us
}

// Snapshot returns a new histogram holding everything recorded so far.
func (r *Recorder) Snapshot() *hdrhistogram.Histogram {
	out := newHistogram()
	for i := range r.shards {
		s := &r.shards[i]
		s.mu.Lock()
		out.Merge(s.h)
		s.mu.Unlock()
	}
	return out
}

// Summary returns the percentiles of everything recorded so far.
func (r *Recorder) Summary() Latency { return Summarize(r.Snapshot()) }

// Latency is a latency distribution's summary, in microseconds.
type Latency struct {
	Count  int64   `json:"count"`
	MeanUS float64 `json:"mean_us"`
	P50US  int64   `json:"p50_us"`
	P90US  int64   `json:"p90_us"`
	P99US  int64   `json:"p99_us"`
	P999US int64   `json:"p999_us"`
	MaxUS  int64   `json:"max_us"`
}

// Summarize computes h's summary. An empty histogram gives the zero
// Latency.
func Summarize(h *hdrhistogram.Histogram) Latency {
	if h.TotalCount() == 0 {
		return Latency{}
	}
	return Latency{
		Count:  h.TotalCount(),
		MeanUS: float64(int64(h.Mean()*10)) / 10,
		P50US:  h.ValueAtQuantile(50),
		P90US:  h.ValueAtQuantile(90),
		P99US:  h.ValueAtQuantile(99),
		P999US: h.ValueAtQuantile(99.9),
		MaxUS:  h.Max(),
	}
}

// formatMicros renders a latency for people: "412µs", "1.24ms", "12.3ms",
// "1.20s".
func formatMicros(us int64) string {
	switch {
	case us < 1000:
		return strconv.FormatInt(us, 10) + "µs"
	case us < 10_000:
		return strconv.FormatFloat(float64(us)/1e3, 'f', 2, 64) + "ms"
	case us < 1_000_000:
		return strconv.FormatFloat(float64(us)/1e3, 'f', 1, 64) + "ms"
	}
	return strconv.FormatFloat(float64(us)/1e6, 'f', 2, 64) + "s"
}
