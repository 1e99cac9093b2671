//go:build !race

package wsproto

import (
	"testing"
)

func TestAllocs(t *testing.T) {
	textFrame := encode(text(repeat("héllo ", 20)))
	pingFrame := encode(ping("are you there"))
	closeF := encode(closeFrame(1000, "bye"))
	fragmented := encode(frag(OpText, repeat("a", 100), false), frag(OpContinuation, repeat("€", 30), true))
	head := request(upgradeLines("User-Agent: test/1.0", "Sec-WebSocket-Protocol: chat")...)
	cfg := &HandshakeConfig{Subprotocols: []string{"chat"}}
	req, _, err := ParseHandshake(head, cfg)
	if err != nil {
		t.Fatal(err)
	}
	// Strings ParseHandshake must copy: Path, Query, Host, Origin, Key,
	// UserAgent (Protocol comes from cfg without a copy).
	const handshakeStrings = 6

	var r Reader
	buf := make([]byte, 0, 4096)
	payload := []byte(repeat("x", 1000))
	deflated := Deflate(nil, payload)
	// next runs Reader.Next on a fresh copy of a masked frame (Next
	// unmasks in place) and checks that it yields a message of kind k.
	next := func(frame []byte, k Kind) {
		b := append(buf[:0], frame...)
		m, _, ok, err := r.Next(b)
		if err != nil || !ok || m.Kind != k {
			t.Fatalf("Next: kind %v ok %v err %v", m.Kind, ok, err)
		}
	}
	cases := []struct {
		name string
		max  float64
		fn   func()
	}{
		{name: "Parse", fn: func() {
			if _, _, err := Parse(textFrame, 1<<20); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "Frame.Unmask", fn: func() {
			f, _, _ := Parse(textFrame, 1<<20)
			f.Unmask()
			f.Masked = true
			f.Unmask() // restore the bytes for the next run
		}},
		{name: "Reader.Next/unfragmented-text", fn: func() { next(textFrame, KindText) }},
		{name: "Reader.Next/ping", fn: func() { next(pingFrame, KindPing) }},
		{name: "Reader.Next/close", fn: func() { next(closeF, KindClose) }},
		{name: "Reader.Next/fragmented-steady-state", fn: func() {
			b := append(buf[:0], fragmented...)
			for len(b) > 0 {
				_, n, _, err := r.Next(b)
				if err != nil {
					t.Fatal(err)
				}
				b = b[n:]
			}
		}},
		{name: "ParseHandshake", max: handshakeStrings, fn: func() {
			if _, _, err := ParseHandshake(head, cfg); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "AppendHandshakeResponse", fn: func() { AppendHandshakeResponse(buf[:0], &req) }},
		{name: "AppendHandshakeError", fn: func() { AppendHandshakeError(buf[:0], errHSOrigin) }},
		{name: "AppendFrame", fn: func() { AppendFrame(buf[:0], OpText, payload) }},
		{name: "AppendClose", fn: func() { AppendClose(buf[:0], CloseGoingAway, "shutting down") }},
		{name: "ValidUTF8", fn: func() { ValidUTF8(textFrame) }},
		{name: "Inflate/pooled", fn: func() {
			if _, err := Inflate(buf[:0], deflated, 4096); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "Deflate/pooled", fn: func() { Deflate(buf[:0], payload) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn() // warm pools and buffers
			if got := testing.AllocsPerRun(200, tc.fn); got > tc.max {
				t.Fatalf("%v allocs/op, want <= %v", got, tc.max)
			}
		})
	}
}
