//go:build linux

package bench

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"net/netip"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"chatd/wsproto"
)

// fastSupported reports whether this platform has the fast connector.
const fastSupported = true

// fastState is where a fast connection is in its life.
type fastState uint8

const (
	fsFree       fastState = iota // slot unused
	fsConnecting                  // connect under way; upgrade request not written yet
	fsUpgrading                   // upgrade request written; waiting for the 101
	fsLogin                       // login written; waiting for its reply
	fsRefreshing                  // login refused as unauthorized; a new token is being issued
	fsOpen                        // logged in and held
	fsClosing                     // chatbench sent its close frame; waiting for the server's
)

// attempting reports whether s is one of an attempt's states (the ramp
// waits for it, its timeout runs).
func (s fastState) attempting() bool { return s >= fsConnecting && s <= fsRefreshing }

// stage names the step an attempt in state s is at, for the failure table.
func (s fastState) stage() string {
	switch s {
	case fsConnecting:
		return "dial"
	case fsUpgrading:
		return "handshake"
	}
	return "login"
}

// fastConn is one connection of the fast connector. Owned by its loop
// goroutine; it lives in a slot of the loop's chunks and is named in epoll
// events by (slot, gen).
type fastConn struct {
	fd        int32
	slot      int32  // its own slot number
	gen       uint32 // bumped each time the slot is freed: stale events and refresh results miss
	state     fastState
	refreshed bool  // a new token was already issued for this attempt
	inFrag    bool  // a fragmented message is being reassembled (login only)
	loginID   uint8 // request id of the login awaiting its reply
	k         int32 // index into the ramp's users
	start     int64 // run time the attempt began, ns
	key       [wsKeyLen]byte
	in        []byte // bytes read but not yet parsed (a partial frame); nil almost always
	out       []byte // bytes not yet accepted by the socket; nil almost always
	frag      []byte // fragments of a message during login; nil almost always
}

// fastRef names a connection across slot reuse.
type fastRef struct {
	slot int32
	gen  uint32
}

// fastRefresh is the outcome of a token refresh, posted to the loop.
type fastRefresh struct {
	ref   fastRef
	token string
	err   error
}

// Slots live in chunks so that growing never moves a connection.
const (
	chunkShift = 10
	chunkSize  = 1 << chunkShift
)

// fastReadBuf is a loop's shared read buffer: a read drains any idle
// connection's pings and a login reply at once.
const fastReadBuf = 64 << 10

// wakeSlot marks the eventfd's epoll events.
const wakeSlot = -1

// epollConnector is the Linux fast connector: a few epoll loops, each
// owning the sockets it opened.
type epollConnector struct {
	o       fastOptions
	ctx     context.Context // the run's: its end stops the ramp and token refreshes
	users   []int
	appJSON []byte // o.app as a JSON string
	reqHost string
	reqPath string
	timeout int64 // o.timeout in ns
	pace0   int64 // run time of the pacing schedule's first attempt

	next    atomic.Int64 // next index into users to attempt
	stopped atomic.Bool  // the run was interrupted: abandon attempts, count no failures
	loops   []*fastLoop

	rampLeft atomic.Int32  // loops still ramping
	ramped   chan struct{} // closed when rampLeft reaches zero
	loopsWG  sync.WaitGroup
	stopCtx  func() bool // unregisters the interrupt hook
	errMu    sync.Mutex  // guards firstErr
	firstErr error
}

// startFast opens users' connections in the background; see fastHolder.
func startFast(ctx context.Context, o fastOptions, users []int) (fastHolder, error) {
	if o.inflight <= 0 {
		o.inflight = 64
	}
	if o.timeout <= 0 {
		o.timeout = 10 * time.Second
	}
	fc := &epollConnector{
		o: o, ctx: ctx, users: users, appJSON: appendJSONString(nil, o.app),
		reqHost: o.ep.host, reqPath: o.ep.path, timeout: int64(o.timeout),
		ramped: make(chan struct{}),
	}
	dst := o.ep.addr
	n := o.loopCount(len(users))
	for i := range n {
		l, err := newFastLoop(fc, i, o.inflight/n+btoi(i < o.inflight%n), dst, o.srcs)
		if err != nil {
			for _, l := range fc.loops {
				l.shutFDs()
			}
			return nil, errors.New("fast connector: " + err.Error())
		}
		fc.loops = append(fc.loops, l)
	}
	fc.pace0 = o.clk.now()
	fc.rampLeft.Store(int32(n))
	fc.stopCtx = context.AfterFunc(ctx, func() {
		fc.stopped.Store(true)
		for _, l := range fc.loops {
			l.wake()
		}
	})
	for _, l := range fc.loops {
		fc.loopsWG.Add(1)
		go l.run()
	}
	return fc, nil
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func (fc *epollConnector) rampDone() <-chan struct{} { return fc.ramped }

func (fc *epollConnector) err() error {
	fc.errMu.Lock()
	defer fc.errMu.Unlock()
	return fc.firstErr
}

func (fc *epollConnector) close(wait time.Duration) {
	for _, l := range fc.loops {
		l.mu.Lock()
		if !l.closeReq {
			l.closeReq, l.closeWait = true, wait
		}
		l.mu.Unlock()
		l.wake()
	}
	fc.loopsWG.Wait()
	fc.stopCtx()
}

// loopRampDone is called once by each loop when its part of the ramp is
// over.
func (fc *epollConnector) loopRampDone() {
	if fc.rampLeft.Add(-1) == 0 {
		close(fc.ramped)
	}
}

// fail counts a failed attempt, unless the run was stopped (an
// interrupted attempt is not a failure of the server).
func (fc *epollConnector) fail(ce *ConnectError) {
	if fc.stopped.Load() {
		return
	}
	fc.o.stats.failed.Add(1)
	fc.o.stats.failures.add(ce.Key(), 1)
}

func (fc *epollConnector) setErr(err error) {
	fc.errMu.Lock()
	if fc.firstErr == nil {
		fc.firstErr = err
	}
	fc.errMu.Unlock()
}

// fastLoop is one event loop: its epoll instance, the sockets it opened
// and their state.
type fastLoop struct {
	fc    *epollConnector
	id    int
	epfd  int
	evfd  int // eventfd: wakes the loop for posted work, a close request or an interrupt
	limit int // attempts under way at most

	// Owned by the loop goroutine. dst and srcs are the loop's own copies:
	// unix.Sockaddr values are scratch space for the syscalls.
	dst      unix.Sockaddr
	srcs     []unix.Sockaddr
	chunks   [][]fastConn
	free     []int32
	live     int       // slots in use
	inflight int       // of them, attempts
	queue    []fastRef // attempts in start order, hence deadline order; finished ones are skipped
	qhead    int
	ticket   int64 // an attempt index taken but paced for later; -1: none
	ramping  bool
	closing  bool
	closeAt  int64 // closing: run time after which remaining sockets are just closed
	rbuf     []byte
	wbuf     []byte // frame being written
	pbuf     []byte // payload being built
	rng      *rand.ChaCha8
	ev       unix.EpollEvent

	mu        sync.Mutex // guards the fields below and evfd's validity for wake
	inbox     []fastRefresh
	closeReq  bool
	closeWait time.Duration
	shut      bool // evfd is closed
}

func newFastLoop(fc *epollConnector, id, limit int, dst netip.AddrPort, srcs []netip.Addr) (*fastLoop, error) {
	l := &fastLoop{fc: fc, id: id, limit: limit, ticket: -1, ramping: true, epfd: -1, evfd: -1,
		rbuf: make([]byte, fastReadBuf), wbuf: make([]byte, 0, 512), pbuf: make([]byte, 0, 512)}
	var seed [32]byte
	for i := 0; i < len(seed); i += 8 {
		binary.LittleEndian.PutUint64(seed[i:], rand.Uint64())
	}
	l.rng = rand.NewChaCha8(seed) // keys and masks: unpredictable, as RFC 6455 asks
	l.dst = sockaddr(dst)
	for _, a := range srcs {
		l.srcs = append(l.srcs, sockaddr(netip.AddrPortFrom(a, 0)))
	}
	var err error
	if l.epfd, err = unix.EpollCreate1(unix.EPOLL_CLOEXEC); err != nil {
		return nil, os.NewSyscallError("epoll_create1", err)
	}
	if l.evfd, err = unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC); err != nil {
		l.shutFDs()
		return nil, os.NewSyscallError("eventfd", err)
	}
	l.ev = unix.EpollEvent{Events: unix.EPOLLIN, Fd: wakeSlot}
	if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, l.evfd, &l.ev); err != nil {
		l.shutFDs()
		return nil, os.NewSyscallError("epoll_ctl", err)
	}
	return l, nil
}

// sockaddr converts an address for the socket syscalls.
func sockaddr(ap netip.AddrPort) unix.Sockaddr {
	a := ap.Addr()
	if a.Is4() || a.Is4In6() {
		return &unix.SockaddrInet4{Port: int(ap.Port()), Addr: a.Unmap().As4()}
	}
	return &unix.SockaddrInet6{Port: int(ap.Port()), Addr: a.As16()}
}

// shutFDs closes the loop's epoll instance and eventfd. After it, wake
// does nothing.
func (l *fastLoop) shutFDs() {
	if l.epfd >= 0 {
		unix.Close(l.epfd)
	}
	l.mu.Lock()
	l.shut = true
	if l.evfd >= 0 {
		unix.Close(l.evfd)
	}
	l.mu.Unlock()
}

// wake makes the loop look at its inbox, close request and the run's
// interrupt. Safe from any goroutine, also after the loop has ended.
func (l *fastLoop) wake() {
	one := [8]byte{1}
	l.mu.Lock()
	if !l.shut {
		unix.Write(l.evfd, one[:]) // EAGAIN: the counter is already non-zero
	}
	l.mu.Unlock()
}

// post hands a refresh outcome to the loop.
func (l *fastLoop) post(r fastRefresh) {
	l.mu.Lock()
	l.inbox = append(l.inbox, r)
	l.mu.Unlock()
	l.wake()
}

// run is the loop goroutine.
func (l *fastLoop) run() {
	defer l.fc.loopsWG.Done()
	defer l.shutFDs()
	events := make([]unix.EpollEvent, 512)
	var inbox []fastRefresh
	l.startAttempts()
	for {
		n, err := unix.EpollWait(l.epfd, events, l.waitMillis())
		if err != nil && err != unix.EINTR {
			l.fc.setErr(os.NewSyscallError("epoll_wait", err))
			l.abandon()
			return
		}
		woken := false
		for i := range n {
			ev := &events[i]
			if ev.Fd == wakeSlot {
				woken = true
				continue
			}
			if c := l.conn(fastRef{ev.Fd, uint32(ev.Pad)}); c != nil {
				l.onEvent(c, ev.Events)
			}
		}
		if woken {
			var b [8]byte
			unix.Read(l.evfd, b[:])
			l.mu.Lock()
			inbox, l.inbox = l.inbox, inbox[:0]
			closeReq, wait := l.closeReq, l.closeWait
			l.mu.Unlock()
			for _, r := range inbox {
				l.onRefreshed(r)
			}
			clear(inbox)
			if closeReq && !l.closing {
				l.beginClose(wait)
			}
		}
		if l.ramping {
			l.expire()
			if l.fc.stopped.Load() {
				l.abortAttempts()
			}
			l.startAttempts()
		}
		if l.closing && (l.live == 0 || l.fc.o.clk.now() >= l.closeAt) {
			l.abandon()
			return
		}
	}
}

// waitMillis is how long epoll_wait may sleep: until the next attempt is
// due, the oldest attempt times out, or closing gives up.
func (l *fastLoop) waitMillis() int {
	const never = int64(-1)
	until := never
	if l.ramping && l.expire() {
		return 0 // room for new attempts, or the ramp may be over
	}
	now := l.fc.o.clk.now()
	if l.ramping {
		if l.ticket >= 0 {
			until = l.fc.paceAt(l.ticket)
		}
		if l.qhead < len(l.queue) {
			if c := l.conn(l.queue[l.qhead]); c != nil {
				if d := c.start + l.fc.timeout; until == never || d < until {
					until = d
				}
			}
		}
	}
	if l.closing && (until == never || l.closeAt < until) {
		until = l.closeAt
	}
	if until == never {
		return -1
	}
	d := until - now
	if d <= 0 {
		return 0
	}
	return int((d + int64(time.Millisecond) - 1) / int64(time.Millisecond))
}

// paceAt is the run time attempt k is due under ConnectRate.
func (fc *epollConnector) paceAt(k int64) int64 {
	if fc.o.rate <= 0 {
		return 0
	}
	return fc.pace0 + int64(float64(k)*1e9/fc.o.rate)
}

// startAttempts starts attempts until the loop's share is under way, the
// users run out, the next one is paced for later, or the run stopped; it
// reports the loop's ramp done when nothing is left to wait for.
func (l *fastLoop) startAttempts() {
	fc := l.fc
	for l.inflight < l.limit && !fc.stopped.Load() {
		k := l.ticket
		if k < 0 {
			k = fc.next.Add(1) - 1
			if k >= int64(len(fc.users)) {
				break
			}
		}
		now := fc.o.clk.now()
		if fc.o.rate > 0 && fc.paceAt(k) > now {
			l.ticket = k
			break
		}
		l.ticket = -1
		l.dial(int(k), now)
	}
	if fc.stopped.Load() {
		l.ticket = -1
	}
	if l.inflight == 0 && l.ticket < 0 && (fc.stopped.Load() || fc.next.Load() >= int64(len(fc.users))) {
		l.ramping = false
		l.queue, l.qhead = nil, 0
		fc.loopRampDone()
	}
}

// dial starts attempt k: a non-blocking socket bound to its user's source
// address (round-robin over the sources), connect, and the upgrade
// request (on loopback the TCP handshake is usually complete by then;
// otherwise the request goes out on EPOLLOUT).
func (l *fastLoop) dial(k int, now int64) {
	fc := l.fc
	fd, err := unix.Socket(socketFamily(l.dst), unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_TCP)
	if err != nil {
		fc.fail(connectErr("dial", os.NewSyscallError("socket", err)))
		return
	}
	if len(l.srcs) > 0 {
		// The port is picked at connect time, for the whole 4-tuple: cheaper
		// than bind's search and not limited to one port per source.
		unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_BIND_ADDRESS_NO_PORT, 1)
		if err := unix.Bind(fd, l.srcs[fc.users[k]%len(l.srcs)]); err != nil {
			unix.Close(fd)
			fc.fail(connectErr("dial", os.NewSyscallError("bind", err)))
			return
		}
	}
	if err := unix.Connect(fd, l.dst); err != nil && err != unix.EINPROGRESS {
		unix.Close(fd)
		fc.fail(connectErr("dial", os.NewSyscallError("connect", err)))
		return
	}
	ref, c := l.alloc()
	c.fd, c.k, c.start, c.state, c.loginID = int32(fd), int32(k), now, fsConnecting, 1
	c.key = newWSKey(l.rng.Uint64(), l.rng.Uint64())
	l.inflight++
	l.queue = append(l.queue, ref)
	l.ev = unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLOUT | unix.EPOLLRDHUP | unix.EPOLLET, Fd: ref.slot, Pad: int32(ref.gen)}
	if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, fd, &l.ev); err != nil {
		l.failAttempt(c, os.NewSyscallError("epoll_ctl", err))
		return
	}
	l.sendUpgrade(c)
}

// bindNoPort is a net.Dialer Control function that defers the choice of
// the local port from bind to connect (IP_BIND_ADDRESS_NO_PORT), as dial
// does. Best effort: an older kernel just binds the usual way.
func bindNoPort(_, _ string, rc syscall.RawConn) error {
	rc.Control(func(fd uintptr) {
		unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_BIND_ADDRESS_NO_PORT, 1)
	})
	return nil
}

func socketFamily(sa unix.Sockaddr) int {
	if _, ok := sa.(*unix.SockaddrInet4); ok {
		return unix.AF_INET
	}
	return unix.AF_INET6
}

// alloc takes a free slot.
func (l *fastLoop) alloc() (fastRef, *fastConn) {
	if len(l.free) == 0 {
		base := int32(len(l.chunks) * chunkSize)
		l.chunks = append(l.chunks, make([]fastConn, chunkSize))
		for i := int32(chunkSize - 1); i >= 0; i-- {
			l.free = append(l.free, base+i)
		}
	}
	slot := l.free[len(l.free)-1]
	l.free = l.free[:len(l.free)-1]
	l.live++
	c := &l.chunks[slot>>chunkShift][slot&(chunkSize-1)]
	c.slot = slot
	return fastRef{slot, c.gen}, c
}

// conn returns the connection ref names, or nil when it has ended since.
func (l *fastLoop) conn(r fastRef) *fastConn {
	if r.slot < 0 || int(r.slot>>chunkShift) >= len(l.chunks) {
		return nil
	}
	c := &l.chunks[r.slot>>chunkShift][r.slot&(chunkSize-1)]
	if c.gen != r.gen || c.state == fsFree {
		return nil
	}
	return c
}

// release closes c's socket (which also takes it out of epoll) and frees
// its slot.
func (l *fastLoop) release(c *fastConn) {
	unix.Close(int(c.fd))
	if c.state.attempting() {
		l.inflight--
	}
	*c = fastConn{gen: c.gen + 1, slot: c.slot}
	l.free = append(l.free, c.slot)
	l.live--
}

// failAttempt ends an attempt that did not log in, counted under its
// current stage.
func (l *fastLoop) failAttempt(c *fastConn, err error) {
	l.fc.fail(connectErr(c.state.stage(), err))
	l.release(c)
}

// lost ends a held connection that the server closed or that failed.
func (l *fastLoop) lost(c *fastConn, cause string) {
	l.fc.o.tr.onDisconnect(nil, cause, false, 0)
	l.release(c)
}

// closed ends a connection chatbench is closing.
func (l *fastLoop) closed(c *fastConn) {
	l.fc.o.tr.onDisconnect(nil, "", true, 0)
	l.release(c)
}

// broken ends c after err on its socket, whatever its state. It returns
// false (c is gone) for the callers' convenience.
func (l *fastLoop) broken(c *fastConn, err error) bool {
	switch {
	case c.state.attempting():
		l.failAttempt(c, err)
	case c.state == fsOpen:
		l.lost(c, disconnectCause(err))
	default:
		l.closed(c)
	}
	return false
}

// onEvent handles epoll's report for c.
func (l *fastLoop) onEvent(c *fastConn, ev uint32) {
	if c.state == fsConnecting {
		if ev&(unix.EPOLLERR|unix.EPOLLHUP) != 0 {
			l.failAttempt(c, soError(int(c.fd)))
			return
		}
		if ev&unix.EPOLLOUT == 0 || !l.sendUpgrade(c) || c.state == fsConnecting {
			return
		}
	} else if ev&unix.EPOLLOUT != 0 && len(c.out) > 0 {
		if !l.flush(c) {
			return
		}
	}
	if ev&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLERR|unix.EPOLLHUP) != 0 {
		l.readConn(c, ev&(unix.EPOLLRDHUP|unix.EPOLLERR|unix.EPOLLHUP) != 0)
	}
}

// soError is a socket's pending error (a failed connect).
func soError(fd int) error {
	v, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR)
	switch {
	case err != nil:
		return os.NewSyscallError("getsockopt", err)
	case v != 0:
		return os.NewSyscallError("connect", syscall.Errno(v))
	}
	return io.EOF
}

// sendUpgrade writes c's opening handshake. While the connect is still
// under way the write fails with EAGAIN and is retried on EPOLLOUT. It
// returns false when c has ended.
func (l *fastLoop) sendUpgrade(c *fastConn) bool {
	l.wbuf = appendUpgradeRequest(l.wbuf[:0], l.fc.reqHost, l.fc.reqPath, c.key[:])
	n, err := writeFD(int(c.fd), l.wbuf)
	switch {
	case err == unix.EAGAIN:
		return true
	case err != nil:
		return l.broken(c, err) // still "dial": the connect failed
	}
	c.state = fsUpgrading
	if n < len(l.wbuf) {
		c.out = append(c.out, l.wbuf[n:]...)
	}
	return true
}

// sendLogin writes the login action with the user's token (or token,
// when not empty) and moves c to fsLogin.
func (l *fastLoop) sendLogin(c *fastConn, token string) bool {
	if token == "" {
		_, token = l.fc.o.tokens.token(l.fc.users[c.k])
	}
	l.pbuf = appendLoginPayload(l.pbuf[:0], uint64(c.loginID), l.fc.appJSON, token)
	c.state = fsLogin
	return l.sendFrame(c, wsproto.OpText, l.pbuf)
}

// sendFrame writes one masked frame to c. It returns false when c has
// ended.
func (l *fastLoop) sendFrame(c *fastConn, op wsproto.Opcode, payload []byte) bool {
	l.wbuf = appendClientFrame(l.wbuf[:0], op, payload, l.maskKey())
	if len(c.out) > 0 { // keep the order behind what is waiting
		c.out = append(c.out, l.wbuf...)
		return true
	}
	n, err := writeFD(int(c.fd), l.wbuf)
	if err == unix.EAGAIN {
		n, err = 0, nil
	}
	if err != nil {
		return l.broken(c, err)
	}
	if n < len(l.wbuf) {
		c.out = append(c.out, l.wbuf[n:]...)
	}
	return true
}

// maskKey returns a fresh random mask key.
func (l *fastLoop) maskKey() [4]byte {
	v := l.rng.Uint64()
	return [4]byte{byte(v), byte(v >> 8), byte(v >> 16), byte(v >> 24)}
}

// answerClose writes the close frame that answers the server's, best
// effort: the socket is closed right after.
func (l *fastLoop) answerClose(c *fastConn) {
	if len(c.out) == 0 {
		l.wbuf = appendClientFrame(l.wbuf[:0], wsproto.OpClose, closeNormalPayload, l.maskKey())
		writeFD(int(c.fd), l.wbuf)
	}
}

// flush writes what c has waiting. It returns false when c has ended.
func (l *fastLoop) flush(c *fastConn) bool {
	n, err := writeFD(int(c.fd), c.out)
	if err == unix.EAGAIN {
		return true
	}
	if err != nil {
		return l.broken(c, err)
	}
	if n == len(c.out) {
		c.out = nil
	} else {
		c.out = c.out[:copy(c.out, c.out[n:])]
	}
	return true
}

// readConn reads everything c's socket holds and handles it. ending (the
// peer closed or the socket failed) reads on to the end of the stream or
// the error.
func (l *fastLoop) readConn(c *fastConn, ending bool) {
	for {
		// Normally into the loop's buffer; a partial frame carried over
		// from an earlier read is completed in c.in instead.
		own := len(c.in) > 0
		buf := l.rbuf
		if own {
			if cap(c.in)-len(c.in) < 4096 {
				c.in = slices.Grow(c.in, max(4096, len(c.in)))
			}
			buf = c.in[len(c.in):cap(c.in)]
		}
		n, err := readFD(int(c.fd), buf)
		if n <= 0 {
			switch {
			case err == unix.EAGAIN:
			case err == nil:
				l.broken(c, io.EOF)
			default:
				l.broken(c, err)
			}
			return
		}
		data := buf[:n]
		if own {
			c.in = c.in[:len(c.in)+n]
			data = c.in
		}
		used, alive := l.consume(c, data)
		if !alive {
			return
		}
		switch rest := data[used:]; {
		case own:
			c.in = c.in[:copy(c.in, rest)]
			if len(c.in) == 0 {
				c.in = nil
			}
		case len(rest) > 0:
			c.in = append([]byte(nil), rest...)
		}
		if n < len(buf) && !ending {
			// Drained: with edge-triggered epoll, bytes (or the end of the
			// stream) that arrive from now on raise a new event.
			return
		}
	}
}

// maxUpgradeHead caps the server's handshake response head.
const maxUpgradeHead = initialReadBuf

// consume handles data, the next bytes from c's socket, and returns how
// many it used; alive is false when c has ended.
func (l *fastLoop) consume(c *fastConn, data []byte) (used int, alive bool) {
	if c.state == fsUpgrading {
		end := bytes.Index(data, crlfCRLF)
		if end < 0 {
			if len(data) >= maxUpgradeHead {
				l.failAttempt(c, errors.New("response header too long"))
				return 0, false
			}
			return 0, true
		}
		want := acceptFor(c.key)
		if err := checkUpgrade(data[:end+2], want[:]); err != nil {
			l.failAttempt(c, err)
			return 0, false
		}
		used = end + 4
		if !l.sendLogin(c, "") {
			return used, false
		}
	}
	for used < len(data) {
		f, n, err := wsproto.Parse(data[used:], l.fc.o.maxFrame)
		if err == wsproto.ErrShortFrame {
			break
		}
		if err == nil && f.Masked {
			err = errMaskedServerFrame
		} else if err != nil {
			err = errors.New("protocol error: " + err.Error())
		}
		if err != nil {
			return used, l.broken(c, err)
		}
		used += n
		if !l.onFrame(c, &f) {
			return used, false
		}
	}
	return used, true
}

// onFrame handles one server frame. It returns false when c has ended.
func (l *fastLoop) onFrame(c *fastConn, f *wsproto.Frame) bool {
	switch f.Op {
	case wsproto.OpPing:
		if c.state == fsClosing {
			return true
		}
		return l.sendFrame(c, wsproto.OpPong, f.Payload)
	case wsproto.OpClose:
		if c.state == fsClosing {
			l.closed(c)
			return false
		}
		cs := closeFrameError(f.Payload)
		l.answerClose(c)
		if c.state == fsOpen {
			l.lost(c, cs.Error())
		} else if c.state.attempting() {
			l.failAttempt(c, cs)
		}
		return false
	case wsproto.OpText, wsproto.OpBinary, wsproto.OpContinuation:
		if c.state != fsLogin {
			return true // events while held or refreshing are not measured
		}
		var msg []byte
		switch {
		case f.Op != wsproto.OpContinuation && f.Fin:
			c.inFrag = false
			msg = f.Payload
		case f.Op != wsproto.OpContinuation:
			c.frag = append(c.frag[:0], f.Payload...)
			c.inFrag = true
			return true
		case !c.inFrag:
			return l.broken(c, errors.New("protocol error: continuation without a start"))
		default:
			c.frag = append(c.frag, f.Payload...)
			if !f.Fin {
				return true
			}
			c.inFrag = false
			msg = c.frag
		}
		return l.onLoginReply(c, msg)
	}
	return true
}

// onLoginReply looks at a message received while logging in.
func (l *fastLoop) onLoginReply(c *fastConn, p []byte) bool {
	id, rest, ok := replyID(p)
	if !ok || id != uint64(c.loginID) {
		return true // an event, or not the login's reply
	}
	c.frag = nil
	if bytes.HasPrefix(rest, replyOKTrue) {
		now := l.fc.o.clk.now()
		c.state = fsOpen
		l.inflight--
		l.fc.o.lat.Record(l.id, time.Duration(now-c.start))
		l.fc.o.tr.online.Add(1)
		l.fc.o.stats.ok.Add(1)
		return true
	}
	err := decodeReply(p, nil)
	var se *ServerError
	if errors.As(err, &se) && se.Code == "unauthorized" && !c.refreshed {
		l.refresh(c)
		return true
	}
	l.failAttempt(c, err)
	return false
}

// replyOKTrue follows the id of a successful reply.
var replyOKTrue = []byte(`,"ok":true`)

// refresh issues a new token for c's user off the loop (the state file's
// token was revoked or the server was reset); the outcome comes back
// through the inbox. Rare: a goroutine per refresh is fine.
func (l *fastLoop) refresh(c *fastConn) {
	c.state, c.refreshed = fsRefreshing, true
	fc := l.fc
	ref := fastRef{c.slot, c.gen}
	user := fc.users[c.k]
	deadline := fc.o.clk.epoch.Add(time.Duration(c.start + fc.timeout))
	go func() {
		ctx, cancel := context.WithDeadline(fc.ctx, deadline)
		defer cancel()
		tok, err := fc.o.tokens.refresh(ctx, user)
		l.post(fastRefresh{ref: ref, token: tok, err: err})
	}()
}

// onRefreshed resumes an attempt whose new token arrived.
func (l *fastLoop) onRefreshed(r fastRefresh) {
	c := l.conn(r.ref)
	if c == nil || c.state != fsRefreshing {
		return // timed out or closed meanwhile
	}
	if r.err != nil {
		l.fc.fail(&ConnectError{Stage: "login", Cause: "unauthorized; issuing a new token failed", Err: r.err})
		l.release(c)
		return
	}
	l.fc.o.reissued.Add(1)
	c.loginID++
	l.sendLogin(c, r.token)
}

// expire fails the attempts that have run out of time and reports
// whether there were any. Afterwards the queue's head, if any, is an
// attempt under way and not yet due.
func (l *fastLoop) expire() (expired bool) {
	now := l.fc.o.clk.now()
	for l.qhead < len(l.queue) {
		c := l.conn(l.queue[l.qhead])
		if c != nil && c.state.attempting() {
			if now < c.start+l.fc.timeout {
				break
			}
			l.failAttempt(c, os.ErrDeadlineExceeded)
			expired = true
		}
		l.qhead++
	}
	switch {
	case l.qhead == len(l.queue):
		l.queue, l.qhead = l.queue[:0], 0
	case l.qhead >= 1024 && 2*l.qhead >= len(l.queue):
		l.queue = l.queue[:copy(l.queue, l.queue[l.qhead:])]
		l.qhead = 0
	}
	return expired
}

// abortAttempts drops every attempt under way without counting it (the
// run was stopped).
func (l *fastLoop) abortAttempts() {
	l.each(func(c *fastConn) {
		if c.state.attempting() {
			l.release(c)
		}
	})
}

// each calls fn for every connection in use.
func (l *fastLoop) each(fn func(c *fastConn)) {
	for _, ch := range l.chunks {
		for i := range ch {
			if ch[i].state != fsFree {
				fn(&ch[i])
			}
		}
	}
}

// beginClose starts the close handshake of every held connection.
func (l *fastLoop) beginClose(wait time.Duration) {
	l.closing = true
	l.closeAt = l.fc.o.clk.now() + int64(wait)
	l.each(func(c *fastConn) {
		switch {
		case c.state.attempting():
			l.release(c)
		case c.state == fsOpen:
			c.state = fsClosing
			l.sendFrame(c, wsproto.OpClose, closeNormalPayload)
		}
	})
	if l.ramping {
		l.ramping = false
		l.fc.loopRampDone()
	}
}

// abandon closes every socket the loop still has and ends its ramp.
func (l *fastLoop) abandon() {
	l.each(func(c *fastConn) {
		switch {
		case c.state.attempting():
			l.release(c) // not counted: the loop is going away
		case c.state == fsOpen && !l.closing:
			l.lost(c, "closed locally")
		default:
			l.closed(c)
		}
	})
	if l.ramping {
		l.ramping = false
		l.fc.loopRampDone()
	}
}

// readFD and writeFD are read(2) and write(2) on a non-blocking socket,
// retried on EINTR.
func readFD(fd int, b []byte) (int, error) {
	for {
		n, err := unix.Read(fd, b)
		if err != unix.EINTR {
			return n, err
		}
	}
}

func writeFD(fd int, b []byte) (int, error) {
	for {
		n, err := unix.Write(fd, b)
		if err != unix.EINTR {
			return n, err
		}
	}
}
