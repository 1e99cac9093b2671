package bench

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

func addrs(ss ...string) []netip.Addr {
	out := make([]netip.Addr, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParseAddr(s)
	}
	return out
}

func TestParseSources(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []netip.Addr
		wantErr string
	}{
		{name: "empty means none", in: "", want: nil},
		{name: "none", in: "none", want: nil},
		{name: "single", in: "127.0.0.2", want: addrs("127.0.0.2")},
		{name: "full range", in: "127.0.0.1-127.0.0.4", want: addrs("127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4")},
		{name: "last octet range", in: "127.0.0.5-7", want: addrs("127.0.0.5", "127.0.0.6", "127.0.0.7")},
		{name: "range across octets", in: "127.0.0.254-127.0.1.1", want: addrs("127.0.0.254", "127.0.0.255", "127.0.1.0", "127.0.1.1")},
		{name: "list with spaces and duplicates", in: "127.0.0.1, 127.0.0.3,127.0.0.1-2", want: addrs("127.0.0.1", "127.0.0.3", "127.0.0.2")},
		{name: "ipv6", in: "::1", want: addrs("::1")},
		{name: "default", in: DefaultSources, want: addrs("127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5", "127.0.0.6", "127.0.0.7", "127.0.0.8")},
		{name: "garbage", in: "localhost", wantErr: "bad source address"},
		{name: "reversed range", in: "127.0.0.8-127.0.0.1", wantErr: "before its start"},
		{name: "octet out of range", in: "127.0.0.1-300", wantErr: "out of 0-255"},
		{name: "huge range", in: "127.0.0.1-127.1.0.0", wantErr: "at most 1024"},
		{name: "ipv6 range", in: "::1-::5", wantErr: "IPv4 only"},
		{name: "empty item", in: "127.0.0.1,,127.0.0.2", wantErr: "empty item"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseSources(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseSources(%q) error %v, want one containing %q", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseSources(%q): %v", tt.in, err)
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("ParseSources(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

func TestCheckSources(t *testing.T) {
	tests := []struct {
		name    string
		srcs    []netip.Addr
		target  string
		wantErr string
	}{
		{name: "loopback to loopback", srcs: addrs("127.0.0.1", "127.0.0.9"), target: "127.0.0.1"},
		{name: "public source to loopback", srcs: addrs("10.0.0.1"), target: "127.0.0.1", wantErr: "cannot reach the loopback target"},
		{name: "loopback source to remote", srcs: addrs("127.0.0.2"), target: "10.0.0.5", wantErr: "cannot reach the remote target"},
		{name: "family mismatch", srcs: addrs("::1"), target: "127.0.0.1", wantErr: "different IP families"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkSources(tt.srcs, netip.MustParseAddr(tt.target))
			if tt.wantErr == "" && err != nil {
				t.Fatalf("checkSources: %v", err)
			}
			if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("checkSources error %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestResolveTargetLoopbackRule(t *testing.T) {
	tests := []struct {
		name        string
		ws, http    string
		allowRemote bool
		wantErr     string
		wantLoop    bool
		wantPath    string
	}{
		{name: "loopback host:port", ws: "127.0.0.1:22886", http: "127.0.0.1:22887", wantLoop: true, wantPath: "/"},
		{name: "other loopback address and path", ws: "ws://127.0.0.5:9/chat?x=1", http: "http://127.0.0.5:10", wantLoop: true, wantPath: "/chat?x=1"},
		{name: "ipv6 loopback", ws: "[::1]:1", http: "[::1]:2", wantLoop: true, wantPath: "/"},
		{name: "remote refused", ws: "10.1.2.3:22886", http: "127.0.0.1:22887", wantErr: "--allow-remote"},
		{name: "remote http refused", ws: "127.0.0.1:1", http: "http://192.0.2.7:22887", wantErr: "--allow-remote"},
		{name: "remote allowed", ws: "10.1.2.3:22886", http: "10.1.2.3:22887", allowRemote: true, wantPath: "/"},
		{name: "tls refused", ws: "wss://127.0.0.1:1", http: "127.0.0.1:2", wantErr: "TLS is not supported"},
		{name: "wrong scheme", ws: "http://127.0.0.1:1", http: "127.0.0.1:2", wantErr: "want a ws://"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := resolveTarget(context.Background(), Target{WS: tt.ws, HTTP: tt.http}, tt.allowRemote)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if r.loopback != tt.wantLoop || r.ws.path != tt.wantPath {
				t.Fatalf("loopback %v path %q, want %v %q", r.loopback, r.ws.path, tt.wantLoop, tt.wantPath)
			}
		})
	}
}
