package httpapi

import (
	"io"
	"strings"
	"testing"
)

func TestPprofLoopbackOnly(t *testing.T) {
	tests := []struct {
		name   string
		path   string
		remote bool
		status int
		body   string
	}{
		{name: "index from loopback", path: "/debug/pprof/", status: 200, body: "Types of profiles available"},
		{name: "index from a remote peer", path: "/debug/pprof/", remote: true, status: 403, body: `"forbidden"`},
		{name: "heap profile from loopback", path: "/debug/pprof/heap?debug=1", status: 200, body: "heap profile:"},
		{name: "goroutine dump from loopback", path: "/debug/pprof/goroutine?debug=1", status: 200, body: "goroutine profile:"},
		{name: "remote peer", path: "/debug/pprof/heap", remote: true, status: 403, body: `"forbidden"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, nil)
			hc := h.local
			if tc.remote {
				hc = h.remote
			}
			resp, err := hc.Get(baseURL + tc.path)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status || !strings.Contains(string(b), tc.body) {
				t.Fatalf("status %d, want %d; body %.200s", resp.StatusCode, tc.status, b)
			}
		})
	}
}
