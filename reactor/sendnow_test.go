package reactor

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"chatd/chat"
	"chatd/wsproto"
)

func nowSender(t *testing.T, p *fakePeer) chat.NowSender {
	t.Helper()
	ns, ok := p.peer.(chat.NowSender)
	if !ok {
		t.Fatalf("%T does not implement chat.NowSender", p.peer)
	}
	return ns
}

// SendNow writes on the caller's goroutine: the frame reaches the client
// while the connection's event loop is stuck in another connection's
// handler, which a queued Send has to wait for.
func TestSendNowWritesWithoutTheLoop(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("SendNow writes directly only on Linux; elsewhere it queues")
	}
	blocked, release := make(chan struct{}), make(chan struct{})
	core := newFakeCore(func(p *fakePeer, msg []byte) {
		if string(msg) == "block" {
			blocked <- struct{}{}
			<-release // holds the only loop
		}
	})
	s := startServer(t, Config{Loops: 1}, core)
	a := dial(t, s.Addr())
	<-core.acceptedCh
	b := dial(t, s.Addr())
	pb := <-core.acceptedCh
	unblock := func() { release <- struct{}{} }
	t.Cleanup(func() {
		select { // a handler left blocked by a failure
		case release <- struct{}{}:
		case <-time.After(100 * time.Millisecond):
		}
	})

	a.sendText(t, "block")
	<-blocked
	if !pb.peer.Send([]byte("queued")) {
		t.Fatal("Send returned false")
	}
	if !nowSender(t, pb).SendNow([]byte("now")) {
		t.Fatal("SendNow returned false")
	}
	// "queued" waits for the loop, so "now" is not behind it: the socket
	// was not idle (a message is queued), so SendNow queued it too.
	// Drain the loop, then try again with an idle socket.
	unblock()
	if got := b.readText(t); got != "queued" {
		t.Fatalf("first message %q, want queued", got)
	}
	if got := b.readText(t); got != "now" {
		t.Fatalf("second message %q, want now", got)
	}

	a.sendText(t, "block")
	<-blocked
	if !nowSender(t, pb).SendNow([]byte("direct")) {
		t.Fatal("SendNow returned false")
	}
	// Read while the loop is still blocked.
	if got := b.readText(t); got != "direct" {
		t.Fatalf("got %q while the loop was blocked, want direct", got)
	}
	if st := s.Stats(); st.FramesDirect != 1 {
		t.Errorf("FramesDirect %d, want 1 (the queued ones are not)", st.FramesDirect)
	}
	unblock()
	b.pingPong(t)
}

// pingPong checks that the connection still works: a ping comes back as
// a pong.
func (c *client) pingPong(t *testing.T) {
	t.Helper()
	c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if err := wsutil.WriteClientMessage(c, ws.OpPing, []byte("alive")); err != nil {
		t.Fatal(err)
	}
	f, err := c.readFrame(5 * time.Second)
	if err != nil || f.Header.OpCode != ws.OpPong || string(f.Payload) != "alive" {
		t.Fatalf("got %v %q, %v; want the pong", f.Header.OpCode, f.Payload, err)
	}
}

// Direct writes, queued sends and the loop's own pongs share one socket.
// With a client that stops reading, the socket fills, SendNow is cut short
// and queues the rest, gnet buffers: every message must still arrive whole
// and in order, with every pong between whole frames.
func TestSendNowKeepsOrder(t *testing.T) {
	const n, size = 300, 48 << 10
	core := newFakeCore(nil)
	s := startServer(t, Config{Loops: 1, MaxOutbound: 64 << 20}, core)
	c := dial(t, s.Addr())
	// A small receive buffer, so that the server's socket fills after a
	// few MB (loopback autotuning would otherwise take tens of MB).
	if err := c.Conn.(*net.TCPConn).SetReadBuffer(32 << 10); err != nil {
		t.Fatal(err)
	}
	p := <-core.acceptedCh
	ns := nowSender(t, p)

	body := bytes.Repeat([]byte("m"), size)
	pings := make(chan struct{})
	go func() {
		// Pings while the server writes: the loop answers each with a
		// pong on the same socket.
		defer close(pings)
		for i := 0; i < 50; i++ {
			c.SetWriteDeadline(time.Now().Add(5 * time.Second))
			if err := wsutil.WriteClientMessage(c, ws.OpPing, []byte{byte(i)}); err != nil {
				t.Error(err)
				return
			}
			time.Sleep(2 * time.Millisecond)
		}
	}()
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range n {
		m := bytes.Clone(body)
		copy(m, fmt.Sprintf("%06d", i))
		var ok bool
		// SendNow alone until the socket has surely filled (~4 MB), so
		// that one of them is cut short; then mixed with Send.
		if i >= n/2 && rng.IntN(3) == 0 {
			ok = p.peer.Send(m)
		} else {
			ok = ns.SendNow(m)
		}
		if !ok {
			t.Fatalf("send %d refused", i)
		}
	}
	<-pings
	if st := s.Stats(); st.FramesDirect == 0 || st.FramesDirect >= n {
		t.Errorf("FramesDirect %d of %d: want some direct and some through the loop", st.FramesDirect, n)
	}
	if st := s.Stats(); st.PeakOutbound == 0 {
		t.Errorf("gnet never buffered anything: the socket never filled, so the test did not cover a cut-short write")
	}
	got, pongs := 0, 0
	for got < n {
		f, err := c.readFrame(10 * time.Second)
		if err != nil {
			t.Fatalf("after %d messages: %v", got, err)
		}
		switch f.Header.OpCode {
		case ws.OpPong:
			pongs++
		case ws.OpText:
			if len(f.Payload) != size || !bytes.Equal(f.Payload[6:], body[6:]) {
				t.Fatalf("message %d is not what was sent (%d bytes, %d sent)", got, len(f.Payload), size)
			}
			if idx := string(f.Payload[:6]); idx != fmt.Sprintf("%06d", got) {
				t.Fatalf("message %s arrived in place %d", idx, got)
			}
			got++
		default:
			t.Fatalf("unexpected %v frame after %d messages", f.Header.OpCode, got)
		}
	}
	for pongs < 50 {
		f, err := c.readFrame(5 * time.Second)
		if err != nil || f.Header.OpCode != ws.OpPong {
			t.Fatalf("after %d pongs: %v %v", pongs, f.Header.OpCode, err)
		}
		pongs++
	}
}

// After a close is requested, SendNow refuses like Send, and nothing
// follows the close frame.
func TestSendNowAfterClose(t *testing.T) {
	core := newFakeCore(nil)
	s := startServer(t, Config{}, core)
	c := dial(t, s.Addr())
	p := <-core.acceptedCh
	ns := nowSender(t, p)
	if !ns.SendNow([]byte("before")) {
		t.Fatal("SendNow refused on an open connection")
	}
	p.peer.Close(4000, "bye")
	if ns.SendNow([]byte("after")) {
		t.Fatal("SendNow accepted a message after Close")
	}
	if got := c.readText(t); got != "before" {
		t.Fatalf("got %q, want before", got)
	}
	f, err := c.readFrame(5 * time.Second)
	if err != nil || f.Header.OpCode != ws.OpClose {
		t.Fatalf("got %v, %v; want the close frame", f.Header.OpCode, err)
	}
	if code, reason := ws.ParseCloseFrameData(f.Payload); code != 4000 || reason != "bye" {
		t.Fatalf("close %d %q", code, reason)
	}
}

// A client that negotiated compression gets SendNow's large messages
// compressed, like Send's (they go through the loop).
func TestSendNowCompresses(t *testing.T) {
	const maxMsg = 4 << 10
	core := newFakeCore(nil)
	s := startServer(t, Config{MaxMessage: maxMsg, Handshake: wsproto.HandshakeConfig{Compression: true}}, core)
	_, br, _ := deflateDial(t, s.Addr())
	p := <-core.acceptedCh
	big := strings.Repeat("squeeze ", 100)
	if !nowSender(t, p).SendNow([]byte(big)) || !nowSender(t, p).SendNow([]byte("small")) {
		t.Fatal("SendNow refused")
	}
	f, err := ws.ReadFrame(br)
	if err != nil || !f.Header.Rsv1() {
		t.Fatalf("large message: rsv %d, %v; want compressed", f.Header.Rsv, err)
	}
	if got, err := wsproto.Inflate(nil, f.Payload, maxMsg); err != nil || string(got) != big {
		t.Fatalf("inflated %q, %v", trim(string(got)), err)
	}
	f, err = ws.ReadFrame(br)
	if err != nil || f.Header.Rsv1() || string(f.Payload) != "small" {
		t.Fatalf("small message: %q rsv %d, %v", f.Payload, f.Header.Rsv, err)
	}
}
