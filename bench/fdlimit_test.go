package bench

import (
	"context"
	"runtime"
	"strings"
	"testing"
)

func TestCheckFDs(t *testing.T) {
	tests := []struct {
		name     string
		sockets  int
		reserve  int
		limit    uint64
		hasLimit bool
		wantErr  []string
	}{
		{name: "fits", sockets: 19000, reserve: 64, limit: 20000, hasLimit: true},
		{name: "exactly fits", sockets: 19936, reserve: 64, limit: 20000, hasLimit: true},
		{name: "one too many", sockets: 19937, reserve: 64, limit: 20000, hasLimit: true,
			wantErr: []string{"refusing to open 19,937 sockets", "may open 20,000", "at most 19,936 sockets fit"}},
		{name: "far too many", sockets: 50000, reserve: 96, limit: 1024, hasLimit: true,
			wantErr: []string{"50,096 open files", "at most 928 sockets"}},
		{name: "no limit on this platform", sockets: 1 << 20, reserve: 64, hasLimit: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckFDs(tt.sockets, tt.reserve, tt.limit, tt.hasLimit)
			if len(tt.wantErr) == 0 {
				if err != nil {
					t.Fatalf("CheckFDs: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("CheckFDs passed, want a refusal")
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestFDLimitReadsTheProcessLimit(t *testing.T) {
	limit, ok := FDLimit()
	if runtime.GOOS == "windows" {
		if ok {
			t.Fatal("FDLimit reports a limit on Windows")
		}
		return
	}
	if !ok || limit < 64 {
		t.Fatalf("FDLimit() = %d, %v", limit, ok)
	}
}

func TestRunRefusesMoreSocketsThanTheFDLimit(t *testing.T) {
	limit, ok := FDLimit()
	if !ok {
		t.Skip("no open-file limit on this platform")
	}
	o := Options{Target: Target{WS: "127.0.0.1:1", HTTP: "127.0.0.1:2", AdminKey: "k"}}
	_, err := Run(context.Background(), o, &Connect{Conns: int(limit)})
	if err == nil || !strings.Contains(err.Error(), "refusing to open") || !strings.Contains(err.Error(), "sockets fit") {
		t.Fatalf("Run with %d connections: %v, want the open-file refusal", limit, err)
	}
}

func TestGroup3(t *testing.T) {
	tests := []struct {
		name string
		in   int64
		want string
	}{
		{name: "small", in: 999, want: "999"},
		{name: "thousands", in: 20000, want: "20,000"},
		{name: "millions", in: 1234567, want: "1,234,567"},
		{name: "negative", in: -2477, want: "-2,477"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := group3(tt.in); got != tt.want {
				t.Errorf("group3(%d) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}
