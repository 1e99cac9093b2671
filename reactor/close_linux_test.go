package reactor

import (
	"bytes"
	"errors"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/gobwas/ws"
)

// When the replies before a client's close are more than the socket takes
// at once, the close frame goes behind them and the server closes the TCP
// connection as soon as gnet has written them all — not after
// close_timeout.
func TestClientCloseAfterBacklog(t *testing.T) {
	const size, n = 60 << 10, 100
	s := startServer(t, Config{MaxMessage: 64 << 10, MaxOutbound: 32 << 20, CloseTimeout: longCloseTimeout, Loops: 1}, echoCore())
	// A small receive window (set before connecting, so it is what the
	// handshake advertises) makes the echoes back up in the server.
	d := net.Dialer{Timeout: promptly, Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4<<10) })
		return errors.Join(err, serr)
	}}
	c, err := d.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := rawUpgrade(t, c, s.Addr())
	msg := bytes.Repeat([]byte("b"), size)
	var out []byte
	for range n {
		out = append(out, clientFrame(true, ws.OpText, msg, true)...)
	}
	out = append(out, clientFrame(true, ws.OpClose, closePayload(1000, ""), true)...)
	c.SetDeadline(time.Now().Add(promptly))
	if _, err := c.Write(out); err != nil {
		t.Fatal(err)
	}
	// Let the server answer into the small window before reading.
	waitFor(t, "a backlog in gnet", promptly, func() bool { return s.Stats().PeakOutbound > 0 })
	var f ws.Frame
	for i := range n {
		f, err = ws.ReadFrame(br)
		if err != nil || f.Header.OpCode != ws.OpText || len(f.Payload) != size {
			t.Fatalf("echo %d: %v %v %d bytes", i, err, f.Header.OpCode, len(f.Payload))
		}
	}
	f, err = ws.ReadFrame(br)
	if err != nil || f.Header.OpCode != ws.OpClose {
		t.Fatalf("after the echoes: %v %v, want the close frame", err, f.Header.OpCode)
	}
	expectEOF(t, c, br, promptly)
}
