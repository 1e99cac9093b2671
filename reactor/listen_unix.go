//go:build !windows

package reactor

import (
	"net"
	"runtime"
	"strconv"

	"golang.org/x/sys/unix"
)

// reusePort reports whether gnet runs one SO_REUSEPORT listener per loop
// (so accept and OnOpen happen on the same loop).
const reusePort = true

// fdLimit returns the soft RLIMIT_NOFILE (the Go runtime has already raised
// it to the hard limit at start-up), or 0 when it is unknown or unlimited.
func fdLimit() int {
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil || rl.Cur == unix.RLIM_INFINITY || rl.Cur > 1<<30 {
		return 0
	}
	return int(rl.Cur)
}

// reservePort resolves port 0 in addr to a real port before gnet starts.
//
// With SO_REUSEPORT every gnet loop binds its own socket, so ":0" would give
// each loop a different port. reservePort binds (without listening, so no
// connection can land on it) a socket with SO_REUSEPORT on addr, reads the
// port the kernel chose, and returns addr with that port. gnet's sockets
// then join the same port; release closes the reserving socket once gnet is
// up. A non-zero port is returned unchanged with a no-op release.
//
// On platforms where gnet turns SO_REUSEPORT off for several loops (the BSD
// family other than FreeBSD/DragonFly, and macOS) the reserving socket is
// closed before returning, as on Windows.
func reservePort(addr string) (string, func(), error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", nil, err
	}
	if port != "0" {
		return addr, func() {}, nil
	}
	ta, err := net.ResolveTCPAddr("tcp", addr)
	if err != nil {
		return "", nil, err
	}
	// Mirror gnet's socket family choice (pkg/socket GetTCPSockAddr): an
	// IPv4 address binds AF_INET; no address binds dual-stack AF_INET6; an
	// IPv6 address binds AF_INET6 with IPV6_V6ONLY.
	var (
		family int
		sa     unix.Sockaddr
		v6only bool
	)
	if ip4 := ta.IP.To4(); ip4 != nil {
		family, sa = unix.AF_INET, &unix.SockaddrInet4{Addr: [4]byte(ip4)}
	} else {
		family = unix.AF_INET6
		sa6 := &unix.SockaddrInet6{}
		if ta.IP != nil {
			sa6.Addr = [16]byte(ta.IP.To16())
			v6only = true
		}
		sa = sa6
	}
	fd, err := unix.Socket(family, unix.SOCK_STREAM, unix.IPPROTO_TCP)
	if err != nil {
		return "", nil, err
	}
	unix.CloseOnExec(fd)
	release := func() { _ = unix.Close(fd) }
	if err = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEPORT, 1); err == nil && v6only {
		err = unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 1)
	}
	if err == nil {
		err = unix.Bind(fd, sa)
	}
	var bound unix.Sockaddr
	if err == nil {
		bound, err = unix.Getsockname(fd)
	}
	if err != nil {
		release()
		return "", nil, err
	}
	var p int
	switch b := bound.(type) {
	case *unix.SockaddrInet4:
		p = b.Port
	case *unix.SockaddrInet6:
		p = b.Port
	}
	resolved := net.JoinHostPort(host, strconv.Itoa(p))
	switch runtime.GOOS {
	case "linux", "freebsd", "dragonfly":
	default:
		release()
		release = func() {}
	}
	return resolved, release, nil
}
