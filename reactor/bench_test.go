package reactor

import (
	"bytes"
	"encoding/binary"
	"io"
	"strconv"
	"testing"
	"time"

	"github.com/gobwas/ws"
)

// BenchmarkEcho measures one round trip over loopback: a masked text frame
// in, the core's echo out. The client side uses pre-encoded frames and a
// fixed buffer, so reported allocations are the server's (plus gnet's).
func BenchmarkEcho(b *testing.B) {
	for _, size := range []int{16, 125, 1024} {
		b.Run("size="+strconv.Itoa(size), func(b *testing.B) {
			s := startServer(b, Config{Loops: 1}, echoCore())
			c := dial(b, s.Addr())
			payload := bytes.Repeat([]byte("e"), size)
			frame := clientFrame(true, ws.OpText, payload, true)
			want := len(wsprotoHeader(size)) + size
			buf := make([]byte, want)
			c.SetDeadline(time.Now().Add(time.Minute))
			b.ReportAllocs()
			b.SetBytes(int64(size))
			for b.Loop() {
				if _, err := c.Write(frame); err != nil {
					b.Fatal(err)
				}
				if _, err := io.ReadFull(c.r, buf); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// wsprotoHeader is the server frame header for an n-byte text payload.
func wsprotoHeader(n int) []byte {
	switch {
	case n < 126:
		return []byte{0x81, byte(n)}
	case n < 1<<16:
		return binary.BigEndian.AppendUint16([]byte{0x81, 126}, uint16(n))
	default:
		return binary.BigEndian.AppendUint64([]byte{0x81, 127}, uint64(n))
	}
}
