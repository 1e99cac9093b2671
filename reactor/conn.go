package reactor

import (
	"errors"
	"math"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"unicode/utf8"

	"github.com/panjf2000/gnet/v2"

	"chatd/chat"
	"chatd/wsproto"
)

// Connection states; owned by the loop.
const (
	stateHandshake uint8 = iota // waiting for a complete upgrade request
	stateOpen                   // WebSocket open: messages go to the core
	stateDraining               // the client's close arrived; the core answers what came before it
	stateClosing                // our close frame is sent; waiting for the client's
	stateClosed                 // OnClose has run
)

// why records the first reason the server decided to close a connection;
// OnClose counts it. whyNone at close means the client went away.
type why uint8

const (
	whyNone why = iota
	whyHandshakeTimeout
	whyHandshakeFailed
	whyIdle
	whySlow
	whyProtocol
	whyPeer
	whyServer
	whyCount
)

func (w why) String() string {
	switch w {
	case whyHandshakeTimeout:
		return "handshake timeout"
	case whyHandshakeFailed:
		return "handshake failed"
	case whyIdle:
		return "idle"
	case whySlow:
		return "slow consumer"
	case whyProtocol:
		return "protocol error"
	case whyPeer:
		return "peer"
	case whyServer:
		return "server"
	}
	return "none"
}

// Close codes the reactor sends itself.
const (
	closeNormal         = wsproto.CloseCode(1000)
	closeGoingAway      = wsproto.CloseCode(1001)
	closeUnsupported    = wsproto.CloseCode(1003)
	closeNoStatus       = wsproto.CloseCode(1005)
	closeInvalidPayload = wsproto.CloseCode(1007)
	closePolicy         = wsproto.CloseCode(1008)
	closeInternal       = wsproto.CloseCode(1011)
)

// maxWritevFrames bounds the frames in one Writev: two iovecs per frame and
// at most 1024 (IOV_MAX) per writev(2), which x/sys/unix does not split.
const maxWritevFrames = 512

// maxCloseReason is the longest close reason that fits a control frame (125
// bytes minus the 2-byte code).
const maxCloseReason = 123

// conn is one client connection and the core's chat.Peer for it.
//
// A server holds one conn per connection, so it is kept to 128 bytes (a
// malloc size class; TestConnSize pins it): what only some connections
// need lives behind pointers that are nil until used (the close frame's
// code and reason, the Reader's fragment state), the remote address is
// gnet's own *net.TCPAddr rather than a copy, and counters are narrow.
//
// Ownership is marked on each group of fields below. The connection's event
// loop (gnet callbacks for this connection and tasks run on its loop) owns
// the fields above mu and the groups marked so, except gc, h, loop and
// remote, which are read-only once the core has the Peer (h is set just
// before). mu guards pending, close, pendingBytes, slow, dead, direct and
// draining, which the core's goroutines share; closing and inHandler are
// atomics.
//
// Who writes the socket: the loop, through gnet, while direct is false;
// or a core goroutine in SendNow, holding mu, while direct is true. The
// loop clears direct (under mu, so it waits out a SendNow in progress)
// before each of its writes, and sets it again only when gnet holds no
// unwritten bytes and no close is due, so the two never interleave.
type conn struct {
	gc   gnet.Conn
	h    chat.Handler
	loop *loop
	// remote is the TCP peer: gnet's own address, whose fields gnet never
	// writes (its IP aliases gnet's immutable sockaddr). A zoned IPv6
	// address is copied instead, because gnet recycles the zone's bytes
	// when the connection closes. When the peer is a trusted proxy, the
	// handshake replaces it with the forwarded client (port 0).
	remote *net.TCPAddr

	rd    wsproto.Reader
	stamp int64 // unix nanos of the sweep that last saw fresh set (see loop.Run)

	// mu guards pending, close, pendingBytes, slow and dead. Send and
	// Close also call gc.Wake while holding it: retire marks the conn
	// dead under mu, so no Wake can run after OnClose. That matters at
	// shutdown, when gnet closes each loop's poller and eventfd right
	// after closing its connections; a late Wake would write to a closed
	// (maybe reused) fd number. Wake never blocks (a lock-free queue push
	// plus an eventfd write).
	mu      sync.Mutex
	pending *frameList // payloads queued by Send, in order; nil when empty
	// close is the close frame due after pending (or now, if slow); nil
	// until a close is requested. Set once, never changed after.
	close        *closeMsg
	pendingBytes int32 // sum of len over pending; at most MaxOutbound (≤ 1 GiB)

	// Owned by the loop.
	slot     int32 // index in loop.conns; -1 once removed
	leftover int32 // inbound bytes left buffered after the last OnTraffic
	// zmax is the longest payload sent compressed: 0 when
	// permessage-deflate was not negotiated, else the limit the client's
	// server_max_window_bits implies (capped to MaxInt32). Set at the
	// handshake.
	zmax int32

	// closing is set once a close is requested or begun; the loop stops
	// handing messages to the core. Written by any goroutine.
	closing atomic.Bool
	// inHandler is set by the loop while HandleMessage runs; the loop
	// flushes right after, so Send and Close need not wake it (saving a
	// wake-up and an allocation per synchronous reply). Read under mu.
	inHandler atomic.Bool

	// Owned by the loop.
	state uint8
	why   why
	// fresh means the state's clock restarts: set at open, at handshake
	// completion, on every inbound read while open, and when closing
	// starts. The next sweep stamps the time and clears it, so reads cost
	// a bool store and no clock.
	fresh bool
	// pings counts the pings sent since stamp (saturating): the sweep
	// pings a silent connection once per PingInterval of silence.
	pings uint8

	// Guarded by mu.
	slow bool // Send found the queue over MaxOutbound
	dead bool // OnClose has run: Send and Close are no-ops
	// direct means the socket is idle — gnet holds nothing unwritten,
	// the loop is not writing, no close is due — so SendNow may write on
	// its caller's goroutine. Set and cleared by the loop; SendNow
	// clears it when its write is cut short.
	direct bool
	// draining holds back close (the answer to the client's close frame)
	// while the core answers the messages that came before that frame:
	// Send still queues. Set by the loop in stateDraining; cleared by the
	// core's drained or Close, or by the close timeout.
	draining bool
}

// closeMsg is the close frame a connection owes its client.
type closeMsg struct {
	code   wsproto.CloseCode
	reason string
}

// The closes the reactor starts itself: shared and read-only, so that an
// idle sweep or a shutdown allocates nothing per connection.
var (
	closeSlowMsg      = &closeMsg{code: closePolicy, reason: "slow consumer"}
	closeIdleMsg      = &closeMsg{code: closeGoingAway, reason: "idle timeout"}
	closeShutdownMsg  = &closeMsg{code: closeGoingAway, reason: "server shutting down"}
	closeBinaryMsg    = &closeMsg{code: closeUnsupported, reason: "binary messages are not supported"}
	closeNoHandlerMsg = &closeMsg{code: closeInternal, reason: "no handler"}
	closeInflateMsg   = &closeMsg{code: closeInvalidPayload, reason: "invalid compressed message"}
)

// frameList is a pooled pending list. Send takes one when a connection's
// queue goes from empty to non-empty and the loop returns it after writing,
// so an idle connection holds none. raw, when set, is the unwritten end of
// a frame that SendNow began on the socket: the loop writes it first, as
// is.
type frameList struct {
	b   [][]byte
	raw []byte
}

var framePool = sync.Pool{New: func() any { return &frameList{b: make([][]byte, 0, 8)} }}

// putFrames clears fl (dropping the references to shared payloads) and pools it.
func putFrames(fl *frameList) {
	if cap(fl.b) > 4096 {
		return
	}
	clear(fl.b)
	fl.b = fl.b[:0]
	fl.raw = nil
	framePool.Put(fl)
}

var _ chat.Peer = (*conn)(nil)

// Send queues one text message. It never blocks and is safe from any
// goroutine; b is shared and never modified. It returns false when the
// connection is closing or closed, or when the bytes queued but not yet
// handed to the socket would exceed MaxOutbound; in that case the connection
// is closed as a slow consumer. (The loop re-checks the limit including
// gnet's own backlog before every write.)
func (c *conn) Send(b []byte) bool {
	c.mu.Lock()
	ok := c.queueLocked(b)
	c.mu.Unlock()
	return ok
}

// SendNow is Send, except that when the socket is idle (see direct) it
// writes b as one frame itself, on the caller's goroutine, before it
// returns: no hand-over to the loop and no wake-up. If the socket takes
// only part of the frame, the rest is queued for the loop to write first.
// A message the client negotiated compression for goes through the loop,
// which owns the shared compression cache's use. Safe from any goroutine.
func (c *conn) SendNow(b []byte) bool {
	c.mu.Lock()
	if !c.direct || c.pending != nil || c.close != nil || c.dead ||
		(c.zmax > 0 && len(b) >= c.loop.srv.cfg.CompressMin) {
		ok := c.queueLocked(b)
		c.mu.Unlock()
		return ok
	}
	var hb [wsproto.MaxHeaderLen]byte
	hdr := wsproto.AppendHeader(hb[:0], true, 0, wsproto.OpText, len(b))
	n, _ := writeDirect(c.gc.Fd(), hdr, b) // an error writes nothing: queued below
	total := len(hdr) + len(b)
	if n == total {
		c.mu.Unlock()
		l := c.loop
		l.stats.framesOut.Add(1)
		l.stats.directOut.Add(1)
		l.stats.bytesOut.Add(uint64(total))
		return true
	}
	c.direct = false
	if n <= 0 {
		// Nothing written (the socket is full, or broken: the loop
		// finds out on its own write): queue it as Send would.
		ok := c.queueLocked(b)
		c.mu.Unlock()
		return ok
	}
	// Part of the frame is on the wire: its end must go next, before
	// anything queued later, so it heads the (empty) queue as raw bytes.
	raw := make([]byte, 0, total-n)
	if n < len(hdr) {
		raw = append(raw, hdr[n:]...)
		raw = append(raw, b...)
	} else {
		raw = append(raw, b[n-len(hdr):]...)
	}
	c.pending = framePool.Get().(*frameList)
	c.pending.raw = raw
	c.pendingBytes = int32(len(raw)) // ≤ one message ≤ 1 GiB
	if !c.inHandler.Load() {
		_ = c.gc.Wake(nil)
	}
	c.mu.Unlock()
	l := c.loop
	l.stats.framesOut.Add(1)
	l.stats.directOut.Add(1) // begun directly; the loop writes only its end
	l.stats.bytesOut.Add(uint64(total))
	return true
}

// queueLocked is Send with mu held.
func (c *conn) queueLocked(b []byte) bool {
	if c.close != nil && !c.draining || c.dead {
		return false
	}
	wake := c.pending == nil
	if int(c.pendingBytes)+len(b) > c.loop.srv.cfg.MaxOutbound {
		c.slow = true
		c.close = closeSlowMsg
		c.closing.Store(true)
		if wake && !c.inHandler.Load() {
			_ = c.gc.Wake(nil)
		}
		return false
	}
	if wake {
		c.pending = framePool.Get().(*frameList)
	}
	c.pending.b = append(c.pending.b, b)
	c.pendingBytes += int32(len(b)) // ≤ MaxOutbound: checked above
	if wake && !c.inHandler.Load() {
		_ = c.gc.Wake(nil)
	}
	return true
}

// Close sends a close frame with code and reason after what is already
// queued, then closes the connection once the client answers (or after
// CloseTimeout). Safe from any goroutine; idempotent. After the client's
// own close frame, the close frame sent is the answer to it (see
// peerClose), and Close only tells the reactor not to wait for the core
// any longer.
func (c *conn) Close(code int, reason string) {
	m := &closeMsg{code: validCode(code), reason: reason}
	c.mu.Lock()
	if c.close != nil && !c.draining || c.dead {
		c.mu.Unlock()
		return
	}
	if c.close == nil {
		c.close = m
		c.closing.Store(true)
	}
	c.draining = false
	if c.pending == nil && !c.inHandler.Load() {
		_ = c.gc.Wake(nil)
	}
	c.mu.Unlock()
}

// drainer is implemented by a chat.Handler that answers messages on
// goroutines of its own (chat.Client). Drain arranges for done to be
// called, once, from any goroutine, when every message handed to
// HandleMessage so far has been answered (its replies given to the Peer);
// it reports false, and never calls done, when nothing is left to answer.
// The reactor calls it on the loop when the client's close frame arrives,
// so that those replies go out ahead of the close frame.
type drainer interface {
	Drain(done func()) bool
}

// drained is the done func a conn gives drainer.Drain: the core has
// answered what the client sent before its close, so the answer to the
// close goes out now. Safe from any goroutine.
func (c *conn) drained() {
	c.mu.Lock()
	if c.draining && !c.dead {
		c.draining = false
		if c.pending == nil { // else the Send that queued it woke the loop
			_ = c.gc.Wake(nil)
		}
	}
	c.mu.Unlock()
}

// RemoteAddr is the client's address: the TCP peer as ip:port, or the
// forwarded client IP when the peer is a trusted proxy.
func (c *conn) RemoteAddr() string {
	ap := addrPortOf(c.remote)
	if !ap.IsValid() {
		return ""
	}
	if ap.Port() == 0 {
		return ap.Addr().String()
	}
	return ap.String()
}

// validCode maps a close code the core passes to one that may be sent.
func validCode(code int) wsproto.CloseCode {
	if code < 1000 || code > 4999 || !wsproto.ValidCloseCode(wsproto.CloseCode(code)) {
		return closeNormal
	}
	return wsproto.CloseCode(code)
}

// setWhy records the close reason unless one is recorded already.
func (c *conn) setWhy(w why) {
	if c.why == whyNone {
		c.why = w
	}
}

// retire is OnClose's part: unregister, drop the queue, refuse further
// Sends. Called on the loop.
func (c *conn) retire() {
	c.state = stateClosed
	c.loop.remove(c)
	c.mu.Lock()
	c.dead = true
	fl := c.pending
	c.pending, c.pendingBytes = nil, 0
	c.mu.Unlock()
	c.closing.Store(true)
	if fl != nil {
		putFrames(fl)
	}
}

// onTraffic is OnTraffic for c: flush what the core queued, then parse new
// inbound bytes according to the state.
func (c *conn) onTraffic() gnet.Action {
	if act := c.flush(); act != gnet.None {
		return act
	}
	in := c.gc.InboundBuffered()
	if in == int(c.leftover) {
		return gnet.None // woken by Send/Close: nothing new arrived
	}
	l := c.loop
	l.stats.bytesIn.Add(uint64(in - int(c.leftover)))
	if c.state == stateOpen {
		c.fresh = true // activity: pongs and partial frames count
	}
	buf, _ := c.gc.Peek(-1) // loop-owned memory: must not escape this call
	switch c.state {
	case stateHandshake:
		return c.readHandshake(buf)
	case stateOpen:
		return c.readFrames(buf, 0)
	case stateDraining:
		// Nothing sent after a close frame is processed (RFC 6455
		// §5.5.1).
		c.leftover = 0
		_, _ = c.gc.Discard(-1)
		return gnet.None
	default:
		return c.readClosing(buf, 0)
	}
}

// errBadRequest answers a handshake error that is not a *HandshakeError.
var errBadRequest = &wsproto.HandshakeError{Status: 400, Reason: "bad request"}

// readHandshake waits for a complete upgrade request, answers it, hands the
// connection to the core and parses any frames sent right behind it.
func (c *conn) readHandshake(buf []byte) gnet.Action {
	l := c.loop
	s := l.srv
	req, n, err := wsproto.ParseHandshake(buf, &s.cfg.Handshake)
	if err == wsproto.ErrShortHandshake {
		c.leftover = int32(len(buf)) // gnet keeps it buffered; nothing consumed
		return gnet.None
	}
	if err != nil {
		var he *wsproto.HandshakeError
		if !errors.As(err, &he) {
			he = errBadRequest
		}
		c.setWhy(whyHandshakeFailed)
		l.out = wsproto.AppendHandshakeError(l.out[:0], he)
		_, _ = c.gc.Write(l.out)
		return gnet.Close // gnet flushes the response before closing
	}
	if len(s.trusted) > 0 && s.trustedPeer(addrPortOf(c.remote).Addr()) {
		if ip, ok := forwardedFor(req.XForwardedFor, req.XRealIP, s.trusted); ok {
			c.remote = &net.TCPAddr{IP: ip.AsSlice(), Zone: ip.Zone()}
		}
	}
	l.out = wsproto.AppendHandshakeResponse(l.out[:0], &req)
	if _, err := c.gc.Write(l.out); err != nil || c.state == stateClosed {
		return gnet.Close
	}
	l.stats.handshakes.Add(1)
	c.state = stateOpen
	c.fresh = true
	c.rd = newReader(s, &req)
	c.zmax = int32(min(req.Deflate.MaxCompressed(), math.MaxInt32))
	c.allowDirect() // the 101 is written; zmax is set for SendNow
	h := s.acc.Accept(c)
	if h == nil {
		c.leftover = 0
		return c.startCloseDiscard(closeNoHandlerMsg, whyServer)
	}
	c.h = h
	return c.readFrames(buf, n)
}

// readFrames parses the frames in buf[used:], hands text messages to the
// core, answers control frames, and discards exactly the bytes consumed.
func (c *conn) readFrames(buf []byte, used int) gnet.Action {
	l := c.loop
	l.out = l.out[:0] // pongs, written once after the loop
	frames, pongs := 0, 0
	handled := false
	for used < len(buf) && c.state == stateOpen {
		m, n, ok, err := c.rd.Next(buf[used:])
		if err == wsproto.ErrShortFrame {
			break
		}
		if err != nil {
			l.stats.framesIn.Add(uint64(frames))
			return c.protocolError(err, pongs)
		}
		used += n
		frames++
		if !ok {
			continue // a fragment, buffered by the Reader
		}
		switch m.Kind {
		case wsproto.KindText:
			if c.closing.Load() {
				break // the core asked to close: it wants no more
			}
			if m.Compressed {
				out, err := c.rd.Decompress(l.inflate[:0], &m)
				l.inflate = out
				if err != nil {
					l.stats.framesIn.Add(uint64(frames))
					return c.protocolError(err, pongs)
				}
			}
			// A Send or Close from inside HandleMessage skips the
			// wake-up: the flush after the loop picks it up. (If one
			// from another goroutine sees inHandler, the same flush
			// takes mu after inHandler is cleared and sees its work.)
			c.inHandler.Store(true)
			c.h.HandleMessage(m.Payload)
			c.inHandler.Store(false)
			handled = true
		case wsproto.KindBinary:
			if act := c.writeOut(pongs); act != gnet.None {
				return act
			}
			pongs = 0
			if act := c.startClose(closeBinaryMsg, whyProtocol); act != gnet.None {
				return act
			}
		case wsproto.KindPing:
			l.out = wsproto.AppendFrame(l.out, wsproto.OpPong, m.Payload)
			pongs++
		case wsproto.KindPong:
			// Activity is already recorded.
		case wsproto.KindClose:
			l.stats.framesIn.Add(uint64(frames))
			return c.peerClose(m.Code, pongs)
		}
	}
	l.stats.framesIn.Add(uint64(frames))
	if cap(l.inflate) > inflateKeep {
		l.inflate = nil
	}
	if act := c.writeOut(pongs); act != gnet.None {
		return act
	}
	if handled {
		// What the core queued during HandleMessage goes out now; it
		// did not wake the loop (see inHandler).
		if act := c.flush(); act != gnet.None {
			return act
		}
	} else if pongs > 0 {
		c.allowDirect() // the pongs are written
	}
	if c.state == stateClosing {
		return c.readClosing(buf, used)
	}
	c.leftover = int32(len(buf) - used)
	if used > 0 { // Discard(0) would drop everything
		_, _ = c.gc.Discard(used)
	}
	return gnet.None
}

// inflateKeep is the largest decompression scratch a loop keeps.
const inflateKeep = 256 << 10

// protocolError fails the connection (RFC 6455 §7.1.7) for a violation
// in the client's bytes (err from wsproto): the pongs gathered so far,
// what the core queued, the close frame with the violation's code, and
// then the TCP close at once. The stream cannot be parsed past the
// violation, so nothing after it is processed, and waiting for the
// client's close frame would only wait for CloseTimeout.
func (c *conn) protocolError(err error, pongs int) gnet.Action {
	m := closeInflateMsg
	var ce *wsproto.CloseError
	if errors.As(err, &ce) {
		m = &closeMsg{code: ce.Code, reason: ce.Reason}
	}
	if act := c.writeOut(pongs); act != gnet.None {
		return act
	}
	c.startClose(m, whyProtocol)
	return gnet.Close // gnet writes what it holds, then closes
}

// peerClose answers the client's close frame, code being its code: the
// pongs gathered so far, the replies to the messages the client sent
// before the frame, a close frame echoing its code, and then the TCP close
// (the server closes first, RFC 6455 §7.1.1). Nothing the client sends
// after its close frame is processed (§5.5.1). When the core answers off
// the loop (drainer), the connection waits in stateDraining until it has
// (see drained), at most CloseTimeout. Called on the loop.
func (c *conn) peerClose(code wsproto.CloseCode, pongs int) gnet.Action {
	c.setWhy(whyPeer)
	if act := c.writeOut(pongs); act != gnet.None {
		return act
	}
	if code == 0 || code == closeNoStatus {
		code = closeNormal
	}
	c.state = stateDraining
	c.fresh = true
	c.leftover = 0
	_, _ = c.gc.Discard(-1) // whatever followed the close frame
	d, wait := c.h.(drainer)
	c.mu.Lock()
	if c.close == nil {
		c.close = &closeMsg{code: code}
	} else {
		wait = false // the core is closing already: its close is the answer
	}
	c.draining = wait
	c.direct = false
	c.mu.Unlock()
	c.closing.Store(true)
	if wait && !d.Drain(c.drained) {
		c.mu.Lock()
		c.draining = false
		c.mu.Unlock()
	}
	return c.flush()
}

// readClosing handles bytes that arrive after our close frame, from
// buf[used:]: it closes the connection at the client's close frame and
// ignores everything else. Bytes that break the protocol close it too:
// nothing after them can be parsed, so the client's close frame would
// never be found.
func (c *conn) readClosing(buf []byte, used int) gnet.Action {
	for used < len(buf) {
		m, n, ok, err := c.rd.Next(buf[used:])
		if err == wsproto.ErrShortFrame {
			break
		}
		if err != nil {
			return gnet.Close
		}
		if ok && m.Kind == wsproto.KindClose {
			return gnet.Close
		}
		used += n
	}
	c.leftover = int32(len(buf) - used)
	if used > 0 { // Discard(0) would drop everything
		_, _ = c.gc.Discard(used)
	}
	return gnet.None
}

// writeOut writes loop.out, which holds the control frames (pongs, a
// ping, a close) gathered for c, and empties it. Called on the loop.
func (c *conn) writeOut(frames int) gnet.Action {
	l := c.loop
	if len(l.out) == 0 {
		return gnet.None
	}
	c.mu.Lock()
	c.direct = false // the loop writes now (see direct)
	c.mu.Unlock()
	l.stats.bytesOut.Add(uint64(len(l.out)))
	l.stats.framesOut.Add(uint64(frames))
	_, err := c.gc.Write(l.out)
	l.out = l.out[:0]
	if err != nil || c.state == stateClosed {
		return gnet.Close
	}
	return gnet.None
}

// startClose requests the close m (unless one is already requested) and
// flushes: queued messages, then the close frame; the connection moves to
// stateClosing. m is kept: shared or new, never modified. Called on the
// loop.
func (c *conn) startClose(m *closeMsg, w why) gnet.Action {
	c.setWhy(w)
	c.mu.Lock()
	if c.close == nil {
		c.close = m
	}
	c.mu.Unlock()
	c.closing.Store(true)
	return c.flush()
}

// startCloseDiscard is startClose after a protocol error: the offending
// frame cannot be consumed, so everything buffered is dropped and the
// reader starts afresh (see readClosing).
func (c *conn) startCloseDiscard(m *closeMsg, w why) gnet.Action {
	c.rd.Reset()
	if act := c.startClose(m, w); act != gnet.None {
		return act
	}
	c.leftover = 0
	_, _ = c.gc.Discard(-1) // everything
	return gnet.None
}

// flush writes the messages the core queued, each as one text frame, in as
// few writev calls as possible, then the close frame if one is due. A
// connection whose backlog (queued plus gnet's) would pass MaxOutbound is
// closed as a slow consumer instead. Called on the loop.
func (c *conn) flush() gnet.Action {
	if c.state != stateOpen && c.state != stateDraining {
		if c.state == stateClosed {
			return gnet.Close
		}
		return gnet.None
	}
	c.mu.Lock()
	fl, n := c.pending, int(c.pendingBytes)
	cm, slow := c.close, c.slow
	if cm != nil && c.draining {
		cm = nil // not yet: the core is still answering (see peerClose)
	}
	if fl == nil && cm == nil {
		// Nothing to write: the socket is SendNow's again if gnet has
		// drained any backlog since the last write.
		c.allowDirectLocked()
		c.mu.Unlock()
		return gnet.None
	}
	c.pending, c.pendingBytes = nil, 0
	c.direct = false // the loop writes now (see direct)
	c.mu.Unlock()

	l := c.loop
	s := l.srv
	if fl != nil && fl.raw != nil {
		// The end of a frame SendNow began goes first, whatever follows
		// (it was counted when SendNow began it).
		_, err := c.gc.Write(fl.raw)
		n -= len(fl.raw)
		fl.raw = nil
		if err != nil || c.state == stateClosed {
			putFrames(fl)
			return gnet.Close
		}
	}
	if fl != nil {
		if slow || c.gc.OutboundBuffered()+n > s.cfg.MaxOutbound {
			putFrames(fl)
			c.mu.Lock()
			c.slow = true
			if c.close == nil {
				c.close = closeSlowMsg
			}
			c.mu.Unlock()
			c.closing.Store(true)
			return c.closeSlow()
		}
		err := c.writeFrames(fl.b)
		putFrames(fl)
		if err != nil || c.state == stateClosed {
			return gnet.Close
		}
		s.notePeak(uint64(c.gc.OutboundBuffered()))
	}
	if cm == nil {
		c.allowDirect()
		return gnet.None
	}
	if slow {
		return c.closeSlow()
	}
	c.setWhy(whyServer)
	l.out = wsproto.AppendClose(l.out[:0], cm.code, truncateReason(cm.reason))
	if act := c.writeOut(1); act != gnet.None {
		return act
	}
	if c.state == stateDraining && c.gc.OutboundBuffered() == 0 {
		return gnet.Close // the client's close is answered and all is written
	}
	// Wait for the client's close, or (after the client's) for gnet to
	// write what the socket has not taken yet; the sweep checks.
	c.state = stateClosing
	c.fresh = true
	return gnet.None
}

// allowDirect hands the socket to SendNow when gnet holds nothing
// unwritten and no close is due. Called on the loop after it wrote.
func (c *conn) allowDirect() {
	c.mu.Lock()
	c.allowDirectLocked()
	c.mu.Unlock()
}

// allowDirectLocked is allowDirect with mu held.
func (c *conn) allowDirectLocked() {
	c.direct = c.state == stateOpen && c.close == nil && !c.dead && c.gc.OutboundBuffered() == 0
}

// closeSlow closes a slow consumer: what the core queued and did not write
// is dropped, and the close frame (1008 "slow consumer") goes behind the
// bytes gnet already holds, which stay at most MaxOutbound. The connection
// then waits in stateClosing, like any server-initiated close: a client
// that is only slow reads up to the close frame and learns why, and one
// that stopped reading is cut off after CloseTimeout. Called on the loop.
func (c *conn) closeSlow() gnet.Action {
	c.setWhy(whySlow)
	l := c.loop
	l.out = wsproto.AppendClose(l.out[:0], closeSlowMsg.code, closeSlowMsg.reason)
	if act := c.writeOut(1); act != gnet.None {
		return act
	}
	c.state = stateClosing
	c.fresh = true
	return gnet.None
}

// writeFrames writes payloads as text frames with Writev: header1,
// payload1, header2, payload2, … The payloads are shared and only read.
// On a connection that negotiated permessage-deflate, a payload of at
// least CompressMin bytes (and short enough for the client's window) goes
// out compressed, with RSV1, from the shared cache (see zcache).
func (c *conn) writeFrames(payloads [][]byte) error {
	l := c.loop
	s := l.srv
	total, frames, compressed := 0, len(payloads), 0
	for len(payloads) > 0 {
		batch := payloads[:min(len(payloads), maxWritevFrames)]
		payloads = payloads[len(batch):]
		// Room for every header up front: iov points into hdr, so it
		// must not move while the batch is built.
		if need := len(batch) * wsproto.MaxHeaderLen; cap(l.hdr) < need {
			l.hdr = make([]byte, 0, need)
		}
		hdr := l.hdr[:0]
		iov := l.iov[:0]
		for _, p := range batch {
			body, rsv := p, uint8(0)
			if n := len(p); c.zmax > 0 && n >= s.cfg.CompressMin && n <= int(c.zmax) {
				if z := s.zc.compressed(p); z != nil {
					body, rsv = z, wsproto.Rsv1
					compressed++
				}
			}
			off := len(hdr)
			hdr = wsproto.AppendHeader(hdr, true, rsv, wsproto.OpText, len(body))
			iov = append(iov, hdr[off:len(hdr):len(hdr)])
			if len(body) > 0 {
				iov = append(iov, body)
			}
			total += len(hdr) - off + len(body)
		}
		l.hdr = hdr
		l.iov = iov
		_, err := c.gc.Writev(iov)
		clear(iov)
		if err != nil {
			return err
		}
		if c.state == stateClosed {
			return nil
		}
	}
	l.stats.framesOut.Add(uint64(frames))
	l.stats.bytesOut.Add(uint64(total))
	if compressed > 0 {
		l.stats.compressedOut.Add(uint64(compressed))
	}
	return nil
}

// ping queues a ping frame. Called on the loop.
func (c *conn) ping() {
	l := c.loop
	l.out = wsproto.AppendFrame(l.out[:0], wsproto.OpPing, nil)
	if c.writeOut(1) == gnet.None {
		c.allowDirect()
	}
}

// truncateReason shortens a close reason to fit a control frame, at a rune
// boundary.
func truncateReason(r string) string {
	r = strings.ToValidUTF8(r, "") // no copy when already valid
	if len(r) <= maxCloseReason {
		return r
	}
	i := maxCloseReason
	for i > 0 && !utf8.RuneStart(r[i]) {
		i--
	}
	return r[:i]
}

// forwardedFor returns the client address that a trusted proxy reports
// (the caller has checked that the TCP peer is one). Every proxy appends
// the address it received from to X-Forwarded-For, so only the right end
// of the list is trustworthy: the answer is the right-most entry that is
// not itself a trusted proxy (the left-most if all of them are), the rule
// httpapi follows too. Anything left of it may be forged by the client. A
// malformed entry on the way makes the peer address the answer (ok false).
// Without X-Forwarded-For, X-Real-IP is used. An entry may carry a port.
func forwardedFor(xff, xrip string, trusted []netip.Prefix) (netip.Addr, bool) {
	if strings.TrimSpace(xff) != "" {
		var leftmost netip.Addr
		for rest := xff; ; {
			i := strings.LastIndexByte(rest, ',')
			ip, ok := parseHostIP(strings.TrimSpace(rest[i+1:]))
			if !ok {
				return netip.Addr{}, false
			}
			if !inPrefixes(trusted, ip) {
				return ip, true
			}
			leftmost = ip
			if i < 0 {
				return leftmost, true
			}
			rest = rest[:i]
		}
	}
	return parseHostIP(strings.TrimSpace(xrip))
}

// inPrefixes reports whether ip is in one of ps.
func inPrefixes(ps []netip.Prefix, ip netip.Addr) bool {
	for _, p := range ps {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// parseHostIP parses "ip", "ip:port" or "[ipv6]:port".
func parseHostIP(s string) (netip.Addr, bool) {
	if s == "" {
		return netip.Addr{}, false
	}
	if ip, err := netip.ParseAddr(s); err == nil {
		return ip.Unmap(), true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap(), true
	}
	return netip.Addr{}, false
}
