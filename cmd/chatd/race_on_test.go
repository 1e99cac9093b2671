//go:build race

package main

// raceBuild makes TestMain build the binaries under test with -race too, so
// the real-process tests also check the wiring for data races.
const raceBuild = true
