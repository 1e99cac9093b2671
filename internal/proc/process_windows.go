//go:build windows

package proc

import (
	"errors"
	"os"
	"syscall"

	"golang.org/x/sys/windows"
)

// stillActive is GetExitCodeProcess's answer for a running process.
const stillActive = 259

// Alive reports whether a process with this pid exists and has not exited.
func Alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	h, err := windows.OpenProcess(windows.PROCESS_QUERY_LIMITED_INFORMATION, false, uint32(pid))
	if err != nil {
		// Access denied means it exists (another user's process).
		return errors.Is(err, windows.ERROR_ACCESS_DENIED)
	}
	defer windows.CloseHandle(h)
	var code uint32
	if err := windows.GetExitCodeProcess(h, &code); err != nil {
		return false
	}
	return code == stillActive
}

// Terminate is not available on Windows: a detached process has no console
// to receive Ctrl-C, and TerminateProcess would skip the journal drain.
// chatd stop uses the HTTP control endpoint instead.
func Terminate(pid int) error {
	return errors.New("no signal-based stop on Windows; use the control endpoint")
}

// CanTerminate reports whether Terminate works on this OS.
const CanTerminate = false

// ShutdownSignals are the signals that stop a foreground chatd gracefully
// (Ctrl-C and Ctrl-Break arrive as os.Interrupt; closing the console
// window as SIGTERM).
var ShutdownSignals = []os.Signal{os.Interrupt, syscall.SIGTERM}

// daemonAttr starts the child without a console and outside the parent's
// process group, so closing the console or Ctrl-C there does not stop it.
func daemonAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{
		CreationFlags: windows.CREATE_NEW_PROCESS_GROUP | windows.DETACHED_PROCESS,
		HideWindow:    true,
	}
}
