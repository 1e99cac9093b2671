package wsproto

import (
	"bytes"
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/gobwas/ws"
)

// RFC 6455 §5.7 examples.
func TestRFCExamples(t *testing.T) {
	b256 := bytes.Repeat([]byte{0xA5}, 256)
	b64k := bytes.Repeat([]byte{0x5A}, 65536)
	cases := []struct {
		name    string
		wire    []byte
		fin     bool
		op      Opcode
		masked  bool
		payload []byte
	}{
		{
			name:    "5.7/single-frame-unmasked-text",
			wire:    []byte{0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f},
			fin:     true,
			op:      OpText,
			payload: []byte("Hello"),
		},
		{
			name:    "5.7/single-frame-masked-text",
			wire:    []byte{0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58},
			fin:     true,
			op:      OpText,
			masked:  true,
			payload: []byte("Hello"),
		},
		{
			name:    "5.7/fragmented-unmasked-text-first",
			wire:    []byte{0x01, 0x03, 0x48, 0x65, 0x6c},
			op:      OpText,
			payload: []byte("Hel"),
		},
		{
			name:    "5.7/fragmented-unmasked-text-second",
			wire:    []byte{0x80, 0x02, 0x6c, 0x6f},
			fin:     true,
			op:      OpContinuation,
			payload: []byte("lo"),
		},
		{
			name:    "5.7/unmasked-ping",
			wire:    []byte{0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f},
			fin:     true,
			op:      OpPing,
			payload: []byte("Hello"),
		},
		{
			name:    "5.7/masked-pong",
			wire:    []byte{0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58},
			fin:     true,
			op:      OpPong,
			masked:  true,
			payload: []byte("Hello"),
		},
		{
			name:    "5.7/256-bytes-binary-16-bit-length",
			wire:    append([]byte{0x82, 0x7E, 0x01, 0x00}, b256...),
			fin:     true,
			op:      OpBinary,
			payload: b256,
		},
		{
			name:    "5.7/64KiB-binary-64-bit-length",
			wire:    append([]byte{0x82, 0x7F, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00}, b64k...),
			fin:     true,
			op:      OpBinary,
			payload: b64k,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := bytes.Clone(tc.wire)
			f, n, err := Parse(b, 1<<20)
			if err != nil || n != len(b) {
				t.Fatalf("Parse = n %d, err %v; want %d, nil", n, err, len(b))
			}
			if f.Fin != tc.fin || f.Op != tc.op || f.Masked != tc.masked || f.Rsv != 0 {
				t.Fatalf("header fin=%v op=%v masked=%v rsv=%d", f.Fin, f.Op, f.Masked, f.Rsv)
			}
			f.Unmask()
			if !bytes.Equal(f.Payload, tc.payload) {
				t.Fatalf("payload %q, want %q", f.Payload, tc.payload)
			}
			if !tc.masked {
				// The server encoder produces the RFC's bytes exactly.
				enc := AppendHeader(nil, tc.fin, 0, tc.op, len(tc.payload))
				enc = append(enc, tc.payload...)
				if !bytes.Equal(enc, tc.wire) {
					t.Fatalf("AppendHeader+payload = % x, want % x", enc[:min(len(enc), 16)], tc.wire[:min(len(tc.wire), 16)])
				}
				if tc.fin && !bytes.Equal(AppendFrame(nil, tc.op, tc.payload), tc.wire) {
					t.Fatalf("AppendFrame differs from the RFC example")
				}
			}
		})
	}
	t.Run("5.7/masked-text-through-Reader", func(t *testing.T) {
		var r Reader
		b := []byte{0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58}
		m, n, ok, err := r.Next(b)
		if err != nil || !ok || n != len(b) || m.Kind != KindText || string(m.Payload) != "Hello" {
			t.Fatalf("Next = %v n=%d ok=%v err=%v", toMsg(m), n, ok, err)
		}
	})
}

// A frame cut anywhere before its end is ErrShortFrame, and the whole
// frame parses with n == its length, leaving what follows alone.
func TestParseShortAtEveryCut(t *testing.T) {
	frames := [][]byte{
		encode(text("")),
		encode(text("Hello")),
		encode(binary_(repeat("x", 125))),
		encode(binary_(repeat("x", 126))),
		encode(binary_(repeat("x", 65535))),
		encode(binary_(repeat("x", 65536))),
		AppendFrame(nil, OpText, []byte("server frame")),
	}
	for _, fr := range frames {
		for cut := 0; cut < len(fr); cut++ {
			if _, n, err := Parse(fr[:cut], 1<<20); !errors.Is(err, ErrShortFrame) || n != 0 {
				t.Fatalf("len %d cut %d: n=%d err=%v, want ErrShortFrame", len(fr), cut, n, err)
			}
		}
		withTail := append(bytes.Clone(fr), 0x81, 0x80)
		if _, n, err := Parse(withTail, 1<<20); err != nil || n != len(fr) {
			t.Fatalf("len %d with tail: n=%d err=%v", len(fr), n, err)
		}
	}
}

func TestParseLimits(t *testing.T) {
	cases := []struct {
		name     string
		wire     []byte
		max      int
		wantErr  error
		wantCode CloseCode
	}{
		{
			name: "5.2/at-limit",
			wire: encode(binary_("12345")),
			max:  5,
		},
		{
			name:     "10.4/over-limit",
			wire:     encode(binary_("123456")),
			max:      5,
			wantCode: CloseMessageTooBig,
		},
		{
			name:     "10.4/over-limit-reported-from-the-header-alone",
			wire:     []byte{0x82, 0x7F, 0, 0, 0, 1, 0, 0, 0, 0},
			max:      1 << 20,
			wantCode: CloseMessageTooBig,
		},
		{
			name:     "10.4/negative-limit-is-zero",
			wire:     encode(binary_("1")),
			max:      -1,
			wantCode: CloseMessageTooBig,
		},
		{
			name: "10.4/negative-limit-allows-empty",
			wire: encode(binary_("")),
			max:  -1,
		},
		{
			name:     "5.2/64-bit-length-msb-set",
			wire:     []byte{0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 1},
			max:      1 << 20,
			wantCode: CloseProtocolError,
		},
		{
			name:    "5.2/largest-length-with-no-limit-is-short-not-overflow",
			wire:    []byte{0x82, 0x7F, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 1, 2, 3},
			max:     math.MaxInt,
			wantErr: ErrShortFrame,
		},
		{
			name:    "5.2/header-incomplete",
			wire:    []byte{0x82, 0xFF, 0, 0},
			max:     1 << 20,
			wantErr: ErrShortFrame,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, n, err := Parse(tc.wire, tc.max)
			switch {
			case tc.wantErr != nil:
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err %v, want %v", err, tc.wantErr)
				}
			case tc.wantCode != 0:
				if closeCode(err) != tc.wantCode || n != 0 {
					t.Fatalf("n=%d err %v, want close %d", n, err, tc.wantCode)
				}
			case err != nil || n != len(tc.wire):
				t.Fatalf("n=%d err %v", n, err)
			}
		})
	}
}

func TestParseReportsRsvAndClipsPayload(t *testing.T) {
	b := encode(wire{fin: false, rsv: 5, op: 0xB, payload: "abc"}, text("next"))
	f, n, err := Parse(b, 100)
	if err != nil {
		t.Fatal(err)
	}
	if f.Fin || f.Rsv != 5 || f.Op != 0xB || !f.Masked || f.Key != testKey(0) {
		t.Fatalf("frame %+v", f)
	}
	if cap(f.Payload) != 3 || n != 2+4+3 {
		t.Fatalf("payload cap %d, n %d", cap(f.Payload), n)
	}
	f.Unmask()
	f.Unmask() // exactly once: the second call must not re-mask
	if string(f.Payload) != "abc" || f.Masked {
		t.Fatalf("payload %q masked=%v after two Unmask calls", f.Payload, f.Masked)
	}
}

func naiveMask(key [4]byte, pos int, b []byte) {
	for i := range b {
		b[i] ^= key[(pos+i)%4]
	}
}

func TestMaskBytesMatchesNaive(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	key := [4]byte{0x11, 0x9a, 0xe3, 0x47}
	for n := 0; n <= 200; n++ {
		for pos := 0; pos < 8; pos++ {
			for off := 0; off < 8; off++ { // unaligned starts
				buf := make([]byte, off+n)
				for i := range buf {
					buf[i] = byte(rng.Uint32())
				}
				want := bytes.Clone(buf)
				naiveMask(key, pos, want[off:])
				if got := MaskBytes(key, pos, buf[off:]); got != (pos+n)%4 {
					t.Fatalf("n=%d pos=%d: returned %d, want %d", n, pos, got, (pos+n)%4)
				}
				if !bytes.Equal(buf, want) {
					t.Fatalf("n=%d pos=%d off=%d: mismatch", n, pos, off)
				}
			}
		}
	}
}

func TestMaskBytesInPiecesEqualsWhole(t *testing.T) {
	key := [4]byte{1, 2, 3, 250}
	whole := []byte(repeat("The quick brown fox jumps over the lazy dog. ", 20))
	want := bytes.Clone(whole)
	MaskBytes(key, 0, want)
	for cut1 := 0; cut1 < 50; cut1++ {
		for cut2 := cut1; cut2 < len(whole); cut2 += 37 {
			got := bytes.Clone(whole)
			pos := MaskBytes(key, 0, got[:cut1])
			pos = MaskBytes(key, pos, got[cut1:cut2])
			MaskBytes(key, pos, got[cut2:])
			if !bytes.Equal(got, want) {
				t.Fatalf("cuts %d,%d differ", cut1, cut2)
			}
		}
	}
}

func TestAppendHeaderLengths(t *testing.T) {
	cases := []struct {
		name string
		fin  bool
		rsv  uint8
		op   Opcode
		n    int
		want []byte
	}{
		{name: "7-bit-0", fin: true, op: OpText, n: 0, want: []byte{0x81, 0}},
		{name: "7-bit-125", fin: true, op: OpBinary, n: 125, want: []byte{0x82, 125}},
		{name: "16-bit-126", fin: true, op: OpBinary, n: 126, want: []byte{0x82, 126, 0, 126}},
		{name: "16-bit-65535", fin: false, op: OpText, n: 65535, want: []byte{0x01, 126, 0xFF, 0xFF}},
		{name: "64-bit-65536", fin: true, op: OpBinary, n: 65536, want: []byte{0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0}},
		{name: "64-bit-large", fin: true, op: OpBinary, n: 1<<32 + 5, want: []byte{0x82, 127, 0, 0, 0, 1, 0, 0, 0, 5}},
		{name: "rsv1-compressed", fin: true, rsv: Rsv1, op: OpText, n: 3, want: []byte{0xC1, 3}},
		{name: "continuation", fin: true, op: OpContinuation, n: 1, want: []byte{0x80, 1}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := AppendHeader([]byte{0xEE}, tc.fin, tc.rsv, tc.op, tc.n)
			if !bytes.Equal(got[1:], tc.want) || got[0] != 0xEE {
				t.Fatalf("got % x, want ee % x", got, tc.want)
			}
			// Round trip through parseHeader: server frames are unmasked.
			h, hl, err := parseHeader(got[1:])
			if err != nil || hl != len(tc.want) || h.fin != tc.fin || h.rsv != tc.rsv || h.op != tc.op || h.length != uint64(tc.n) || h.masked {
				t.Fatalf("parseHeader = %+v, %d, %v", h, hl, err)
			}
		})
	}
}

func TestAppendClose(t *testing.T) {
	long := repeat("a", 122) + "é" // 'é' is 2 bytes at offsets 122-123: must be dropped whole
	cases := []struct {
		name        string
		code        CloseCode
		reason      string
		wantPayload string
	}{
		{name: "7.4/normal", code: CloseNormal, reason: "bye", wantPayload: "\x03\xe8bye"},
		{name: "7.4/no-reason", code: CloseGoingAway, wantPayload: "\x03\xe9"},
		{name: "7.4/no-status-is-empty", code: CloseNoStatus, reason: "ignored", wantPayload: ""},
		{name: "7.4/abnormal-is-empty", code: CloseAbnormal, wantPayload: ""},
		{name: "7.4/reserved-1015-is-empty", code: 1015, wantPayload: ""},
		{name: "7.4/zero-is-empty", code: 0, wantPayload: ""},
		{name: "7.4/private-code", code: 4001, reason: "kicked", wantPayload: "\x0f\xa1kicked"},
		{name: "5.5/reason-exactly-123", code: CloseNormal, reason: repeat("r", 123), wantPayload: "\x03\xe8" + repeat("r", 123)},
		{name: "5.5/reason-truncated-at-123", code: CloseNormal, reason: repeat("r", 200), wantPayload: "\x03\xe8" + repeat("r", 123)},
		{name: "5.5/reason-truncated-on-utf8-boundary", code: CloseNormal, reason: long + "tail", wantPayload: "\x03\xe8" + repeat("a", 122)},
		{name: "5.5/reason-4-byte-char-straddling", code: ClosePolicyViolation, reason: repeat("a", 121) + "😀", wantPayload: "\x03\xf0" + repeat("a", 121)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := AppendClose(nil, tc.code, tc.reason)
			f, n, err := Parse(b, MaxControlPayload)
			if err != nil || n != len(b) || !f.Fin || f.Op != OpClose || f.Masked {
				t.Fatalf("Parse = %+v n=%d err=%v", f, n, err)
			}
			if string(f.Payload) != tc.wantPayload {
				t.Fatalf("payload %q, want %q", f.Payload, tc.wantPayload)
			}
			if !utf8.Valid(f.Payload[min(2, len(f.Payload)):]) {
				t.Fatalf("reason is not valid UTF-8")
			}
		})
	}
}

func TestValidCloseCode(t *testing.T) {
	valid := map[CloseCode]bool{}
	for c := 1000; c <= 1003; c++ {
		valid[CloseCode(c)] = true
	}
	for c := 1007; c <= 1014; c++ {
		valid[CloseCode(c)] = true
	}
	for c := 3000; c <= 4999; c++ {
		valid[CloseCode(c)] = true
	}
	for c := 0; c <= 0xFFFF; c++ {
		if got := ValidCloseCode(CloseCode(c)); got != valid[CloseCode(c)] {
			t.Fatalf("ValidCloseCode(%d) = %v", c, got)
		}
	}
}

func TestErrorsAndStrings(t *testing.T) {
	ce := &CloseError{Code: CloseProtocolError, Reason: "client frame not masked"}
	if got := ce.Error(); got != "wsproto: close 1002: client frame not masked" {
		t.Fatalf("CloseError.Error() = %q", got)
	}
	he := &HandshakeError{Status: 403, Reason: "origin not allowed"}
	if got := he.Error(); got != "wsproto: handshake rejected: 403 origin not allowed" {
		t.Fatalf("HandshakeError.Error() = %q", got)
	}
	ops := map[Opcode]string{OpContinuation: "continuation", OpText: "text", OpBinary: "binary", OpClose: "close", OpPing: "ping", OpPong: "pong", 3: "opcode(3)"}
	for op, want := range ops {
		if op.String() != want {
			t.Fatalf("Opcode(%d).String() = %q", op, op.String())
		}
	}
	kinds := map[Kind]string{KindText: "text", KindBinary: "binary", KindPing: "ping", KindPong: "pong", KindClose: "close", 0: "invalid"}
	for k, want := range kinds {
		if k.String() != want {
			t.Fatalf("Kind(%d).String() = %q", k, k.String())
		}
	}
}

// Cross-check against an independent implementation: frames written by a
// gobwas/ws client are read by Reader, and frames written by AppendFrame
// and AppendClose are read by gobwas/ws.
func TestCrossCheckGobwasFrames(t *testing.T) {
	payloads := []string{"", "Hello", repeat("é", 100), repeat("z", 126), repeat("q", 70000)}
	for _, p := range payloads {
		for _, op := range []ws.OpCode{ws.OpText, ws.OpBinary} {
			var buf bytes.Buffer
			f := ws.MaskFrameWith(ws.NewFrame(op, true, []byte(p)), [4]byte{9, 8, 7, 6})
			if err := ws.WriteFrame(&buf, f); err != nil {
				t.Fatal(err)
			}
			r := Reader{MaxMessage: 1 << 20}
			m, n, ok, err := r.Next(buf.Bytes())
			if err != nil || !ok || n != buf.Len() || string(m.Payload) != p || byte(m.Kind) != byte(op) {
				t.Fatalf("gobwas %v frame of %d bytes: %v n=%d ok=%v err=%v", op, len(p), toMsg(m), n, ok, err)
			}

			out := AppendFrame(nil, Opcode(op), []byte(p))
			gf, err := ws.ReadFrame(bytes.NewReader(out))
			if err != nil || gf.Header.OpCode != op || !gf.Header.Fin || gf.Header.Masked || string(gf.Payload) != p {
				t.Fatalf("gobwas read of AppendFrame: %+v err=%v", gf.Header, err)
			}
		}
	}
	out := AppendClose(nil, CloseGoingAway, "server shutdown")
	gf, err := ws.ReadFrame(bytes.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	code, reason := ws.ParseCloseFrameData(gf.Payload)
	if code != ws.StatusGoingAway || reason != "server shutdown" {
		t.Fatalf("gobwas parsed close %d %q", code, reason)
	}
	if err := ws.CheckCloseFrameData(code, reason); err != nil {
		t.Fatalf("gobwas rejects our close frame: %v", err)
	}
	if !strings.HasPrefix(string(out), "\x88") {
		t.Fatalf("close frame header % x", out[:2])
	}
}
