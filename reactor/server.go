// Package reactor holds chatd's WebSocket connections on gnet event loops.
//
// Each connection runs a small state machine on the event loop that owns it:
// handshake (bytes accumulate until wsproto.ParseHandshake accepts or
// rejects the upgrade request), open (frames are parsed in place with
// wsproto.Reader and text messages handed to the core's chat.Handler),
// draining (the client's close frame arrived: nothing more is read, and the
// core's replies to what came before it go out ahead of the answering close
// frame) and closing (the server has sent its close frame and waits a
// bounded time for the client's). A protocol violation skips the wait: the
// close frame goes out and the TCP connection is closed at once. The core talks back through chat.Peer, implemented by conn:
// Send queues a shared, immutable payload from any goroutine and wakes the
// loop, which writes everything queued for that connection with one writev.
//
// Timeouts (handshake, ping, idle, close) are swept on a ticker: a read
// only marks its connection fresh and the sweep reads the clock once. No
// connection owns a goroutine, timer or idle buffer.
//
// Ownership:
//   - conn: its event loop, except the fields under conn.mu (see conn).
//   - loop: its event loop (the connection list and write scratch); its
//     counters are atomics read by Stats.
//   - Server: immutable after New, except the atomics and the fields
//     documented as set once before Ready.
//
// Outbound compression: on a connection that negotiated permessage-deflate,
// messages of at least Config.CompressMin bytes go out compressed. The
// compressed form comes from a cache shared by every loop (zcache), so a
// broadcast is compressed once however many recipients it has.
//
// Locks: conn.mu (one connection's send queue), Server.loopsMu (the loop
// list) and zcache.mu (the compressed-payload cache) are leaves: nothing
// else of ours is locked while any is held. conn.mu is held across
// gc.Wake, which takes no lock and never blocks.
package reactor

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"
	"github.com/rs/zerolog"

	"chatd/chat"
)

// Server is the WebSocket side of chatd: a gnet event handler plus its
// lifecycle. Create it with New and start it with Run.
type Server struct {
	cfg     Config
	acc     chat.Acceptor
	log     zerolog.Logger
	tick    time.Duration
	trusted []netip.Prefix
	zc      *zcache // compressed payloads shared by every loop
	// capLowered records that New lowered Config.MaxConns to the fd limit.
	capLowered bool

	conns    atomic.Int64 // connections held (handshaking, open, closing)
	refused  atomic.Uint64
	peak     atomic.Uint64 // PeakOutbound
	stopping atomic.Bool   // Run is shutting down: OnOpen refuses

	// loops is the copy-on-write list of event loops that have had a
	// connection; loopsMu serialises additions.
	loops   atomic.Pointer[[]*loop]
	loopsMu sync.Mutex

	started   atomic.Bool
	ready     chan struct{}
	readyOnce sync.Once
	// Set before ready is closed, read-only after.
	eng     gnet.Engine
	addr    string
	release func() // closes the port-reserving socket

	// Owned by the ticker goroutine.
	refusedLogged uint64
	lastRefuseLog int64
}

// Stats is a snapshot of the server's counters. Closed equals
// ClosedHandshakeTimeout + HandshakeFailures + ClosedIdle + ClosedSlow +
// ClosedProtocol + ClosedPeer + ClosedServer.
type Stats struct {
	Conns   int64  // connections held now (handshaking, open or closing)
	Opened  uint64 // connections accepted under MaxConns
	Closed  uint64 // accepted connections since closed, for any reason
	Refused uint64 // connections refused because of MaxConns or shutdown

	ClosedHandshakeTimeout uint64 // no complete handshake within HandshakeTimeout
	ClosedIdle             uint64 // nothing received for IdleTimeout (1001)
	ClosedSlow             uint64 // outbound queue over MaxOutbound (1008)
	ClosedProtocol         uint64 // protocol violation, binary message (1002, 1003, 1007, 1009)
	ClosedPeer             uint64 // the client closed: close frame, EOF or reset
	ClosedServer           uint64 // the core's Peer.Close, or shutdown

	BytesIn   uint64 // bytes read, handshakes included
	BytesOut  uint64 // WebSocket frame bytes written (handshake responses excluded)
	FramesIn  uint64 // frames parsed, control frames and fragments included
	FramesOut uint64 // frames written, control frames included

	// Deflates counts payloads compressed for permessage-deflate: one per
	// distinct payload, however many recipients it went to.
	Deflates uint64
	// FramesCompressed counts frames written compressed (RSV1): one per
	// recipient. BytesOut counts their compressed size.
	FramesCompressed uint64
	// FramesDirect counts the text frames written straight to an idle
	// socket by the goroutine that produced them (SendNow), not by the
	// connection's event loop; they are in FramesOut too.
	FramesDirect uint64

	Handshakes        uint64 // successful upgrades
	HandshakeFailures uint64 // rejected upgrade requests (closed after the HTTP error)

	// PeakOutbound is the largest outbound backlog gnet held for one
	// connection after a flush; it stays at or below MaxOutbound.
	PeakOutbound uint64
}

// New checks cfg, fills its defaults and returns a Server that hands every
// upgraded connection to acc.
func New(cfg Config, acc chat.Acceptor, log zerolog.Logger) (*Server, error) {
	if acc == nil {
		return nil, errors.New("reactor: nil Acceptor")
	}
	asked := cfg.MaxConns
	if err := cfg.fill(fdLimit()); err != nil {
		return nil, err
	}
	s := &Server{
		cfg:        cfg,
		acc:        acc,
		log:        log,
		tick:       cfg.tickInterval(),
		capLowered: asked > cfg.MaxConns,
		zc:         newZcache(),
		ready:      make(chan struct{}),
	}
	for _, p := range cfg.TrustedProxies {
		s.trusted = append(s.trusted, p.Masked())
	}
	s.loops.Store(new([]*loop))
	return s, nil
}

// Ready is closed once the server accepts connections on Addr.
func (s *Server) Ready() <-chan struct{} { return s.ready }

// Addr is the bound address, host:port with the real port; valid after
// Ready is closed.
func (s *Server) Addr() string {
	select {
	case <-s.ready:
		return s.addr
	default:
		return ""
	}
}

// Run starts gnet and blocks until ctx is done. It then stops accepting,
// sends close 1001 "server shutting down" to every open connection, waits up
// to CloseTimeout for them to go, stops the engine (which closes the rest,
// calling each Handler's HandleClose) and returns nil. It returns an error if
// gnet cannot start or stops on its own. Run may be called once.
func (s *Server) Run(ctx context.Context) error {
	if !s.started.CompareAndSwap(false, true) {
		return errors.New("reactor: Run called twice")
	}
	addr, release, err := reservePort(s.cfg.Addr)
	if err != nil {
		return errors.New("reactor: listen " + s.cfg.Addr + ": " + err.Error())
	}
	var relOnce sync.Once
	s.release = func() { relOnce.Do(release) }
	defer s.release()
	s.addr = addr
	if s.capLowered {
		s.log.Warn().Int("max_conns", s.cfg.MaxConns).Msg("reactor: MaxConns lowered to the open-file limit minus FDReserve")
	}

	errc := make(chan error, 1)
	go func() {
		errc <- gnet.Run((*events)(s), "tcp://"+addr,
			gnet.WithMulticore(true),
			gnet.WithNumEventLoop(s.cfg.Loops),
			gnet.WithReusePort(reusePort),
			gnet.WithTicker(true),
			gnet.WithTCPNoDelay(gnet.TCPNoDelay),
			gnet.WithLogger(gnetLogger{s.log}),
		)
	}()

	select {
	case <-s.ready:
	case err := <-errc:
		if err == nil {
			err = errors.New("engine stopped before it was ready")
		}
		return errors.New("reactor: start " + addr + ": " + err.Error())
	case <-ctx.Done():
		// Let it come up, then stop it below.
		select {
		case <-s.ready:
		case err := <-errc:
			if err != nil {
				return errors.New("reactor: start " + addr + ": " + err.Error())
			}
			return nil
		}
	}
	s.log.Info().Str("addr", s.addr).Int("loops", s.cfg.Loops).Int("max_conns", s.cfg.MaxConns).Msg("reactor: listening")

	select {
	case <-ctx.Done():
	case err := <-errc:
		// gnet stops by itself only on a fatal loop error (an accept
		// failure, say): the listeners are gone.
		if err == nil {
			err = errors.New("engine stopped")
		}
		s.log.Error().Err(err).Msg("reactor: engine stopped unexpectedly")
		return errors.New("reactor: " + err.Error())
	}

	s.shutdown()
	stopCtx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() {
		// Engine.Stop only polls for completion; gnet.Run returning is
		// what we wait for.
		_ = s.eng.Stop(stopCtx)
		close(stopped)
	}()
	err = <-errc
	cancel()
	<-stopped
	st := s.Stats()
	s.log.Info().Uint64("opened", st.Opened).Uint64("refused", st.Refused).Msg("reactor: stopped")
	if err != nil {
		return errors.New("reactor: stop: " + err.Error())
	}
	return nil
}

// shutdown refuses new connections, sends every open connection a close
// 1001 and waits up to CloseTimeout for the connections to go.
func (s *Server) shutdown() {
	s.stopping.Store(true)
	for _, l := range *s.loops.Load() {
		if err := l.el.Execute(context.Background(), gnet.RunnableFunc(l.shutdown)); err != nil {
			s.log.Warn().Err(err).Msg("reactor: shutdown: loop unreachable")
		}
	}
	deadline := time.Now().Add(s.cfg.CloseTimeout)
	for s.conns.Load() > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := s.conns.Load(); n > 0 {
		s.log.Info().Int64("conns", n).Msg("reactor: closing connections that did not answer the shutdown close")
	}
}

// Stats returns the counters. It is cheap (a few atomic loads per loop) and
// safe from any goroutine.
func (s *Server) Stats() Stats {
	st := Stats{
		Conns:        s.conns.Load(),
		Refused:      s.refused.Load(),
		PeakOutbound: s.peak.Load(),
		Deflates:     s.zc.deflates.Load(),
	}
	for _, l := range *s.loops.Load() {
		m := &l.stats
		st.Opened += m.opened.Load()
		st.BytesIn += m.bytesIn.Load()
		st.BytesOut += m.bytesOut.Load()
		st.FramesIn += m.framesIn.Load()
		st.FramesOut += m.framesOut.Load()
		st.FramesCompressed += m.compressedOut.Load()
		st.FramesDirect += m.directOut.Load()
		st.Handshakes += m.handshakes.Load()
		st.HandshakeFailures += m.closed[whyHandshakeFailed].Load()
		st.ClosedHandshakeTimeout += m.closed[whyHandshakeTimeout].Load()
		st.ClosedIdle += m.closed[whyIdle].Load()
		st.ClosedSlow += m.closed[whySlow].Load()
		st.ClosedProtocol += m.closed[whyProtocol].Load()
		st.ClosedPeer += m.closed[whyPeer].Load()
		st.ClosedServer += m.closed[whyServer].Load()
	}
	st.Closed = st.ClosedHandshakeTimeout + st.HandshakeFailures + st.ClosedIdle + st.ClosedSlow +
		st.ClosedProtocol + st.ClosedPeer + st.ClosedServer
	return st
}

// loopFor returns the state of event loop el, creating it on first use.
// Called on el.
func (s *Server) loopFor(el gnet.EventLoop) *loop {
	for _, l := range *s.loops.Load() {
		if l.el == el {
			return l
		}
	}
	s.loopsMu.Lock()
	defer s.loopsMu.Unlock()
	old := *s.loops.Load()
	for _, l := range old {
		if l.el == el {
			return l
		}
	}
	l := &loop{srv: s, el: el}
	next := make([]*loop, len(old), len(old)+1)
	copy(next, old)
	next = append(next, l)
	s.loops.Store(&next)
	return l
}

// notePeak raises PeakOutbound to q if q is larger.
func (s *Server) notePeak(q uint64) {
	for {
		p := s.peak.Load()
		if q <= p || s.peak.CompareAndSwap(p, q) {
			return
		}
	}
}

// trustedPeer reports whether ip is a proxy whose forwarding headers count.
func (s *Server) trustedPeer(ip netip.Addr) bool { return inPrefixes(s.trusted, ip) }

// events is the Server seen as a gnet.EventHandler; a separate type keeps
// the callbacks out of Server's API.
type events Server

var _ gnet.EventHandler = (*events)(nil)

// OnBoot records the engine for Run's shutdown.
func (e *events) OnBoot(eng gnet.Engine) gnet.Action {
	e.eng = eng
	return gnet.None
}

// OnShutdown does nothing: Run has closed the connections by then.
func (e *events) OnShutdown(gnet.Engine) {}

// httpBusy answers a connection refused because of MaxConns. It is shared
// and only ever read.
var httpBusy = []byte("HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 0\r\nRetry-After: 5\r\n\r\n")

// OnOpen admits a connection under MaxConns, or refuses it with a 503.
func (e *events) OnOpen(gc gnet.Conn) ([]byte, gnet.Action) {
	s := (*Server)(e)
	if s.stopping.Load() {
		s.refused.Add(1)
		return httpBusy, gnet.Close
	}
	if s.conns.Add(1) > int64(s.cfg.MaxConns) {
		s.conns.Add(-1)
		s.refused.Add(1)
		return httpBusy, gnet.Close
	}
	l := s.loopFor(gc.EventLoop())
	c := &conn{
		gc:     gc,
		loop:   l,
		fresh:  true,
		remote: remoteOf(gc.RemoteAddr()),
	}
	l.add(c)
	gc.SetContext(c)
	l.stats.opened.Add(1)
	return nil, gnet.None
}

// OnClose retires a connection and tells the core, once.
func (e *events) OnClose(gc gnet.Conn, err error) gnet.Action {
	s := (*Server)(e)
	c, _ := gc.Context().(*conn)
	if c == nil {
		return gnet.None // refused in OnOpen
	}
	gc.SetContext(nil)
	c.retire()
	s.conns.Add(-1)
	why := c.why
	if why == whyNone {
		why = whyPeer
	}
	c.loop.stats.closed[why].Add(1)
	if e := s.log.Debug(); e.Enabled() {
		e.Str("remote", c.RemoteAddr()).Str("why", why.String()).AnErr("err", err).Msg("reactor: connection closed")
	}
	if h := c.h; h != nil {
		c.h = nil
		h.HandleClose()
	}
	return gnet.None
}

// OnTraffic runs when bytes arrive or the connection is woken by Send or
// Close: it writes what the core queued, then parses what arrived.
func (e *events) OnTraffic(gc gnet.Conn) gnet.Action {
	c, _ := gc.Context().(*conn)
	if c == nil {
		return gnet.Close
	}
	return c.onTraffic()
}

// OnTick closes Ready on the first tick (all listeners are bound by then),
// asks every loop to sweep its connections for timeouts, and logs a summary
// of refused connections at most every 10s. It runs on gnet's ticker
// goroutine.
func (e *events) OnTick() (time.Duration, gnet.Action) {
	s := (*Server)(e)
	now := time.Now().UnixNano()
	s.readyOnce.Do(func() {
		s.release()
		close(s.ready)
	})
	for _, l := range *s.loops.Load() {
		if l.sweepQueued.CompareAndSwap(false, true) {
			if err := l.el.Execute(context.Background(), l); err != nil {
				l.sweepQueued.Store(false)
			}
		}
	}
	if r := s.refused.Load(); r != s.refusedLogged && now-s.lastRefuseLog >= int64(10*time.Second) {
		s.log.Warn().Uint64("refused", r-s.refusedLogged).Int("max_conns", s.cfg.MaxConns).
			Msg("reactor: connections refused at the connection cap")
		s.refusedLogged, s.lastRefuseLog = r, now
	}
	return s.tick, gnet.None
}

// remoteOf returns the address a conn keeps for gnet's remote address a:
// a itself, which gnet never modifies, unless it has an IPv6 zone, whose
// bytes gnet returns to a pool when the connection closes; then a copy.
// Called in OnOpen, so nothing is shared yet.
func remoteOf(a net.Addr) *net.TCPAddr {
	ta, ok := a.(*net.TCPAddr)
	if !ok || ta == nil {
		return nil
	}
	if ta.Zone != "" {
		return &net.TCPAddr{IP: ta.IP, Port: ta.Port, Zone: strings.Clone(ta.Zone)}
	}
	return ta
}

// addrPortOf converts a conn's remote address, unmapping IPv4-in-IPv6.
func addrPortOf(ta *net.TCPAddr) netip.AddrPort {
	if ta == nil {
		return netip.AddrPort{}
	}
	ap := ta.AddrPort()
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}
