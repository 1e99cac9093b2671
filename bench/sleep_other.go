//go:build !linux

package bench

// newPreciseTimer: none outside Linux; sleepers use Go timers alone.
func newPreciseTimer() preciseTimer { return nil }
