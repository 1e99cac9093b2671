//go:build !linux

package testpg

import (
	"os"
	"testing"
)

// Server is a throw-away PostgreSQL server; this package starts one on
// Linux only (it drops root with Linux process attributes).
type Server struct{}

// Main runs the tests of m.
func Main(m *testing.M) { os.Exit(m.Run()) }

// DSN skips t: no throw-away server on this system.
func DSN(t testing.TB) string { t.Helper(); unsupported(t); return "" }

// Start skips t: no throw-away server on this system.
func Start(t testing.TB) *Server { t.Helper(); unsupported(t); return nil }

// NewDatabase is never reached (Start skipped).
func (s *Server) NewDatabase(t testing.TB) string { unsupported(t); return "" }

// Port is never reached (Start skipped).
func (s *Server) Port() int { return 0 }

// Stop does nothing.
func (s *Server) Stop() error { return nil }

func unsupported(t testing.TB) {
	t.Helper()
	if os.Getenv("CHATD_REQUIRE_INTEROP") == "1" {
		t.Fatal("testpg: throw-away PostgreSQL servers run on Linux only")
	}
	t.Skip("testpg: throw-away PostgreSQL servers run on Linux only")
}
