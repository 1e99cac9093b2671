//go:build !windows

package storage

import "syscall"

// FreeSpace returns the bytes available to chatd (not to root's reserve)
// and the total size of the file system holding dir.
func FreeSpace(dir string) (free, total uint64, err error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, 0, err
	}
	return uint64(st.Bavail) * uint64(st.Bsize), uint64(st.Blocks) * uint64(st.Bsize), nil
}
