//go:build !linux

package bench

// processRSS is only available on Linux.
func processRSS(int) (uint64, bool) { return 0, false }

// loadAvg is only read on Linux.
func loadAvg() (float64, bool) { return 0, false }
