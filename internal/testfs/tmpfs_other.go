//go:build !linux

package testfs

import "testing"

// Tmpfs skips the test: mounting a small file system is only done on
// Linux.
func Tmpfs(t testing.TB, size int64) string {
	t.Helper()
	t.Skip("needs a small file system to fill: mounting a tmpfs is only done on Linux")
	return ""
}
