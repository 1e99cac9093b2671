// Package testfs gives tests a small file system of their own, to run a
// store out of space. Only tests import it.
package testfs

import (
	"os"
	"path/filepath"
	"testing"
)

// Fill writes a file of zeroes named name in dir until the file system
// refuses (out of space) and returns its path; removing it frees the
// space again. At most limit bytes are written.
func Fill(t testing.TB, dir, name string, limit int64) string {
	t.Helper()
	path := filepath.Join(dir, name)
	f, err := os.Create(path)
	if err != nil {
		t.Fatalf("filler: %v", err)
	}
	defer f.Close()
	chunk := make([]byte, 64<<10)
	var n int64
	for n < limit {
		w, err := f.Write(chunk)
		n += int64(w)
		if err != nil {
			break // full
		}
	}
	// Smaller writes take the last partial blocks too.
	small := chunk[:512]
	for n < limit {
		w, err := f.Write(small)
		n += int64(w)
		if err != nil {
			break
		}
	}
	if n >= limit {
		t.Fatalf("filler wrote %d bytes without filling %s", n, dir)
	}
	return path
}
