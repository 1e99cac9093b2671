package bench

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

func TestUserID(t *testing.T) {
	tests := []struct {
		name string
		i    int
		want string
	}{
		{name: "zero", i: 0, want: "bench-000000"},
		{name: "padded", i: 42, want: "bench-000042"},
		{name: "wide", i: 1234567, want: "bench-1234567"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := UserID(tt.i); got != tt.want {
				t.Errorf("UserID(%d) = %q, want %q", tt.i, got, tt.want)
			}
		})
	}
}

func TestStateRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "chatbench.json")
	st, err := LoadState(path)
	if err != nil || st.App != "" || len(st.Users) != 0 || st.Version != StateVersion {
		t.Fatalf("missing file: %+v, %v; want an empty state", st, err)
	}
	st.Server, st.App, st.Secret = "http://127.0.0.1:1", "chatbench", "s3cret"
	st.Users = []StateUser{{UID: UserID(0), Token: "t0", ExpiresAt: 99}, {UID: UserID(1)}}
	st.Groups = []StateGroup{{Key: "m100-g0", Session: 7, First: 0, Members: 100}}
	if err := st.Save(path); err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS != "windows" {
		fi, err := os.Stat(path)
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("state file mode %v (%v), want 0600: it holds the app secret", fi.Mode(), err)
		}
	}
	got, err := LoadState(path)
	if err != nil {
		t.Fatal(err)
	}
	if got.App != "chatbench" || got.Secret != "s3cret" || len(got.Users) != 2 || got.Users[0].Token != "t0" ||
		len(got.Groups) != 1 || got.Groups[0].Session != 7 {
		t.Fatalf("round trip: %+v", got)
	}
}

func TestLoadStateDiscardsForeignContent(t *testing.T) {
	tests := []struct {
		name    string
		content string
		wantErr bool
	}{
		{name: "other version", content: `{"version":99,"app":"x","users":[{"uid":"bench-000000"}]}`},
		{name: "users out of order", content: `{"version":1,"app":"x","users":[{"uid":"bench-000001"}]}`},
		{name: "not json", content: `{{{`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "s.json")
			os.WriteFile(path, []byte(tt.content), 0o600)
			st, err := LoadState(path)
			if tt.wantErr {
				if err == nil {
					t.Fatal("want an error")
				}
				return
			}
			if err != nil || st.App != "" || len(st.Users) != 0 {
				t.Fatalf("LoadState = %+v, %v; want an empty state", st, err)
			}
		})
	}
}
