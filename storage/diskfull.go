package storage

import (
	"errors"
	"fmt"
	"strings"

	bolt "go.etcd.io/bbolt"

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

// Failed reports whether writes are refused until a restart: a bbolt
// commit failed other than for lack of space (see update).
func (s *Bolt) Failed() bool { return s.dbFailed.Load() }

// errDBFailed is returned by writes after a bbolt commit failed for a
// reason other than a full disk; see update.
var errDBFailed = errors.New("storage: a commit to the database file failed; restart chatd to recover (the write-ahead log holds every acknowledged write)")

// update runs fn in a bbolt write transaction. An error from fn itself
// (nothing was written: bbolt rolls back) or a commit that failed for lack
// of space is returned as is: the next attempt writes its pages afresh
// (bbolt never overwrites a page the committed tree uses), so a failed
// write is never trusted. Any other commit failure (an I/O error from a
// write or an fsync) may have left bbolt's meta page on its way to the
// disk while bbolt, having rolled back, would hand the pages it names to
// the next transaction: from then on every write is refused with
// errDBFailed until a restart, which reads whichever meta page is whole
// and replays the write-ahead log over it.
func (s *Bolt) update(fn func(tx *bolt.Tx) error) error {
	if s.dbFailed.Load() {
		return errDBFailed
	}
	var fnErr error
	err := s.db.Update(func(tx *bolt.Tx) error {
		fnErr = fn(tx)
		if e := s.failCommits.Load(); fnErr == nil && e != nil {
			return *e // a test's failed commit, not fn's error
		}
		return fnErr
	})
	if err != nil && fnErr == nil && !isDiskFull(err) {
		s.dbFailed.Store(true)
		return fmt.Errorf("%w: %w", errDBFailed, err)
	}
	return err
}
