package bench

import (
	"os"

	"golang.org/x/sys/unix"
)

// probeNow is the stall sampler's clock: CLOCK_MONOTONIC, in ns.
func probeNow() int64 { return monotonicNS() }

// sleepUntilMono blocks the calling thread until CLOCK_MONOTONIC reaches
// t (ns): an absolute clock_nanosleep, so the wake-up is the kernel's
// timer plus whatever kept this thread from running.
func sleepUntilMono(t int64) {
	ts := unix.NsecToTimespec(t)
	for unix.ClockNanosleep(unix.CLOCK_MONOTONIC, unix.TIMER_ABSTIME, &ts, nil) == unix.EINTR {
	}
}

// datasync makes f's written data durable (fdatasync), as chatd's WAL does.
func datasync(f *os.File) error {
	for {
		if err := unix.Fdatasync(int(f.Fd())); err != unix.EINTR {
			return err
		}
	}
}

// kernelRelease is uname -r.
func kernelRelease() string {
	var u unix.Utsname
	if unix.Uname(&u) != nil {
		return ""
	}
	return unix.ByteSliceToString(u.Release[:])
}
