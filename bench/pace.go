package bench

import (
	"context"
	"math"
	"time"
)

// clock is a run's time base: nanoseconds since the run's epoch on the
// monotonic clock. Every intended, sent and received time of a run is on
// this clock, so latencies never suffer from wall-clock steps. mono is the
// epoch on the system's CLOCK_MONOTONIC (0 where there is none to read),
// so that a trace file can be lined up with tools that stamp events on it,
// such as perf.
type clock struct {
	epoch time.Time
	mono  int64
}

func newClock() clock {
	before := monotonicNS()
	epoch := time.Now()
	after := monotonicNS()
	return clock{epoch: epoch, mono: before + (after-before)/2}
}

// now is the current run time in nanoseconds.
func (c clock) now() int64 { return int64(time.Since(c.epoch)) }

// Pacer is an open-loop schedule: event k (k = 0, 1, 2 …) of a stream of
// Total events at Rate per second is intended for Start + k/Rate. A pacer
// owns the events k ≡ Offset (mod Stride) of that stream, so several
// goroutines can share one schedule without coordinating: each runs a
// Pacer with the same Start, Rate and Total and its own Offset.
//
// The schedule never waits for replies; when the emitter falls behind,
// the late events are emitted at once with their original intended times.
// A Pacer is used by one goroutine.
type Pacer struct {
	Start  int64   // run time of event 0, ns
	Rate   float64 // events per second, > 0
	Total  int64   // events in the whole stream
	Offset int64   // first event this pacer owns, 0 <= Offset < Stride
	Stride int64   // >= 1

	next int64 // next event index to emit (≡ Offset mod Stride)
}

// newPacer returns a pacer for a stream of rate events/s lasting d from
// start, owning every stride-th event from offset.
func newPacer(start int64, rate float64, d time.Duration, offset, stride int) *Pacer {
	return &Pacer{Start: start, Rate: rate, Total: streamTotal(rate, d),
		Offset: int64(offset), Stride: int64(max(stride, 1)), next: int64(offset)}
}

// streamTotal is how many events a stream of rate per second holds in d:
// rate·d rounded to the nearest event.
func streamTotal(rate float64, d time.Duration) int64 {
	return int64(math.Round(rate * d.Seconds()))
}

// Intended returns the intended run time of event k, in nanoseconds.
func (p *Pacer) Intended(k int64) int64 {
	return p.Start + int64(float64(k)*1e9/p.Rate)
}

// Next returns the next event this pacer owns and its intended time;
// ok is false once the stream is exhausted.
func (p *Pacer) Next() (k, at int64, ok bool) {
	if p.next < p.Offset {
		p.next = p.Offset
	}
	if p.next >= p.Total {
		return 0, 0, false
	}
	return p.next, p.Intended(p.next), true
}

// Advance moves past the event Next returned.
func (p *Pacer) Advance() { p.next += max(p.Stride, 1) }

// Count is how many events of the stream this pacer owns.
func (p *Pacer) Count() int64 {
	s := max(p.Stride, 1)
	if p.Total <= p.Offset {
		return 0
	}
	return (p.Total - p.Offset + s - 1) / s
}

// run emits every event the pacer owns at (or, when late, right after) its
// intended time by calling emit(k, intended) on the calling goroutine,
// until the stream is exhausted or ctx is done. It returns the number of
// events emitted.
func (p *Pacer) run(ctx context.Context, clk clock, emit func(k, at int64)) int64 {
	var n int64
	sl := newSleeper()
	defer sl.close()
	for {
		k, at, ok := p.Next()
		if !ok {
			return n
		}
		// The sleeper notices ctx only in the coarse part of a wait; at
		// rates whose gaps are all inside its precise window (500/s and
		// up) every wait is precise, so look every 64 events as well.
		if n&63 == 0 && ctx.Err() != nil {
			return n
		}
		if at > clk.now() && !sl.until(ctx, clk, at) {
			return n
		}
		emit(k, at)
		p.Advance()
		n++
	}
}
