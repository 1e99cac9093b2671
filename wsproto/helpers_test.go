package wsproto

import (
	"errors"
	"strconv"
	"strings"
	"testing"
)

// wire describes one client frame for the tests. Masked unless unmasked.
type wire struct {
	fin      bool
	rsv      uint8
	op       Opcode
	payload  string
	unmasked bool
	// lenBytes forces a non-minimal length encoding: 2 or 8 (0 = minimal).
	lenBytes int
}

// testKey returns a deterministic, non-trivial mask key for frame i.
func testKey(i int) [4]byte {
	return [4]byte{byte(0x37 + 13*i), byte(0xfa ^ i), byte(0x21 + 7*i), byte(0x3d * (i + 1))}
}

// encode builds the client wire bytes of frames, masking each with testKey.
func encode(frames ...wire) []byte {
	var b []byte
	for i, f := range frames {
		b = appendClientFrame(b, f, testKey(i))
	}
	return b
}

func appendClientFrame(b []byte, f wire, key [4]byte) []byte {
	b0 := byte(f.op) | f.rsv<<4
	if f.fin {
		b0 |= 0x80
	}
	var mask byte
	if !f.unmasked {
		mask = 0x80
	}
	n := len(f.payload)
	switch {
	case f.lenBytes == 8 || f.lenBytes == 0 && n > 0xFFFF:
		b = append(b, b0, mask|127)
		for s := 56; s >= 0; s -= 8 {
			b = append(b, byte(uint64(n)>>s))
		}
	case f.lenBytes == 2 || f.lenBytes == 0 && n > 125:
		b = append(b, b0, mask|126, byte(n>>8), byte(n))
	default:
		b = append(b, b0, mask|byte(n))
	}
	start := len(b)
	if !f.unmasked {
		b = append(b, key[:]...)
		start = len(b)
	}
	b = append(b, f.payload...)
	if !f.unmasked {
		for i := start; i < len(b); i++ {
			b[i] ^= key[(i-start)&3]
		}
	}
	return b
}

// msg is the comparable form of a Message.
type msg struct {
	kind       Kind
	payload    string
	code       CloseCode
	reason     string
	compressed bool
}

func (m msg) String() string {
	p := m.payload
	if len(p) > 40 {
		p = p[:40] + "…(" + strconv.Itoa(len(m.payload)) + " bytes)"
	}
	return m.kind.String() + " " + strconv.Quote(p) + " code=" + strconv.Itoa(int(m.code)) + " reason=" + strconv.Quote(m.reason)
}

func toMsg(m Message) msg {
	return msg{kind: m.Kind, payload: string(m.Payload), code: m.Code, reason: string(m.Reason), compressed: m.Compressed}
}

// closeCode returns the close code carried by err, or 0.
func closeCode(err error) CloseCode {
	var ce *CloseError
	if errors.As(err, &ce) {
		return ce.Code
	}
	return 0
}

// readAll runs a fresh Reader over stream fed in chunks of the given sizes
// (the last size repeats; 0 means everything at once), keeping the
// unconsumed tail like a connection buffer. It returns the messages before
// the first violation and the violation (nil if the stream ended cleanly
// on a frame boundary).
func readAll(t testing.TB, r *Reader, stream []byte, chunk int) ([]msg, error) {
	t.Helper()
	stream = append([]byte(nil), stream...) // Next unmasks in place
	if chunk <= 0 {
		chunk = len(stream) + 1
	}
	var out []msg
	var buf []byte
	fed := 0
	for {
		m, n, ok, err := r.Next(buf)
		switch {
		case errors.Is(err, ErrShortFrame):
			if n != 0 {
				t.Fatalf("ErrShortFrame with n=%d", n)
			}
			if fed == len(stream) {
				if len(buf) != 0 {
					return out, errTrailing
				}
				return out, nil
			}
			end := min(fed+chunk, len(stream))
			// Append like a connection buffer: consumed frames (already
			// converted to msg) may be overwritten, the tail is kept.
			buf = append(buf, stream[fed:end]...)
			fed = end
			continue
		case err != nil:
			if n != 0 {
				t.Fatalf("error %v with n=%d", err, n)
			}
			return out, err
		}
		if n <= 0 || n > len(buf) {
			t.Fatalf("Next consumed n=%d of %d bytes", n, len(buf))
		}
		if ok {
			out = append(out, toMsg(m))
		} else if m.Kind != 0 || m.Payload != nil {
			t.Fatalf("ok=false but message %v", toMsg(m))
		}
		buf = buf[n:]
	}
}

var errTrailing = errors.New("stream ended inside a frame")

func repeat(s string, n int) string { return strings.Repeat(s, n) }
