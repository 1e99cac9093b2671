package bench

import "golang.org/x/sys/unix"

// monotonicNS reads CLOCK_MONOTONIC, the clock perf stamps events with
// under -k mono.
func monotonicNS() int64 {
	var ts unix.Timespec
	if unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts) != nil {
		return 0
	}
	return ts.Nano()
}
