package main

import (
	"path/filepath"
	"strings"

	"chatd/internal/config"
	"chatd/internal/proc"
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
		return proc.ShellQuote(arg0)
	}
	return "chatctl"
}

// dataFlag is " --data DIR" when the data folder is not the default one
// chatctl finds by itself.
func (c *connFlags) dataFlag() string {
	if filepath.Clean(c.data) == filepath.Clean(config.DefaultDataDir) {
		return ""
	}
	return " --data " + proc.ShellQuote(c.data)
}
