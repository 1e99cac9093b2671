//go:build !race

package reactor

import (
	"io"
	"testing"
	"time"

	"github.com/gobwas/ws"
)

// TestRoundTripAllocs pins the allocations of the message path: a frame
// in, HandleMessage, a Send of a shared reply from inside it (no wake-up
// needed), the writev out. The client side does not allocate (pre-encoded
// frame, fixed buffer), so the count is the server's: none.
func TestRoundTripAllocs(t *testing.T) {
	reply := []byte("pong!")
	core := newFakeCore(func(p *fakePeer, msg []byte) { p.peer.Send(reply) })
	s := startServer(t, Config{Loops: 1}, core)
	c := dial(t, s.Addr())
	frame := clientFrame(true, ws.OpText, []byte("ping?"), true)
	buf := make([]byte, 2+len(reply))
	c.SetDeadline(time.Now().Add(time.Minute))
	roundTrip := func() {
		if _, err := c.Write(frame); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c.r, buf); err != nil {
			t.Fatal(err)
		}
	}
	roundTrip()
	if got := testing.AllocsPerRun(500, roundTrip); got != 0 {
		t.Fatalf("%.1f allocations per round trip, want 0", got)
	}
}
