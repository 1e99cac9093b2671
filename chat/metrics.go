package chat

import (
	"sync/atomic"
	"time"
)

// Histogram counts non-negative integer observations (nanoseconds, batch
// sizes) in fixed buckets. Observe is lock-free and safe from any
// goroutine; Snapshot may run concurrently with it.
type Histogram struct {
	bounds []uint64        // inclusive upper bounds, ascending; immutable
	counts []atomic.Uint64 // one per bound plus the overflow bucket
	sum    atomic.Uint64
	scale  float64 // Snapshot divides bounds and sum by it (1e9: ns → s)
}

// NewHistogram returns a histogram with the given ascending upper bounds.
// Snapshots report bounds and sum divided by scale (zero means 1).
func NewHistogram(bounds []uint64, scale float64) *Histogram {
	for i := 1; i < len(bounds); i++ {
		if bounds[i] <= bounds[i-1] {
			panic("chat: histogram bounds must ascend")
		}
	}
	if scale == 0 {
		scale = 1
	}
	return &Histogram{
		bounds: append([]uint64(nil), bounds...),
		counts: make([]atomic.Uint64, len(bounds)+1),
		scale:  scale,
	}
}

// Observe counts one observation of v.
func (h *Histogram) Observe(v uint64) {
	i := 0
	for i < len(h.bounds) && v > h.bounds[i] { // at most a few dozen buckets
		i++
	}
	h.counts[i].Add(1)
	h.sum.Add(v)
}

// HistogramSnapshot is a histogram in the shape Prometheus exposes it.
type HistogramSnapshot struct {
	// Bounds are the buckets' upper bounds in the histogram's unit
	// (seconds, writes), ascending; the +Inf bucket is implicit.
	Bounds []float64
	// Counts are cumulative: Counts[i] observations were <= Bounds[i].
	Counts []uint64
	// Count is every observation (the +Inf bucket); never below the last
	// of Counts.
	Count uint64
	// Sum is the sum of the observations in the histogram's unit.
	Sum float64
}

// Snapshot reads the histogram. Buckets are read one by one while
// observations may go on, so a snapshot can lag a concurrent Observe by
// one count; it is always internally consistent (cumulative counts never
// decrease and end at Count).
func (h *Histogram) Snapshot() HistogramSnapshot {
	s := HistogramSnapshot{
		Bounds: make([]float64, len(h.bounds)),
		Counts: make([]uint64, len(h.bounds)),
		Sum:    float64(h.sum.Load()) / h.scale,
	}
	var cum uint64
	for i, b := range h.bounds {
		s.Bounds[i] = float64(b) / h.scale
		cum += h.counts[i].Load()
		s.Counts[i] = cum
	}
	s.Count = cum + h.counts[len(h.bounds)].Load()
	return s
}

// StoreHistograms are the write journal's figures, one observation per
// group commit.
type StoreHistograms struct {
	// BatchSize is the number of writes committed together.
	BatchSize HistogramSnapshot
	// CommitSeconds is the duration of the Store.Apply of a commit (the
	// transaction and its fsync).
	CommitSeconds HistogramSnapshot
	// SendAckSeconds is, per message sent over a connection, the time from
	// its decoding to its acknowledgement being queued to the sender:
	// journal queue, commit and fsync included, the socket write not.
	SendAckSeconds HistogramSnapshot
}

// ackBounds are the send-to-ack buckets in nanoseconds, fine around the
// 2 ms latency budget.
var ackBounds = []uint64{
	100e3, 250e3, 500e3, 750e3,
	1e6, 1.5e6, 2e6, 3e6, 5e6, 7.5e6, 10e6, 25e6, 50e6, 100e6, 250e6, 500e6,
	1e9, 2.5e9,
}

// commitBounds are the commit-duration buckets in nanoseconds: 50 µs to
// 2.5 s (a durable bbolt commit costs about 0.3 ms on the reference box).
var commitBounds = []uint64{
	50e3, 100e3, 250e3, 500e3,
	1e6, 2.5e6, 5e6, 10e6, 25e6, 50e6, 100e6, 250e6, 500e6,
	1e9, 2.5e9,
}

// batchBounds are the batch-size buckets: powers of two up to the default
// MaxBatch.
var batchBounds = []uint64{1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096}

// storeHists holds a core's journal histograms. The journal goroutine
// observes into them; StoreHistograms reads them.
type storeHists struct {
	batch  *Histogram
	commit *Histogram // nanoseconds
	ack    *Histogram // nanoseconds; observed by the deliverer
}

// observe records one commit that started at start and wrote n ops.
func (h *storeHists) observe(start time.Time, n int) {
	h.commit.Observe(uint64(time.Since(start)))
	h.batch.Observe(uint64(n))
}

func newStoreHists() *storeHists {
	return &storeHists{batch: NewHistogram(batchBounds, 1), commit: NewHistogram(commitBounds, 1e9), ack: NewHistogram(ackBounds, 1e9)}
}

// StoreHistograms returns the journal's batch-size, commit-duration and
// send-to-ack histograms.
func (c *Core) StoreHistograms() StoreHistograms {
	h := c.hists
	return StoreHistograms{BatchSize: h.batch.Snapshot(), CommitSeconds: h.commit.Snapshot(), SendAckSeconds: h.ack.Snapshot()}
}

// Subscribers is the number of this node's live event-bus subscriptions.
func (c *Core) Subscribers() int { return c.bus.local() }

// Listened reports whether an event published now reaches a subscriber:
// one of this node's, or on a cluster another node's (clusterstream.go).
// Costs one atomic load.
func (c *Core) Listened() bool { return c.bus.active() }
