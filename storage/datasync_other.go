//go:build !linux

package storage

import "os"

// datasync is f.Sync where there is no fdatasync.
func datasync(f *os.File) error { return f.Sync() }
