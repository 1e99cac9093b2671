package reactor

import (
	"errors"
	"net"
	"net/netip"
	"runtime"
	"time"

	"chatd/wsproto"
)

// Config configures a Server. Every zero value has a documented default,
// applied by New.
type Config struct {
	// Addr is the TCP listen address. Zero means ":22886". Port 0 picks a
	// free port; Addr() reports it once Ready is closed.
	Addr string
	// Loops is the number of gnet event loops. Zero means
	// runtime.GOMAXPROCS(0).
	Loops int
	// MaxConns caps the connections held at once (handshaking, open and
	// closing). Connections past it are answered with a 503 and closed in
	// OnOpen, so accept(2) never fails with EMFILE (which would stop the
	// whole gnet engine). Zero means the soft RLIMIT_NOFILE minus
	// FDReserve (10,000 on Windows). A value above that is lowered to it.
	MaxConns int
	// FDReserve is the number of file descriptors kept free for the store,
	// the HTTP side, listeners, pollers and logs. Zero means 512.
	FDReserve int
	// HandshakeTimeout closes a connection that has not completed its
	// WebSocket handshake by then. Zero means 10s.
	HandshakeTimeout time.Duration
	// PingInterval is how long an open connection may be silent before the
	// server pings it (kept below nginx's 60s proxy_read_timeout). Zero
	// means 25s. Must be shorter than IdleTimeout.
	PingInterval time.Duration
	// IdleTimeout closes (1001 "idle timeout") an open connection that has
	// sent nothing, pongs included, for this long. Zero means 60s.
	IdleTimeout time.Duration
	// CloseTimeout is how long the server waits for the client's close
	// frame (or TCP close) after sending its own before it closes the TCP
	// connection itself. Waiting lets the client read the close frame
	// instead of losing it to a TCP reset. It is also the grace Run gives
	// clients to answer "server shutting down", and the longest a client's
	// own close waits for the core to answer the messages sent before it.
	// After a protocol error (1002, 1007, 1009) the server does not wait:
	// it closes the TCP connection right behind its close frame. Zero
	// means 2s.
	CloseTimeout time.Duration
	// MaxMessage caps one inbound message, fragments reassembled. Zero
	// means 64 KiB; at most 1 GiB. Larger messages are refused with close
	// 1009.
	MaxMessage int
	// MaxOutbound caps the bytes queued for one connection: messages the
	// core has sent but the event loop has not written yet, plus what gnet
	// holds because the socket is full. A connection past it is closed as
	// a slow consumer (1008 "slow consumer"). Zero means 1 MiB; at most
	// 1 GiB.
	MaxOutbound int
	// Handshake is the upgrade policy (origins, subprotocols, head size,
	// and whether permessage-deflate is offered: Handshake.Compression).
	Handshake wsproto.HandshakeConfig
	// CompressMin is the smallest outbound message sent compressed to a
	// client that negotiated permessage-deflate; shorter ones go out as
	// they are (small JSON barely shrinks, and compressing costs a few
	// microseconds). Zero means 256 bytes.
	CompressMin int
	// TrustedProxies lists the proxies whose X-Forwarded-For or X-Real-IP
	// header is believed when one is the TCP peer: the client is the
	// right-most X-Forwarded-For entry that is not a trusted proxy.
	// Empty trusts nobody.
	TrustedProxies []netip.Prefix
}

// Defaults.
const (
	DefaultAddr             = ":22886"
	DefaultFDReserve        = 400
	DefaultHandshakeTimeout = 10 * time.Second
	DefaultPingInterval     = 25 * time.Second
	DefaultIdleTimeout      = 60 * time.Second
	DefaultCloseTimeout     = 2 * time.Second
	DefaultMaxMessage       = 64 << 10
	DefaultMaxOutbound      = 1 << 20
	// DefaultCompressMin: at 256 bytes a typical event shrinks by a
	// quarter to a third (wsproto's BenchmarkDeflateEvents).
	DefaultCompressMin = 256
	// windowsMaxConns is the connection cap on Windows, which has no
	// RLIMIT_NOFILE.
	windowsMaxConns = 10000
)

// fill applies the defaults and checks the values. fdLimit is the soft
// RLIMIT_NOFILE, or 0 when the platform has none.
func (c *Config) fill(fdLimit int) error {
	if c.Addr == "" {
		c.Addr = DefaultAddr
	}
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		return errors.New("reactor: bad Addr " + c.Addr + ": " + err.Error())
	}
	if c.Loops == 0 {
		c.Loops = runtime.GOMAXPROCS(0)
	}
	if c.FDReserve == 0 {
		c.FDReserve = DefaultFDReserve
	}
	if c.HandshakeTimeout == 0 {
		c.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if c.PingInterval == 0 {
		c.PingInterval = DefaultPingInterval
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = DefaultIdleTimeout
	}
	if c.CloseTimeout == 0 {
		c.CloseTimeout = DefaultCloseTimeout
	}
	if c.MaxMessage == 0 {
		c.MaxMessage = DefaultMaxMessage
	}
	if c.MaxOutbound == 0 {
		c.MaxOutbound = DefaultMaxOutbound
	}
	if c.CompressMin == 0 {
		c.CompressMin = DefaultCompressMin
	}
	switch {
	case c.Loops < 0, c.MaxConns < 0, c.FDReserve < 0, c.MaxMessage < 0, c.MaxOutbound < 0, c.CompressMin < 0:
		return errors.New("reactor: negative Loops, MaxConns, FDReserve, MaxMessage, MaxOutbound or CompressMin")
	case c.HandshakeTimeout < 0, c.PingInterval < 0, c.IdleTimeout < 0, c.CloseTimeout < 0:
		return errors.New("reactor: negative timeout")
	case c.MaxMessage > 1<<30:
		return errors.New("reactor: MaxMessage over 1 GiB")
	case c.MaxOutbound > 1<<30:
		// conn.pendingBytes is an int32.
		return errors.New("reactor: MaxOutbound over 1 GiB")
	case c.PingInterval >= c.IdleTimeout:
		return errors.New("reactor: PingInterval must be shorter than IdleTimeout")
	}
	if fdLimit > 0 {
		avail := fdLimit - c.FDReserve
		if avail < 1 {
			return errors.New("reactor: open-file limit leaves no room for connections after FDReserve")
		}
		if c.MaxConns == 0 || c.MaxConns > avail {
			c.MaxConns = avail
		}
	} else if c.MaxConns == 0 {
		c.MaxConns = windowsMaxConns
	}
	return nil
}

// tickInterval is how often the ticker sweeps the connections: a quarter of
// the shortest timeout, between 5ms and 1s.
func (c *Config) tickInterval() time.Duration {
	d := min(c.HandshakeTimeout, c.PingInterval, c.IdleTimeout, c.CloseTimeout) / 4
	return max(5*time.Millisecond, min(d, time.Second))
}
