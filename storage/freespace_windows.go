//go:build windows

package storage

import "golang.org/x/sys/windows"

// FreeSpace returns the bytes available to chatd (its quota included)
// and the total size of the volume holding dir.
func FreeSpace(dir string) (free, total uint64, err error) {
	p, err := windows.UTF16PtrFromString(dir)
	if err != nil {
		return 0, 0, err
	}
	var avail, tot, totalFree uint64
	if err := windows.GetDiskFreeSpaceEx(p, &avail, &tot, &totalFree); err != nil {
		return 0, 0, err
	}
	return avail, tot, nil
}
