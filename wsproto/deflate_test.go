package wsproto

import (
	"bytes"
	"compress/flate"
	"context"
	"errors"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/httphead"
	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsflate"
	"github.com/gobwas/ws/wsutil"
)

func TestDeflateNegotiation(t *testing.T) {
	const both = "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
	cases := []struct {
		name        string
		offers      []string // Sec-WebSocket-Extensions header lines
		compression bool
		want        string // response header value, "" for none
	}{
		{name: "RFC7692-5/disabled-in-config", offers: []string{"permessage-deflate"}, compression: false},
		{name: "RFC7692-5/not-offered", compression: true},
		{name: "RFC7692-5/other-extension-only", offers: []string{"x-webkit-deflate-frame"}, compression: true},
		{name: "RFC7692-7/bare-offer", offers: []string{"permessage-deflate"}, compression: true, want: both},
		{name: "RFC7692-7/browser-offer", offers: []string{"permessage-deflate; client_max_window_bits"}, compression: true, want: both},
		{name: "RFC7692-7.1.1/client-asks-no-context-takeover", offers: []string{"permessage-deflate; client_no_context_takeover; server_no_context_takeover"}, compression: true, want: both},
		{name: "RFC7692-7.1.2/client-window-value", offers: []string{"permessage-deflate; client_max_window_bits=10"}, compression: true, want: both},
		{name: "RFC7692-7.1.2/server-window-15-confirmed", offers: []string{"permessage-deflate; server_max_window_bits=15"}, compression: true, want: both + "; server_max_window_bits=15"},
		{name: "RFC7692-7.1.2/server-window-quoted", offers: []string{`permessage-deflate; server_max_window_bits="15"`}, compression: true, want: both + "; server_max_window_bits=15"},
		{name: "RFC7692-7.1.2/server-window-10-confirmed", offers: []string{"permessage-deflate; server_max_window_bits=10"}, compression: true, want: both + "; server_max_window_bits=10"},
		{name: "RFC7692-7.1.2/server-window-8-confirmed", offers: []string{"permessage-deflate; server_max_window_bits=8; client_max_window_bits=8"}, compression: true, want: both + "; server_max_window_bits=8"},
		{name: "RFC7692-7.1.2/fallback-to-second-offer", offers: []string{"permessage-deflate; server_max_window_bits=16, permessage-deflate"}, compression: true, want: both},
		{name: "RFC7692-7.1.2/fallback-across-header-lines", offers: []string{"permessage-deflate; server_max_window_bits", "permessage-deflate; client_max_window_bits"}, compression: true, want: both},
		{name: "RFC7692-7.1.2/server-window-7", offers: []string{"permessage-deflate; server_max_window_bits=7"}, compression: true},
		{name: "RFC7692-7.1.2/window-out-of-range", offers: []string{"permessage-deflate; client_max_window_bits=16"}, compression: true},
		{name: "RFC7692-7.1.2/window-7", offers: []string{"permessage-deflate; client_max_window_bits=7"}, compression: true},
		{name: "RFC7692-7.1.2/server-window-without-value", offers: []string{"permessage-deflate; server_max_window_bits"}, compression: true},
		{name: "RFC7692-7/unknown-parameter", offers: []string{"permessage-deflate; foo=1"}, compression: true},
		{name: "RFC7692-7/repeated-parameter", offers: []string{"permessage-deflate; client_no_context_takeover; client_no_context_takeover"}, compression: true},
		{name: "RFC7692-7/value-on-flag", offers: []string{"permessage-deflate; server_no_context_takeover=1"}, compression: true},
		{name: "RFC7692-7/name-case-insensitive", offers: []string{"PerMessage-Deflate"}, compression: true, want: both},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			lines := upgradeLines()
			for _, o := range tc.offers {
				lines = append(lines, "Sec-WebSocket-Extensions: "+o)
			}
			r, _, err := ParseHandshake(request(lines...), &HandshakeConfig{Compression: tc.compression})
			if err != nil {
				t.Fatal(err)
			}
			if r.Deflate.Enabled != (tc.want != "") {
				t.Fatalf("Enabled = %v", r.Deflate.Enabled)
			}
			resp := string(AppendHandshakeResponse(nil, &r))
			if tc.want == "" {
				if strings.Contains(resp, "Sec-WebSocket-Extensions") {
					t.Fatalf("unexpected extension in %q", resp)
				}
				return
			}
			if !strings.Contains(resp, "\r\nSec-WebSocket-Extensions: "+tc.want+"\r\n") {
				t.Fatalf("response %q, want extension %q", resp, tc.want)
			}
			if !r.Deflate.ServerNoContextTakeover || !r.Deflate.ClientNoContextTakeover {
				t.Fatalf("params %+v", r.Deflate)
			}
			wantMax := math.MaxInt
			if b := r.Deflate.ServerMaxWindowBits; b != 0 && b < 15 {
				wantMax = 1 << b
			}
			if got := r.Deflate.MaxCompressed(); got != wantMax {
				t.Fatalf("MaxCompressed() = %d, want %d", got, wantMax)
			}
		})
	}
}

func deflatePayloads() [][]byte {
	rng := rand.New(rand.NewPCG(5, 6))
	random := make([]byte, 100000)
	for i := range random {
		random[i] = byte(rng.Uint32())
	}
	return [][]byte{
		nil,
		[]byte("a"),
		[]byte("Hello"),
		[]byte(`{"id":"7","action":"send","session_id":42,"type":"text","content":{"text":"hi"}}`),
		bytes.Repeat([]byte("chat message "), 5000),
		random,
	}
}

// RFC 7692 §7.2: our Deflate output inflates with compress/flate and with
// gobwas/ws's wsflate, and theirs inflates with ours.
func TestDeflateRoundTrips(t *testing.T) {
	for _, p := range deflatePayloads() {
		c := Deflate([]byte("keep"), p)
		if string(c[:4]) != "keep" {
			t.Fatalf("Deflate clobbered dst")
		}
		c = c[4:]
		if bytes.HasSuffix(c, []byte{0, 0, 0xff, 0xff}) {
			t.Fatalf("RFC7692-7.2.1: trailing 00 00 ff ff not removed (% x)", c[max(0, len(c)-6):])
		}
		got, err := Inflate([]byte("x"), c, len(p))
		if err != nil || !bytes.Equal(got[1:], p) || got[0] != 'x' {
			t.Fatalf("len %d: Inflate(Deflate) err %v", len(p), err)
		}
		// Independent decompressors.
		std, err := io.ReadAll(flate.NewReader(io.MultiReader(bytes.NewReader(c), bytes.NewReader([]byte{0, 0, 0xff, 0xff, 1, 0, 0, 0xff, 0xff}))))
		if err != nil || !bytes.Equal(std, p) {
			t.Fatalf("len %d: compress/flate read err %v", len(p), err)
		}
		gw, err := wsflate.DefaultHelper.Decompress(c)
		if err != nil || !bytes.Equal(gw, p) {
			t.Fatalf("len %d: wsflate read err %v", len(p), err)
		}
		// gobwas compresses (level 9), we inflate.
		gc, err := wsflate.DefaultHelper.Compress(p)
		if err != nil {
			t.Fatal(err)
		}
		got, err = Inflate(nil, gc, len(p))
		if err != nil || !bytes.Equal(got, p) {
			t.Fatalf("len %d: Inflate(wsflate) err %v", len(p), err)
		}
	}
}

func TestInflateLimits(t *testing.T) {
	bomb := Deflate(nil, make([]byte, 10<<20)) // 10 MiB of zeros
	if len(bomb) > 20<<10 {
		t.Fatalf("bomb is %d bytes", len(bomb))
	}
	cases := []struct {
		name     string
		src      []byte
		limit    int
		wantLen  int
		wantCode CloseCode
	}{
		{name: "RFC7692-8/at-limit", src: Deflate(nil, []byte("0123456789")), limit: 10, wantLen: 10},
		{name: "RFC7692-8/one-over-limit", src: Deflate(nil, []byte("0123456789")), limit: 9, wantCode: CloseMessageTooBig},
		{name: "RFC7692-8/compression-bomb", src: bomb, limit: 64 << 10, wantCode: CloseMessageTooBig},
		{name: "RFC7692-8/zero-limit-empty", src: Deflate(nil, nil), limit: 0, wantLen: 0},
		{name: "RFC7692-8/corrupt", src: []byte{0xff, 0xff, 0xff, 0xff}, limit: 100, wantCode: CloseInvalidPayload},
		{name: "RFC7692-8/truncated-stream", src: Deflate(nil, bytes.Repeat([]byte("abcdefgh"), 1000))[:20], limit: 1 << 20, wantCode: CloseInvalidPayload},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, err := Inflate([]byte("pre"), tc.src, tc.limit)
			if closeCode(err) != tc.wantCode || (err != nil && tc.wantCode == 0) {
				t.Fatalf("err %v, want code %d", err, tc.wantCode)
			}
			if err != nil {
				if string(out) != "pre" {
					t.Fatalf("dst not restored on error: %q", out[:min(len(out), 10)])
				}
				if cap(out) > 3+tc.limit+1 && tc.limit > 0 {
					t.Fatalf("grew to %d for a limit of %d", cap(out), tc.limit)
				}
				return
			}
			if len(out)-3 != tc.wantLen {
				t.Fatalf("len %d, want %d", len(out)-3, tc.wantLen)
			}
		})
	}
	// The bomb does not make Inflate allocate much past the limit.
	allocs := testing.Benchmark(func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			Inflate(nil, bomb, 64<<10)
		}
	})
	if per := allocs.AllocedBytesPerOp(); per > 512<<10 {
		t.Fatalf("inflating a bomb with a 64 KiB limit allocated %d bytes/op", per)
	}
}

// conformanceDeflate is the permessage-deflate part of the conformance
// tables (RFC 7692 §6, and the framing side of Autobahn 12.x and 13.x,
// whose payloads are compressed with and without context takeover and
// fragmented at several sizes).
func conformanceDeflate() []conformanceCase {
	plain := repeat("hello ", 200)
	hello := string(Deflate(nil, []byte(plain)))
	cases := []conformanceCase{
		{name: "RFC7692-6/rsv1-on-single-frame", deflate: true,
			frames: []wire{{fin: true, rsv: Rsv1, op: OpText, payload: hello}},
			want:   []msg{{kind: KindText, payload: hello, compressed: true}}},
		{name: "RFC7692-6/rsv1-on-first-fragment-only", deflate: true,
			frames: []wire{{rsv: Rsv1, op: OpBinary, payload: hello[:3]}, ping("p"), frag(OpContinuation, hello[3:], true)},
			want:   []msg{mPing("p"), {kind: KindBinary, payload: hello, compressed: true}}},
		{name: "RFC7692-6/uncompressed-message-still-allowed", deflate: true,
			frames: []wire{text("plain")}, want: []msg{mText("plain")}},
		{name: "RFC7692-6/compressed-text-not-utf8-checked-before-inflate", deflate: true,
			frames: []wire{{fin: true, rsv: Rsv1, op: OpText, payload: "\xff\xfe"}},
			want:   []msg{{kind: KindText, payload: "\xff\xfe", compressed: true}}},
		{name: "RFC7692-6/rsv1-on-continuation", deflate: true,
			frames:   []wire{{rsv: Rsv1, op: OpText, payload: hello[:3]}, {fin: true, rsv: Rsv1, op: OpContinuation, payload: hello[3:]}},
			wantCode: CloseProtocolError},
		{name: "RFC7692-6/rsv1-on-ping", deflate: true,
			frames: []wire{{fin: true, rsv: Rsv1, op: OpPing}}, wantCode: CloseProtocolError},
		{name: "RFC7692-6/rsv1-on-close", deflate: true,
			frames: []wire{{fin: true, rsv: Rsv1, op: OpClose, payload: closePayload(1000, "")}}, wantCode: CloseProtocolError},
		{name: "RFC7692-6/rsv2-still-reserved", deflate: true,
			frames: []wire{{fin: true, rsv: Rsv1 | Rsv2, op: OpText, payload: hello}}, wantCode: CloseProtocolError},
		{name: "RFC7692-6/rsv1-without-negotiation",
			frames: []wire{{fin: true, rsv: Rsv1, op: OpText, payload: hello}}, wantCode: CloseProtocolError},
		{name: "RFC7692-6/compressed-over-max-message-on-the-wire", deflate: true, maxMessage: 16,
			frames: []wire{{fin: true, rsv: Rsv1, op: OpText, payload: hello}}, wantCode: CloseMessageTooBig},
	}
	// Autobahn 12.x/13.x: sizes 16 B to 64 KiB, compressed, each sent whole
	// and fragmented into 1 KiB frames; the Reader hands over exactly the
	// compressed bytes with Compressed set.
	for _, n := range []int{16, 64, 256, 1 << 10, 4 << 10, 8 << 10, 16 << 10, 32 << 10, 64 << 10} {
		p := string(Deflate(nil, []byte(repeat("BAsd7&jh23", n/10+1)[:n])))
		whole := wire{fin: true, rsv: Rsv1, op: OpText, payload: p}
		split := fragments(OpText, p, 1<<10)
		split[0].rsv = Rsv1
		cases = append(cases,
			conformanceCase{name: "RFC7692-6/autobahn-12/text-" + strconv.Itoa(n) + "-whole", deflate: true, maxMessage: 1 << 20,
				frames: []wire{whole}, want: []msg{{kind: KindText, payload: p, compressed: true}}},
			conformanceCase{name: "RFC7692-6/autobahn-12/text-" + strconv.Itoa(n) + "-in-1KiB-fragments", deflate: true, maxMessage: 1 << 20,
				frames: split, want: []msg{{kind: KindText, payload: p, compressed: true}}},
		)
	}
	return cases
}

func TestReaderDeflate(t *testing.T) {
	plain := repeat("hello ", 200)
	hello := string(Deflate(nil, []byte(plain)))
	if len(hello) >= 64 {
		t.Fatalf("test payload compresses to %d bytes", len(hello))
	}
	bad := string(Deflate(nil, []byte("ok \xed\xa0\x80")))
	runConformance(t, conformanceDeflate())

	t.Run("RFC7692-7.2.2/Decompress", func(t *testing.T) {
		cases := []struct {
			name     string
			kind     Kind
			payload  string
			max      int32
			want     string
			wantCode CloseCode
		}{
			{name: "text", kind: KindText, payload: hello, want: plain},
			{name: "binary", kind: KindBinary, payload: bad, want: "ok \xed\xa0\x80"},
			{name: "text-invalid-utf8-after-inflate", kind: KindText, payload: bad, wantCode: CloseInvalidPayload},
			{name: "over-max-message-after-inflate", kind: KindText, payload: hello, max: 64, wantCode: CloseMessageTooBig},
			{name: "corrupt", kind: KindBinary, payload: "\xff\xff\xff", wantCode: CloseInvalidPayload},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				r := Reader{Deflate: true, MaxMessage: tc.max}
				m, _, ok, err := r.Next(encode(wire{fin: true, rsv: Rsv1, op: Opcode(tc.kind), payload: tc.payload}))
				if err != nil || !ok || !m.Compressed {
					t.Fatalf("Next: %v %v %v", toMsg(m), ok, err)
				}
				buf, err := r.Decompress([]byte("z"), &m)
				if closeCode(err) != tc.wantCode || (err != nil && tc.wantCode == 0) {
					t.Fatalf("err %v, want %d", err, tc.wantCode)
				}
				if err != nil {
					if string(buf) != "z" {
						t.Fatalf("buffer not restored: %q", buf)
					}
					return
				}
				if string(m.Payload) != tc.want || m.Compressed || string(buf) != "z"+tc.want {
					t.Fatalf("payload %q compressed=%v buf %q", m.Payload, m.Compressed, buf)
				}
			})
		}
		// An uncompressed message is left alone.
		m := Message{Kind: KindText, Payload: []byte("plain")}
		var r Reader
		if buf, err := r.Decompress(nil, &m); err != nil || buf != nil || string(m.Payload) != "plain" {
			t.Fatalf("Decompress of a plain message: %q %v", buf, err)
		}
	})
}

// End to end with gobwas/ws as the client: it offers permessage-deflate,
// accepts our response, sends a compressed message and reads our
// compressed reply.
func TestCrossCheckGobwasDeflate(t *testing.T) {
	client, server := net.Pipe()
	defer client.Close()
	done := make(chan error, 1)
	go func() { done <- serveDeflateOnce(server) }()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	d := ws.Dialer{
		Extensions: []httphead.Option{wsflate.DefaultParameters.Option()},
		NetDial:    func(context.Context, string, string) (net.Conn, error) { return client, nil },
	}
	conn, br, hs, err := d.Dial(ctx, "ws://chat.example/ws")
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	if len(hs.Extensions) != 1 || string(hs.Extensions[0].Name) != "permessage-deflate" {
		t.Fatalf("negotiated extensions %v", hs.Extensions)
	}
	var p wsflate.Parameters
	if err := p.Parse(hs.Extensions[0]); err != nil || !p.ServerNoContextTakeover || !p.ClientNoContextTakeover {
		t.Fatalf("parameters %+v err %v", p, err)
	}
	var rd io.Reader = conn
	if br != nil {
		rd = io.MultiReader(br, conn)
	}
	msg := bytes.Repeat([]byte("compress me please "), 50)
	f, err := wsflate.CompressFrame(ws.NewTextFrame(msg))
	if err != nil {
		t.Fatal(err)
	}
	if err := ws.WriteFrame(conn, ws.MaskFrame(f)); err != nil {
		t.Fatal(err)
	}
	reply, err := ws.ReadFrame(rd)
	if err != nil {
		t.Fatal(err)
	}
	if !reply.Header.Rsv1() {
		t.Fatalf("reply not compressed: %+v", reply.Header)
	}
	reply, err = wsflate.DecompressFrame(reply)
	if err != nil || string(reply.Payload) != "echo: "+string(msg) {
		t.Fatalf("reply %q err %v", reply.Payload, err)
	}
	_ = wsutil.WriteClientMessage(conn, ws.OpClose, ws.NewCloseFrameBody(ws.StatusNormalClosure, ""))
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func serveDeflateOnce(c net.Conn) error {
	defer c.Close()
	cfg := &HandshakeConfig{Compression: true}
	var buf []byte
	tmp := make([]byte, 4096)
	fill := func() error {
		n, err := c.Read(tmp)
		buf = append(buf, tmp[:n]...)
		return err
	}
	var req Request
	for {
		if err := fill(); err != nil {
			return err
		}
		r, n, err := ParseHandshake(buf, cfg)
		if errors.Is(err, ErrShortHandshake) {
			continue
		}
		if err != nil {
			return err
		}
		req, buf = r, buf[n:]
		break
	}
	if !req.Deflate.Enabled {
		return errors.New("deflate not negotiated")
	}
	if _, err := c.Write(AppendHandshakeResponse(nil, &req)); err != nil {
		return err
	}
	rd := Reader{Deflate: true}
	for {
		m, n, ok, err := rd.Next(buf)
		if errors.Is(err, ErrShortFrame) {
			if err := fill(); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return err
		}
		buf = buf[n:]
		if !ok {
			continue
		}
		switch m.Kind {
		case KindClose:
			return nil
		case KindText:
			if !m.Compressed {
				return errors.New("client message not compressed")
			}
			if _, err := rd.Decompress(nil, &m); err != nil {
				return err
			}
			payload := Deflate(nil, append([]byte("echo: "), m.Payload...))
			out := AppendHeader(nil, true, Rsv1, OpText, len(payload))
			if _, err := c.Write(append(out, payload...)); err != nil {
				return err
			}
		}
	}
}

func FuzzInflate(f *testing.F) {
	for _, p := range deflatePayloads() {
		if len(p) < 2000 {
			f.Add(Deflate(nil, p), p, uint16(1000))
		}
	}
	f.Add([]byte{0xff, 0x00}, []byte("x"), uint16(10))
	f.Fuzz(func(t *testing.T, src, plain []byte, limit uint16) {
		// Arbitrary input: never panics, never exceeds the limit.
		out, err := Inflate(nil, src, int(limit))
		if err == nil && len(out) > int(limit) {
			t.Fatalf("%d bytes out with limit %d", len(out), limit)
		}
		if err != nil && closeCode(err) != CloseMessageTooBig && closeCode(err) != CloseInvalidPayload {
			t.Fatalf("unexpected error %v", err)
		}
		// Round trip of arbitrary plain text, and the limit is exact.
		c := Deflate(nil, plain)
		got, err := Inflate(nil, c, len(plain))
		if err != nil || !bytes.Equal(got, plain) {
			t.Fatalf("round trip of %d bytes: %v", len(plain), err)
		}
		if len(plain) > 0 {
			if _, err := Inflate(nil, c, len(plain)-1); closeCode(err) != CloseMessageTooBig {
				t.Fatalf("limit len-1: %v", err)
			}
		}
	})
}
