package bench

import (
	"regexp"
	"runtime"
	"strconv"
	"testing"
	"time"
)

var epochRE = regexp.MustCompile(`zero at unix_ns=(\d+)(?: monotonic_ns=(\d+))?\)$`)

// checkTraceEpoch asserts that a trace file's header gives the run
// clock's zero: in Unix time within the last ten minutes, and on Linux on
// CLOCK_MONOTONIC too, at or before now and within the same ten minutes,
// which is what lining the file up with perf needs.
func checkTraceEpoch(t *testing.T, header string) {
	t.Helper()
	m := epochRE.FindStringSubmatch(header)
	if m == nil {
		t.Fatalf("trace header %q: no run clock zero", header)
	}
	unix, _ := strconv.ParseInt(m[1], 10, 64)
	if age := time.Since(time.Unix(0, unix)); age < 0 || age > 10*time.Minute {
		t.Errorf("trace header %q: unix_ns is %v old", header, age)
	}
	if runtime.GOOS != "linux" {
		return
	}
	if m[2] == "" {
		t.Fatalf("trace header %q: no monotonic_ns on Linux", header)
	}
	mono, _ := strconv.ParseInt(m[2], 10, 64)
	if age := time.Duration(monotonicNS() - mono); age < 0 || age > 10*time.Minute {
		t.Errorf("trace header %q: monotonic_ns is %v old", header, age)
	}
}

// TestTraceHeaderEpoch checks the header of a clock just made: its zero
// is now on both clocks.
func TestTraceHeaderEpoch(t *testing.T) {
	h := traceHeader(newClock())
	if h[len(h)-1] != '\n' {
		t.Fatalf("header %q does not end its line", h)
	}
	checkTraceEpoch(t, h[:len(h)-1])
}
