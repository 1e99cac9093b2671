package reactor

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
	"github.com/rs/zerolog"

	"chatd/chat"
)

// --- fake core ---

// fakeCore is a chat.Acceptor whose handlers call onMsg for every message
// (on the event loop) and record their lifecycle.
type fakeCore struct {
	onMsg func(p *fakePeer, msg []byte)

	accepted    atomic.Int64
	closed      atomic.Int64
	doubleClose atomic.Int64 // HandleClose calls past the first, per peer

	mu    sync.Mutex
	peers []*fakePeer
	// acceptedCh receives every peer as it is accepted (buffered; dropped
	// when full).
	acceptedCh chan *fakePeer
}

func newFakeCore(onMsg func(p *fakePeer, msg []byte)) *fakeCore {
	return &fakeCore{onMsg: onMsg, acceptedCh: make(chan *fakePeer, 4096)}
}

// echoCore sends every message back to its sender (copied: the payload is
// borrowed).
func echoCore() *fakeCore {
	return newFakeCore(func(p *fakePeer, msg []byte) { p.peer.Send(bytes.Clone(msg)) })
}

func (f *fakeCore) Accept(p chat.Peer) chat.Handler {
	fp := &fakePeer{core: f, peer: p, closedCh: make(chan struct{})}
	f.mu.Lock()
	f.peers = append(f.peers, fp)
	f.mu.Unlock()
	f.accepted.Add(1)
	select {
	case f.acceptedCh <- fp:
	default:
	}
	return fp
}

func (f *fakeCore) allPeers() []*fakePeer {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*fakePeer(nil), f.peers...)
}

type fakePeer struct {
	core     *fakeCore
	peer     chat.Peer
	closes   atomic.Int32
	closedCh chan struct{}
	msgs     atomic.Int64
}

func (p *fakePeer) HandleMessage(msg []byte) {
	p.msgs.Add(1)
	if p.core.onMsg != nil {
		p.core.onMsg(p, msg)
	}
}

func (p *fakePeer) HandleClose() {
	if p.closes.Add(1) > 1 {
		p.core.doubleClose.Add(1)
		return
	}
	p.core.closed.Add(1)
	close(p.closedCh)
}

// --- server ---

func testLogger(t testing.TB) zerolog.Logger {
	return zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)
}

func testLoggerStderr() zerolog.Logger {
	return zerolog.New(os.Stderr).Level(zerolog.WarnLevel)
}

// startServer runs a server on 127.0.0.1:0 until the test ends.
func startServer(t testing.TB, cfg Config, acc chat.Acceptor) *Server {
	t.Helper()
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	if cfg.Loops == 0 {
		cfg.Loops = 2
	}
	s, err := New(cfg, acc, testLogger(t))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	select {
	case <-s.Ready():
	case err := <-done:
		cancel()
		t.Fatalf("Run: %v", err)
	case <-time.After(10 * time.Second):
		cancel()
		t.Fatal("server not ready after 10s")
	}
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Errorf("Run did not return 15s after cancel")
		}
	})
	return s
}

// waitFor polls cond until it holds or the timeout passes.
func waitFor(t testing.TB, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// --- clients ---

// client is a WebSocket client connection made with gobwas/ws.
type client struct {
	net.Conn
	r  io.Reader // buffered handshake leftovers, then the conn
	rw io.ReadWriter
}

type dialOpts struct {
	local  string // source IP, e.g. "127.0.0.2"; "" for any
	header ws.HandshakeHeader
}

func dial(t testing.TB, addr string) *client {
	t.Helper()
	c, err := dialWith(addr, dialOpts{})
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func dialWith(addr string, o dialOpts) (*client, error) {
	d := ws.Dialer{Timeout: 5 * time.Second, Header: o.header}
	if o.local != "" {
		nd := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(o.local)}, Timeout: 5 * time.Second}
		d.NetDial = nd.DialContext
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, br, _, err := d.Dial(ctx, "ws://"+addr+"/chat")
	if err != nil {
		return nil, err
	}
	c := &client{Conn: conn, r: conn}
	if br != nil {
		c.r = io.MultiReader(br, conn)
	}
	c.rw = struct {
		io.Reader
		io.Writer
	}{c.r, conn}
	return c, nil
}

func (c *client) sendText(t testing.TB, p string) {
	t.Helper()
	c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if err := wsutil.WriteClientText(c, []byte(p)); err != nil {
		t.Fatalf("write: %v", err)
	}
}

// readText reads the next text message, answering pings.
func (c *client) readText(t testing.TB) string {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	b, err := wsutil.ReadServerText(c.rw)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return string(b)
}

// echo sends p and checks that it comes back.
func (c *client) echo(t testing.TB, p string) {
	t.Helper()
	c.sendText(t, p)
	if got := c.readText(t); got != p {
		t.Fatalf("echo: got %q, want %q", trim(got), trim(p))
	}
}

// readFrame reads one raw frame (server frames are unmasked).
func (c *client) readFrame(timeout time.Duration) (ws.Frame, error) {
	c.SetReadDeadline(time.Now().Add(timeout))
	return ws.ReadFrame(c.r)
}

// expectClose reads frames until a close frame and returns its code and
// reason; other frames are skipped.
func (c *client) expectClose(t testing.TB, timeout time.Duration) (ws.StatusCode, string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		f, err := c.readFrame(time.Until(deadline))
		if err != nil {
			t.Fatalf("waiting for a close frame: %v", err)
		}
		if f.Header.OpCode == ws.OpClose {
			code, reason := ws.ParseCloseFrameData(f.Payload)
			return code, reason
		}
	}
}

// expectEOF checks that the server closes the TCP connection within
// timeout (reads and discards until then).
func expectEOF(t testing.TB, c net.Conn, r io.Reader, timeout time.Duration) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(timeout))
	_, err := io.Copy(io.Discard, r)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("connection still open after %v", timeout)
	}
}

func trim(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

// clientFrame encodes a client frame; masked frames use a fixed key.
func clientFrame(fin bool, op ws.OpCode, payload []byte, masked bool) []byte {
	var b []byte
	b0 := byte(op)
	if fin {
		b0 |= 0x80
	}
	b = append(b, b0)
	mbit := byte(0)
	if masked {
		mbit = 0x80
	}
	switch n := len(payload); {
	case n < 126:
		b = append(b, mbit|byte(n))
	case n < 1<<16:
		b = append(b, mbit|126)
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	default:
		b = append(b, mbit|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	if !masked {
		return append(b, payload...)
	}
	key := [4]byte{0x1b, 0x2c, 0x3d, 0x4e}
	b = append(b, key[:]...)
	for i, c := range payload {
		b = append(b, c^key[i%4])
	}
	return b
}

// rawDial opens a plain TCP connection to addr.
func rawDial(t testing.TB, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// deflateDial upgrades a raw connection offering permessage-deflate and
// returns it, a reader positioned after the response, and the response.
func deflateDial(t testing.TB, addr string) (net.Conn, *bufio.Reader, *http.Response) {
	t.Helper()
	c := rawDial(t, addr)
	c.SetDeadline(time.Now().Add(5 * time.Second))
	req := strings.Replace(upgradeRequest(addr), "\r\n\r\n",
		"\r\nSec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n", 1)
	io.WriteString(c, req)
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 101 {
		t.Fatalf("upgrade: %v, %v", resp, err)
	}
	return c, br, resp
}

// upgradeRequest is a valid WebSocket upgrade request head.
func upgradeRequest(host string) string {
	return "GET /chat HTTP/1.1\r\nHost: " + host + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
}

// rawUpgrade sends an upgrade request on a plain connection and checks for
// the 101; it returns a reader positioned after the response head.
func rawUpgrade(t testing.TB, c net.Conn, host string) *bufio.Reader {
	t.Helper()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, upgradeRequest(host)); err != nil {
		t.Fatalf("write upgrade: %v", err)
	}
	br := bufio.NewReader(c)
	status, err := br.ReadString('\n')
	if err != nil || !strings.HasPrefix(status, "HTTP/1.1 101 ") {
		t.Fatalf("upgrade: status %q, err %v", status, err)
	}
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("upgrade: %v", err)
		}
		if line == "\r\n" {
			break
		}
	}
	c.SetDeadline(time.Time{})
	return br
}

// headerLen is the size of an unmasked server frame header for an n-byte
// payload.
func headerLen(n int) int {
	switch {
	case n < 126:
		return 2
	case n < 1<<16:
		return 4
	default:
		return 10
	}
}
