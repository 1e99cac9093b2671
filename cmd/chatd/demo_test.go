package main

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"chatd/internal/proc"
)

func demoStatus(t *testing.T, ri proc.RunInfo) int {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(ri.HTTPURL() + "/demo/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// The demo pages are on in the foreground (`chatd`, `chatd serve`) and
// off under `chatd daemon` unless the demo setting says otherwise.
func TestDemoDefaultFollowsProcessMode(t *testing.T) {
	for _, c := range []struct {
		name   string
		daemon bool
		serve  bool // `chatd serve` rather than `chatd`
		extra  []string
		want   int
	}{
		{name: "foreground", want: 200},
		{name: "chatd serve", serve: true, want: 200},
		{name: "foreground, demo=false", extra: []string{"--demo=false"}, want: 404},
		{name: "daemon", daemon: true, want: 404},
		{name: "daemon, demo=true", daemon: true, extra: []string{"--demo"}, want: 200},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := newDataDir(t)
			args := append(addrFlags(dir), c.extra...)
			var ri proc.RunInfo
			if c.daemon {
				if r := runBin(t, nil, chatdBin, append([]string{"daemon"}, args...)...); r.code != 0 {
					t.Fatalf("chatd daemon: %d\n%s%s", r.code, r.stdout, r.stderr)
				}
				t.Cleanup(func() { runBin(t, nil, chatdBin, "stop", "--data", dir) })
				ri = waitRunInfo(t, dir, 0)
			} else {
				if c.serve {
					args = append([]string{"serve"}, args...)
				}
				f := startForeground(t, nil, args...)
				ri = waitRunInfo(t, dir, f.cmd.Process.Pid)
				if c.want == 200 {
					// The ready line tells the operator where to look.
					deadline := time.Now().Add(10 * time.Second)
					for !strings.Contains(f.stderr.String(), demoURL(ri.HTTPAddr)) {
						if time.Now().After(deadline) {
							t.Fatalf("stderr does not name %s:\n%s", demoURL(ri.HTTPAddr), f.stderr.String())
						}
						time.Sleep(20 * time.Millisecond)
					}
				}
			}
			if got := demoStatus(t, ri); got != c.want {
				t.Fatalf("GET /demo/ = %d, want %d", got, c.want)
			}
		})
	}
}

func TestDemoURL(t *testing.T) {
	for _, c := range []struct{ name, addr, want string }{
		{name: "all interfaces", addr: ":22887", want: "http://127.0.0.1:22887/demo/"},
		{name: "unspecified v4", addr: "0.0.0.0:8080", want: "http://127.0.0.1:8080/demo/"},
		{name: "unspecified v6", addr: "[::]:8080", want: "http://127.0.0.1:8080/demo/"},
		{name: "loopback", addr: "127.0.0.1:41000", want: "http://127.0.0.1:41000/demo/"},
		{name: "ipv6 loopback", addr: "[::1]:41000", want: "http://[::1]:41000/demo/"},
	} {
		if got := demoURL(c.addr); got != c.want {
			t.Errorf("%s: demoURL(%q) = %q, want %q", c.name, c.addr, got, c.want)
		}
	}
}
