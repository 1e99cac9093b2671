//go:build !linux

package bench

// monotonicNS is 0 off Linux: the trace header then gives only the epoch's
// wall time.
func monotonicNS() int64 { return 0 }
