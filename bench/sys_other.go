//go:build !unix && !windows

package bench

import "time"

func fdLimit() (uint64, bool) { return 0, false }

func cpuTime() (time.Duration, bool) { return 0, false }
