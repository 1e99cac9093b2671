//go:build windows

package storage

import "syscall"

// diskFullErrnos are the errors that mean "no room": ERROR_DISK_FULL,
// ERROR_HANDLE_DISK_FULL, and the invented ENOSPC the standard library
// maps nothing to but may return from its own code.
var diskFullErrnos = []error{syscall.Errno(112), syscall.Errno(39), syscall.ENOSPC}
