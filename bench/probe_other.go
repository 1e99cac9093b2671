//go:build !linux

package bench

import (
	"os"
	"time"
)

var probeEpoch = time.Now()

// probeNow is the stall sampler's clock: ns since the process started
// (Go's monotonic clock).
func probeNow() int64 { return int64(time.Since(probeEpoch)) }

// sleepUntilMono sleeps until probeNow reaches t. Go's timers are coarser
// than a Linux absolute sleep, so small lateness here says little.
func sleepUntilMono(t int64) {
	if d := time.Duration(t - probeNow()); d > 0 {
		time.Sleep(d)
	}
}

// datasync makes f durable: there is no fdatasync here.
func datasync(f *os.File) error { return f.Sync() }

// kernelRelease is unknown off Linux.
func kernelRelease() string { return "" }
