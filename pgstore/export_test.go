package pgstore

import "time"

// SetLockWait sets how long Open and OpenShared wait for the database
// lock, for tests of a refusal; it returns the function that restores it.
func SetLockWait(d time.Duration) (restore func()) {
	old := nodeLockWait
	nodeLockWait = d
	return func() { nodeLockWait = old }
}
