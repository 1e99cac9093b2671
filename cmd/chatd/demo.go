package main

import (
	"net"
	"net/netip"
)

// demoURL is where a browser on this machine finds the demo pages of a
// server whose HTTP listener is bound to addr.
func demoURL(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "http://127.0.0.1:22887/demo/"
	}
	if ip, err := netip.ParseAddr(host); host == "" || (err == nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port) + "/demo/"
}
