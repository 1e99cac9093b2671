package main

import (
	"path/filepath"
	"runtime"
	"strings"

	"chatd/internal/config"
)

// self is how the operator ran chatctl, so that the commands it suggests
// run as printed: main sets it from os.Args[0] (./chatctl stays
// ./chatctl); in-process callers get the installed name.
var self = "chatctl"

// invokedAs is the command that runs this chatctl again from the same
// directory: arg0 when it names a path, `go run ./cmd/chatctl` for the
// throwaway binary of go run, else "chatctl" (found on PATH).
func invokedAs(arg0 string) string {
	switch {
	case strings.Contains(arg0, "go-build") && filepath.Base(filepath.Dir(arg0)) == "exe":
		return "go run ./cmd/chatctl"
	case strings.ContainsAny(arg0, `/\`):
		return shellQuote(arg0)
	}
	return "chatctl"
}

// dataFlag is " --data DIR" when the data folder is not the default one
// chatctl finds by itself.
func (c *connFlags) dataFlag() string {
	if filepath.Clean(c.data) == filepath.Clean(config.DefaultDataDir) {
		return ""
	}
	return " --data " + shellQuote(c.data)
}

// shellQuote quotes s for a POSIX shell (double quotes on Windows) when it
// holds anything beyond letters, digits and / . _ - : @ + , = %.
func shellQuote(s string) string {
	safe := s != ""
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune(`/._-:@+,=%`, r) ||
			runtime.GOOS == "windows" && r == '\\') {
			safe = false
			break
		}
	}
	if safe {
		return s
	}
	if runtime.GOOS == "windows" {
		return `"` + s + `"`
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
