//go:build unix

package proc

import (
	"bytes"
	"errors"
	"os"
	"strconv"
	"syscall"
)

// Alive reports whether a process with this pid exists and has not exited.
// A zombie (exited, not yet reaped: common when the parent is an init that
// does not reap) counts as exited.
func Alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := syscall.Kill(pid, 0)
	if err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	// Linux: /proc/<pid>/stat is "pid (comm) S ..."; comm may hold spaces
	// and parentheses, so find the last ')'.
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true // not Linux, or no /proc: trust kill(2)
	}
	if i := bytes.LastIndexByte(b, ')'); i >= 0 && i+2 < len(b) {
		return b[i+2] != 'Z' && b[i+2] != 'X'
	}
	return true
}

// Terminate asks the process to stop with SIGTERM.
func Terminate(pid int) error {
	return syscall.Kill(pid, syscall.SIGTERM)
}

// CanTerminate reports whether Terminate works on this OS.
const CanTerminate = true

// ShutdownSignals are the signals that stop a foreground chatd gracefully:
// Ctrl-C, SIGTERM (service managers, kill) and SIGHUP (the terminal closed).
var ShutdownSignals = []os.Signal{os.Interrupt, syscall.SIGTERM, syscall.SIGHUP}

// daemonAttr detaches the child into its own session: no controlling
// terminal, so closing the terminal sends it no SIGHUP, and Ctrl-C in the
// starting shell does not reach it.
func daemonAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setsid: true}
}
