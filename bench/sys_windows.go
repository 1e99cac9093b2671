//go:build windows

package bench

import "time"

// fdLimit: Windows has no per-process open-file limit like RLIMIT_NOFILE.
func fdLimit() (uint64, bool) { return 0, false }

// cpuTime is not measured on Windows.
func cpuTime() (time.Duration, bool) { return 0, false }
