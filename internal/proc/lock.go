package proc

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// RunningError says another chatd holds the data folder.
type RunningError struct {
	DataDir string
	PID     int // 0 when the pid file could not be read
}

func (e *RunningError) Error() string {
	if e.PID == 0 {
		return fmt.Sprintf("another chatd is already running on data folder %s (pid unknown: %s missing)", e.DataDir, PIDFile)
	}
	return fmt.Sprintf("chatd is already running on data folder %s (pid %d); stop it with `chatd stop --data %s`", e.DataDir, e.PID, e.DataDir)
}

// errHeld is what the per-OS tryLock returns when another process holds
// the lock.
var errHeld = errors.New("lock held")

// Lock is the data folder's process lock: an OS file lock on
// dir/chatd.lock (flock on Unix, LockFileEx on Windows), released when the
// process exits however it exits. Only the holder writes chatd.pid.
type Lock struct {
	f   *os.File // owned by the holder; closing it releases the lock
	dir string
}

// acquireWait is how long Acquire retries a held lock. It covers a probe
// (status/stop take and drop the lock to test it) racing with a start.
const acquireWait = 500 * time.Millisecond

// Acquire takes dir's lock and writes the pid file. When another process
// holds it, Acquire returns a *RunningError naming that process's pid.
func Acquire(dir string) (*Lock, error) {
	path := filepath.Join(dir, LockFile)
	deadline := time.Now().Add(acquireWait)
	for {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		err = tryLock(f)
		if err == nil {
			l := &Lock{f: f, dir: dir}
			if err := writePID(dir, os.Getpid()); err != nil {
				l.unlock()
				return nil, fmt.Errorf("pid file: %w", err)
			}
			return l, nil
		}
		f.Close()
		if !errors.Is(err, errHeld) {
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		if time.Now().After(deadline) {
			pid, _ := ReadPID(dir)
			return nil, &RunningError{DataDir: dir, PID: pid}
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// Release removes the pid file and drops the lock. Call it last, after
// everything that uses the data folder has stopped.
func (l *Lock) Release() error {
	err := os.Remove(filepath.Join(l.dir, PIDFile))
	if errors.Is(err, os.ErrNotExist) {
		err = nil
	}
	return errors.Join(err, l.unlock())
}

func (l *Lock) unlock() error {
	uerr := unlock(l.f)
	return errors.Join(uerr, l.f.Close())
}

// Probe reports whether a process holds dir's lock (a server is running or
// starting) and, if so, the pid from its pid file (0 if unreadable). Probe
// takes and drops the lock when it is free.
func Probe(dir string) (held bool, pid int, err error) {
	path := filepath.Join(dir, LockFile)
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if errors.Is(err, os.ErrNotExist) {
		return false, 0, nil // never started here
	}
	if err != nil {
		return false, 0, fmt.Errorf("lock %s: %w", path, err)
	}
	defer f.Close()
	switch err := tryLock(f); {
	case err == nil:
		return false, 0, unlock(f)
	case errors.Is(err, errHeld):
		pid, _ = ReadPID(dir)
		return true, pid, nil
	default:
		return false, 0, fmt.Errorf("lock %s: %w", path, err)
	}
}
