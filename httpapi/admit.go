package httpapi

import (
	"encoding/json"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"github.com/valyala/fasthttp"

	"chatd/chat"
)

// Connection admission: what keeps a flood of slow clients (slowloris)
// from taking the whole HTTP API down.
//
// Every accepted connection holds a slot until it closes, and fasthttp
// serves a connection on one goroutine that blocks reading it, so a client
// that trickles a request a byte at a time holds its slot for as long as
// the read deadlines let it. Three things bound that:
//
//   - Read deadlines that bytes do not extend (Config.HeaderTimeout and
//     BodyTimeout, fasthttp's ReadTimeout and HeaderReceived): fasthttp
//     sets each one once, at the connection's start or a request's first
//     byte and at the end of its header, never per read.
//   - A cap per client address on the general lane (Config.MaxConnsPerIP),
//     so that one host cannot hold more than its share of the slots.
//     Trusted proxies are exempt: they carry many clients.
//   - A reserved lane (Config.ReservedConns) that only Config.ReservedPeers
//     (loopback by default) may use once the MaxConns general slots are
//     all taken, and on which only /healthz and the loopback-only
//     endpoints (admin API, /metrics, /debug) are served, one request per
//     connection. However the general slots are held, the operator's
//     chatctl and a health checker on a reserved address still get in.
//
// Connections over a limit are answered at once and closed, before a byte
// of their request is read: 429 rate_limited over the per-address cap,
// 503 unavailable when no slot is free for them.

// Defaults of the admission settings.
const (
	DefaultHeaderTimeout = 10 * time.Second
	DefaultBodyTimeout   = 30 * time.Second
	DefaultMaxConnsPerIP = 64
	DefaultReservedConns = 16
)

// defaultReservedPeers are the loopback addresses.
var defaultReservedPeers = []netip.Prefix{
	netip.MustParsePrefix("127.0.0.0/8"),
	netip.MustParsePrefix("::1/128"),
}

// refuseWriteTimeout bounds the write of a refusal on the accept loop. The
// answer is a few hundred bytes on a fresh socket, whose send buffer is
// empty: the write does not block in practice.
const refuseWriteTimeout = 100 * time.Millisecond

// lane is which budget a connection's slot comes from.
type lane uint8

const (
	laneGeneral  lane = iota + 1
	laneReserved      // Config.ReservedConns, for Config.ReservedPeers
)

// admission counts the open connections per lane and per client address.
type admission struct {
	maxGeneral  int
	maxReserved int
	maxPerIP    int
	exempt      func(netip.Addr) bool // trusted proxies: no per-address cap
	reservedFor []netip.Prefix

	mu       sync.Mutex // guards general, reserved and perIP
	general  int
	reserved int
	perIP    map[netip.Addr]int

	refusedPerIP atomic.Uint64
	refusedBusy  atomic.Uint64
}

// admit takes a slot for a connection from ip (the invalid Addr for a
// non-TCP peer, which has no per-address cap and no reserved lane). It
// returns the lane, or 0 and the reason for a refusal. The per-address cap
// guards the general lane; the reserved lane is small and has its own cap.
func (a *admission) admit(ip netip.Addr) (lane, *chat.Error) {
	capped := ip.IsValid() && !a.exempt(ip)
	a.mu.Lock()
	defer a.mu.Unlock()
	overIP := capped && a.perIP[ip] >= a.maxPerIP
	switch {
	case a.general < a.maxGeneral && !overIP:
		a.general++
		if capped {
			a.perIP[ip]++
		}
		return laneGeneral, nil
	case a.reserved < a.maxReserved && a.isReserved(ip):
		a.reserved++
		return laneReserved, nil
	case overIP:
		a.refusedPerIP.Add(1)
		return 0, chat.Errf(chat.CodeRateLimited,
			"too many connections from "+ip.String()+" (at most "+strconv.Itoa(a.maxPerIP)+")")
	}
	a.refusedBusy.Add(1)
	return 0, errBusy
}

var errBusy = chat.Errf(chat.CodeUnavailable, "server busy: every HTTP connection slot is in use; retry later")

func (a *admission) isReserved(ip netip.Addr) bool {
	if !ip.IsValid() {
		return false
	}
	for _, p := range a.reservedFor {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// release gives back a slot taken by admit.
func (a *admission) release(ip netip.Addr, l lane) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if l == laneReserved {
		a.reserved--
		return
	}
	a.general--
	if ip.IsValid() && !a.exempt(ip) {
		if n := a.perIP[ip] - 1; n > 0 {
			a.perIP[ip] = n
		} else {
			delete(a.perIP, ip)
		}
	}
}

// inUse reports the slots held in each lane.
func (a *admission) inUse() (general, reserved int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.general, a.reserved
}

// admitListener admits each accepted connection before fasthttp sees it,
// and answers refused ones itself.
type admitListener struct {
	net.Listener
	a   *admission
	log zerolog.Logger
	// lastWarn is when a refusal was last logged (at most once a minute,
	// so a flood does not flood the log). Only the accept loop touches it.
	lastWarn time.Time
}

func (l *admitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ip := addrOf(c.RemoteAddr())
		ln, e := l.a.admit(ip)
		if e == nil {
			return &admitConn{Conn: c, a: l.a, ip: ip, lane: ln}, nil
		}
		refuse(c, e)
		if now := time.Now(); now.Sub(l.lastWarn) >= time.Minute {
			l.lastWarn = now
			g, r := l.a.inUse()
			l.log.Warn().Str("peer", ip.String()).Str("reason", e.Message).Int("general", g).Int("reserved", r).
				Msg("http api: refusing connections (logged at most once a minute; see chatd_http_connections_refused_total)")
		}
	}
}

// refuse answers e on c without reading the request and closes c.
func refuse(c net.Conn, e *chat.Error) {
	body, _ := json.Marshal(errorBody{Error: e})
	st := e.Code.HTTPStatus()
	b := make([]byte, 0, 160+len(body))
	b = append(b, "HTTP/1.1 "...)
	b = strconv.AppendInt(b, int64(st), 10)
	b = append(b, ' ')
	b = append(b, fasthttp.StatusMessage(st)...)
	b = append(b, "\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: "...)
	b = strconv.AppendInt(b, int64(len(body)), 10)
	b = append(b, "\r\n\r\n"...)
	b = append(b, body...)
	c.SetWriteDeadline(time.Now().Add(refuseWriteTimeout))
	c.Write(b)
	c.Close()
}

// admitConn is an admitted connection; its slot is given back once, when
// it is closed or hijacked (live streams are capped on their own).
type admitConn struct {
	net.Conn
	a        *admission
	ip       netip.Addr
	lane     lane
	released atomic.Bool
}

func (c *admitConn) release() {
	if c.released.CompareAndSwap(false, true) {
		c.a.release(c.ip, c.lane)
	}
}

func (c *admitConn) Close() error {
	c.release()
	return c.Conn.Close()
}

// reservedLane reports whether ctx's connection came in on the reserved
// lane.
func reservedLane(ctx *fasthttp.RequestCtx) bool {
	c, ok := ctx.Conn().(*admitConn)
	return ok && c.lane == laneReserved
}

// onReservedLane reports whether endpoint id may be served on the
// reserved lane: the health check and the loopback-only endpoints.
func onReservedLane(id int) bool {
	switch endpoints[id].auth {
	case authNone:
		return id == epHealth // not file downloads
	case authAdmin, authLocal:
		return true
	}
	return false
}
