package main

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"chatd/internal/metrics"
	"chatd/internal/metrics/metricstest"
)

// TestDiskMonitor drives the monitor through a disk that fills and is
// freed again: one warning when the free space falls under the setting,
// an error when the store refuses writes, notices when each is over, and
// the gauges following along.
func TestDiskMonitor(t *testing.T) {
	var logBuf bytes.Buffer
	m := newDiskMonitor("/data", 100<<20, zerolog.New(&logBuf))
	free, full, failed := uint64(500<<20), false, false
	var statErr error
	m.statfs = func(string) (uint64, uint64, error) { return free, 1 << 30, statErr }
	m.store = func() bool { return full }
	m.failed = func() bool { return failed }

	lines := func() string { s := logBuf.String(); logBuf.Reset(); return s }
	gauge := func(name string) float64 {
		t.Helper()
		var w metrics.Writer
		m.writeMetrics(&w)
		fams, err := metricstest.Parse(w.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		v, ok := fams.Value(name)
		if !ok {
			t.Fatalf("%s missing:\n%s", name, w.Bytes())
		}
		return v
	}

	m.check(true)
	if l := lines(); l != "" {
		t.Fatalf("start with enough space logged %q", l)
	}
	if gauge("chatd_disk_free_bytes") != 500<<20 || gauge("chatd_disk_low") != 0 || gauge("chatd_disk_full") != 0 {
		t.Fatal("gauges wrong with enough space")
	}

	free = 50 << 20
	m.check(false)
	if l := lines(); !strings.Contains(l, `"level":"warn"`) || !strings.Contains(l, "running out of space") || !strings.Contains(l, "50.0 MiB") {
		t.Fatalf("falling under disk_warn_free logged %q", l)
	}
	m.check(false)
	if l := lines(); l != "" {
		t.Fatalf("staying low logged again: %q", l)
	}
	if gauge("chatd_disk_low") != 1 {
		t.Fatal("chatd_disk_low not set")
	}

	free, full = 0, true
	m.check(false)
	if l := lines(); !strings.Contains(l, `"level":"error"`) || !strings.Contains(l, "disk full: writes are refused") {
		t.Fatalf("the store refusing writes logged %q", l)
	}
	if gauge("chatd_disk_full") != 1 {
		t.Fatal("chatd_disk_full not set")
	}

	// A failing statfs keeps the last figures and still follows the store.
	statErr = errors.New("gone")
	free, full = 800<<20, false
	m.check(false)
	if l := lines(); !strings.Contains(l, "no longer full") {
		t.Fatalf("the store accepting writes again logged %q", l)
	}
	if gauge("chatd_disk_free_bytes") != 0 || gauge("chatd_disk_full") != 0 {
		t.Fatal("gauges wrong after a failed statfs")
	}
	statErr = nil
	m.check(false)
	if l := lines(); !strings.Contains(l, "enough free space again") {
		t.Fatalf("space freed logged %q", l)
	}
	if gauge("chatd_disk_low") != 0 {
		t.Fatal("chatd_disk_low still set")
	}

	// A failed commit is logged once, and shown.
	failed = true
	m.check(false)
	if l := lines(); !strings.Contains(l, `"level":"error"`) || !strings.Contains(l, "restarted") {
		t.Fatalf("a failed store logged %q", l)
	}
	m.check(false)
	if l := lines(); l != "" {
		t.Fatalf("a failed store logged again: %q", l)
	}
	if gauge("chatd_store_failed") != 1 {
		t.Fatal("chatd_store_failed not set")
	}

	// Starting low says so in a start's words.
	m2 := newDiskMonitor("/data", 100<<20, zerolog.New(&logBuf))
	m2.statfs = func(string) (uint64, uint64, error) { return 10 << 20, 1 << 30, nil }
	m2.check(true)
	if l := lines(); !strings.Contains(l, "starting with little free space") {
		t.Fatalf("starting low logged %q", l)
	}
}
