package bench

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"net/url"
	"strings"
)

// Target is the chatd server under load.
type Target struct {
	// WS is the WebSocket endpoint: "ws://host:port/path" or "host:port".
	WS string
	// WSAddrs, when not empty, replaces WS with several WebSocket
	// endpoints (the nodes of a chatd cluster): user i's connection goes
	// to WSAddrs[i mod len(WSAddrs)], so the two users of a pair (2i,
	// 2i+1) are on different nodes when there are several. Provisioning
	// still goes through HTTP, one node.
	WSAddrs []string
	// HTTP is the HTTP API base: "http://host:port" or "host:port".
	HTTP string
	// AdminKey signs /admin/ requests (the server's data/admin.key).
	AdminKey string
}

// endpoint is a Target address resolved for dialing.
type endpoint struct {
	addr netip.AddrPort // what sockets connect to
	host string         // host[:port] as the user wrote it (Host header)
	path string         // WebSocket request path, "/" at least
	base string         // HTTP base URL, "http://host:port"
}

// resolve parses raw (scheme optional) and resolves its host to one
// address. Hosts that resolve to several addresses must all be loopback
// for the target to count as loopback.
func resolveEndpoint(ctx context.Context, raw, scheme string, defPort string) (endpoint, []netip.Addr, error) {
	var e endpoint
	s := strings.TrimSpace(raw)
	if s == "" {
		return e, nil, errors.New("empty address")
	}
	if !strings.Contains(s, "://") {
		s = scheme + "://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return e, nil, errors.New("bad address " + raw + ": " + err.Error())
	}
	switch {
	case u.Scheme == "wss" || u.Scheme == "https":
		return e, nil, errors.New(raw + ": TLS is not supported; point chatbench at chatd's plain port")
	case u.Scheme != scheme:
		return e, nil, errors.New(raw + ": want a " + scheme + ":// address")
	case u.Host == "":
		return e, nil, errors.New(raw + ": missing host")
	}
	host, port := u.Hostname(), u.Port()
	if port == "" {
		port = defPort
	}
	var ips []netip.Addr
	if a, err := netip.ParseAddr(host); err == nil {
		ips = []netip.Addr{a.Unmap()}
	} else {
		found, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		if err != nil {
			return e, nil, errors.New(raw + ": resolve " + host + ": " + err.Error())
		}
		for _, a := range found {
			ips = append(ips, a.Unmap())
		}
		if len(ips) == 0 {
			return e, nil, errors.New(raw + ": " + host + " has no address")
		}
	}
	ap, err := netip.ParseAddrPort(net.JoinHostPort(ips[0].String(), port))
	if err != nil {
		return e, nil, errors.New(raw + ": bad port " + port)
	}
	e.addr = ap
	e.host = net.JoinHostPort(host, port)
	e.path = u.EscapedPath()
	if e.path == "" {
		e.path = "/"
	}
	if u.RawQuery != "" {
		e.path += "?" + u.RawQuery
	}
	e.base = "http://" + e.host
	return e, ips, nil
}

// resolved is a Target ready to dial.
type resolved struct {
	ws, http endpoint
	wsAll    []endpoint // every WebSocket endpoint, ws first; one unless Target.WSAddrs has several
	loopback bool       // every address of every endpoint is loopback
}

// wsFor is the WebSocket endpoint of user's connection: the addresses in
// turn, by user index.
func (r *resolved) wsFor(user int) endpoint { return r.wsAll[user%len(r.wsAll)] }

// resolveTarget resolves both endpoints and enforces the loopback rule:
// a non-loopback target needs allowRemote.
func resolveTarget(ctx context.Context, t Target, allowRemote bool) (resolved, error) {
	var r resolved
	raws := t.WSAddrs
	if len(raws) == 0 {
		raws = []string{t.WS}
	}
	var ips []netip.Addr
	for _, raw := range raws {
		ws, wsIPs, err := resolveEndpoint(ctx, raw, "ws", "22886")
		if err != nil {
			return r, errors.New("WebSocket address: " + err.Error())
		}
		if len(r.wsAll) > 0 && ws.addr.Addr().Is4() != r.wsAll[0].addr.Addr().Is4() {
			return r, errors.New("WebSocket addresses: " + raws[0] + " and " + raw + " are of different IP families; give all IPv4 or all IPv6")
		}
		r.wsAll = append(r.wsAll, ws)
		ips = append(ips, wsIPs...)
	}
	ht, httpIPs, err := resolveEndpoint(ctx, t.HTTP, "http", "22887")
	if err != nil {
		return r, errors.New("HTTP address: " + err.Error())
	}
	r.ws, r.http, r.loopback = r.wsAll[0], ht, true
	for _, a := range append(ips, httpIPs...) {
		if !a.IsLoopback() {
			r.loopback = false
			if !allowRemote {
				return r, errors.New("target " + a.String() + " is not a loopback address: chatbench loads only 127.0.0.0/8 (and ::1) " +
					"unless --allow-remote is given; make sure you may load that server")
			}
		}
	}
	return r, nil
}
