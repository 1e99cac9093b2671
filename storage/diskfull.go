package storage

import (
	"errors"
	"fmt"
	"strings"

	"chatd/chat"
)

// isDiskFull reports whether err says the file system has no room left
// for chatd's data: out of space (ENOSPC) or over a quota (EDQUOT), or
// their Windows equivalents. bbolt formats some of its errors with %s
// (growing the file), so the system's message is matched as well.
func isDiskFull(err error) bool {
	if err == nil {
		return false
	}
	for _, e := range diskFullErrnos {
		if errors.Is(err, e) {
			return true
		}
	}
	msg := err.Error()
	for _, e := range diskFullErrnos {
		if strings.Contains(msg, e.Error()) {
			return true
		}
	}
	return false
}

// classify marks err as chat.ErrDiskFull when it is a full disk (the core
// answers those `unavailable`, "disk full"), and notes the state for
// DiskFull; other errors pass unchanged.
func (s *Bolt) classify(err error) error {
	if err == nil || !isDiskFull(err) {
		return err
	}
	s.diskFull.Store(true)
	if errors.Is(err, chat.ErrDiskFull) {
		return err
	}
	return fmt.Errorf("%w: %w", chat.ErrDiskFull, err)
}

// DiskFull reports whether a write to the data folder (an Apply, growing
// the WAL, a checkpoint) failed for lack of space since the last Apply
// that succeeded.
func (s *Bolt) DiskFull() bool { return s.diskFull.Load() }
