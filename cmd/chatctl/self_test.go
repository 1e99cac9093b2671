//go:build !windows

package main

import "testing"

// The commands chatctl suggests start the way the operator ran it.
func TestInvokedAs(t *testing.T) {
	tests := []struct {
		name, arg0, want string
	}{
		{name: "built in the working directory", arg0: "./chatctl", want: "./chatctl"},
		{name: "by absolute path", arg0: "/opt/chat/chatctl", want: "/opt/chat/chatctl"},
		{name: "path with a space", arg0: "/opt/my chat/chatctl", want: `'/opt/my chat/chatctl'`},
		{name: "found on PATH", arg0: "chatctl", want: "chatctl"},
		{name: "go run", arg0: "/tmp/go-build2961/b001/exe/chatctl", want: "go run ./cmd/chatctl"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := invokedAs(tc.arg0); got != tc.want {
				t.Fatalf("invokedAs(%q) = %q, want %q", tc.arg0, got, tc.want)
			}
		})
	}
}
