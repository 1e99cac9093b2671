package bench

import (
	"errors"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// maxSources caps a source list: far more than any run needs (each source
// address gives about 28,000 ephemeral ports), small enough that a typo
// such as 127.0.0.1-127.0.255.255 is caught.
const maxSources = 1024

// DefaultSources is the source list used against a loopback IPv4 target
// when none is given: eight addresses, room for about 200,000 client
// sockets before the ephemeral-port range runs out.
const DefaultSources = "127.0.0.1-127.0.0.8"

// ParseSources parses a list of local source addresses: comma-separated
// items, each an IP address ("127.0.0.2", "::1") or an inclusive IPv4 range
// given in full ("127.0.0.1-127.0.0.8") or by its last octet
// ("127.0.0.1-8"). Duplicates are kept once, in first-seen order. An empty
// string or "none" gives an empty list: the kernel picks the source.
func ParseSources(s string) ([]netip.Addr, error) {
	s = strings.TrimSpace(s)
	if s == "" || s == "none" {
		return nil, nil
	}
	var out []netip.Addr
	seen := map[netip.Addr]bool{}
	add := func(a netip.Addr) error {
		if seen[a] {
			return nil
		}
		if len(out) == maxSources {
			return errors.New("more than " + strconv.Itoa(maxSources) + " source addresses")
		}
		seen[a] = true
		out = append(out, a)
		return nil
	}
	for item := range strings.SplitSeq(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			return nil, errors.New("empty item in source list " + strconv.Quote(s))
		}
		lo, hi, isRange := strings.Cut(item, "-")
		first, err := netip.ParseAddr(strings.TrimSpace(lo))
		if err != nil {
			return nil, errors.New("bad source address " + strconv.Quote(lo) + ": want an IP address or a range like 127.0.0.1-127.0.0.8")
		}
		first = first.Unmap()
		if !isRange {
			if err := add(first); err != nil {
				return nil, err
			}
			continue
		}
		last, err := rangeEnd(first, strings.TrimSpace(hi))
		if err != nil {
			return nil, errors.New("bad source range " + strconv.Quote(item) + ": " + err.Error())
		}
		for a := first; ; a = a.Next() {
			if err := add(a); err != nil {
				return nil, err
			}
			if a == last {
				break
			}
		}
	}
	return out, nil
}

// rangeEnd parses the end of an IPv4 range that starts at first: a full
// address or the last octet.
func rangeEnd(first netip.Addr, hi string) (netip.Addr, error) {
	if !first.Is4() {
		return netip.Addr{}, errors.New("ranges are IPv4 only")
	}
	var last netip.Addr
	if n, err := strconv.Atoi(hi); err == nil {
		if n < 0 || n > 255 {
			return netip.Addr{}, errors.New("last octet " + hi + " out of 0-255")
		}
		b := first.As4()
		b[3] = byte(n)
		last = netip.AddrFrom4(b)
	} else {
		a, err := netip.ParseAddr(hi)
		if err != nil || !a.Unmap().Is4() {
			return netip.Addr{}, errors.New("range end " + strconv.Quote(hi) + " is neither an IPv4 address nor a last octet")
		}
		last = a.Unmap()
	}
	if last.Less(first) {
		return netip.Addr{}, errors.New("range end comes before its start")
	}
	if span := v4int(last) - v4int(first) + 1; span > maxSources {
		return netip.Addr{}, errors.New("range holds " + strconv.FormatUint(uint64(span), 10) + " addresses; at most " + strconv.Itoa(maxSources))
	}
	return last, nil
}

func v4int(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

// checkSources verifies that the source list fits the target: loopback
// sources for a loopback target, non-loopback ones for a remote target,
// same IP family.
func checkSources(srcs []netip.Addr, target netip.Addr) error {
	for _, s := range srcs {
		if s.Is4() != target.Is4() {
			return errors.New("source " + s.String() + " and target " + target.String() + " are of different IP families")
		}
		if s.IsLoopback() != target.IsLoopback() {
			if target.IsLoopback() {
				return errors.New("source " + s.String() + " cannot reach the loopback target " + target.String() + "; use 127.0.0.x sources")
			}
			return errors.New("loopback source " + s.String() + " cannot reach the remote target " + target.String())
		}
	}
	return nil
}

// usableSources keeps the addresses this host can bind a socket to (on
// Linux all of 127.0.0.0/8; elsewhere often only 127.0.0.1). dropped lists
// the others.
func usableSources(srcs []netip.Addr) (ok, dropped []netip.Addr) {
	for _, a := range srcs {
		l, err := net.ListenTCP("tcp", net.TCPAddrFromAddrPort(netip.AddrPortFrom(a, 0)))
		if err != nil {
			dropped = append(dropped, a)
			continue
		}
		l.Close()
		ok = append(ok, a)
	}
	return ok, dropped
}
