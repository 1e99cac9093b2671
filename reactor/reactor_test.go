package reactor

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"chatd/chat"
	"chatd/wsproto"
)

func TestEcho(t *testing.T) {
	sizes := []int{0, 1, 125, 126, 1000, 65535, 65536}
	tests := []struct {
		name    string
		loops   int
		clients int
	}{
		{name: "one loop", loops: 1, clients: 3},
		{name: "four loops", loops: 4, clients: 16},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startServer(t, Config{Loops: tt.loops}, echoCore())
			if _, port, _ := net.SplitHostPort(s.Addr()); port == "0" || port == "" {
				t.Fatalf("Addr() = %q: want the real port", s.Addr())
			}
			for i := 0; i < tt.clients; i++ {
				c := dial(t, s.Addr())
				for _, n := range sizes {
					c.echo(t, strings.Repeat(string(rune('a'+i%26)), n))
				}
			}
			st := s.Stats()
			if st.Handshakes != uint64(tt.clients) || st.Conns != int64(tt.clients) {
				t.Fatalf("stats %+v: want %d handshakes and conns", st, tt.clients)
			}
			want := uint64(tt.clients * len(sizes))
			var wantOut, minIn uint64 // server frames are unmasked; client frames carry a 4-byte mask
			for _, n := range sizes {
				wantOut += uint64(tt.clients * (headerLen(n) + n))
				minIn += uint64(tt.clients * (headerLen(n) + 4 + n))
			}
			// Counters are bumped right after the write, so the client can
			// be a moment ahead of them.
			waitFor(t, "frame counters", 2*time.Second, func() bool {
				st := s.Stats()
				return st.FramesIn == want && st.FramesOut == want && st.BytesOut == wantOut
			})
			if st := s.Stats(); st.BytesIn <= minIn { // plus the handshake requests
				t.Fatalf("BytesIn = %d, want more than the %d frame bytes", st.BytesIn, minIn)
			}
			if tt.loops > 1 && len(*s.loops.Load()) < 2 {
				t.Fatalf("%d connections all landed on one loop: SO_REUSEPORT group not shared", tt.clients)
			}
		})
	}
}

func TestFrameSplitAcrossWrites(t *testing.T) {
	payload := []byte(strings.Repeat("split-", 50)) // 300 bytes: 16-bit length
	frame := clientFrame(true, ws.OpText, payload, true)
	tests := []struct {
		name string
		cut  int
	}{
		{name: "inside first header byte pair", cut: 1},
		{name: "inside extended length", cut: 3},
		{name: "inside mask key", cut: 6},
		{name: "inside payload", cut: 100},
		{name: "one byte short", cut: len(frame) - 1},
	}
	s := startServer(t, Config{}, echoCore())
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := dial(t, s.Addr())
			if _, err := c.Write(frame[:tt.cut]); err != nil {
				t.Fatal(err)
			}
			time.Sleep(30 * time.Millisecond) // let the first part arrive alone
			if _, err := c.Write(frame[tt.cut:]); err != nil {
				t.Fatal(err)
			}
			if got := c.readText(t); got != string(payload) {
				t.Fatalf("got %q", trim(got))
			}
			c.echo(t, "after") // the stream is still in step
		})
	}
}

func TestFramesBehindHandshake(t *testing.T) {
	// A client may send its first frames in the same packet as the
	// upgrade request; they must not be lost.
	s := startServer(t, Config{}, echoCore())
	c := rawDial(t, s.Addr())
	req := upgradeRequest(s.Addr())
	msg := append([]byte(req), clientFrame(true, ws.OpText, []byte("early"), true)...)
	msg = append(msg, clientFrame(true, ws.OpText, []byte("bird"), true)...)
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write(msg); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 101 {
		t.Fatalf("response %v, %v", resp, err)
	}
	for _, want := range []string{"early", "bird"} {
		f, err := ws.ReadFrame(br)
		if err != nil || string(f.Payload) != want {
			t.Fatalf("got %q, %v; want %q", f.Payload, err, want)
		}
	}
}

func TestPipelined(t *testing.T) {
	const n = 2000
	s := startServer(t, Config{}, echoCore())
	c := dial(t, s.Addr())
	var all []byte
	for i := 0; i < n; i++ {
		all = append(all, clientFrame(true, ws.OpText, []byte("m"+strconv.Itoa(i)), true)...)
	}
	c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write(all); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		if got, want := c.readText(t), "m"+strconv.Itoa(i); got != want {
			t.Fatalf("message %d: got %q, want %q", i, got, want)
		}
	}
}

func TestFragmentedMessage(t *testing.T) {
	const n = 1000
	s := startServer(t, Config{}, echoCore())
	c := dial(t, s.Addr())
	var all, want []byte
	for i := 0; i < n; i++ {
		op := ws.OpContinuation
		if i == 0 {
			op = ws.OpText
		}
		part := []byte(fmt.Sprintf("%04d,", i))
		want = append(want, part...)
		all = append(all, clientFrame(i == n-1, op, part, true)...)
		if i == n/2 {
			// A ping between fragments is allowed and answered.
			all = append(all, clientFrame(true, ws.OpPing, []byte("mid"), true)...)
		}
	}
	c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write(all); err != nil {
		t.Fatal(err)
	}
	f, err := c.readFrame(5 * time.Second)
	if err != nil || f.Header.OpCode != ws.OpPong || string(f.Payload) != "mid" {
		t.Fatalf("want pong \"mid\", got %v %q, %v", f.Header.OpCode, f.Payload, err)
	}
	if got := c.readText(t); got != string(want) {
		t.Fatalf("reassembled message: got %d bytes %q, want %d bytes", len(got), trim(got), len(want))
	}
}

func TestPingGetsPong(t *testing.T) {
	s := startServer(t, Config{}, echoCore())
	c := dial(t, s.Addr())
	if _, err := c.Write(clientFrame(true, ws.OpPing, []byte("are you there"), true)); err != nil {
		t.Fatal(err)
	}
	f, err := c.readFrame(5 * time.Second)
	if err != nil || f.Header.OpCode != ws.OpPong || string(f.Payload) != "are you there" {
		t.Fatalf("got %v %q, %v; want pong with the ping's payload", f.Header.OpCode, f.Payload, err)
	}
}

func TestHandshakeRejected(t *testing.T) {
	tests := []struct {
		name    string
		request string
		status  int
	}{
		{
			name:    "plain HTTP",
			request: "GET / HTTP/1.1\r\nHost: x\r\n\r\n",
			status:  426,
		},
		{
			name:    "missing key",
			request: "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n",
			status:  400,
		},
		{
			name:    "POST upgrade",
			request: "POST / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
			status:  405,
		},
		{
			name:    "head too large",
			request: "GET / HTTP/1.1\r\nHost: x\r\nX-Pad: " + strings.Repeat("p", 9000) + "\r\n\r\n",
			status:  431,
		},
	}
	s := startServer(t, Config{}, echoCore())
	other := dial(t, s.Addr())
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := s.Stats().HandshakeFailures
			c := rawDial(t, s.Addr())
			c.SetDeadline(time.Now().Add(5 * time.Second))
			if _, err := io.WriteString(c, tt.request); err != nil {
				t.Fatal(err)
			}
			br := bufio.NewReader(c)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("read response: %v", err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.status)
			}
			expectEOF(t, c, br, 10*time.Second)
			waitFor(t, "failure counted", 2*time.Second, func() bool { return s.Stats().HandshakeFailures == before+1 })
			other.echo(t, "still here")
		})
	}
}

func TestProtocolErrors(t *testing.T) {
	const maxMsg = 1 << 10
	tests := []struct {
		name  string
		frame []byte
		code  ws.StatusCode
	}{
		{name: "unmasked frame", frame: clientFrame(true, ws.OpText, []byte("naked"), false), code: 1002},
		{name: "invalid UTF-8", frame: clientFrame(true, ws.OpText, []byte{'o', 'k', 0xff, 0xfe}, true), code: 1007},
		{name: "over MaxMessage", frame: clientFrame(true, ws.OpText, bytes.Repeat([]byte("x"), maxMsg+1), true), code: 1009},
		{name: "binary message", frame: clientFrame(true, ws.OpBinary, []byte{1, 2, 3}, true), code: 1003},
		{name: "reserved opcode", frame: clientFrame(true, ws.OpCode(3), []byte("?"), true), code: 1002},
		{name: "continuation without start", frame: clientFrame(true, ws.OpContinuation, []byte("?"), true), code: 1002},
	}
	core := echoCore()
	s := startServer(t, Config{MaxMessage: maxMsg}, core)
	other := dial(t, s.Addr())
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := s.Stats().ClosedProtocol
			c := dial(t, s.Addr())
			c.echo(t, "fine so far")
			if _, err := c.Write(tt.frame); err != nil {
				t.Fatal(err)
			}
			code, _ := c.expectClose(t, 5*time.Second)
			if code != tt.code {
				t.Fatalf("close code %d, want %d", code, tt.code)
			}
			// Answer the close like a well-behaved client; the server then
			// closes TCP.
			c.Write(clientFrame(true, ws.OpClose, ws.NewCloseFrameBody(code, ""), true))
			expectEOF(t, c, c.r, 10*time.Second)
			waitFor(t, "protocol close counted", 2*time.Second, func() bool { return s.Stats().ClosedProtocol == before+1 })
			other.echo(t, "unaffected")
		})
	}
	if n := core.doubleClose.Load(); n != 0 {
		t.Fatalf("HandleClose called more than once for %d peers", n)
	}
}

func TestCloseWithoutReply(t *testing.T) {
	// A client that ignores the server's close frame (here 1003 for a
	// binary message, which breaks nothing in the stream) is closed after
	// CloseTimeout. Unlike a protocol error, the server waits for it.
	s := startServer(t, Config{CloseTimeout: 200 * time.Millisecond}, echoCore())
	c := dial(t, s.Addr())
	c.Write(clientFrame(true, ws.OpBinary, []byte{1, 2, 3}, true))
	start := time.Now()
	if code, _ := c.expectClose(t, 3*time.Second); code != 1003 {
		t.Fatalf("code %d, want 1003", code)
	}
	c.Write(clientFrame(true, ws.OpText, []byte("ignored while closing"), true))
	expectEOF(t, c, c.r, 10*time.Second)
	if d := time.Since(start); d < 150*time.Millisecond {
		t.Fatalf("closed after %v, before CloseTimeout", d)
	}
}

func TestClientClose(t *testing.T) {
	tests := []struct {
		name     string
		body     []byte
		wantCode ws.StatusCode
	}{
		{name: "with code", body: ws.NewCloseFrameBody(4100, "bye"), wantCode: 4100},
		{name: "empty", body: nil, wantCode: 1000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			core := echoCore()
			s := startServer(t, Config{}, core)
			c := dial(t, s.Addr())
			c.echo(t, "hi")
			c.Write(clientFrame(true, ws.OpClose, tt.body, true))
			code, _ := c.expectClose(t, 3*time.Second)
			if code != tt.wantCode {
				t.Fatalf("echoed code %d, want %d", code, tt.wantCode)
			}
			expectEOF(t, c, c.r, 10*time.Second)
			waitFor(t, "HandleClose", 2*time.Second, func() bool { return core.closed.Load() == 1 })
			if st := s.Stats(); st.ClosedPeer != 1 || st.Closed != 1 || st.Conns != 0 {
				t.Fatalf("stats %+v", st)
			}
		})
	}
}

func TestCoreClose(t *testing.T) {
	var lateSend atomic.Bool
	core := newFakeCore(func(p *fakePeer, msg []byte) {
		if string(msg) == "kick me" {
			p.peer.Send([]byte("goodbye"))
			p.peer.Close(chat.CloseKicked, "token revoked")
			p.peer.Close(chat.CloseNormal, "second close is ignored")
			lateSend.Store(p.peer.Send([]byte("too late")))
		}
	})
	s := startServer(t, Config{}, core)
	c := dial(t, s.Addr())
	c.sendText(t, "kick me")
	if got := c.readText(t); got != "goodbye" {
		t.Fatalf("got %q, want the message queued before Close", got)
	}
	code, reason := c.expectClose(t, 3*time.Second)
	if code != chat.CloseKicked || reason != "token revoked" {
		t.Fatalf("close %d %q", code, reason)
	}
	c.Write(clientFrame(true, ws.OpClose, ws.NewCloseFrameBody(code, ""), true))
	expectEOF(t, c, c.r, 10*time.Second)
	waitFor(t, "HandleClose", 2*time.Second, func() bool { return core.closed.Load() == 1 })
	if st := s.Stats(); st.ClosedServer != 1 {
		t.Fatalf("ClosedServer = %d, want 1", st.ClosedServer)
	}
	if lateSend.Load() {
		t.Fatal("Send after Close returned true")
	}
	p := core.allPeers()[0]
	if p.peer.Send([]byte("after close")) {
		t.Fatal("Send on a closed peer returned true")
	}
	p.peer.Close(1000, "") // idempotent, no panic, no effect
}

func TestHandshakeTimeout(t *testing.T) {
	const timeout = 300 * time.Millisecond
	s := startServer(t, Config{HandshakeTimeout: timeout}, echoCore())

	silent := rawDial(t, s.Addr())
	slow := rawDial(t, s.Addr())
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // slowloris: a valid request, one byte every 20ms
		defer wg.Done()
		req := upgradeRequest(s.Addr())
		for i := 0; i < len(req)-4; i++ {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			if _, err := slow.Write([]byte{req[i]}); err != nil {
				return
			}
		}
	}()
	start := time.Now()
	expectEOF(t, silent, silent, 10*time.Second)
	expectEOF(t, slow, slow, 10*time.Second)
	close(stop)
	wg.Wait()
	if d := time.Since(start); d < timeout-50*time.Millisecond {
		t.Fatalf("closed after %v, before the %v timeout", d, timeout)
	}
	waitFor(t, "timeouts counted", 2*time.Second, func() bool { return s.Stats().ClosedHandshakeTimeout == 2 })

	// An upgraded connection is not subject to the handshake timeout.
	c := dial(t, s.Addr())
	time.Sleep(2 * timeout)
	c.echo(t, "alive")
}

func TestIdleTimeout(t *testing.T) {
	cfg := Config{PingInterval: 100 * time.Millisecond, IdleTimeout: 600 * time.Millisecond, CloseTimeout: 300 * time.Millisecond}
	s := startServer(t, cfg, echoCore())

	t.Run("no pongs", func(t *testing.T) {
		c := dial(t, s.Addr())
		start := time.Now()
		pings := 0
		for {
			f, err := c.readFrame(3 * time.Second)
			if err != nil {
				t.Fatalf("read: %v", err)
			}
			if f.Header.OpCode == ws.OpPing {
				pings++
				continue
			}
			if f.Header.OpCode != ws.OpClose {
				t.Fatalf("unexpected frame %v", f.Header.OpCode)
			}
			code, reason := ws.ParseCloseFrameData(f.Payload)
			if code != 1001 || reason != "idle timeout" {
				t.Fatalf("close %d %q, want 1001 idle timeout", code, reason)
			}
			break
		}
		if d := time.Since(start); d < cfg.IdleTimeout-50*time.Millisecond {
			t.Fatalf("closed after %v, before IdleTimeout", d)
		}
		// One ping per PingInterval of silence: several before the idle
		// close, never more than IdleTimeout/PingInterval.
		if max := int(cfg.IdleTimeout / cfg.PingInterval); pings < 2 || pings > max {
			t.Fatalf("%d pings before the idle close, want 2 to %d", pings, max)
		}
		waitFor(t, "idle close counted", 3*time.Second, func() bool { return s.Stats().ClosedIdle == 1 })
	})

	t.Run("answers pings", func(t *testing.T) {
		c := dial(t, s.Addr())
		texts := make(chan string, 1)
		errc := make(chan error, 1)
		go func() {
			for {
				c.SetReadDeadline(time.Now().Add(5 * time.Second))
				b, err := wsutil.ReadServerText(c.rw) // answers pings with pongs
				if err != nil {
					errc <- err
					return
				}
				texts <- string(b)
			}
		}()
		time.Sleep(3 * cfg.IdleTimeout)
		select {
		case err := <-errc:
			t.Fatalf("connection closed while answering pings: %v", err)
		default:
		}
		c.sendText(t, "still open")
		select {
		case got := <-texts:
			if got != "still open" {
				t.Fatalf("got %q", got)
			}
		case err := <-errc:
			t.Fatalf("read: %v", err)
		case <-time.After(3 * time.Second):
			t.Fatal("no echo")
		}
	})
}

func TestSlowConsumer(t *testing.T) {
	const maxOut = 256 << 10
	// gnet buffers part of the flood only when the loop keeps draining the
	// queue into the socket; on a box loaded enough to keep the loop off a
	// CPU for 16 ms the queue alone reaches the limit first. That is still
	// a correct close, but it does not exercise gnet's buffer, so such a
	// run is repeated (up to three times) rather than passed.
	for attempt := 1; ; attempt++ {
		peak := slowConsumerRun(t, maxOut)
		if peak > maxOut {
			t.Fatalf("PeakOutbound %d: over MaxOutbound %d", peak, maxOut)
		}
		if peak > 0 {
			return
		}
		if attempt == 3 {
			t.Fatalf("PeakOutbound 0 in %d runs: want gnet to have buffered some, at most MaxOutbound %d", attempt, maxOut)
		}
		t.Logf("run %d: PeakOutbound 0 (the loop was kept off a CPU); again", attempt)
	}
}

// slowConsumerRun floods a client that never reads until the server
// closes it as a slow consumer, checks another client is served
// throughout, and returns the server's PeakOutbound.
func slowConsumerRun(t *testing.T, maxOut int) int64 {
	t.Helper()
	chunk := bytes.Repeat([]byte("z"), 16<<10) // shared by every Send
	var sendFailed atomic.Bool
	var floodDone sync.WaitGroup
	core := newFakeCore(func(p *fakePeer, msg []byte) {
		if string(msg) != "flood" {
			p.peer.Send(bytes.Clone(msg))
			return
		}
		floodDone.Add(1)
		go func() {
			defer floodDone.Done()
			for sent := 0; sent < 256<<20; sent += len(chunk) {
				if !p.peer.Send(chunk) {
					sendFailed.Store(true)
					return
				}
				// Paced so that the loop keeps draining the queue into
				// the socket and gnet's buffer: the limit is reached
				// because the client does not read, not because the
				// queue outgrew MaxOutbound while the loop was kept off
				// a CPU (on a loaded 2-vCPU box a burst of 64 KiB per
				// millisecond did that before gnet held anything, and
				// PeakOutbound stayed 0). One chunk per millisecond
				// needs the loop to miss 16 ms in a row for that.
				time.Sleep(time.Millisecond)
			}
		}()
	})
	s := startServer(t, Config{MaxOutbound: maxOut, Loops: 1}, core)
	slow := dial(t, s.Addr())
	fast := dial(t, s.Addr())
	slow.sendText(t, "flood") // and never read again

	deadline := time.Now().Add(20 * time.Second)
	for s.Stats().ClosedSlow == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("slow consumer not closed: %+v", s.Stats())
		}
		start := time.Now()
		fast.echo(t, "ping")
		if d := time.Since(start); d > time.Second {
			t.Fatalf("echo took %v while another client was flooded", d)
		}
	}
	floodDone.Wait()
	if !sendFailed.Load() {
		t.Fatal("Send kept returning true after the slow consumer was closed")
	}
	fast.echo(t, "after")
	return int64(s.Stats().PeakOutbound)
}

func TestSendOverMaxOutbound(t *testing.T) {
	// One message larger than MaxOutbound can never be queued: Send
	// refuses it and the connection is closed as a slow consumer.
	const maxOut = 4 << 10
	var accepted atomic.Int32 // 1: Send returned true, 2: false
	core := newFakeCore(func(p *fakePeer, msg []byte) {
		if p.peer.Send(make([]byte, maxOut+1)) {
			accepted.Store(1)
		} else {
			accepted.Store(2)
		}
	})
	// The client never answers the close: the server hangs up after
	// CloseTimeout (plus up to a sweep tick), well inside expectEOF's wait
	// even on a loaded CI box.
	s := startServer(t, Config{MaxOutbound: maxOut, CloseTimeout: 500 * time.Millisecond}, core)
	c := dial(t, s.Addr())
	c.sendText(t, "give me a big one")
	code, reason := c.expectClose(t, 3*time.Second)
	if code != 1008 || reason != "slow consumer" {
		t.Fatalf("close %d %q, want 1008 slow consumer", code, reason)
	}
	if accepted.Load() != 2 {
		t.Fatal("Send of a message over MaxOutbound returned true")
	}
	expectEOF(t, c, c.r, 5*time.Second)
	waitFor(t, "slow close counted", 2*time.Second, func() bool { return s.Stats().ClosedSlow == 1 })
}

func TestConnectionCap(t *testing.T) {
	const maxConns = 50
	s := startServer(t, Config{MaxConns: maxConns, Loops: 2}, echoCore())
	sources := []string{"127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"}

	var admitted []*client
	for i := 0; i < maxConns; i++ {
		c, err := dialWith(s.Addr(), dialOpts{local: sources[i%len(sources)]})
		if err != nil {
			t.Fatalf("connection %d under the cap: %v", i, err)
		}
		admitted = append(admitted, c)
	}
	t.Cleanup(func() {
		for _, c := range admitted {
			c.Close()
		}
	})

	// 150 more, concurrently: all refused, the server keeps running.
	var wg sync.WaitGroup
	var refused, accepted atomic.Int64
	for i := 0; i < 150; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			c, err := dialWith(s.Addr(), dialOpts{local: sources[i%len(sources)]})
			if err != nil {
				refused.Add(1)
				return
			}
			accepted.Add(1)
			c.Close()
		}(i)
	}
	wg.Wait()
	if accepted.Load() != 0 || refused.Load() != 150 {
		t.Fatalf("over the cap: %d accepted, %d refused; want 0, 150", accepted.Load(), refused.Load())
	}
	if st := s.Stats(); st.Refused != 150 || st.Conns != maxConns {
		t.Fatalf("stats %+v: want 150 refused, %d conns", st, maxConns)
	}

	// A refused connection is answered with a 503 before it is closed.
	rc := rawDial(t, s.Addr())
	rc.SetReadDeadline(time.Now().Add(3 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(rc), nil)
	if err != nil || resp.StatusCode != 503 {
		t.Fatalf("refused connection: response %v, %v; want a 503", resp, err)
	}
	expectEOF(t, rc, resp.Body, 10*time.Second)

	for i, c := range admitted {
		c.echo(t, "admitted "+strconv.Itoa(i))
	}

	// Free ten slots; ten new clients get in.
	for _, c := range admitted[:10] {
		c.Close()
	}
	admitted = admitted[10:]
	waitFor(t, "closes", 3*time.Second, func() bool { return s.Stats().Conns == maxConns-10 })
	for i := 0; i < 10; i++ {
		c := dial(t, s.Addr())
		c.echo(t, "new "+strconv.Itoa(i))
	}
}

func TestGracefulShutdown(t *testing.T) {
	core := echoCore()
	s, err := New(Config{Addr: "127.0.0.1:0", Loops: 2, CloseTimeout: time.Second}, core, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	<-s.Ready()

	var clients []*client
	for i := 0; i < 6; i++ {
		c := dial(t, s.Addr())
		c.echo(t, "hi")
		clients = append(clients, c)
	}
	mute := clients[0] // reads the close but never answers it
	handshaking := rawDial(t, s.Addr())
	io.WriteString(handshaking, "GET / HTTP/1.1\r\n")
	waitFor(t, "all connections accepted", 2*time.Second, func() bool { return s.Stats().Conns == 7 })

	start := time.Now()
	cancel()
	for i, c := range clients {
		code, reason := c.expectClose(t, 3*time.Second)
		if code != 1001 || reason != "server shutting down" {
			t.Fatalf("client %d: close %d %q", i, code, reason)
		}
		if c != mute {
			c.Write(clientFrame(true, ws.OpClose, ws.NewCloseFrameBody(code, ""), true))
		}
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return")
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("shutdown took %v", d)
	}
	for _, c := range clients {
		expectEOF(t, c, c.r, 2*time.Second)
	}
	expectEOF(t, handshaking, handshaking, 2*time.Second)
	if n := core.closed.Load(); n != 6 {
		t.Fatalf("HandleClose called for %d of 6 peers", n)
	}
	if st := s.Stats(); st.Conns != 0 || st.ClosedServer != 7 {
		t.Fatalf("stats after shutdown %+v", st)
	}
	if _, err := net.DialTimeout("tcp", s.Addr(), time.Second); err == nil {
		t.Fatal("still accepting after Run returned")
	}
}

func TestSendFromOtherGoroutine(t *testing.T) {
	// The core pushes events from its own goroutines while the client is
	// sending; run with -race.
	const pushes, echoes = 500, 500
	core := echoCore()
	s := startServer(t, Config{}, core)
	c := dial(t, s.Addr())
	p := <-core.acceptedCh
	var wg sync.WaitGroup
	for g := 0; g < 2; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < pushes/2; i++ {
				if !p.peer.Send([]byte("push")) {
					t.Error("Send returned false on an open connection")
					return
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < echoes; i++ {
			if err := wsutil.WriteClientText(c, []byte("echo")); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	counts := map[string]int{}
	for i := 0; i < pushes+echoes; i++ {
		counts[c.readText(t)]++
	}
	wg.Wait()
	if counts["push"] != pushes || counts["echo"] != echoes {
		t.Fatalf("received %v", counts)
	}
}

// remoteOf keeps gnet's address unless it carries an IPv6 zone (whose bytes
// gnet recycles at close), and addrPortOf unmaps IPv4-in-IPv6.
func TestRemoteOf(t *testing.T) {
	v4 := &net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 4000} // 16-byte form
	zoned := &net.TCPAddr{IP: net.ParseIP("fe80::1"), Port: 4001, Zone: "eth0"}
	tests := []struct {
		name     string
		in       net.Addr
		wantSame bool   // the conn keeps gnet's own *net.TCPAddr
		want     string // addrPortOf's answer
	}{
		{name: "ipv4-in-ipv6 kept and unmapped", in: v4, wantSame: true, want: "192.0.2.1:4000"},
		{name: "ipv6", in: &net.TCPAddr{IP: net.ParseIP("2001:db8::7"), Port: 4002}, wantSame: true, want: "[2001:db8::7]:4002"},
		{name: "zoned ipv6 copied", in: zoned, want: "[fe80::1%eth0]:4001"},
		{name: "not tcp", in: &net.UnixAddr{Name: "/tmp/x", Net: "unix"}, want: "invalid AddrPort"},
		{name: "nil", in: nil, want: "invalid AddrPort"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := remoteOf(tt.in)
			if same := got != nil && net.Addr(got) == tt.in; same != tt.wantSame {
				t.Fatalf("kept gnet's address: %v, want %v", same, tt.wantSame)
			}
			if s := addrPortOf(got).String(); s != tt.want {
				t.Fatalf("addrPortOf = %q, want %q", s, tt.want)
			}
		})
	}
	// The zone survives gnet recycling the original's bytes.
	z := []byte("eth0")
	in := &net.TCPAddr{IP: net.ParseIP("fe80::1"), Port: 1, Zone: unsafe.String(&z[0], len(z))}
	got := remoteOf(in)
	copy(z, "XXXX")
	if got.Zone != "eth0" {
		t.Fatalf("zone %q after the original's bytes changed", got.Zone)
	}
}

func TestRemoteAddr(t *testing.T) {
	proxies := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	tests := []struct {
		name    string
		trusted []netip.Prefix
		header  http.Header
		want    string // "" means the TCP peer (127.0.0.1:port)
	}{
		{name: "no proxy headers", trusted: proxies},
		{name: "untrusted peer", trusted: nil, header: http.Header{"X-Forwarded-For": {"203.0.113.7"}}},
		{name: "trusted X-Forwarded-For: right-most untrusted hop", trusted: proxies,
			header: http.Header{"X-Forwarded-For": {"203.0.113.66, 203.0.113.7"}}, want: "203.0.113.7"},
		{name: "trusted X-Forwarded-For: trusted hops skipped", trusted: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("10.0.0.0/8")},
			header: http.Header{"X-Forwarded-For": {"203.0.113.66, 203.0.113.7, 10.0.0.1"}}, want: "203.0.113.7"},
		{name: "trusted X-Forwarded-For: several header lines are one list", trusted: proxies,
			header: http.Header{"X-Forwarded-For": {"203.0.113.66", "203.0.113.8"}}, want: "203.0.113.8"},
		{name: "trusted X-Real-IP", trusted: proxies,
			header: http.Header{"X-Real-Ip": {"2001:db8::1"}}, want: "2001:db8::1"},
		{name: "garbage header falls back", trusted: proxies,
			header: http.Header{"X-Forwarded-For": {"not an ip"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			core := echoCore()
			s := startServer(t, Config{TrustedProxies: tt.trusted}, core)
			c, err := dialWith(s.Addr(), dialOpts{header: ws.HandshakeHeaderHTTP(tt.header)})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			p := <-core.acceptedCh
			got := p.peer.RemoteAddr()
			want := tt.want
			if want == "" {
				want = c.LocalAddr().String()
			}
			if got != want {
				t.Fatalf("RemoteAddr() = %q, want %q", got, want)
			}
		})
	}
}

func TestConfig(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		fdLimit int
		check   func(t *testing.T, c Config)
		wantErr bool
	}{
		{name: "defaults", fdLimit: 20000, check: func(t *testing.T, c Config) {
			if c.Addr != ":22886" || c.MaxConns != 20000-400 || c.FDReserve != 400 ||
				c.HandshakeTimeout != 10*time.Second || c.PingInterval != 25*time.Second ||
				c.IdleTimeout != 60*time.Second || c.MaxMessage != 64<<10 || c.MaxOutbound != 1<<20 ||
				c.CloseTimeout != 2*time.Second || c.Loops < 1 {
				t.Fatalf("defaults: %+v", c)
			}
		}},
		{name: "cap lowered to fd limit", cfg: Config{MaxConns: 50000, FDReserve: 100}, fdLimit: 1000,
			check: func(t *testing.T, c Config) {
				if c.MaxConns != 900 {
					t.Fatalf("MaxConns = %d, want 900", c.MaxConns)
				}
			}},
		{name: "no fd limit (Windows)", fdLimit: 0, check: func(t *testing.T, c Config) {
			if c.MaxConns != windowsMaxConns {
				t.Fatalf("MaxConns = %d", c.MaxConns)
			}
		}},
		{name: "reserve exceeds limit", cfg: Config{FDReserve: 2000}, fdLimit: 1000, wantErr: true},
		{name: "ping not below idle", cfg: Config{PingInterval: time.Minute, IdleTimeout: time.Minute}, fdLimit: 1000, wantErr: true},
		{name: "negative", cfg: Config{MaxOutbound: -1}, fdLimit: 1000, wantErr: true},
		{name: "huge MaxMessage", cfg: Config{MaxMessage: 2 << 30}, fdLimit: 1000, wantErr: true},
		{name: "huge MaxOutbound", cfg: Config{MaxOutbound: 1<<30 + 1}, fdLimit: 1000, wantErr: true},
		{name: "MaxOutbound at its limit", cfg: Config{MaxOutbound: 1 << 30}, fdLimit: 1000},
		{name: "bad addr", cfg: Config{Addr: "nonsense"}, fdLimit: 1000, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := tt.cfg
			err := c.fill(tt.fdLimit)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if tt.check != nil {
				tt.check(t, c)
			}
		})
	}
}

func TestRunTwice(t *testing.T) {
	s := startServer(t, Config{}, echoCore())
	if err := s.Run(context.Background()); err == nil {
		t.Fatal("second Run did not fail")
	}
}

func TestPortInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	s, err := New(Config{Addr: ln.Addr().String()}, echoCore(), testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Run(ctx); err == nil {
		t.Fatal("Run on a busy port returned nil")
	}
}

func TestTruncateReason(t *testing.T) {
	tests := []struct {
		name, in string
		wantLen  int
	}{
		{name: "short", in: "ok", wantLen: 2},
		{name: "exactly max", in: strings.Repeat("a", 123), wantLen: 123},
		{name: "ascii over", in: strings.Repeat("a", 200), wantLen: 123},
		{name: "cut inside a rune", in: strings.Repeat("a", 122) + "é", wantLen: 122},
		{name: "invalid utf-8 dropped", in: "a\xffb", wantLen: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := truncateReason(tt.in)
			if len(got) != tt.wantLen || !utf8Valid(got) {
				t.Fatalf("truncateReason: %d bytes %q, want %d valid bytes", len(got), got, tt.wantLen)
			}
		})
	}
}

func TestForwardedFor(t *testing.T) {
	proxies := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8:ffff::/48")}
	tests := []struct {
		name, xff, xrip string
		trusted         []netip.Prefix
		want            string // "" means keep the TCP peer
	}{
		{name: "single entry", xff: "198.51.100.1", trusted: proxies, want: "198.51.100.1"},
		{name: "right-most untrusted wins over a forged left entry", xff: "6.6.6.6, 198.51.100.1", trusted: proxies, want: "198.51.100.1"},
		{name: "trusted hops on the right are skipped", xff: "6.6.6.6, 198.51.100.1, 10.0.0.2, 10.1.2.3", trusted: proxies, want: "198.51.100.1"},
		{name: "all trusted gives the left-most", xff: "10.0.0.9, 10.0.0.2", trusted: proxies, want: "10.0.0.9"},
		{name: "no trusted list believes only the last hop", xff: "6.6.6.6, 198.51.100.1", want: "198.51.100.1"},
		{name: "with port", xff: "198.51.100.1:4711", trusted: proxies, want: "198.51.100.1"},
		{name: "v6 with port", xff: "[2001:db8::2]:80", trusted: proxies, want: "2001:db8::2"},
		{name: "v6 trusted hop skipped", xff: "2001:db8::2, 2001:db8:ffff::1", trusted: proxies, want: "2001:db8::2"},
		{name: "mapped v4", xff: "::ffff:198.51.100.9", trusted: proxies, want: "198.51.100.9"},
		{name: "malformed right-most keeps the peer", xff: "198.51.100.1, junk", trusted: proxies, xrip: "198.51.100.3", want: ""},
		{name: "malformed behind a trusted hop keeps the peer", xff: "junk, 10.0.0.2", trusted: proxies, want: ""},
		{name: "malformed left of the answer is never read", xff: "junk, 198.51.100.1", trusted: proxies, want: "198.51.100.1"},
		{name: "empty entry keeps the peer", xff: "198.51.100.1, ", trusted: proxies, want: ""},
		{name: "real ip when no forwarded-for", xff: "", xrip: "198.51.100.3", trusted: proxies, want: "198.51.100.3"},
		{name: "blank forwarded-for falls back to real ip", xff: "  ", xrip: "198.51.100.3", trusted: proxies, want: "198.51.100.3"},
		{name: "nothing usable", xff: "", xrip: "junk", trusted: proxies, want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ip, ok := forwardedFor(tt.xff, tt.xrip, tt.trusted)
			got := ""
			if ok {
				got = ip.String()
			}
			if got != tt.want {
				t.Fatalf("forwardedFor(%q, %q) = %q, want %q", tt.xff, tt.xrip, got, tt.want)
			}
		})
	}
}

func TestValidCode(t *testing.T) {
	tests := []struct {
		name string
		in   int
		want int
	}{
		{name: "normal", in: 1000, want: 1000},
		{name: "private", in: chat.CloseLoginTimeout, want: chat.CloseLoginTimeout},
		{name: "reserved 1005", in: 1005, want: 1000},
		{name: "reserved 1006", in: 1006, want: 1000},
		{name: "too small", in: 999, want: 1000},
		{name: "too large", in: 5000, want: 1000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := validCode(tt.in); int(got) != tt.want {
				t.Fatalf("validCode(%d) = %d, want %d", tt.in, got, tt.want)
			}
		})
	}
}

func TestHeaderLen(t *testing.T) {
	for _, n := range []int{0, 125, 126, 65535, 65536, 1 << 20} {
		if got, want := headerLen(n), len(wsproto.AppendHeader(nil, true, 0, wsproto.OpText, n)); got != want {
			t.Fatalf("headerLen(%d) = %d, wsproto writes %d", n, got, want)
		}
	}
}

func utf8Valid(s string) bool { return strings.ToValidUTF8(s, "\x00") == s }

func TestCompressedMessages(t *testing.T) {
	const maxMsg = 4 << 10
	compressed := func(p []byte) []byte {
		f := clientFrame(true, ws.OpText, wsproto.Deflate(nil, p), true)
		f[0] |= 0x40 // RSV1: permessage-deflate
		return f
	}
	tests := []struct {
		name        string
		compression bool
		frame       []byte
		wantEcho    string
		wantCode    ws.StatusCode
	}{
		{name: "negotiated", compression: true, frame: compressed([]byte(strings.Repeat("squeeze ", 100))),
			wantEcho: strings.Repeat("squeeze ", 100)},
		{name: "not negotiated", compression: false, frame: compressed([]byte("hello")), wantCode: 1002},
		{name: "inflates past MaxMessage", compression: true, frame: compressed(bytes.Repeat([]byte("0"), maxMsg+1)),
			wantCode: 1009},
		{name: "invalid UTF-8 inside", compression: true, frame: compressed([]byte{'a', 0xff}), wantCode: 1007},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := Config{MaxMessage: maxMsg, Handshake: wsproto.HandshakeConfig{Compression: tt.compression}}
			s := startServer(t, cfg, echoCore())
			c, br, resp := deflateDial(t, s.Addr())
			ext := resp.Header.Get("Sec-WebSocket-Extensions")
			if got := strings.HasPrefix(ext, "permessage-deflate"); got != tt.compression {
				t.Fatalf("Sec-WebSocket-Extensions %q, compression %v", ext, tt.compression)
			}
			c.Write(tt.frame)
			f, err := ws.ReadFrame(br)
			if err != nil {
				t.Fatal(err)
			}
			if tt.wantEcho != "" {
				// The echo is above CompressMin: it comes back compressed.
				if f.Header.OpCode != ws.OpText || !f.Header.Rsv1() {
					t.Fatalf("got %v rsv %d, want a compressed echo", f.Header.OpCode, f.Header.Rsv)
				}
				got, err := wsproto.Inflate(nil, f.Payload, maxMsg)
				if err != nil || string(got) != tt.wantEcho {
					t.Fatalf("inflated echo %q, err %v", trim(string(got)), err)
				}
				return
			}
			code, _ := ws.ParseCloseFrameData(f.Payload)
			if f.Header.OpCode != ws.OpClose || code != tt.wantCode {
				t.Fatalf("got %v code %d, want close %d", f.Header.OpCode, code, tt.wantCode)
			}
		})
	}
}

func TestBurstBeyondIOVMax(t *testing.T) {
	// 2,000 messages queued at once need 4,000 iovecs: more than one
	// writev(2) takes (IOV_MAX 1024). They must all arrive, in order, both
	// when queued from HandleMessage and from another goroutine.
	const n = 2000
	msgs := make([][]byte, n)
	for i := range msgs {
		msgs[i] = []byte("burst " + strconv.Itoa(i))
	}
	core := newFakeCore(func(p *fakePeer, msg []byte) {
		switch string(msg) {
		case "on loop":
			for _, m := range msgs {
				p.peer.Send(m)
			}
		case "off loop":
			go func() {
				for _, m := range msgs {
					p.peer.Send(m)
				}
			}()
		}
	})
	s := startServer(t, Config{}, core)
	c := dial(t, s.Addr())
	for _, mode := range []string{"on loop", "off loop"} {
		c.sendText(t, mode)
		for i := 0; i < n; i++ {
			if got, want := c.readText(t), "burst "+strconv.Itoa(i); got != want {
				t.Fatalf("%s: message %d is %q, want %q", mode, i, got, want)
			}
		}
	}
}

func TestAcceptorReturnsNil(t *testing.T) {
	s := startServer(t, Config{}, nilAcceptor{})
	c := dial(t, s.Addr())
	if code, _ := c.expectClose(t, 3*time.Second); code != 1011 {
		t.Fatalf("close code %d, want 1011", code)
	}
}

type nilAcceptor struct{}

func (nilAcceptor) Accept(chat.Peer) chat.Handler { return nil }
