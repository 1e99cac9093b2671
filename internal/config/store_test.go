package config

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestStoreSetting: `store` comes from the file, the environment or the
// flag like every setting, takes only a PostgreSQL URL, and prints as a
// secret (the URL may hold a password), also in redacted arguments.
func TestStoreSetting(t *testing.T) {
	const dsn = "postgres://chatd:pw@db.internal:5432/chat?sslmode=require"
	tests := []struct {
		name    string
		setup   func(t *testing.T, dir string) (args, env []string)
		want    string
		wantErr string
	}{
		{name: "default is the bbolt file", setup: func(t *testing.T, dir string) ([]string, []string) {
			return []string{"--data", dir}, nil
		}},
		{name: "config file key", want: dsn, setup: func(t *testing.T, dir string) ([]string, []string) {
			writeFile(t, filepath.Join(dir, FileName), "store = "+dsn+"\n")
			return []string{"--data", dir}, nil
		}},
		{name: "environment", want: "postgresql:///chat?host=/run/postgresql", setup: func(t *testing.T, dir string) ([]string, []string) {
			return []string{"--data", dir}, []string{"CHATD_STORE=postgresql:///chat?host=/run/postgresql"}
		}},
		{name: "flag wins", want: dsn, setup: func(t *testing.T, dir string) ([]string, []string) {
			return []string{"--data", dir, "--store", dsn}, []string{"CHATD_STORE=postgres://other/x"}
		}},
		{name: "not a PostgreSQL URL", wantErr: "postgres://user:password@host:port/database", setup: func(t *testing.T, dir string) ([]string, []string) {
			return []string{"--data", dir, "--store", "mysql://db/chat"}, nil
		}},
		{name: "a path is not a store", wantErr: "want empty", setup: func(t *testing.T, dir string) ([]string, []string) {
			return []string{"--data", dir, "--store", "/var/lib/chat.db"}, nil
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args, env := tt.setup(t, t.TempDir())
			ld, err := load(t, args, env)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), "store") {
					t.Fatalf("err = %v, want one naming store and %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if ld.Config.Store != tt.want {
				t.Fatalf("Store = %q, want %q", ld.Config.Store, tt.want)
			}
			if s := lookup("store"); tt.want != "" && s.Display(&ld.Config) != "***" {
				t.Fatalf("store displays as %q, want ***", s.Display(&ld.Config))
			}
		})
	}
	if got := RedactArgs([]string{"chatd", "--store", dsn}); strings.Contains(strings.Join(got, " "), "pw") {
		t.Fatalf("RedactArgs kept the store URL: %q", got)
	}
}
