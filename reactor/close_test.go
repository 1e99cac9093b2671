package reactor

import (
	"bytes"
	"encoding/binary"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"chatd/chat"
)

// The close tests run with a close timeout far longer than the time they
// allow for the TCP close, so a connection that goes in time was closed on
// purpose and not by the sweep.
const (
	longCloseTimeout = 30 * time.Second
	promptly         = 5 * time.Second
)

// closePayload is a close frame body with code and reason as raw bytes
// (which may be invalid on purpose).
func closePayload(code uint16, reason string) []byte {
	return append(binary.BigEndian.AppendUint16(nil, code), reason...)
}

// withRsv sets reserved bits on the first byte of frame.
func withRsv(frame []byte, bits byte) []byte {
	frame[0] |= bits
	return frame
}

// readToClose reads frames up to and including the server's close frame
// and returns the frames before it and the close code.
func readToClose(t *testing.T, c *client) (before []ws.Frame, code ws.StatusCode) {
	t.Helper()
	deadline := time.Now().Add(promptly)
	for {
		f, err := c.readFrame(time.Until(deadline))
		if err != nil {
			t.Fatalf("waiting for the close frame: %v (after %d frames)", err, len(before))
		}
		if f.Header.OpCode == ws.OpClose {
			code, _ := ws.ParseCloseFrameData(f.Payload)
			return before, code
		}
		f.Payload = bytes.Clone(f.Payload)
		before = append(before, f)
	}
}

// A violation fails the connection (RFC 6455 §7.1.7): the close frame
// with the violation's code, then the TCP close at once, without waiting
// for the client's close (close_timeout is 30s here) and without
// processing anything sent after the violation (a ping behind it gets no
// pong). The cases follow the Autobahn families that found the wait.
func TestFailureClosesAtOnce(t *testing.T) {
	masked := func(op ws.OpCode, p []byte) []byte { return clientFrame(true, op, p, true) }
	tests := []struct {
		name string
		bad  []byte
		chop bool // write one byte at a time, as Autobahn 3.4 does
		code ws.StatusCode
	}{
		{name: "3.4 RSV1 after valid frames, octet-wise", bad: withRsv(masked(ws.OpText, []byte("Hello")), 0x40), chop: true, code: 1002},
		{name: "3.2 RSV2", bad: withRsv(masked(ws.OpText, []byte("Hello")), 0x20), code: 1002},
		{name: "3.7 RSV3 on a close frame", bad: withRsv(masked(ws.OpClose, nil), 0x10), code: 1002},
		{name: "4.1.1 data opcode 3", bad: masked(3, nil), code: 1002},
		{name: "4.1.5 data opcode 7 with payload", bad: masked(7, []byte("reserved")), code: 1002},
		{name: "4.1.5 octet-wise", bad: masked(7, []byte("reserved")), chop: true, code: 1002},
		{name: "4.2.1 control opcode 11", bad: masked(11, nil), code: 1002},
		{name: "4.2.5 control opcode 15 with payload", bad: masked(15, []byte("reserved")), code: 1002},
		{name: "unmasked frame", bad: clientFrame(true, ws.OpText, []byte("naked"), false), code: 1002},
		{name: "invalid UTF-8 text", bad: masked(ws.OpText, []byte{'o', 'k', 0xff}), code: 1007},
		{name: "over MaxMessage", bad: masked(ws.OpText, bytes.Repeat([]byte("x"), 1<<10+1)), code: 1009},
		{name: "7.3.2 close payload of 1 byte", bad: masked(ws.OpClose, []byte{0x03}), code: 1002},
		{name: "7.3.6 close payload of 126 bytes", bad: masked(ws.OpClose, closePayload(1000, strings.Repeat("*", 124))), code: 1002},
		{name: "7.5.1 close reason not UTF-8", bad: masked(ws.OpClose, closePayload(1000, "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80\x65\x64\x69\x74\x65\x64")), code: 1007},
	}
	// Autobahn 7.9.x's invalid codes, plus 1015 (RFC 6455 §7.4.1: never
	// sent) and codes past 4999 (7.13.x leaves them to the server).
	for _, code := range []uint16{0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535} {
		tests = append(tests, struct {
			name string
			bad  []byte
			chop bool
			code ws.StatusCode
		}{name: "7.9 close code " + strconv.Itoa(int(code)), bad: masked(ws.OpClose, closePayload(code, "")), code: 1002})
	}
	core := echoCore()
	s := startServer(t, Config{MaxMessage: 1 << 10, CloseTimeout: longCloseTimeout}, core)
	other := dial(t, s.Addr())
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := s.Stats().ClosedProtocol
			c := dial(t, s.Addr())
			c.echo(t, "valid first")
			// A ping and a text message behind the violation: neither may
			// be answered.
			out := append(bytes.Clone(tt.bad), masked(ws.OpPing, []byte("after"))...)
			out = append(out, masked(ws.OpText, []byte("after"))...)
			if tt.chop {
				for i := range out {
					if _, err := c.Write(out[i : i+1]); err != nil {
						break // the server may close before the end
					}
				}
			} else if _, err := c.Write(out); err != nil {
				t.Fatal(err)
			}
			frames, code := readToClose(t, c)
			if code != tt.code {
				t.Fatalf("close code %d, want %d", code, tt.code)
			}
			if len(frames) != 0 {
				t.Fatalf("%d frames before the close (first %v %q): nothing after the violation may be processed",
					len(frames), frames[0].Header.OpCode, frames[0].Payload)
			}
			expectEOF(t, c, c.r, promptly) // no close reply from the client
			waitFor(t, "protocol close counted", 2*time.Second, func() bool { return s.Stats().ClosedProtocol == before+1 })
			other.echo(t, "unaffected")
		})
	}
}

// A client that answers the server's close frame with bytes that break
// the protocol (instead of its close frame) is cut off at once: nothing
// after them can be parsed, so its close will not come.
func TestBrokenStreamWhileClosing(t *testing.T) {
	core := newFakeCore(func(p *fakePeer, msg []byte) {
		if string(msg) == "kick me" {
			p.peer.Close(4001, "kicked")
		}
	})
	s := startServer(t, Config{CloseTimeout: longCloseTimeout}, core)
	for _, tc := range []struct {
		name  string
		reply []byte
	}{
		{name: "unmasked frame", reply: clientFrame(true, ws.OpText, []byte("naked"), false)},
		{name: "close code 1005", reply: clientFrame(true, ws.OpClose, closePayload(1005, ""), true)},
		{name: "garbage", reply: []byte("\x0f\x0f garbage that is no frame at all")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dial(t, s.Addr())
			c.sendText(t, "kick me")
			if code, _ := c.expectClose(t, promptly); code != 4001 {
				t.Fatalf("close code %d, want 4001", code)
			}
			c.Write(tc.reply)
			expectEOF(t, c, c.r, promptly)
		})
	}
}

// The client's close frame ends what the server processes: the replies to
// the messages before it go out first (Autobahn 7.1.6 sends a big message,
// a small one, the close and a ping back to back), then the close echoing
// the client's code, then the TCP close — at once, not after
// close_timeout. The ping and the message after the close are not
// processed.
func TestClientCloseAfterMessages(t *testing.T) {
	const big = 60 << 10
	core := echoCore()
	s := startServer(t, Config{MaxMessage: 64 << 10, CloseTimeout: longCloseTimeout}, core)
	for _, tc := range []struct {
		name string
		body []byte
		want ws.StatusCode
	}{
		{name: "code 1000", body: closePayload(1000, "bye"), want: 1000},
		{name: "no code", body: nil, want: 1000},
		{name: "code 1012 (IANA)", body: closePayload(1012, ""), want: 1012},
		{name: "code 4100", body: closePayload(4100, "app"), want: 4100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dial(t, s.Addr())
			p := <-core.acceptedCh
			large := strings.Repeat("BAsd7&jh23", big/10)
			var out []byte
			out = append(out, clientFrame(true, ws.OpText, []byte(large), true)...)
			out = append(out, clientFrame(true, ws.OpText, []byte("Hello World!"), true)...)
			out = append(out, clientFrame(true, ws.OpClose, tc.body, true)...)
			out = append(out, clientFrame(true, ws.OpPing, nil, true)...)
			out = append(out, clientFrame(true, ws.OpText, []byte("after close"), true)...)
			c.SetWriteDeadline(time.Now().Add(promptly))
			if _, err := c.Write(out); err != nil {
				t.Fatal(err)
			}
			frames, code := readToClose(t, c)
			if len(frames) != 2 || string(frames[0].Payload) != large || string(frames[1].Payload) != "Hello World!" {
				got := make([]string, len(frames))
				for i, f := range frames {
					got[i] = strconv.Itoa(int(f.Header.OpCode)) + " " + trim(string(f.Payload))
				}
				t.Fatalf("before the close: %q; want the two replies", got)
			}
			if code != tc.want {
				t.Fatalf("close code %d, want %d", code, tc.want)
			}
			expectEOF(t, c, c.r, promptly)
			if n := p.msgs.Load(); n != 2 {
				t.Fatalf("core got %d messages, want the 2 before the close", n)
			}
		})
	}
}

// asyncCore answers each message from another goroutine, as chat.Client
// does, once the test releases it; its handlers implement drainer.
type asyncCore struct {
	*fakeCore
	release chan struct{} // closed to let the replies go
	drains  chan struct{} // gets a value per Drain call
	never   bool          // Drain never reports done
}

func newAsyncCore(never bool) *asyncCore {
	return &asyncCore{fakeCore: newFakeCore(nil), release: make(chan struct{}), drains: make(chan struct{}, 16), never: never}
}

type asyncHandler struct {
	*fakePeer
	ac   *asyncCore
	jobs chan func() // run in order by one goroutine, after release
}

type asyncAcceptor struct{ ac *asyncCore }

func (a asyncAcceptor) Accept(p chat.Peer) chat.Handler {
	h := &asyncHandler{fakePeer: a.ac.fakeCore.Accept(p).(*fakePeer), ac: a.ac, jobs: make(chan func(), 64)}
	go func() {
		<-h.ac.release
		for {
			select {
			case job := <-h.jobs:
				job()
			case <-h.closedCh:
				return
			}
		}
	}()
	return h
}

func (h *asyncHandler) HandleMessage(msg []byte) {
	h.fakePeer.msgs.Add(1)
	reply := []byte("re: " + string(msg))
	h.jobs <- func() { h.peer.Send(reply) }
}

func (h *asyncHandler) Drain(done func()) bool {
	h.ac.drains <- struct{}{}
	if !h.ac.never {
		h.jobs <- done
	}
	return true
}

// With a core that answers off the loop (chat.Client), the close waits
// until the core has answered what came before it.
func TestClientCloseWaitsForCore(t *testing.T) {
	ac := newAsyncCore(false)
	s := startServer(t, Config{CloseTimeout: longCloseTimeout}, asyncAcceptor{ac})
	c := dial(t, s.Addr())
	var out []byte
	out = append(out, clientFrame(true, ws.OpText, []byte("one"), true)...)
	out = append(out, clientFrame(true, ws.OpText, []byte("two"), true)...)
	out = append(out, clientFrame(true, ws.OpClose, closePayload(4100, ""), true)...)
	if _, err := c.Write(out); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ac.drains:
	case <-time.After(promptly):
		t.Fatal("Drain not called after the client's close")
	}
	close(ac.release) // the core answers now, after the close arrived
	frames, code := readToClose(t, c)
	if len(frames) != 2 || string(frames[0].Payload) != "re: one" || string(frames[1].Payload) != "re: two" {
		t.Fatalf("before the close: %d frames; want both replies", len(frames))
	}
	if code != 4100 {
		t.Fatalf("close code %d, want 4100", code)
	}
	expectEOF(t, c, c.r, promptly)
	waitFor(t, "peer close counted", 2*time.Second, func() bool { return s.Stats().ClosedPeer == 1 })
}

// A core that never finishes answering holds the close for CloseTimeout
// at most.
func TestClientCloseDrainTimeout(t *testing.T) {
	ac := newAsyncCore(true)
	close(ac.release)
	s := startServer(t, Config{CloseTimeout: 200 * time.Millisecond}, asyncAcceptor{ac})
	c := dial(t, s.Addr())
	c.Write(clientFrame(true, ws.OpClose, closePayload(1000, ""), true))
	<-ac.drains
	if _, code := readToClose(t, c); code != 1000 {
		t.Fatalf("close code %d, want 1000", code)
	}
	expectEOF(t, c, c.r, promptly)
}
