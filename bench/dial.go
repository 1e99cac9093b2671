package bench

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// dialer opens client sockets to one endpoint, spreading them over the
// source addresses round-robin so that no run is limited by one address's
// ephemeral ports.
type dialer struct {
	ep      endpoint
	srcs    []netip.Addr
	timeout time.Duration
	next    atomic.Uint64
}

// dial opens one TCP connection. TCP keep-alive is off: WebSocket pings
// and HTTP idle timeouts already watch the connections, and it would cost
// four setsockopt calls per connection.
func (d *dialer) dial(ctx context.Context) (net.Conn, error) {
	nd := net.Dialer{Timeout: d.timeout, KeepAlive: -1}
	if len(d.srcs) > 0 {
		i := d.next.Add(1) - 1
		nd.LocalAddr = net.TCPAddrFromAddrPort(netip.AddrPortFrom(d.srcs[i%uint64(len(d.srcs))], 0))
		nd.Control = bindNoPort
	}
	return nd.DialContext(ctx, "tcp", d.ep.addr.String())
}

// dialContext has net/http's DialContext signature; network and addr are
// ignored (the HTTP client only ever talks to the target).
func (d *dialer) dialContext(ctx context.Context, _, _ string) (net.Conn, error) {
	return d.dial(ctx)
}

// ConnectError is a failed connection attempt: the stage that failed
// (dial, handshake, login) and a short cause for the failure table.
type ConnectError struct {
	Stage string
	Cause string
	Err   error
}

func (e *ConnectError) Error() string { return e.Stage + ": " + e.Cause }
func (e *ConnectError) Unwrap() error { return e.Err }

// Key is the failure table's row: "stage: cause".
func (e *ConnectError) Key() string { return e.Stage + ": " + e.Cause }

func connectErr(stage string, err error) *ConnectError {
	var se *ServerError
	var ue *upgradeError
	cause := ""
	switch {
	case errors.As(err, &se):
		cause = se.Code
	case errors.As(err, &ue):
		cause = ue.Error()
	default:
		var cs *closedByServer
		if errors.As(err, &cs) {
			cause = cs.Error()
		} else {
			cause = classifyNetErr(err)
		}
	}
	return &ConnectError{Stage: stage, Cause: cause, Err: err}
}

// classifyNetErr turns a socket error into a short, stable cause.
func classifyNetErr(err error) string {
	var ne net.Error
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	case errors.Is(err, syscall.EPIPE):
		return "broken pipe"
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return "no free local port (EADDRNOTAVAIL): add source addresses"
	case errors.Is(err, syscall.EADDRINUSE):
		return "local address in use"
	case errors.Is(err, syscall.EMFILE), errors.Is(err, syscall.ENFILE):
		return "too many open files"
	case errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, context.DeadlineExceeded),
		errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "closed by server"
	case errors.Is(err, net.ErrClosed):
		return "closed locally"
	}
	s := err.Error()
	if i := strings.LastIndex(s, ": "); i >= 0 {
		s = s[i+2:]
	}
	return s
}

// tokenSource gives a user's chat token and, after a login was refused as
// unauthorized, a freshly issued one.
type tokenSource interface {
	token(user int) (uid, token string)
	refresh(ctx context.Context, user int) (string, error)
}

// opener opens logged-in client connections for a run.
type opener struct {
	ds       []*dialer // one per WebSocket endpoint (resolved.wsAll): user i dials ds[placeNode(i, len(ds), unit)]
	unit     int       // users per unit kept on one address (place.go); 0 or 1: user i on ds[i mod len(ds)]
	cfg      *connCfg
	app      string
	tokens   tokenSource
	timeout  time.Duration // dial + handshake + login
	serial   atomic.Uint64
	reissued atomic.Int64 // tokens refreshed after an unauthorized login
}

// open dials, upgrades and logs in user's connection, then starts its
// reader. Failures are *ConnectError.
func (o *opener) open(ctx context.Context, user int) (*wsConn, error) {
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	d := o.ds[placeNode(user, len(o.ds), o.unit)]
	nc, err := d.dial(ctx)
	if err != nil {
		return nil, connectErr("dial", err)
	}
	deadline, _ := ctx.Deadline()
	nc.SetDeadline(deadline)
	// Closing the socket is how a canceled run interrupts a blocked
	// handshake or login.
	stop := context.AfterFunc(ctx, func() { nc.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	uid, token := o.tokens.token(user)
	c := newWSConn(nc, o.cfg, user, uid, o.serial.Add(1))
	if err := c.handshake(d.ep.host, d.ep.path); err != nil {
		nc.Close()
		return nil, connectErr("handshake", err)
	}
	err = c.loginSync(o.app, token)
	var se *ServerError
	if errors.As(err, &se) && se.Code == "unauthorized" {
		// The state file's token was revoked or the server was reset:
		// issue a new one and try once more on the same connection.
		fresh, rerr := o.tokens.refresh(ctx, user)
		if rerr != nil {
			nc.Close()
			return nil, &ConnectError{Stage: "login", Cause: "unauthorized; issuing a new token failed", Err: rerr}
		}
		o.reissued.Add(1)
		err = c.loginSync(o.app, fresh)
	}
	if err != nil {
		nc.Close()
		return nil, connectErr("login", err)
	}
	if !stop() {
		nc.Close()
		return nil, connectErr("login", ctx.Err())
	}
	nc.SetDeadline(time.Time{})
	o.cfg.tr.online.Add(1)
	c.start()
	return c, nil
}
