//go:build linux

package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"chatd/internal/metrics/metricstest"
)

// TestMetricsEndpoint scrapes a real chatd: the HTTP API's families and
// the WebSocket listener's, which the wiring adds.
func TestMetricsEndpoint(t *testing.T) {
	dir := newDataDir(t)
	f := startForeground(t, nil, addrFlags(dir)...)
	ri := waitRunInfo(t, dir, f.cmd.Process.Pid)

	conn, _, _, err := ws.Dial(context.Background(), "ws://"+ri.WSAddr+"/")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	bad, err := net.Dial("tcp", ri.WSAddr)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(bad, "GET / HTTP/1.1\r\nHost: x\r\n\r\n") // no Upgrade: rejected
	io.ReadAll(bad)
	bad.Close()

	scrape := func() metricstest.Families {
		t.Helper()
		resp, err := (&http.Client{Timeout: 5 * time.Second}).Get(ri.HTTPURL() + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		fams, err := metricstest.Parse(b)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("GET /metrics: %d %v\n%s", resp.StatusCode, err, b)
		}
		return fams
	}
	want := []struct {
		name   string
		labels []string
		value  float64
	}{
		{name: "chatd_ws_connections", value: 1},
		{name: "chatd_ws_connections_opened_total", value: 2},
		{name: "chatd_ws_handshakes_total", value: 1},
		{name: "chatd_handshake_failures_total", value: 1},
		{name: "chatd_ws_connections_closed_total", labels: []string{"reason", "handshake_failed"}, value: 1},
		{name: "chatd_ws_connections_closed_total", labels: []string{"reason", "idle"}, value: 0},
		{name: "chatd_ws_connections_refused_total", value: 0},
		{name: "chatd_clients", value: 1},
		{name: "chatd_info", labels: []string{"version", "v0.0.0-test"}, value: 1},
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		fams := scrape()
		var off []string
		for _, w := range want {
			if v, ok := fams.Value(w.name, w.labels...); !ok || v != w.value {
				off = append(off, w.name)
			}
		}
		if len(off) == 0 {
			for _, name := range []string{"chatd_ws_bytes_in_total", "process_open_fds", "process_resident_memory_bytes", "go_goroutines"} {
				if v, ok := fams.Value(name); !ok || v <= 0 {
					t.Errorf("%s = %v (present %v)", name, v, ok)
				}
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("metrics off after 10s: %v", off)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
