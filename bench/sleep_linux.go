//go:build linux

package bench

import (
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// timerfdTimer sleeps on a non-blocking timerfd read through Go's netpoller:
// the kernel's high-resolution timer makes the fd readable on time and the
// netpoller wakes the goroutine, with no thread parked in a syscall and no
// rounding to milliseconds.
type timerfdTimer struct {
	f   *os.File
	buf [8]byte
}

func newPreciseTimer() preciseTimer {
	fd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
	if err != nil {
		return nil
	}
	// A non-blocking fd handed to os.NewFile is registered with the netpoller.
	return &timerfdTimer{f: os.NewFile(uintptr(fd), "timerfd")}
}

func (t *timerfdTimer) sleep(d time.Duration) error {
	spec := unix.ItimerSpec{Value: unix.NsecToTimespec(int64(max(d, time.Microsecond)))}
	sc, err := t.f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := sc.Control(func(fd uintptr) { serr = unix.TimerfdSettime(int(fd), 0, &spec, nil) }); err != nil {
		return err
	}
	if serr != nil {
		return serr
	}
	_, err = t.f.Read(t.buf[:]) // parks until the expiry count is readable
	return err
}

func (t *timerfdTimer) close() { _ = t.f.Close() }
