package main

import (
	"context"
	"os"
	"testing"
)

// TestMain lets the test binary stand in for chatbench when a run starts
// its stall sampler (os.Executable() is this binary in tests).
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == stallSamplerCmd {
		os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}
