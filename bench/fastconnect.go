package bench

import (
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"net/netip"
	"runtime"
	"strconv"
	"sync/atomic"
	"time"

	"chatd/wsproto"
)

// The connect scenario's lean client. The portable client (opener, wsConn)
// spends a goroutine, a context, a timer and several runtime wake-ups on
// every connection, which on a 2-core box makes chatbench, not chatd, the
// limit of the connect+upgrade+login rate. On Linux the connect scenario
// instead opens its connections with raw non-blocking sockets driven by a
// few epoll loops (fastconnect_linux.go): no goroutine per connection, no
// timer or context per attempt, one shared read buffer per loop, and about
// 130 bytes of state per held connection. It does exactly what the portable client does on the wire —
// a random Sec-WebSocket-Key per connection, the 101 response and its
// Sec-WebSocket-Accept checked, a masked login frame, a connection counted
// only once its login reply says ok, pings answered while holding, a close
// handshake at the end — and reports failures with the same causes.
// Elsewhere, and with Connect.Portable, the connect scenario uses the
// portable client.

// fastHolder is a running fast connector: it ramps up, holds the
// connections that logged in, and closes them. Its methods are safe from
// any goroutine.
type fastHolder interface {
	// rampDone is closed once every attempt has ended (logged in or
	// failed), or the run was stopped and the attempts under way were
	// abandoned.
	rampDone() <-chan struct{}
	// err is an internal failure of the connector (an epoll error) that
	// ended its attempts early; nil normally.
	err() error
	// close sends every held connection a close frame (1000), waits up to
	// wait for the server's answers, then closes every socket and stops
	// the loops. Idempotent; returns when everything is closed.
	close(wait time.Duration)
}

// fastOptions is what the fast connector needs. Read-only once it starts.
type fastOptions struct {
	ep       endpoint
	srcs     []netip.Addr // bind sources, picked round-robin by user index; empty: the kernel picks
	app      string
	tokens   tokenSource
	timeout  time.Duration // one dial + upgrade + login
	maxFrame int           // largest server frame accepted
	loops    int           // event loops; zero means GOMAXPROCS
	inflight int           // attempts under way at once over all loops; zero means 64
	rate     float64       // new attempts per second; zero means as fast as inflight allows
	clk      clock
	tr       *traffic      // online count and disconnects while holding
	lat      *Recorder     // connect+login latency of every success
	reissued *atomic.Int64 // tokens refreshed after an unauthorized login
	stats    *rampStats    // successes and failures by cause
}

// rampStats counts a ramp's outcomes. Safe for concurrent use.
type rampStats struct {
	ok       atomic.Int64
	failed   atomic.Int64
	failures counts // "stage: cause" → attempts
}

// loopCount is how many event loops the fast connector runs for a ramp of
// n attempts with inflight under way at once: one per core, fewer when
// there is not enough work for them.
func (o *fastOptions) loopCount(n int) int {
	l := o.loops
	if l <= 0 {
		l = runtime.GOMAXPROCS(0)
	}
	return max(1, min(l, o.inflight, n))
}

// rampFast is ramp for the connect scenario on the fast connector: it
// opens one logged-in connection per user, DialConcurrency attempts at a
// time (at most ConnectRate per second), fills rep.Conns exactly as ramp
// does and returns the connector holding the connections.
func (e *env) rampFast(users []int) (fastHolder, error) {
	st := e.startRamp(len(users))
	t0 := time.Now()
	h, err := startFast(e.ctx, fastOptions{
		ep: e.tgt.ws, srcs: e.open.ds[0].srcs, app: e.o.App, tokens: e.open.tokens,
		timeout: e.o.ConnectTimeout, maxFrame: e.open.cfg.maxFrame, inflight: e.o.DialConcurrency,
		rate: e.o.ConnectRate, clk: e.clk, tr: e.tr, lat: e.connectLat, reissued: &e.open.reissued, stats: st,
	}, users)
	if err != nil {
		return nil, err
	}
	<-h.rampDone()
	e.recordRamp(t0, st, len(users))
	if err := h.err(); err != nil {
		e.problem("the connector stopped early: " + err.Error())
	}
	return h, nil
}

// ---- wire helpers shared by both clients (no allocation)

// wsKeyLen is the length of a Sec-WebSocket-Key: 16 random bytes in
// base64.
const wsKeyLen = 24

// newWSKey returns a fresh Sec-WebSocket-Key made from two random words.
func newWSKey(a, b uint64) [wsKeyLen]byte {
	var raw [16]byte
	binary.LittleEndian.PutUint64(raw[:8], a)
	binary.LittleEndian.PutUint64(raw[8:], b)
	var k [wsKeyLen]byte
	base64.StdEncoding.Encode(k[:], raw[:])
	return k
}

// websocketGUID is the fixed GUID of RFC 6455 §1.3.
const websocketGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// acceptFor returns the Sec-WebSocket-Accept a server must answer to key:
// base64(SHA-1(key + GUID)) (RFC 6455 §4.2.2).
func acceptFor(key [wsKeyLen]byte) [28]byte {
	var buf [wsKeyLen + len(websocketGUID)]byte
	copy(buf[:], key[:])
	copy(buf[wsKeyLen:], websocketGUID)
	sum := sha1.Sum(buf[:])
	var out [28]byte
	base64.StdEncoding.Encode(out[:], sum[:])
	return out
}

// appendUpgradeRequest appends the client's opening handshake for host
// and path with key.
func appendUpgradeRequest(dst []byte, host, path string, key []byte) []byte {
	dst = append(dst, "GET "...)
	dst = append(dst, path...)
	dst = append(dst, " HTTP/1.1\r\nHost: "...)
	dst = append(dst, host...)
	dst = append(dst, "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: "...)
	dst = append(dst, key...)
	return append(dst, "\r\nSec-WebSocket-Version: 13\r\nUser-Agent: chatbench\r\n\r\n"...)
}

// appendLoginPayload appends the login action with request id, app (already
// JSON-encoded, quotes included) and token.
func appendLoginPayload(dst []byte, id uint64, appJSON []byte, token string) []byte {
	dst = append(dst, `{"id":`...)
	dst = strconv.AppendUint(dst, id, 10)
	dst = append(dst, `,"action":"login","app":`...)
	dst = append(dst, appJSON...)
	dst = append(dst, `,"token":`...)
	dst = appendJSONString(dst, token)
	return append(dst, '}')
}

// appendClientFrame appends one final client frame carrying payload,
// masked with key (RFC 6455 §5.3).
func appendClientFrame(dst []byte, op wsproto.Opcode, payload []byte, key [4]byte) []byte {
	h := len(dst)
	dst = wsproto.AppendHeader(dst, true, 0, op, len(payload))
	dst[h+1] |= 0x80
	dst = append(dst, key[:]...)
	p := len(dst)
	dst = append(dst, payload...)
	wsproto.MaskBytes(key, 0, dst[p:])
	return dst
}

// closeNormalPayload is the payload of chatbench's close frames: 1000.
var closeNormalPayload = []byte{byte(wsproto.CloseNormal >> 8), byte(wsproto.CloseNormal & 0xFF)}

// closeFrameError describes a close frame's payload as closedByServer.
func closeFrameError(p []byte) *closedByServer {
	e := &closedByServer{code: 1005}
	if len(p) >= 2 {
		e.code = int(binary.BigEndian.Uint16(p))
		e.reason = string(p[2:])
	}
	return e
}

// errMaskedServerFrame is a server frame with the mask bit set (RFC 6455
// §5.1 forbids it).
var errMaskedServerFrame = errors.New("protocol error: masked server frame")

// noteRampCPU adds a note when chatbench itself used a large share of the
// host's CPU while connecting (from cpu0 and t0, taken before the ramp):
// on a shared host the connect rate may then be the client's limit.
func (e *env) noteRampCPU(cpu0 time.Duration, hasCPU bool, t0 time.Time, conns int64) {
	cpu1, ok := cpuTime()
	el := time.Since(t0).Seconds()
	if !hasCPU || !ok || el <= 0 {
		return
	}
	used := (cpu1 - cpu0).Seconds()
	cores := used / el
	if n := runtime.NumCPU(); cores > 0.5*float64(n) {
		note := "chatbench used " + fmtFloat(cores, 2) + " of the host's " + strconv.Itoa(n) + " CPUs while connecting"
		if conns > 0 {
			note += " (" + strconv.FormatInt(int64(used*1e6/float64(conns)), 10) + "µs per connection)"
		}
		e.rep.Notes = append(e.rep.Notes, note+": the connect rate may be the client's limit, not the server's")
	}
}
