package httpapi

import (
	"io"
	"os"
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

// TestPprofCmdlineShowsNoSecrets: Go's own cmdline page prints os.Args,
// where a secret flag would be; the server shows Config.Cmdline instead,
// and only the program name without it.
func TestPprofCmdlineShowsNoSecrets(t *testing.T) {
	get := func(h *harness, path string) string {
		resp, err := h.local.Get(baseURL + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d %s", path, resp.StatusCode, b)
		}
		return string(b)
	}
	h := newHarness(t, nil)
	for _, p := range []string{"/debug/pprof/cmdline", "/debug/pprof//cmdline", "/debug/pprof/%63mdline"} {
		if got := get(h, p); got != os.Args[0] {
			t.Fatalf("%s without Config.Cmdline: %q, want the program name %q alone", p, got, os.Args[0])
		}
	}
	h = newHarness(t, func(c *Config) { c.Cmdline = []string{"chatd", "--admin-key", "***", "--loops", "2"} })
	if got := get(h, "/debug/pprof/cmdline"); got != "chatd\x00--admin-key\x00***\x00--loops\x002" {
		t.Fatalf("cmdline %q", got)
	}
}
