//go:build !linux

// Command syncprobe measures pipelined fdatasync on Linux only.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "syncprobe: Linux only")
	os.Exit(2)
}
