package metrics

import (
	"bytes"
	"io"
	"os"
	"syscall"
)

// readProcess fills p from /proc/self and getrlimit/getrusage.
func readProcess(p *Process) {
	p.RSS = readRSS()
	p.OpenFDs = countFDs()
	var rl syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl) == nil {
		p.MaxFDs = int64(rl.Cur)
	}
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		p.CPUSeconds = float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
	}
}

// readRSS reads the resident set size from /proc/self/statm (its second
// field, in pages); 0 on failure.
func readRSS() uint64 {
	f, err := os.Open("/proc/self/statm")
	if err != nil {
		return 0
	}
	defer f.Close()
	var buf [128]byte
	n, err := io.ReadFull(f, buf[:])
	if err != nil && err != io.ErrUnexpectedEOF {
		return 0
	}
	fields := bytes.Fields(buf[:n])
	if len(fields) < 2 {
		return 0
	}
	var pages uint64
	for _, c := range fields[1] {
		if c < '0' || c > '9' {
			return 0
		}
		pages = pages*10 + uint64(c-'0')
	}
	return pages * uint64(os.Getpagesize())
}

// countFDs counts the entries of /proc/self/fd (the directory handle
// itself included, as other exporters do); -1 on failure.
func countFDs() int {
	d, err := os.Open("/proc/self/fd")
	if err != nil {
		return -1
	}
	defer d.Close()
	n := 0
	for {
		names, err := d.Readdirnames(1024)
		n += len(names)
		if err == io.EOF {
			return n
		}
		if err != nil {
			return -1
		}
	}
}
