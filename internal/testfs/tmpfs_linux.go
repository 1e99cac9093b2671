//go:build linux

package testfs

import (
	"fmt"
	"syscall"
	"testing"
)

// Tmpfs mounts a tmpfs of size bytes on a new temporary folder and
// returns the folder; it is unmounted when the test ends. Where mounting
// is not allowed (not root, no CAP_SYS_ADMIN, a container without it) the
// test is skipped, saying why.
func Tmpfs(t testing.TB, size int64) string {
	t.Helper()
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, fmt.Sprintf("size=%d,mode=0700", size)); err != nil {
		t.Skipf("needs a small file system to fill: mounting a %d-byte tmpfs on %s failed (%v); run as root or with CAP_SYS_ADMIN", size, dir, err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}
