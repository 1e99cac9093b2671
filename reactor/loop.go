package reactor

import (
	"context"
	"math"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"
)

// loop is the reactor's state for one gnet event loop. Everything except
// stats and sweepQueued is owned by that loop: touched only in gnet
// callbacks for its connections and in tasks run with el.Execute.
type loop struct {
	srv *Server
	el  gnet.EventLoop

	// conns lists the loop's connections in every state; conn.slot is each
	// one's index. Removal swaps the last one in.
	conns []*conn

	// Write scratch, reused for every connection on this loop.
	out []byte   // handshake responses and control frames (pong, ping, close)
	hdr []byte   // frame headers for one writev
	iov [][]byte // header, payload, header, payload, … for one writev
	// inflate holds a decompressed message during HandleMessage.
	inflate []byte

	// sweepQueued is set while a sweep task is queued on the loop, so a
	// slow loop never accumulates sweeps. Set by the ticker, cleared by Run.
	sweepQueued atomic.Bool

	_     [64]byte // keep the counters off the cache line of the fields above
	stats loopStats
}

// loopStats are counters written only by the loop, read by Stats.
type loopStats struct {
	opened, handshakes  atomic.Uint64
	bytesIn, bytesOut   atomic.Uint64
	framesIn, framesOut atomic.Uint64
	compressedOut       atomic.Uint64 // frames written with RSV1 (permessage-deflate)
	// directOut counts frames SendNow wrote on its caller's goroutine
	// (of framesOut); the one counter the loop shares with those callers.
	directOut atomic.Uint64
	closed    [whyCount]atomic.Uint64
}

// add registers a new connection. Called on the loop.
func (l *loop) add(c *conn) {
	c.slot = int32(len(l.conns))
	l.conns = append(l.conns, c)
}

// remove unregisters c. Called on the loop (from OnClose).
func (l *loop) remove(c *conn) {
	i := int(c.slot)
	if i < 0 || i >= len(l.conns) || l.conns[i] != c {
		return
	}
	last := len(l.conns) - 1
	if i != last {
		l.conns[i] = l.conns[last]
		l.conns[i].slot = int32(i)
	}
	l.conns[last] = nil
	l.conns = l.conns[:last]
	c.slot = -1
	// Give memory back after a burst of connections has gone.
	if cap(l.conns) > 1024 && len(l.conns) < cap(l.conns)/4 {
		l.conns = append([]*conn(nil), l.conns...)
	}
}

// Run is the periodic sweep, queued by OnTick with el.Execute: it applies the
// handshake, ping, idle and close timeouts to the loop's connections (the
// close timeout also bounds how long a client's close waits for the core to
// answer what came before it).
func (l *loop) Run(context.Context) error {
	l.sweepQueued.Store(false)
	s := l.srv
	// One clock read per sweep. A connection's clock starts at the first
	// sweep after the event that set conn.fresh, which ran earlier on
	// this same loop: so no timeout fires early, and each fires at most
	// about one tick (a quarter of the shortest timeout) late, however
	// late the ticker or the loop runs.
	now := time.Now().UnixNano()
	hs, ping, idle, closing := int64(s.cfg.HandshakeTimeout), int64(s.cfg.PingInterval),
		int64(s.cfg.IdleTimeout), int64(s.cfg.CloseTimeout)
	// Backwards, because closing a connection swaps the last one into its
	// slot, and the last one has been visited already.
	for i := len(l.conns) - 1; i >= 0; i-- {
		if i >= len(l.conns) {
			continue
		}
		c := l.conns[i]
		if c.fresh {
			c.fresh, c.stamp, c.pings = false, now, 0
			continue
		}
		switch c.state {
		case stateHandshake:
			if now-c.stamp >= hs {
				c.setWhy(whyHandshakeTimeout)
				_ = l.el.Close(c.gc)
			}
		case stateOpen:
			silent := now - c.stamp
			switch {
			case silent >= idle:
				if c.startClose(closeIdleMsg, whyIdle) == gnet.Close {
					_ = l.el.Close(c.gc)
				}
			case silent/ping > int64(c.pings) && c.pings < math.MaxUint8:
				// Once per PingInterval of silence. A client that
				// left 255 pings unanswered gets no more; the idle
				// timeout closes it.
				c.pings++
				c.ping()
			}
		case stateDraining:
			if now-c.stamp >= closing {
				// The core did not finish answering in time: the
				// close frame goes after what it did answer.
				c.mu.Lock()
				c.draining = false
				c.mu.Unlock()
				if c.flush() == gnet.Close {
					_ = l.el.Close(c.gc)
				}
			}
		case stateClosing:
			// whyPeer: the client's close came first and is answered;
			// only what gnet holds unwritten was being waited for.
			if now-c.stamp >= closing || c.why == whyPeer && c.gc.OutboundBuffered() == 0 {
				_ = l.el.Close(c.gc)
			}
		}
	}
	return nil
}

// shutdown sends close 1001 to the loop's open connections and closes the
// ones still handshaking. Run on the loop with el.Execute.
func (l *loop) shutdown(context.Context) error {
	for i := len(l.conns) - 1; i >= 0; i-- {
		if i >= len(l.conns) {
			continue
		}
		c := l.conns[i]
		switch c.state {
		case stateHandshake:
			c.setWhy(whyServer)
			_ = l.el.Close(c.gc)
		case stateOpen:
			if c.startClose(closeShutdownMsg, whyServer) == gnet.Close {
				_ = l.el.Close(c.gc)
			}
		}
	}
	return nil
}
