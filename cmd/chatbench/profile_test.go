package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCPUProfileAndPortableFlags(t *testing.T) {
	dir := t.TempDir()
	unreachable := []string{"--ws", "127.0.0.1:1", "--http", "127.0.0.1:1", "--admin-key", "k", "--quiet", "--deadline", "5s"}
	tests := []struct {
		name       string
		args       []string
		wantStderr string
		profile    string // a file that must hold a CPU profile afterwards
	}{
		{
			name:       "profile written even when the run cannot take place",
			args:       append([]string{"connect", "--cpuprofile", filepath.Join(dir, "cpu.prof")}, unreachable...),
			wantStderr: "list apps",
			profile:    filepath.Join(dir, "cpu.prof"),
		},
		{
			name:       "profile path not writable",
			args:       append([]string{"connect", "--cpuprofile", filepath.Join(dir, "missing", "cpu.prof")}, unreachable...),
			wantStderr: "--cpuprofile:",
		},
		{
			name:       "portable client accepted by connect",
			args:       append([]string{"connect", "--portable"}, unreachable...),
			wantStderr: "list apps",
		},
		{
			name:       "portable is a connect flag only",
			args:       append([]string{"p2p", "--portable"}, unreachable...),
			wantStderr: "flag provided but not defined: -portable",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("CHATD_ADMIN_KEY", "")
			var out, errb bytes.Buffer
			if code := run(context.Background(), tt.args, &out, &errb); code != exitError {
				t.Errorf("exit %d, want %d; stderr:\n%s", code, exitError, errb.String())
			}
			if !strings.Contains(errb.String(), tt.wantStderr) {
				t.Errorf("stderr lacks %q:\n%s", tt.wantStderr, errb.String())
			}
			if tt.profile != "" {
				b, err := os.ReadFile(tt.profile)
				if err != nil || len(b) < 2 || b[0] != 0x1f || b[1] != 0x8b {
					t.Errorf("profile %s: %v, %d bytes: want a gzipped pprof profile", tt.profile, err, len(b))
				}
			}
		})
	}
}
