package bench

import (
	"context"
	"time"
)

// preciseWindow is how close to a deadline a sleeper switches from the Go
// timer to its precise timer. The Go runtime rounds a timer wait in an
// idle process up to a whole millisecond (netpoll's epoll_wait takes
// milliseconds), so a schedule of 10,000 events/s slept on Go timers alone
// fires up to ~1 ms late, and that lateness lands in every open-loop
// latency figure. See sleep_linux.go.
const preciseWindow = 2 * time.Millisecond

// sleeper waits for run times on a clock. A sleeper is used by one
// goroutine; close releases it.
type sleeper struct {
	timer   *time.Timer
	precise preciseTimer // nil: Go timers only
}

// newSleeper returns a sleeper with a precise timer where the platform has
// one (Linux: a timerfd in Go's netpoller).
func newSleeper() *sleeper {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return &sleeper{timer: t, precise: newPreciseTimer()}
}

// until waits until clk reaches at. It reports false, early, when ctx ends
// during the coarse part of the wait; the precise part (the last
// preciseWindow at most) is not interrupted.
func (s *sleeper) until(ctx context.Context, clk clock, at int64) bool {
	for {
		wait := time.Duration(at - clk.now())
		if wait <= 0 {
			return true
		}
		if s.precise != nil && wait <= preciseWindow {
			if s.precise.sleep(wait) == nil {
				continue // re-check the clock: never early
			}
			s.precise.close() // broken: fall back to Go timers
			s.precise = nil
			continue
		}
		if s.precise != nil {
			// Leave the whole window to the precise timer: the Go
			// timer may fire up to ~1 ms late.
			wait -= preciseWindow
		}
		s.timer.Reset(wait)
		select {
		case <-ctx.Done():
			s.timer.Stop()
			return false
		case <-s.timer.C:
		}
	}
}

func (s *sleeper) close() {
	s.timer.Stop()
	if s.precise != nil {
		s.precise.close()
	}
}

// preciseTimer sleeps for short durations with microsecond accuracy
// without holding a thread.
type preciseTimer interface {
	sleep(d time.Duration) error
	close()
}
