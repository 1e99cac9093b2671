package reactor

import (
	"bufio"
	"bytes"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"chatd/wsproto"
)

// deflateConn is a raw client connection upgraded with the given
// Sec-WebSocket-Extensions offer ("" offers none).
type deflateConn struct {
	net.Conn
	br  *bufio.Reader
	ext string // the server's Sec-WebSocket-Extensions answer
}

func dialDeflate(t *testing.T, addr, offer string) *deflateConn {
	t.Helper()
	c := rawDial(t, addr)
	c.SetDeadline(time.Now().Add(10 * time.Second))
	req := upgradeRequest(addr)
	if offer != "" {
		req = strings.Replace(req, "\r\n\r\n", "\r\nSec-WebSocket-Extensions: "+offer+"\r\n\r\n", 1)
	}
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 101 {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	return &deflateConn{Conn: c, br: br, ext: resp.Header.Get("Sec-WebSocket-Extensions")}
}

// readMessage reads one text frame and returns its payload (inflated if
// RSV1 is set) and whether it was compressed.
func (c *deflateConn) readMessage(t *testing.T) (string, bool) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	f, err := ws.ReadFrame(c.br)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if f.Header.OpCode != ws.OpText || !f.Header.Fin {
		t.Fatalf("got %v fin=%v, want a whole text frame", f.Header.OpCode, f.Header.Fin)
	}
	if !f.Header.Rsv1() {
		return string(f.Payload), false
	}
	p, err := wsproto.Inflate(nil, f.Payload, 1<<20)
	if err != nil {
		t.Fatalf("inflate: %v", err)
	}
	return string(p), true
}

// A broadcast (one slice sent to every peer) is compressed once, whatever
// the number of recipients and loops; every recipient that negotiated
// compression gets the compressed frame, the others the plain one.
func TestCompressedBroadcastOnce(t *testing.T) {
	const withDeflate, without = 24, 6
	payload := []byte(`{"event":"message","data":{"text":"` + strings.Repeat("broadcast to the whole group ", 20) + `"}}`)
	core := newFakeCore(nil)
	s := startServer(t, Config{Loops: 3, Handshake: wsproto.HandshakeConfig{Compression: true}}, core)
	var conns []*deflateConn
	for i := range withDeflate + without {
		offer := "permessage-deflate; client_max_window_bits"
		if i >= withDeflate {
			offer = ""
		}
		conns = append(conns, dialDeflate(t, s.Addr(), offer))
	}
	waitFor(t, "all accepted", 5*time.Second, func() bool { return core.accepted.Load() == withDeflate+without })
	before := s.Stats()
	// Send from several goroutines at once, as the core's fan-out and
	// per-client goroutines do, so that loops race for the same payload.
	var wg sync.WaitGroup
	for _, p := range core.allPeers() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if !p.peer.Send(payload) {
				t.Error("Send refused")
			}
		}()
	}
	wg.Wait()
	compressed := 0
	for i, c := range conns {
		got, z := c.readMessage(t)
		if got != string(payload) {
			t.Fatalf("conn %d got %q", i, trim(got))
		}
		if want := i < withDeflate; z != want {
			t.Fatalf("conn %d (extension %q): compressed=%v, want %v", i, c.ext, z, want)
		}
		if z {
			compressed++
		}
	}
	st := s.Stats()
	if d := st.Deflates - before.Deflates; d != 1 {
		t.Fatalf("%d recipients caused %d compressions, want 1", compressed, d)
	}
	if f := st.FramesCompressed - before.FramesCompressed; f != withDeflate {
		t.Fatalf("FramesCompressed %d, want %d", f, withDeflate)
	}
	// The same bytes in another slice are another payload: one more
	// compression, shared again by every recipient.
	again := bytes.Clone(payload)
	for _, p := range core.allPeers() {
		p.peer.Send(again)
	}
	for i, c := range conns {
		if got, z := c.readMessage(t); got != string(payload) || z != (i < withDeflate) {
			t.Fatalf("second broadcast, conn %d: compressed=%v %q", i, z, trim(got))
		}
	}
	if d := s.Stats().Deflates - st.Deflates; d != 1 {
		t.Fatalf("second slice: %d compressions, want 1", d)
	}
}

// What is sent compressed: payloads of at least CompressMin bytes that
// shrink, and that fit the window a client allowed the server.
func TestCompressionChoice(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	noise := make([]byte, 3000)
	for i := range noise {
		noise[i] = byte(rng.Uint32()) // the server does not check what the core sends
	}
	text := func(n int) string { return strings.Repeat("abcdefgh", n/8+1)[:n] }
	tests := []struct {
		name     string
		offer    string
		payload  string
		wantZ    bool
		wantExt  string
		minBytes int // CompressMin; 0 for the default
	}{
		{name: "below threshold", offer: "permessage-deflate", payload: text(DefaultCompressMin - 1), wantZ: false},
		{name: "at threshold", offer: "permessage-deflate", payload: text(DefaultCompressMin), wantZ: true},
		{name: "custom threshold", offer: "permessage-deflate", payload: text(40), minBytes: 32, wantZ: true},
		{name: "large", offer: "permessage-deflate", payload: text(60000), wantZ: true},
		{name: "incompressible goes plain", offer: "permessage-deflate", payload: string(noise[:300]), wantZ: false},
		{name: "not negotiated", offer: "", payload: text(5000), wantZ: false},
		{name: "window 10: fits", offer: "permessage-deflate; server_max_window_bits=10", payload: text(1024), wantZ: true,
			wantExt: "server_max_window_bits=10"},
		{name: "window 10: too long for it", offer: "permessage-deflate; server_max_window_bits=10", payload: text(1025), wantZ: false,
			wantExt: "server_max_window_bits=10"},
		{name: "window 15: no limit", offer: "permessage-deflate; server_max_window_bits=15", payload: text(40000), wantZ: true,
			wantExt: "server_max_window_bits=15"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			core := newFakeCore(func(p *fakePeer, msg []byte) { p.peer.Send([]byte(tt.payload)) })
			s := startServer(t, Config{CompressMin: tt.minBytes, Handshake: wsproto.HandshakeConfig{Compression: true}}, core)
			c := dialDeflate(t, s.Addr(), tt.offer)
			if !strings.Contains(c.ext, tt.wantExt) || (c.ext != "") != (tt.offer != "") {
				t.Fatalf("extension answer %q for offer %q", c.ext, tt.offer)
			}
			c.Write(clientFrame(true, ws.OpText, []byte("go"), true))
			got, z := c.readMessage(t)
			if got != tt.payload || z != tt.wantZ {
				t.Fatalf("compressed=%v (want %v), payload ok=%v", z, tt.wantZ, got == tt.payload)
			}
		})
	}
}

// The cache stays within its entry and byte bounds, evicting the oldest,
// and does not cache payloads over zcacheMaxPayload.
func TestZcacheBounds(t *testing.T) {
	zc := newZcache()
	msgs := make([][]byte, 3*zcacheEntries)
	for i := range msgs {
		msgs[i] = []byte(strings.Repeat("message "+strconv.Itoa(i)+" ", 40))
		if zc.compressed(msgs[i]) == nil {
			t.Fatalf("message %d did not compress", i)
		}
		if n, b := zc.len(); n > zcacheEntries || b > zcacheBytes {
			t.Fatalf("after %d: %d entries, %d bytes", i, n, b)
		}
	}
	if n, _ := zc.len(); n != zcacheEntries {
		t.Fatalf("%d entries, want %d", n, zcacheEntries)
	}
	d := zc.deflates.Load()
	zc.compressed(msgs[len(msgs)-1]) // newest: cached
	if zc.deflates.Load() != d {
		t.Fatal("newest payload compressed again")
	}
	zc.compressed(msgs[0]) // oldest: evicted long ago
	if zc.deflates.Load() != d+1 {
		t.Fatal("evicted payload not compressed again")
	}

	// Large payloads: the byte budget evicts, and one over the per-payload
	// cap is never cached.
	big := bytes.Repeat([]byte("0123456789"), zcacheMaxPayload/10)
	for range 20 {
		zc.compressed(bytes.Clone(big))
		if _, b := zc.len(); b > zcacheBytes {
			t.Fatalf("%d bytes cached, budget %d", b, zcacheBytes)
		}
	}
	huge := bytes.Repeat([]byte("x"), zcacheMaxPayload+1)
	n0, b0 := zc.len()
	d = zc.deflates.Load()
	zc.compressed(huge)
	zc.compressed(huge)
	if n, b := zc.len(); n != n0 || b != b0 || zc.deflates.Load() != d+2 {
		t.Fatalf("payload over zcacheMaxPayload cached: %d/%d entries, %d/%d bytes", n, n0, b, b0)
	}
}

// Many goroutines asking for the same payload at once compress it once,
// and all get the same bytes.
func TestZcacheConcurrent(t *testing.T) {
	zc := newZcache()
	p := []byte(strings.Repeat("shared broadcast payload ", 100))
	const n = 64
	out := make([][]byte, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			out[i] = zc.compressed(p)
		}()
	}
	close(start)
	wg.Wait()
	if d := zc.deflates.Load(); d != 1 {
		t.Fatalf("%d compressions, want 1", d)
	}
	for i := range out {
		if &out[i][0] != &out[0][0] {
			t.Fatalf("goroutine %d got different bytes", i)
		}
	}
}

// The server side of Autobahn 12.x and 13.x: for each offer in 13.x's
// parameter sets, an echo of compressed messages from 16 bytes to 128 KiB
// (12.x's sizes), sent whole and in 1 KiB fragments, comes back intact;
// compressed when the reply is long enough and fits the window the client
// allowed the server, plain otherwise.
func TestAutobahnCompressionEcho(t *testing.T) {
	const maxMsg = 256 << 10
	offers := []struct {
		name   string
		offer  string
		window int // longest reply the server may compress
	}{
		{name: "13.1/default", offer: "permessage-deflate; client_max_window_bits", window: maxMsg},
		{name: "13.2/client-no-context-takeover", offer: "permessage-deflate; client_no_context_takeover; client_max_window_bits", window: maxMsg},
		{name: "13.3/server-window-8", offer: "permessage-deflate; server_max_window_bits=8; client_max_window_bits=8", window: 1 << 8},
		{name: "13.4/server-window-15", offer: "permessage-deflate; server_max_window_bits=15; client_max_window_bits=15", window: maxMsg},
		{name: "13.5/server-no-context-window-8", offer: "permessage-deflate; server_no_context_takeover; server_max_window_bits=8", window: 1 << 8},
		{name: "13.6/server-no-context-window-15", offer: "permessage-deflate; server_no_context_takeover; server_max_window_bits=15", window: maxMsg},
		{name: "13.7/several-offers", offer: "permessage-deflate; server_no_context_takeover; server_max_window_bits=9, permessage-deflate; client_no_context_takeover, permessage-deflate", window: 1 << 9},
	}
	rng := rand.New(rand.NewPCG(12, 13))
	letters := make([]byte, 128<<10)
	for i := range letters {
		letters[i] = 'a' + byte(rng.IntN(26))
	}
	s := startServer(t, Config{MaxMessage: maxMsg, Handshake: wsproto.HandshakeConfig{Compression: true}}, echoCore())
	for _, o := range offers {
		t.Run(o.name, func(t *testing.T) {
			c := dialDeflate(t, s.Addr(), o.offer)
			if !strings.HasPrefix(c.ext, "permessage-deflate; server_no_context_takeover; client_no_context_takeover") {
				t.Fatalf("extension answer %q", c.ext)
			}
			for _, n := range []int{16, 64, 256, 1 << 10, 4 << 10, 8 << 10, 16 << 10, 32 << 10, 64 << 10, 128 << 10} {
				for _, kind := range []string{"text", "random-letters"} {
					plain := []byte(strings.Repeat("Hello, chatd! ", n/14+1)[:n])
					if kind == "random-letters" {
						plain = letters[:n]
					}
					z := wsproto.Deflate(nil, plain)
					for _, fragmented := range []bool{false, true} {
						var frames []byte
						if !fragmented {
							frames = clientFrame(true, ws.OpText, z, true)
							frames[0] |= 0x40 // RSV1
						} else {
							for i := 0; i == 0 || i < len(z); i += 1 << 10 {
								op := ws.OpContinuation
								if i == 0 {
									op = ws.OpText
								}
								end := min(len(z), i+1<<10)
								f := clientFrame(end == len(z), op, z[i:end], true)
								if i == 0 {
									f[0] |= 0x40
								}
								frames = append(frames, f...)
							}
						}
						c.SetWriteDeadline(time.Now().Add(10 * time.Second))
						if _, err := c.Write(frames); err != nil {
							t.Fatal(err)
						}
						got, compressed := c.readMessage(t)
						if got != string(plain) {
							t.Fatalf("%s %d bytes fragmented=%v: echo differs", kind, n, fragmented)
						}
						if compressed && (n < DefaultCompressMin || n > o.window) {
							t.Fatalf("%s %d bytes: compressed reply, window %d", kind, n, o.window)
						}
						if kind == "text" && !compressed && n >= DefaultCompressMin && n <= o.window {
							t.Fatalf("%d bytes of text: reply not compressed", n)
						}
					}
				}
			}
		})
	}
}
