//go:build !windows

package storage

import "syscall"

// diskFullErrnos are the errors that mean "no room": out of space, over
// quota.
var diskFullErrnos = []error{syscall.ENOSPC, syscall.EDQUOT}
