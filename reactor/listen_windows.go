//go:build windows

package reactor

import "net"

// reusePort is false on Windows: gnet runs on the net package there and has
// no SO_REUSEPORT.
const reusePort = false

// fdLimit returns 0: Windows has no RLIMIT_NOFILE.
func fdLimit() int { return 0 }

// reservePort resolves port 0 in addr: it listens, reads the port, closes,
// and returns addr with that port for gnet to bind. The port could in
// principle be taken in between; on Windows that only affects port 0,
// which only tests use.
func reservePort(addr string) (string, func(), error) {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", nil, err
	}
	if port != "0" {
		return addr, func() {}, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, err
	}
	resolved := ln.Addr().String()
	if err := ln.Close(); err != nil {
		return "", nil, err
	}
	return resolved, func() {}, nil
}
