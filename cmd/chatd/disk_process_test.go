//go:build linux

package main

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"chatd/internal/metrics/metricstest"
)

// TestStartWithLittleFreeSpace starts a real chatd whose disk_warn_free is
// above any test machine's free space: it says so on start, and /metrics
// shows the free space and chatd_disk_low.
func TestStartWithLittleFreeSpace(t *testing.T) {
	dir := newDataDir(t)
	f := startForeground(t, nil, append(addrFlags(dir), "--disk-warn-free", "1024GiB")...)
	ri := waitRunInfo(t, dir, f.cmd.Process.Pid)
	if out := f.stderr.String(); !strings.Contains(out, "starting with little free space") {
		t.Fatalf("no low-space warning on start:\n%s", out)
	}
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get(ri.HTTPURL() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	fams, err := metricstest.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	for name, ok := range map[string]func(float64) bool{
		"chatd_disk_low":         func(v float64) bool { return v == 1 },
		"chatd_disk_full":        func(v float64) bool { return v == 0 },
		"chatd_store_failed":     func(v float64) bool { return v == 0 },
		"chatd_disk_free_bytes":  func(v float64) bool { return v > 0 },
		"chatd_disk_total_bytes": func(v float64) bool { return v > 0 },
	} {
		if v, present := fams.Value(name); !present || !ok(v) {
			t.Errorf("%s = %v (present %v)", name, v, present)
		}
	}
}
