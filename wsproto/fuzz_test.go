package wsproto

import (
	"bufio"
	"bytes"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/gobwas/ws"
)

// fuzzSeed is one conformance case as a fuzz seed.
type fuzzSeed struct {
	stream     []byte
	maxMessage int32
	deflate    bool
}

// maxSeed is the longest seed stream; a longer case contributes its first
// maxSeed bytes (its frame headers and the start of its payload), so that
// every conformance case is in the corpus without making each fuzz
// iteration copy megabytes.
const maxSeed = 8 << 10

// conformanceSeeds is the fuzz seed corpus: the byte stream of every case
// in every conformance table (conformanceTables), plus a few hand-made
// streams.
func conformanceSeeds() []fuzzSeed {
	var out []fuzzSeed
	for _, table := range conformanceTables {
		for _, tc := range table() {
			b := append(encode(tc.frames...), tc.raw...)
			if len(b) > maxSeed {
				b = b[:maxSeed:maxSeed]
			}
			out = append(out, fuzzSeed{stream: b, maxMessage: tc.maxMessage, deflate: tc.deflate})
		}
	}
	for _, b := range [][]byte{
		encode(text("Hello"), ping("p"), pong(""), closeFrame(1000, "bye")),
		encode(frag(OpBinary, "\x00\xff", false), frag(OpContinuation, "", false), frag(OpContinuation, "x", true)),
		{0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 4},
		{0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58}, // RFC 6455 §5.7 masked "Hello"
	} {
		out = append(out, fuzzSeed{stream: b})
	}
	return out
}

// Every conformance case is a seed.
func TestConformanceSeedsCoverEveryCase(t *testing.T) {
	n := 0
	for _, table := range conformanceTables {
		n += len(table())
	}
	if seeds := conformanceSeeds(); len(seeds) < n || n < 300 {
		t.Fatalf("%d seeds for %d conformance cases", len(seeds), n)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range conformanceSeeds() {
		f.Add(s.stream, int(max(s.maxMessage, 1<<16)))
	}
	f.Fuzz(func(t *testing.T, b []byte, max int) {
		max %= 1 << 20
		fr, n, err := Parse(b, max)
		if err != nil {
			if n != 0 {
				t.Fatalf("error %v with n=%d", err, n)
			}
			if !errors.Is(err, ErrShortFrame) && closeCode(err) == 0 {
				t.Fatalf("unexpected error type %v", err)
			}
			return
		}
		if n < 2 || n > len(b) || n < len(fr.Payload) || len(fr.Payload) > max {
			t.Fatalf("n=%d len(b)=%d payload=%d max=%d", n, len(b), len(fr.Payload), max)
		}
		if cap(fr.Payload) != len(fr.Payload) || len(fr.Payload) > 0 && &fr.Payload[len(fr.Payload)-1] != &b[n-1] {
			t.Fatalf("payload does not end at the frame end")
		}
		// Cut anywhere before the end: ErrShortFrame.
		for _, cut := range []int{0, 1, n / 2, n - 1} {
			if _, k, err := Parse(b[:cut], max); !errors.Is(err, ErrShortFrame) || k != 0 {
				t.Fatalf("cut %d of %d: k=%d err=%v", cut, n, k, err)
			}
		}
		// An independent header parser agrees.
		h, err := ws.ReadHeader(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("gobwas rejects a header Parse accepted: %v", err)
		}
		if h.Fin != fr.Fin || h.Rsv != fr.Rsv || byte(h.OpCode) != byte(fr.Op) || h.Masked != fr.Masked ||
			h.Length != int64(len(fr.Payload)) || fr.Masked && h.Mask != fr.Key {
			t.Fatalf("gobwas header %+v, ours %+v", h, fr)
		}
		// Unmask matches gobwas's cipher.
		want := bytes.Clone(fr.Payload)
		if fr.Masked {
			ws.Cipher(want, fr.Key, 0)
		}
		fr.Unmask()
		if !bytes.Equal(fr.Payload, want) {
			t.Fatalf("Unmask differs from ws.Cipher")
		}
	})
}

// readerRun feeds stream to a fresh Reader in two pieces cut at cut,
// keeping the unconsumed tail between them like a connection buffer.
func readerRun(t *testing.T, stream []byte, cut int, max int32, deflate bool) ([]msg, CloseCode, bool) {
	stream = bytes.Clone(stream)
	r := Reader{MaxMessage: max, Deflate: deflate}
	var out []msg
	buf := stream[:cut:cut]
	fed := false
	for {
		m, n, ok, err := r.Next(buf)
		if errors.Is(err, ErrShortFrame) {
			if fed {
				return out, 0, len(buf) == 0
			}
			fed = true
			buf = append(buf, stream[cut:]...)
			continue
		}
		if err != nil {
			code := closeCode(err)
			if code == 0 {
				t.Fatalf("non-close error %v", err)
			}
			return out, code, true
		}
		if ok {
			if m.Kind == KindText && !m.Compressed && !utf8.Valid(m.Payload) {
				t.Fatalf("invalid UTF-8 text accepted")
			}
			if (m.Kind == KindText || m.Kind == KindBinary) && len(m.Payload) > r.maxMessage() {
				t.Fatalf("message of %d bytes over the limit %d", len(m.Payload), r.maxMessage())
			}
			if m.Kind == KindClose && m.Code != CloseNoStatus && !ValidCloseCode(m.Code) {
				t.Fatalf("invalid close code %d accepted", m.Code)
			}
			if m.Compressed && !deflate {
				t.Fatalf("compressed message without Deflate")
			}
			out = append(out, toMsg(m))
		}
		buf = buf[n:]
	}
}

func FuzzReader(f *testing.F) {
	for _, s := range conformanceSeeds() {
		f.Add(s.stream, uint16(len(s.stream)/2), uint16(min(s.maxMessage, 65535)), s.deflate)
	}
	f.Add(encode(wire{fin: true, rsv: 4, op: OpText, payload: string(Deflate(nil, []byte("hello hello")))}), uint16(3), uint16(0), true)
	f.Fuzz(func(t *testing.T, stream []byte, cut uint16, max uint16, deflate bool) {
		c := int(cut) % (len(stream) + 1)
		whole, wholeCode, wholeClean := readerRun(t, stream, len(stream), int32(max), deflate)
		split, splitCode, splitClean := readerRun(t, stream, c, int32(max), deflate)
		if !slices.Equal(whole, split) || wholeCode != splitCode || wholeClean != splitClean {
			t.Fatalf("cut %d: whole %v/%d/%v, split %v/%d/%v", c, whole, wholeCode, wholeClean, split, splitCode, splitClean)
		}
	})
}

// A valid stream of many frames, cut at every byte boundary and fed in two
// pieces, yields the same messages as fed whole.
func TestReaderSplitProperty(t *testing.T) {
	var frames []wire
	var want []msg
	for i := range 12 {
		switch i % 4 {
		case 0:
			s := repeat("héllo wörld ", i+1)
			frames = append(frames, text(s))
			want = append(want, mText(s))
		case 1:
			s := repeat("😀€a", 3*i)
			frames = append(frames, fragments(OpText, s, 5)...)
			frames = append(frames[:len(frames)-1], ping("mid"), frames[len(frames)-1])
			want = append(want, mPing("mid"), mText(s))
		case 2:
			s := repeat("\x00\xff\x10", 50*i)
			frames = append(frames, binary_(s), pong("p"))
			want = append(want, mBin(s), mPong("p"))
		case 3:
			s := repeat("z", 130+i)
			frames = append(frames, fragments(OpBinary, s, 64)...)
			want = append(want, mBin(s))
		}
	}
	frames = append(frames, closeFrame(1001, "going"))
	want = append(want, mClose(1001, "going"))
	stream := encode(frames...)
	t.Logf("%d frames, %d bytes", len(frames), len(stream))
	for cut := 0; cut <= len(stream); cut++ {
		got, code, clean := readerRun(t, stream, cut, 0, false)
		if code != 0 || !clean || !slices.Equal(got, want) {
			t.Fatalf("cut %d: code %d clean %v\n got %v\nwant %v", cut, code, clean, got, want)
		}
	}
}

func FuzzHandshake(f *testing.F) {
	f.Add(request(upgradeLines()...), false)
	f.Add(request(upgradeLines("Sec-WebSocket-Protocol: a, b", "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits")...), true)
	f.Add(request("GET / HTTP/1.1", "Host: x"), false)
	f.Add(append(request(upgradeLines()...), encode(text("pipelined"))...), false)
	f.Add([]byte("GET /chat HTTP/1.1\r\nHost: a\r\n"), false)
	f.Fuzz(func(t *testing.T, b []byte, compression bool) {
		cfg := &HandshakeConfig{
			Subprotocols:      []string{"chat", "superchat"},
			EchoFirstProtocol: true,
			MaxHeaderBytes:    1024,
			Compression:       compression,
		}
		r, n, err := ParseHandshake(b, cfg)
		end := bytes.Index(b, crlfcrlf)
		if err != nil {
			if n != 0 {
				t.Fatalf("error with n=%d", n)
			}
			var he *HandshakeError
			switch {
			case errors.Is(err, ErrShortHandshake):
				if end >= 0 && end+4 <= cfg.MaxHeaderBytes {
					t.Fatalf("short although the head is complete")
				}
			case errors.As(err, &he):
				checkErrorResponse(t, he)
			default:
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		if n != end+4 || n > cfg.MaxHeaderBytes {
			t.Fatalf("n=%d, head ends at %d", n, end+4)
		}
		if !validKey([]byte(r.Key)) {
			t.Fatalf("accepted key %q", r.Key)
		}
		// The head alone parses the same.
		r2, n2, err2 := ParseHandshake(bytes.Clone(b[:n]), cfg)
		if err2 != nil || n2 != n || r2 != r {
			t.Fatalf("head alone: %+v %d %v", r2, n2, err2)
		}
		// The response is well-formed HTTP with exactly our headers.
		resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(AppendHandshakeResponse(nil, &r))), nil)
		if err != nil || resp.StatusCode != 101 || resp.Header.Get("Sec-WebSocket-Accept") != AcceptKey(r.Key) ||
			resp.Header.Get("Sec-WebSocket-Protocol") != r.Protocol {
			t.Fatalf("response %+v err %v", resp, err)
		}
		if ext := resp.Header.Get("Sec-WebSocket-Extensions"); (ext != "") != r.Deflate.Enabled ||
			r.Deflate.Enabled && !strings.HasPrefix(ext, "permessage-deflate") {
			t.Fatalf("extensions %q for %+v", ext, r.Deflate)
		}
		if r.Deflate.Enabled && !compression {
			t.Fatalf("deflate negotiated while disabled")
		}
	})
}
