//go:build !windows

package main

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// The commands chatd suggests are the ones the operator can paste: the
// path chatd was run by, PATH, or go run in a source tree; the data
// folder only when it is not the default; quoted when needed.
func TestNextCommand(t *testing.T) {
	const wd = "/home/ann/chatd"
	tests := []struct {
		name    string
		arg0    string
		files   []string // paths that exist
		onPath  bool     // chatctl is on PATH
		dataDir string
		want    string
	}{
		{name: "built in the working directory (README)", arg0: "./chatd", files: []string{"./chatctl"},
			dataDir: wd + "/data", want: `./chatctl app create --id myshop --name "My shop"`},
		{name: "installed side by side, other data folder", arg0: "/opt/chat/chatd", files: []string{"/opt/chat/chatctl"},
			dataDir: "/srv/chat/data", want: `/opt/chat/chatctl app create --data /srv/chat/data --id myshop --name "My shop"`},
		{name: "on PATH", arg0: "chatd", onPath: true,
			dataDir: wd + "/data", want: `chatctl app create --id myshop --name "My shop"`},
		{name: "no chatctl beside chatd, but on PATH", arg0: "./chatd", onPath: true,
			dataDir: wd + "/data", want: `chatctl app create --id myshop --name "My shop"`},
		{name: "go run in the source tree", arg0: "/tmp/go-build123/b001/exe/chatd", files: []string{"/tmp/go-build123/b001/exe/chatctl", wd + "/cmd/chatctl/main.go"},
			dataDir: wd + "/data", want: `go run ./cmd/chatctl app create --id myshop --name "My shop"`},
		{name: "nothing found: the installed name", arg0: "chatd",
			dataDir: wd + "/data", want: `chatctl app create --id myshop --name "My shop"`},
		{name: "data folder with a space and a quote", arg0: "./chatd", files: []string{"./chatctl"},
			dataDir: "/srv/my chat/ann's", want: `./chatctl app create --data '/srv/my chat/ann'\''s' --id myshop --name "My shop"`},
		{name: "path with a space", arg0: "/opt/my chat/chatd", files: []string{"/opt/my chat/chatctl"},
			dataDir: wd + "/data", want: `'/opt/my chat/chatctl' app create --id myshop --name "My shop"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := invocation{arg0: tc.arg0, wd: wd,
				look: func(name string) (string, error) {
					if tc.onPath {
						return "/usr/bin/" + name, nil
					}
					return "", errors.New("not found")
				},
				stat: func(p string) (os.FileInfo, error) {
					for _, f := range tc.files {
						if filepath.Clean(f) == filepath.Clean(p) {
							return nil, nil
						}
					}
					return nil, os.ErrNotExist
				},
			}
			if got := in.nextAppCreate(tc.dataDir); got != tc.want {
				t.Fatalf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}
